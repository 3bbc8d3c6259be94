//! image_encoder: grayscale clip -> latent map z.
//!
//! The input is a short clip of crops ([B, clip_frames, S, S], frames as channels, see
//! `ArchConfig::clip_frames`): the first convolution weighs the frames, which is where
//! the response's temporal integration is learned.
//!
//! A small residual CNN: two stride-2 stages take the S x S crop to an (S/4) x (S/4) map,
//! a residual block in between adds depth at low cost, and a 1x1 convolution gives the
//! latent channels. Two conv layers already capture most of V1 (science guide §2); the
//! residual block is the "deeper helps a little".
//!
//! With `ArchConfig::log_input` the network first takes the logarithm of luminance.
//! Early vision adapts to the local mean luminance (Weber's law: responses follow
//! contrast, ΔI/I, not ΔI; Shapley & Enroth-Cugell 1984, Prog Retinal Res 3:263), a
//! division a stack of ReLU convolutions can only approximate, while in log units it is a
//! subtraction, which a convolution does exactly.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::conv::{conv2d, Conv2d};

use crate::config::ArchConfig;

/// Added to pixel values before the logarithm: black (0) maps to ln(0.02), about 4 natural
/// log units below white, the range of a CRT's contrast.
const LOG_FLOOR: f64 = 0.02;

#[derive(Debug, Clone)]
pub struct ImageEncoder {
    /// Undoes the model's pixel normalisation before the logarithm: (mean, std), or None
    /// for a linear input.
    log_input: Option<(f64, f64)>,
    stem: Conv2d,
    down1: Conv2d,
    res_a: Conv2d,
    res_b: Conv2d,
    down2: Conv2d,
    head: Conv2d,
}

impl ImageEncoder {
    /// `pixel_mean` and `pixel_std` are the normalisation the input arrives in.
    pub fn new(arch: &ArchConfig, pixel_mean: f32, pixel_std: f32, vb: VarBuilder) -> Result<Self> {
        let [c1, c2] = arch.encoder_channels;
        Ok(Self {
            log_input: arch.log_input.then_some((pixel_mean as f64, pixel_std as f64)),
            stem: conv2d(arch.clip_frames, c1, arch.stem_kernel, 1, arch.stem_kernel / 2, vb.pp("stem"))?,
            down1: conv2d(c1, c2, 3, 2, 1, vb.pp("down1"))?,
            res_a: conv2d(c2, c2, 3, 1, 1, vb.pp("res_a"))?,
            res_b: conv2d(c2, c2, 3, 1, 1, vb.pp("res_b"))?,
            down2: conv2d(c2, c2, 3, 2, 1, vb.pp("down2"))?,
            head: conv2d(c2, arch.latent_channels, 1, 1, 0, vb.pp("head"))?,
        })
    }

    /// `x`: [B, clip_frames, S, S] normalised pixels -> z: [B, latent_channels, S/4, S/4].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.stem.forward_relu(&self.input(x)?)?;
        self.after_stem(h)
    }

    /// A still picture held for the whole clip: `x` [B, 1, S, S] gives what
    /// [`forward`](Self::forward) gives for it repeated clip_frames times, with one
    /// frame's work in the first layer (its weights summed over the frames).
    pub fn forward_held(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.stem.with_inputs_summed()?.forward_relu(&self.input(x)?)?;
        self.after_stem(h)
    }

    fn input(&self, x: &Tensor) -> Result<Tensor> {
        match self.log_input {
            // Pixels back in [0, 1], then ln(p + LOG_FLOOR), centred on ln(mean).
            Some((mean, std)) => {
                let p = x.affine(std, mean)?.clamp(0f32, 1f32)?;
                (p + LOG_FLOOR)?.log()?.affine(1.0, -(mean + LOG_FLOOR).ln())
            }
            None => Ok(x.clone()),
        }
    }

    /// The layers after the stem (whose output has been through its ReLU).
    fn after_stem(&self, h: Tensor) -> Result<Tensor> {
        let h = self.down1.forward_relu(&h)?;
        let r = self.res_b.forward(&self.res_a.forward_relu(&h)?)?;
        let h = (h + r)?.relu()?;
        let h = self.down2.forward_relu(&h)?;
        self.head.forward(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn a_held_picture_gives_what_the_repeated_clip_gives() {
        let dev = Device::Cpu;
        for stem_kernel in [3, 7] {
            let arch = ArchConfig { stem_kernel, ..ArchConfig::default() };
            let varmap = VarMap::new();
            let enc = ImageEncoder::new(&arch, 0.4, 0.25, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
            let x = Tensor::randn(0f32, 1f32, (3, 1, 48, 48), &dev).unwrap();
            let a = enc.forward(&x.repeat((1, arch.clip_frames, 1, 1)).unwrap()).unwrap();
            let b = enc.forward_held(&x).unwrap();
            assert_eq!(a.dims(), &[3, arch.latent_channels, 12, 12], "stem {stem_kernel}: z keeps the S/4 grid");
            assert_eq!(a.dims(), b.dims());
            let d = (&a - &b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = a.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(scale > 0.0 && d <= 1e-4 * scale.max(1.0), "stem {stem_kernel}: held picture differs by {d} (scale {scale})");
        }
    }
}
