//! image_decoder: latent map z -> grayscale image.
//!
//! Two sub-pixel upsampling stages (a convolution to 4x the channels, then pixel shuffle;
//! Shi et al. 2016) take the (S/4) x (S/4) map back to S x S. Sub-pixel convolution avoids
//! transposed convolutions and their checkerboard artefacts.

use candle_core::{Module, Result, Tensor};
use candle_nn::{ops::pixel_shuffle, VarBuilder};

use crate::conv::{conv2d, Conv2d};

use crate::config::ArchConfig;

#[derive(Debug, Clone)]
pub struct ImageDecoder {
    stem: Conv2d,
    up1: Conv2d,
    up2: Conv2d,
    out: Conv2d,
}

impl ImageDecoder {
    pub fn new(arch: &ArchConfig, vb: VarBuilder) -> Result<Self> {
        let [c1, c2] = arch.decoder_channels;
        Ok(Self {
            stem: conv2d(arch.latent_channels, c1, 3, 1, 1, vb.pp("stem"))?,
            up1: conv2d(c1, 4 * c1, 3, 1, 1, vb.pp("up1"))?,
            up2: conv2d(c1, 4 * c2, 3, 1, 1, vb.pp("up2"))?,
            out: conv2d(c2, 1, 3, 1, 1, vb.pp("out"))?,
        })
    }

    /// z: [B, Cz, G, G] -> [B, 1, 4G, 4G] normalised pixels.
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        // ReLU before the pixel shuffle equals ReLU after it (a rearrangement).
        let h = self.stem.forward_relu(z)?;
        let h = pixel_shuffle(&self.up1.forward_relu(&h)?, 2)?;
        let h = pixel_shuffle(&self.up2.forward_relu(&h)?, 2)?;
        self.out.forward(&h)
    }
}
