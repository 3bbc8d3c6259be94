//! waveform_decoder: latent map z -> predicted response (the encoding model's readout).
//!
//! A factorised "what x where" readout (Klindt et al. 2017): a 1x1 convolution turns z
//! into readout features; each channel has a spatial mask over the latent grid (its
//! receptive field, learned) and, per lag, a weight per feature. Softplus gives a
//! non-negative mean count per 1/30 s bin, trained with a Poisson loss.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::conv::{conv2d, Conv2d};

use crate::config::ArchConfig;

#[derive(Debug, Clone)]
pub struct WaveformDecoder {
    features: Conv2d,
    /// [C, G*G]: spatial mask of each channel.
    mask: Tensor,
    /// [L, C, F]: feature weights of each channel at each lag.
    feature_weights: Tensor,
    /// [L, C]
    bias: Tensor,
    n_lags: usize,
    n_channels: usize,
}

impl WaveformDecoder {
    pub fn new(arch: &ArchConfig, grid: usize, n_lags: usize, n_channels: usize, vb: VarBuilder) -> Result<Self> {
        let f = arch.readout_features;
        let features = conv2d(arch.latent_channels, f, 1, 1, 0, vb.pp("features"))?;
        let g2 = grid * grid;
        let mask = vb.get_with_hints((n_channels, g2), "mask", Init::Uniform { lo: 0.0, up: 1.0 / g2 as f64 })?;
        let feature_weights = vb.get_with_hints(
            (n_lags, n_channels, f),
            "feature_weights",
            Init::Uniform { lo: -1.0 / (f as f64).sqrt(), up: 1.0 / (f as f64).sqrt() },
        )?;
        let bias = vb.get_with_hints((n_lags, n_channels), "bias", Init::Const(0.0))?;
        Ok(Self { features, mask, feature_weights, bias, n_lags, n_channels })
    }

    /// z: [B, Cz, G, G] -> mean counts [B, L*C] (lag-major, like the wire payload).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let b = z.dim(0)?;
        let h = self.features.forward_relu(z)?; // [B, F, G, G]
        let (_, f, g1, g2) = h.dims4()?;
        let h = h.reshape((b, f, g1 * g2))?;
        // Spatial readout: [B, F, G*G] x [G*G, C] -> [B, F, C]
        let read = h.broadcast_matmul(&self.mask.t()?)?;
        // Per lag and channel, weight the features: [B, 1, F, C] * [1, L, F, C] summed over F.
        let w = self.feature_weights.transpose(1, 2)?.unsqueeze(0)?; // [1, L, F, C]
        let out = read.unsqueeze(1)?.broadcast_mul(&w)?.sum(2)?; // [B, L, C]
        let out = out.broadcast_add(&self.bias.unsqueeze(0)?)?;
        softplus(&out)?.reshape((b, self.n_lags * self.n_channels))
    }

    /// L1 norm of the spatial masks (sparse, local receptive fields).
    pub fn mask_l1(&self) -> Result<Tensor> {
        self.mask.abs()?.mean_all()
    }

    /// The learned spatial masks [C, G*G], for figures.
    pub fn masks(&self) -> &Tensor {
        &self.mask
    }
}

/// Numerically stable softplus: max(x, 0) + log(1 + exp(-|x|)).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let pos = x.relu()?;
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    pos + tail
}

/// Poisson negative log-likelihood (without the constant log k! term), averaged.
pub fn poisson_loss(rate: &Tensor, counts: &Tensor) -> Result<Tensor> {
    let eps = 1e-6;
    (rate - counts.mul(&(rate + eps)?.log()?)?)?.mean_all()
}
