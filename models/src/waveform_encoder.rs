//! waveform_encoder: response (lags x channels) -> latent map z.
//!
//! The response is normalised with training-split statistics, then a two-layer network
//! maps it to the latent grid. Its last layer is the "learned RF layer" of neural decoders
//! (science guide §2): every hidden unit writes into image space, so each channel's
//! contribution lands where its receptive field is.

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use crate::config::ArchConfig;

#[derive(Debug, Clone)]
pub struct WaveformEncoder {
    hidden: Linear,
    to_latent: Linear,
    latent_channels: usize,
    grid: usize,
}

impl WaveformEncoder {
    pub fn new(arch: &ArchConfig, grid: usize, response_len: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            hidden: linear(response_len, arch.waveform_hidden, vb.pp("hidden"))?,
            to_latent: linear(arch.waveform_hidden, arch.latent_channels * grid * grid, vb.pp("to_latent"))?,
            latent_channels: arch.latent_channels,
            grid,
        })
    }

    /// `r`: [B, L*C] normalised response -> z: [B, Cz, G, G].
    pub fn forward(&self, r: &Tensor) -> Result<Tensor> {
        let b = r.dim(0)?;
        let h = self.hidden.forward(r)?.relu()?;
        self.to_latent.forward(&h)?.reshape((b, self.latent_channels, self.grid, self.grid))
    }
}
