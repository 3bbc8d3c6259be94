//! waveform_decoder: latent map z -> predicted response (the encoding model's readout).
//!
//! A factorised "what x where" readout (Klindt et al. 2017): a 1x1 convolution turns z
//! into readout features; each channel has a spatial mask over the latent grid (its
//! receptive field, learned) and, per lag, a weight per feature. Softplus gives a
//! non-negative mean count per 1/30 s bin, trained with a Poisson loss. The mask is either
//! free (a weight per grid cell) or a Gaussian with a learned centre and width per channel
//! (`ArchConfig::gaussian_readout`).

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::conv::{conv2d, Conv2d};

use crate::config::ArchConfig;

/// Names of the Gaussian readout's variables (their starting values are set here, not
/// drawn: every channel starts at the grid's middle with a broad width).
pub const READOUT_MU: &str = "readout_mu";
pub const READOUT_LOG_SIGMA: &str = "readout_log_sigma";

#[derive(Debug, Clone)]
enum Readout {
    /// [C, G*G]: a free weight per channel and grid cell.
    Mask(Tensor),
    /// Per channel a Gaussian over the grid: centre `mu` [C, 2] (x, y in grid cells, cell
    /// k at (k mod G, k div G)) and `log_sigma` [C, 1]; `gx`, `gy` [1, G*G] are the cells'
    /// coordinates.
    Gaussian { mu: Tensor, log_sigma: Tensor, gx: Tensor, gy: Tensor },
}

#[derive(Debug, Clone)]
pub struct WaveformDecoder {
    features: Conv2d,
    readout: Readout,
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
        let readout = if arch.gaussian_readout {
            let middle = (grid as f64 - 1.0) / 2.0;
            let mu = vb.get_with_hints((n_channels, 2), READOUT_MU, Init::Const(middle))?;
            let log_sigma = vb.get_with_hints((n_channels, 1), READOUT_LOG_SIGMA, Init::Const((grid as f64 / 4.0).max(1.0).ln()))?;
            let (gx, gy) = grid_coordinates(grid, vb.device())?;
            Readout::Gaussian { mu, log_sigma, gx, gy }
        } else {
            Readout::Mask(vb.get_with_hints((n_channels, g2), "mask", Init::Uniform { lo: 0.0, up: 1.0 / g2 as f64 })?)
        };
        let feature_weights = vb.get_with_hints(
            (n_lags, n_channels, f),
            "feature_weights",
            Init::Uniform { lo: -1.0 / (f as f64).sqrt(), up: 1.0 / (f as f64).sqrt() },
        )?;
        let bias = vb.get_with_hints((n_lags, n_channels), "bias", Init::Const(0.0))?;
        Ok(Self { features, readout, feature_weights, bias, n_lags, n_channels })
    }

    /// z: [B, Cz, G, G] -> mean counts [B, L*C] (lag-major, like the wire payload).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let b = z.dim(0)?;
        let h = self.features.forward_relu(z)?; // [B, F, G, G]
        let (_, f, g1, g2) = h.dims4()?;
        let h = h.reshape((b, f, g1 * g2))?;
        // Spatial readout: [B, F, G*G] x [G*G, C] -> [B, F, C]
        let read = h.broadcast_matmul(&self.masks()?.t()?)?;
        // Per lag and channel, weight the features: [B, 1, F, C] * [1, L, F, C] summed over F.
        let w = self.feature_weights.transpose(1, 2)?.unsqueeze(0)?; // [1, L, F, C]
        let out = read.unsqueeze(1)?.broadcast_mul(&w)?.sum(2)?; // [B, L, C]
        let out = out.broadcast_add(&self.bias.unsqueeze(0)?)?;
        softplus(&out)?.reshape((b, self.n_lags * self.n_channels))
    }

    /// L1 norm of the free spatial masks (sparse, local receptive fields); zero for
    /// Gaussian masks, which are local by construction.
    pub fn mask_l1(&self) -> Result<Tensor> {
        match &self.readout {
            Readout::Mask(mask) => mask.abs()?.mean_all(),
            Readout::Gaussian { mu, .. } => Tensor::new(0f32, mu.device()),
        }
    }

    /// A copy whose spatial masks are fixed at their present values: what inference reads,
    /// without evaluating every channel's Gaussian on the grid on every forward pass
    /// (1,600 x 256 exponentials per frame for the wide-field model). It no longer follows
    /// the readout's variables, so nothing trains through it.
    pub fn frozen(&self) -> Result<Self> {
        Ok(Self { readout: Readout::Mask(self.masks()?.detach()), ..self.clone() })
    }

    /// The spatial masks [C, G*G] (each Gaussian evaluated on the grid and summing to one).
    pub fn masks(&self) -> Result<Tensor> {
        match &self.readout {
            Readout::Mask(mask) => Ok(mask.clone()),
            Readout::Gaussian { mu, log_sigma, gx, gy } => {
                let g = gaussian_bumps(mu, log_sigma, gx, gy)?;
                g.broadcast_div(&g.sum_keepdim(1)?)
            }
        }
    }
}

