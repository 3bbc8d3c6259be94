//! waveform_encoder: response (lags x channels) -> latent map z.
//!
//! The response is normalised with training-split statistics, then one of two designs
//! (`ArchConfig::waveform_encoder`) maps it to the latent grid:
//! - **mlp**: a two-layer network whose last layer is the "learned RF layer" of neural
//!   decoders (science guide §2): every hidden unit writes into image space.
//! - **retinotopic**: each channel's lags become `latent_channels` features (a weight per
//!   channel, lag and feature), which are placed on the grid by a Gaussian bump at the
//!   channel's own position with its own width (peak one; learned, started at the
//!   channel's STA receptive field when `phase1.readout_init_rf` is set), plus a learned
//!   bias map; a residual block of two 3x3 convolutions then mixes neighbouring cells. A
//!   channel can only write near its position, so the decoder's projective fields stay
//!   where the channels are placed, and no bottleneck squeezes a large population through
//!   a few hundred hidden units.

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Init, Linear, VarBuilder};

use crate::config::{ArchConfig, WaveformEncoderKind};
use crate::conv::{conv2d, Conv2d};
use crate::waveform_decoder::{gaussian_bumps, grid_coordinates};

/// Names of the retinotopic encoder's placement variables (their starting values are set
/// here, not drawn: the grid's middle with a broad width, until a channel is placed at
/// its receptive field).
pub const PLACE_MU: &str = "place_mu";
pub const PLACE_LOG_SIGMA: &str = "place_log_sigma";

#[derive(Debug, Clone)]
enum Placement {
    /// Learned centres `mu` [C, 2] (grid cells) and widths `log_sigma` [C, 1]; `gx`, `gy`
    /// the cells' coordinates.
    Gaussian { mu: Tensor, log_sigma: Tensor, gx: Tensor, gy: Tensor },
    /// The bumps [C, G*G] evaluated once (inference).
    Fixed(Tensor),
}

#[derive(Debug, Clone)]
struct Retinotopic {
    /// [C, L, F]: each channel's features from its lags.
    lag_weights: Tensor,
    placement: Placement,
    /// [F, G*G]
    bias: Tensor,
    refine1: Conv2d,
    refine2: Conv2d,
    n_lags: usize,
    n_channels: usize,
}

#[derive(Debug, Clone)]
enum Design {
    Mlp { hidden: Linear, to_latent: Linear },
    Retinotopic(Box<Retinotopic>),
}

#[derive(Debug, Clone)]
pub struct WaveformEncoder {
    design: Design,
    latent_channels: usize,
    grid: usize,
}

impl WaveformEncoder {
    pub fn new(arch: &ArchConfig, grid: usize, n_lags: usize, n_channels: usize, vb: VarBuilder) -> Result<Self> {
        let f = arch.latent_channels;
        let design = match arch.waveform_encoder {
            WaveformEncoderKind::Mlp => Design::Mlp {
                hidden: linear(n_lags * n_channels, arch.waveform_hidden, vb.pp("hidden"))?,
                to_latent: linear(arch.waveform_hidden, f * grid * grid, vb.pp("to_latent"))?,
            },
            WaveformEncoderKind::Retinotopic => {
                let middle = (grid as f64 - 1.0) / 2.0;
                let mu = vb.get_with_hints((n_channels, 2), PLACE_MU, Init::Const(middle))?;
                let log_sigma = vb.get_with_hints((n_channels, 1), PLACE_LOG_SIGMA, Init::Const((grid as f64 / 4.0).max(1.0).ln()))?;
                let (gx, gy) = grid_coordinates(grid, vb.device())?;
                let bound = 1.0 / (n_lags as f64).sqrt();
                Design::Retinotopic(Box::new(Retinotopic {
                    lag_weights: vb.get_with_hints((n_channels, n_lags, f), "lag_weights", Init::Uniform { lo: -bound, up: bound })?,
                    placement: Placement::Gaussian { mu, log_sigma, gx, gy },
                    bias: vb.get_with_hints((f, grid * grid), "bias", Init::Const(0.0))?,
                    refine1: conv2d(f, 2 * f, 3, 1, 1, vb.pp("refine1"))?,
                    refine2: conv2d(2 * f, f, 3, 1, 1, vb.pp("refine2"))?,
                    n_lags,
                    n_channels,
                }))
            }
        };
        Ok(Self { design, latent_channels: f, grid })
    }

    /// `r`: [B, L*C] normalised response (lag-major) -> z: [B, Cz, G, G].
    pub fn forward(&self, r: &Tensor) -> Result<Tensor> {
        let b = r.dim(0)?;
        let (f, g) = (self.latent_channels, self.grid);
        match &self.design {
            Design::Mlp { hidden, to_latent } => {
                let h = hidden.forward(r)?.relu()?;
                to_latent.forward(&h)?.reshape((b, f, g, g))
            }
            Design::Retinotopic(net) => {
                // [B, L, C] -> [C, B, L] x [C, L, F] -> [C, B, F]
                let per_channel = r.reshape((b, net.n_lags, net.n_channels))?.permute((2, 0, 1))?.contiguous()?;
                let features = per_channel.matmul(&net.lag_weights)?;
                // [B*F, C] x [C, G*G] -> [B, F, G*G] (one plain product: a broadcast one
                // would copy the bumps once per sample)
                let features = features.permute((1, 2, 0))?.contiguous()?.reshape((b * f, net.n_channels))?;
                let placed = features.matmul(&net.bumps()?)?.reshape((b, f, g * g))?.broadcast_add(&net.bias.unsqueeze(0)?)?;
                let z = placed.reshape((b, f, g, g))?;
                let refined = net.refine2.forward(&net.refine1.forward_relu(&z)?)?;
                z + refined
            }
        }
    }

