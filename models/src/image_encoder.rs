//! image_encoder: grayscale crop -> latent map z.
//!
//! A small residual CNN: two stride-2 stages take the S x S crop to an (S/4) x (S/4) map,
//! a residual block in between adds depth at low cost, and a 1x1 convolution gives the
//! latent channels. Two conv layers already capture most of V1 (science guide §2); the
//! residual block is the "deeper helps a little".

use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder};

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
        let same = Conv2dConfig { padding: 1, ..Default::default() };
        let down = Conv2dConfig { padding: 1, stride: 2, ..Default::default() };
        Ok(Self {
            stem: conv2d(1, c1, 3, same, vb.pp("stem"))?,
            down1: conv2d(c1, c2, 3, down, vb.pp("down1"))?,
            res_a: conv2d(c2, c2, 3, same, vb.pp("res_a"))?,
            res_b: conv2d(c2, c2, 3, same, vb.pp("res_b"))?,
            down2: conv2d(c2, c2, 3, down, vb.pp("down2"))?,
            head: conv2d(c2, arch.latent_channels, 1, Default::default(), vb.pp("head"))?,
        })
    }

    /// `x`: [B, 1, S, S] normalised pixels -> z: [B, latent_channels, S/4, S/4].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.stem.forward(x)?.gelu()?;
        let h = self.down1.forward(&h)?.gelu()?;
        let r = self.res_b.forward(&self.res_a.forward(&h)?.gelu()?)?;
        let h = (h + r)?.gelu()?;
        let h = self.down2.forward(&h)?.gelu()?;
        self.head.forward(&h)
    }
}
