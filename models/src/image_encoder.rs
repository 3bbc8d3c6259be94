//! image_encoder: grayscale crop -> latent map z.
//!
//! A small residual CNN: two stride-2 stages take the S x S crop to an (S/4) x (S/4) map,
//! a residual block in between adds depth at low cost, and a 1x1 convolution gives the
//! latent channels. Two conv layers already capture most of V1 (science guide §2); the
//! residual block is the "deeper helps a little".

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::conv::{conv2d, Conv2d};

use crate::config::ArchConfig;

#[derive(Debug, Clone)]
pub struct ImageEncoder {
    stem: Conv2d,
    down1: Conv2d,
    res_a: Conv2d,
    res_b: Conv2d,
    down2: Conv2d,
    head: Conv2d,
}

impl ImageEncoder {
    pub fn new(arch: &ArchConfig, vb: VarBuilder) -> Result<Self> {
        let [c1, c2] = arch.encoder_channels;
        Ok(Self {
            stem: conv2d(1, c1, 3, 1, 1, vb.pp("stem"))?,
            down1: conv2d(c1, c2, 3, 2, 1, vb.pp("down1"))?,
            res_a: conv2d(c2, c2, 3, 1, 1, vb.pp("res_a"))?,
            res_b: conv2d(c2, c2, 3, 1, 1, vb.pp("res_b"))?,
            down2: conv2d(c2, c2, 3, 2, 1, vb.pp("down2"))?,
            head: conv2d(c2, arch.latent_channels, 1, 1, 0, vb.pp("head"))?,
        })
    }

    /// `x`: [B, 1, S, S] normalised pixels -> z: [B, latent_channels, S/4, S/4].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.stem.forward(x)?.relu()?;
        let h = self.down1.forward(&h)?.relu()?;
        let r = self.res_b.forward(&self.res_a.forward(&h)?.relu()?)?;
        let h = (h + r)?.relu()?;
        let h = self.down2.forward(&h)?.relu()?;
        self.head.forward(&h)
    }
}