/// Each channel's Gaussian over the latent grid, peak one: `mu` [C, 2] centres (x, y in
/// grid cells), `log_sigma` [C, 1] widths, `gx`, `gy` [1, G*G] the cells' coordinates
/// -> [C, G*G].
pub fn gaussian_bumps(mu: &Tensor, log_sigma: &Tensor, gx: &Tensor, gy: &Tensor) -> Result<Tensor> {
    let dx = gx.broadcast_sub(&mu.narrow(1, 0, 1)?)?;
    let dy = gy.broadcast_sub(&mu.narrow(1, 1, 1)?)?;
    let two_var = ((log_sigma * 2.0)?.exp()? * 2.0)?;
    (dx.sqr()? + dy.sqr()?)?.broadcast_div(&two_var)?.neg()?.exp()
}

/// The coordinates of a G x G grid's cells (cell k at (k mod G, k div G)): `gx`, `gy`, each [1, G*G].
pub fn grid_coordinates(grid: usize, device: &candle_core::Device) -> Result<(Tensor, Tensor)> {
    let g2 = grid * grid;
    let gx: Vec<f32> = (0..g2).map(|k| (k % grid) as f32).collect();
    let gy: Vec<f32> = (0..g2).map(|k| (k / grid) as f32).collect();
    Ok((Tensor::from_vec(gx, (1, g2), device)?, Tensor::from_vec(gy, (1, g2), device)?))
}

/// Numerically stable softplus: max(x, 0) + log(1 + exp(-|x|)).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let pos = x.relu()?;
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    pos + tail
}

/// A simulated single trial: one Poisson draw per predicted mean count. A mean of zero or
/// less, or one that is not finite, gives 0 without a draw; a positive mean below 1e-6
/// draws as if 1e-6.
pub fn poisson_counts<R: rand::Rng + ?Sized>(means: &[f32], rng: &mut R) -> Vec<f32> {
    use rand_distr::{Distribution, Poisson};
    means
        .iter()
        .map(|&m| {
            if !(m > 0.0 && m.is_finite()) {
                return 0.0;
            }
            Poisson::new(f64::from(m.max(1e-6))).map(|d| d.sample(rng) as f32).unwrap_or(0.0)
        })
        .collect()
}

/// Poisson negative log-likelihood (without the constant log k! term), averaged.
pub fn poisson_loss(rate: &Tensor, counts: &Tensor) -> Result<Tensor> {
    let eps = 1e-6;
    (rate - counts.mul(&(rate + eps)?.log()?)?)?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    fn gaussian_decoder(grid: usize, n_channels: usize) -> (VarMap, WaveformDecoder) {
        let arch = ArchConfig { latent_channels: 3, readout_features: 2, gaussian_readout: true, ..ArchConfig::default() };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let dec = WaveformDecoder::new(&arch, grid, 1, n_channels, vb).unwrap();
        (varmap, dec)
    }

    fn var(varmap: &VarMap, name: &str) -> Var {
        varmap.data().lock().unwrap().get(name).unwrap().clone()
    }

    #[test]
    fn a_gaussian_mask_sums_to_one_and_peaks_at_its_centre() {
        let (varmap, dec) = gaussian_decoder(6, 2);
        let masks: Vec<Vec<f32>> = dec.masks().unwrap().to_vec2().unwrap();
        // Every channel starts in the grid's middle, broad.
        for row in &masks {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row.iter().all(|v| *v > 0.0));
        }
        var(&varmap, READOUT_MU).set(&Tensor::new(&[[1f32, 4.0], [5.0, 0.0]], &Device::Cpu).unwrap()).unwrap();
        var(&varmap, READOUT_LOG_SIGMA).set(&Tensor::new(&[[-1f32], [0.0]], &Device::Cpu).unwrap()).unwrap();
        let masks: Vec<Vec<f32>> = dec.masks().unwrap().to_vec2().unwrap();
        let argmax = |row: &Vec<f32>| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(argmax(&masks[0]), 4 * 6 + 1, "channel 0 peaks at cell (1, 4)");
        assert_eq!(argmax(&masks[1]), 5, "channel 1 peaks at cell (5, 0)");
        // A narrower Gaussian puts more of its weight on its peak cell.
        assert!(masks[0][25] > masks[1][5]);
        assert!((masks[1].iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn the_loss_gradient_moves_a_gaussian_readout_towards_its_features() {
        // One feature lights a single cell of the grid; a channel whose response follows it
        // is read out more strongly when its Gaussian sits on that cell, so the gradient of
        // the response with respect to the centre points there.
        let (varmap, dec) = gaussian_decoder(8, 1);
        let mu = var(&varmap, READOUT_MU);
        mu.set(&Tensor::new(&[[2f32, 3.0]], &Device::Cpu).unwrap()).unwrap();
        let feature_weights = var(&varmap, "feature_weights");
        feature_weights.set(&Tensor::ones((1, 1, 2), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let features_w = var(&varmap, "features.weight");
        features_w.set(&Tensor::ones((2, 3, 1, 1), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let mut z = vec![0f32; 3 * 64];
        z[5 * 8 + 6] = 1.0; // cell (6, 5) of the first latent channel
        let z = Tensor::from_vec(z, (1, 3, 8, 8), &Device::Cpu).unwrap();
        let out = dec.forward(&z).unwrap().sum_all().unwrap();
        let grads = out.backward().unwrap();
        let g: Vec<Vec<f32>> = grads.get(mu.as_tensor()).unwrap().to_vec2().unwrap();
        assert!(g[0][0] > 0.0 && g[0][1] > 0.0, "towards (6, 5) from (2, 3): {g:?}");
        assert!(grads.get(var(&varmap, READOUT_LOG_SIGMA).as_tensor()).is_some());
        assert_eq!(dec.mask_l1().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    }
}