    /// A copy whose placement bumps are evaluated once (what inference reads); nothing
    /// trains through it. The MLP design is returned as it is.
    pub fn frozen(&self) -> Result<Self> {
        match &self.design {
            Design::Mlp { .. } => Ok(self.clone()),
            Design::Retinotopic(net) => {
                let fixed = Retinotopic { placement: Placement::Fixed(net.bumps()?.detach()), ..(**net).clone() };
                Ok(Self { design: Design::Retinotopic(Box::new(fixed)), ..self.clone() })
            }
        }
    }

    /// Each channel's placement on the grid [C, G*G] (peak one), for the retinotopic design.
    pub fn placements(&self) -> Result<Option<Tensor>> {
        match &self.design {
            Design::Mlp { .. } => Ok(None),
            Design::Retinotopic(net) => net.bumps().map(Some),
        }
    }

}

impl Retinotopic {
    fn bumps(&self) -> Result<Tensor> {
        match &self.placement {
            Placement::Gaussian { mu, log_sigma, gx, gy } => gaussian_bumps(mu, log_sigma, gx, gy),
            Placement::Fixed(b) => Ok(b.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use super::*;

    fn retinotopic(grid: usize, n_lags: usize, n_channels: usize) -> (VarMap, WaveformEncoder) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let arch = ArchConfig { latent_channels: 3, waveform_encoder: WaveformEncoderKind::Retinotopic, ..ArchConfig::default() };
        let enc = WaveformEncoder::new(&arch, grid, n_lags, n_channels, vb).unwrap();
        (varmap, enc)
    }

    fn set(varmap: &VarMap, name: &str, t: Tensor) {
        let data = varmap.data().lock().unwrap();
        data.get(name).unwrap_or_else(|| panic!("no {name}")).set(&t).unwrap();
    }

    /// A channel's activity changes z only near where the channel is placed (before the
    /// refinement, whose 3x3 kernels reach two cells further), and moving the placement
    /// moves the change.
    #[test]
    fn a_channel_writes_near_its_placement_only() {
        let (grid, n_lags, n_channels) = (12, 2, 2);
        let (varmap, enc) = retinotopic(grid, n_lags, n_channels);
        let dev = Device::Cpu;
        set(&varmap, PLACE_MU, Tensor::new(&[[2f32, 3.0], [9.0, 8.0]], &dev).unwrap());
        set(&varmap, PLACE_LOG_SIGMA, Tensor::new(&[[0f32], [0.0]], &dev).unwrap());
        let change_of = |channel: usize| -> Vec<f32> {
            let zero = Tensor::zeros((1, n_lags * n_channels), DType::F32, &dev).unwrap();
            let mut bumped = vec![0f32; n_lags * n_channels];
            for l in 0..n_lags {
                bumped[l * n_channels + channel] = 1.0;
            }
            let bumped = Tensor::from_vec(bumped, (1, n_lags * n_channels), &dev).unwrap();
            let d = (enc.forward(&bumped).unwrap() - enc.forward(&zero).unwrap()).unwrap();
            // Energy per grid cell, summed over the latent channels.
            d.sqr().unwrap().sum(1).unwrap().flatten_all().unwrap().to_vec1().unwrap()
        };
        for (channel, [cx, cy]) in [(0usize, [2f32, 3.0]), (1, [9.0, 8.0])] {
            let e = change_of(channel);
            let total: f32 = e.iter().sum();
            assert!(total > 0.0, "channel {channel} changes nothing");
            let near: f32 = e
                .iter()
                .enumerate()
                .filter(|(k, _)| ((k % grid) as f32 - cx).abs() <= 4.0 && ((k / grid) as f32 - cy).abs() <= 4.0)
                .map(|(_, v)| v)
                .sum();
            assert!(near / total > 0.99, "channel {channel}: only {:.3} of the change within 4 cells of its place", near / total);
            let (mx, my) = e.iter().enumerate().fold((0f32, 0f32), |(x, y), (k, v)| (x + v * (k % grid) as f32 / total, y + v * (k / grid) as f32 / total));
            assert!((mx - cx).abs() < 1.0 && (my - cy).abs() < 1.0, "channel {channel}: change centred at ({mx:.2}, {my:.2}), placed at ({cx}, {cy})");
        }
    }

    /// The frozen copy computes what the trainable one computes.
    #[test]
    fn the_frozen_encoder_matches_the_trainable_one() {
        let (_varmap, enc) = retinotopic(8, 3, 5);
        let r = Tensor::from_vec((0..30).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect::<Vec<_>>(), (2, 15), &Device::Cpu).unwrap();
        let a: Vec<f32> = enc.forward(&r).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = enc.frozen().unwrap().forward(&r).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a.len(), 2 * 3 * 64);
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
        assert!(a.iter().any(|v| v.abs() > 1e-3), "the encoder gives zeros");
    }
}
