//! The losses of both phases and the validation loss that stops them early.

use candle_core::{Device, Tensor};
use neural_data::cache::Dataset;
use rand_distr::Distribution;

use super::phase::Phase;
use super::ResponseSource;
use crate::config::TrainConfig;
use crate::data::{clips_tensor, crops_tensor, responses_tensor, truth_tensor, Clips};
use crate::error::{ModelError, Result};
use crate::parallel::DataParallel;
use crate::pipeline::V1Model;
use crate::waveform_decoder::poisson_loss;

/// What every loss reads besides the samples: the model, the data and the settings.
#[derive(Clone, Copy)]
pub(super) struct Inputs<'a> {
    pub model: &'a V1Model,
    pub ds: &'a Dataset,
    pub clips: &'a Clips,
    pub cfg: &'a TrainConfig,
    pub device: &'a Device,
    /// Which responses phase 2 learns from.
    pub source: ResponseSource,
}

fn mse(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok((a - b)?.sqr()?.mean_all()?)
}

/// 1 - the mean over images of the Pearson correlation of their pixels (PixCorr).
fn pixcorr_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let bsz = a.dim(0)?;
    let centre = |t: &Tensor| -> candle_core::Result<Tensor> {
        let t = t.reshape((bsz, ()))?;
        t.broadcast_sub(&t.mean_keepdim(1)?)
    };
    let (a, b) = (centre(a)?, centre(b)?);
    let cov = (&a * &b)?.sum(1)?;
    let norm = ((a.sqr()?.sum(1)? * b.sqr()?.sum(1)?)? + 1e-8)?.sqrt()?;
    Ok((1.0 - cov.div(&norm)?.mean_all()?)?)
}

/// 1 - the mean SSIM of images in [0, 1] ([B, 1, S, S]): Wang et al. (2004) with the
/// report's window (Gaussian sigma 1.5, 11x11, valid part only), K1 0.01, K2 0.03 and
/// population (co)variances, as `v1_metrics::ssim` computes it.
fn ssim_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    use v1_metrics::image::{ssim_kernel, SSIM_K1, SSIM_K2, SSIM_WINDOW};
    let k1 = ssim_kernel();
    let k2: Vec<f32> = (0..SSIM_WINDOW * SSIM_WINDOW).map(|i| (k1[i / SSIM_WINDOW] * k1[i % SSIM_WINDOW]) as f32).collect();
    let dev = a.device();
    let window = crate::conv::Conv2d::new(
        Tensor::from_vec(k2, (1, 1, SSIM_WINDOW, SSIM_WINDOW), dev)?,
        Tensor::zeros(1, candle_core::DType::F32, dev)?,
        1,
        0,
    )?;
    use candle_core::Module;
    let mu = |t: &Tensor| window.forward(t);
    let (ma, mb) = (mu(a)?, mu(b)?);
    let (ma2, mb2, mab) = (ma.sqr()?, mb.sqr()?, (&ma * &mb)?);
    let va = (mu(&a.sqr()?)? - &ma2)?;
    let vb = (mu(&b.sqr()?)? - &mb2)?;
    let cov = (mu(&(a * b)?)? - &mab)?;
    let (c1, c2) = (SSIM_K1 * SSIM_K1, SSIM_K2 * SSIM_K2);
    let num = (((mab * 2.0)? + c1)? * ((cov * 2.0)? + c2)?)?;
    let den = (((ma2 + mb2)? + c1)? * ((va + vb)? + c2)?)?;
    Ok((1.0 - num.div(&den)?.mean_all()?)?)
}

/// 1 - mean cosine similarity between the rows of a and b (flattened per sample).
fn cosine_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let bsz = a.dim(0)?;
    let a = a.reshape((bsz, ()))?;
    let b = b.reshape((bsz, ()))?;
    let dot = (&a * &b)?.sum(1)?;
    let na = a.sqr()?.sum(1)?.sqrt()?;
    let nb = b.sqr()?.sum(1)?.sqrt()?;
    let cos = dot.div(&((na * nb)? + 1e-8)?)?;
    Ok((1.0 - cos.mean_all()?)?)
}

/// Phase 1's loss as (per-sample mean part, batch-independent regulariser).
pub(super) fn phase1_terms(x_in: &Inputs<'_>, idx: &[usize]) -> Result<(Tensor, Tensor)> {
    let Inputs { model, ds, clips, cfg, device, .. } = *x_in;
    let clip = model.crops_to_tensor_raw(&clips_tensor(ds, clips, idx, device)?)?;
    // The image loss's target: the sample's own frame, already in the clip.
    let x = clip.narrow(1, clips.own, 1)?.contiguous()?;
    let counts = responses_tensor(ds, idx, device)?;
    let nets = model.networks();
    let z = nets.image_encoder.forward(&clip)?;
    let rate = nets.waveform_decoder.forward(&z)?;
    let recon = nets.image_decoder.forward(&z)?;
    let l_pois = poisson_loss(&rate, &counts)?;
    let l_img = mse(&recon, &x)?;
    let l1 = nets.waveform_decoder.mask_l1()?;
    Ok(((l_pois + (l_img * cfg.phase1.image_loss_weight)?)?, (l1 * cfg.phase1.readout_l1)?))
}

fn phase1_loss(x_in: &Inputs<'_>, idx: &[usize]) -> Result<Tensor> {
    let (data, reg) = phase1_terms(x_in, idx)?;
    Ok((data + reg)?)
}

/// A phase-2 batch with its random draws made: image targets, frozen image latents and
/// the (partly synthetic, noisy) normalised responses the waveform encoder reads.
pub(super) struct Phase2Batch {
    x: Tensor,
    z_img: Tensor,
    r: Tensor,
}

pub(super) fn phase2_batch(x_in: &Inputs<'_>, idx: &[usize], rng: &mut rand_chacha::ChaCha8Rng, z_all: Option<&Tensor>) -> Result<Phase2Batch> {
    let Inputs { model, ds, clips, cfg, device, source } = *x_in;
    let p = &cfg.phase2;
    let nets = model.networks();
    let x01 = crops_tensor(ds, idx, device)?;
    // The image loss's target: the sample's own frame.
    let x = model.crops_to_tensor_raw(&x01)?;
    let z_img = match z_all {
        Some(z) => {
            let ids = Tensor::from_vec(idx.iter().map(|&i| i as u32).collect::<Vec<u32>>(), idx.len(), device)?;
            z.index_select(&ids, 0)?
        }
        None => {
            let clip = model.crops_to_tensor_raw(&clips_tensor(ds, clips, idx, device)?)?;
            nets.image_encoder.forward(&clip)?.detach()
        }
    };
    let mut counts = match source {
        ResponseSource::Recorded => responses_tensor(ds, idx, device)?,
        ResponseSource::NoiseFree => truth_tensor(ds, idx, device)?
            .ok_or_else(|| ModelError::Invalid("dataset has no ground truth".into()))?,
    };
    // Rows [0, n_mean) read the predicted mean counts, [n_mean, n_mean + n_syn) Poisson
    // samples of them, the rest the recorded (or noise-free) counts.
    let (n_mean, n_syn) = match source {
        ResponseSource::Recorded => {
            let rows = |f: f64| ((idx.len() as f64) * f).round() as usize;
            let n_mean = rows(p.mean_fraction).min(idx.len());
            (n_mean, rows(p.synthetic_fraction).min(idx.len() - n_mean))
        }
        ResponseSource::NoiseFree => (0, 0),
    };
    if n_mean + n_syn > 0 {
        let rate = nets.waveform_decoder.forward(&z_img.narrow(0, 0, n_mean + n_syn)?)?.detach();
        let mut parts = Vec::new();
        if n_mean > 0 {
            parts.push(rate.narrow(0, 0, n_mean)?);
        }
        if n_syn > 0 {
            let rates: Vec<f32> = rate.narrow(0, n_mean, n_syn)?.flatten_all()?.to_vec1()?;
            let sampled = crate::waveform_decoder::poisson_counts(&rates, rng);
            parts.push(Tensor::from_vec(sampled, (n_syn, rate.dim(1)?), device)?);
        }
        if n_mean + n_syn < idx.len() {
            parts.push(counts.narrow(0, n_mean + n_syn, idx.len() - n_mean - n_syn)?);
        }
        counts = Tensor::cat(&parts, 0)?;
    }
    let mut r = model.normalise_responses(&counts)?;
    if p.input_noise > 0.0 {
        // Drawn from the seeded generator (the backend's own is unseeded). The predicted
        // means stay clean: they are what the live path sends.
        let normal = rand_distr::Normal::new(0.0f32, p.input_noise as f32)
            .map_err(|e| ModelError::Invalid(format!("phase2.input_noise: {e}")))?;
        let width = r.dim(1)?;
        let noisy = (idx.len() - n_mean) * width;
        let mut noise = vec![0f32; n_mean * width];
        noise.extend((0..noisy).map(|_| normal.sample(rng)));
        r = (&r + Tensor::from_vec(noise, r.shape(), device)?)?;
    }
    Ok(Phase2Batch { x, z_img, r })
}

/// Phase 2's loss on `rows` of a prepared batch: alignment of z_waveform to z_image and
/// the pixel loss of reconstructions from z_waveform, per-sample means.
pub(super) fn phase2_loss(model: &V1Model, b: &Phase2Batch, rows: std::ops::Range<usize>, cfg: &TrainConfig) -> Result<Tensor> {
    let p = &cfg.phase2;
    let nets = model.networks();
    let pick = |t: &Tensor| t.narrow(0, rows.start, rows.len());
    let (x, z_img) = (pick(&b.x)?, pick(&b.z_img)?);
    let z_w = nets.waveform_encoder.forward(&pick(&b.r)?)?;
    let recon = nets.image_decoder.forward(&z_w)?;
    let l_align = (mse(&z_w, &z_img)? * p.align_mse_weight)?;
    let l_cos = (cosine_loss(&z_w, &z_img)? * p.align_cosine_weight)?;
    let l_img = (mse(&recon, &x)? * p.image_loss_weight)?;
    let loss = ((l_align + l_cos)? + l_img)?;
    image_terms(loss, &model.denormalise_pixels(&recon)?, &model.denormalise_pixels(&x)?, cfg)
}

/// Adds phase 2's PixCorr and SSIM terms (when weighted), for reconstructions and
/// targets in [0, 1] pixels: in training and in the validation loss alike.
fn image_terms(mut loss: Tensor, recon01: &Tensor, x01: &Tensor, cfg: &TrainConfig) -> Result<Tensor> {
    let p = &cfg.phase2;
    if p.pixcorr_weight > 0.0 {
        loss = (loss + (pixcorr_loss(recon01, x01)? * p.pixcorr_weight)?)?;
    }
    if p.ssim_weight > 0.0 {
        loss = (loss + (ssim_loss(recon01, x01)? * p.ssim_weight)?)?;
    }
    Ok(loss)
}

/// Phase 1: Poisson + image loss on validation. Phase 2: pixel MSE of reconstructions
/// from recorded (or noise-free) validation responses — the quantity that matters — plus
/// the PixCorr and SSIM terms when phase 2 trains with them; with `phase2.mean_fraction`
/// above 0, weighed by it beside the same loss of the reconstructions from the frames'
/// predicted mean responses (the live path).
pub(super) fn validation_loss(x_in: &Inputs<'_>, idx: &[usize], phase: Phase, dp: &DataParallel) -> Result<f64> {
    let Inputs { model, ds, cfg, device, source, .. } = *x_in;
    let parts = dp.map(&chunk_ranges(idx.len(), EVAL_CHUNK), |r| {
        let chunk = &idx[r];
        let l = if phase == Phase::Encoding {
            phase1_loss(x_in, chunk)?
        } else {
            let x01 = crops_tensor(ds, chunk, device)?;
            let counts = match source {
                ResponseSource::Recorded => responses_tensor(ds, chunk, device)?,
                ResponseSource::NoiseFree => truth_tensor(ds, chunk, device)?
                    .ok_or_else(|| ModelError::Invalid("dataset has no ground truth".into()))?,
            };
            let recon = model.reconstruct_tensor(&counts)?;
            let recorded = image_terms(mse(&recon, &x01)?, &recon, &x01, cfg)?;
            let m = cfg.phase2.mean_fraction;
            if m > 0.0 && source == ResponseSource::Recorded {
                // The live path: the reconstruction from the frames' predicted means.
                let clip = model.crops_to_tensor_raw(&clips_tensor(ds, x_in.clips, chunk, device)?)?;
                let recon = model.reconstruct_tensor(&model.predict_tensor(&clip)?)?;
                let live = image_terms(mse(&recon, &x01)?, &recon, &x01, cfg)?;
                ((recorded * (1.0 - m))? + (live * m)?)?
            } else {
                recorded
            }
        };
        Ok(l.to_scalar::<f32>()? as f64 * chunk.len() as f64)
    })?;
    Ok(parts.iter().sum::<f64>() / (idx.len() as f64).max(1.0))
}

/// Samples per forward pass where no gradient is needed (validation, latents).
const EVAL_CHUNK: usize = 64;

/// `0..n` in consecutive ranges of `size` (the last may be shorter).
fn chunk_ranges(n: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}

/// Latents z_image of every sample (the frozen image encoder of phase 2), [N, Cz, G, G].
pub(super) fn all_latents(x_in: &Inputs<'_>, dp: &DataParallel) -> Result<Tensor> {
    let Inputs { model, ds, clips, device, .. } = *x_in;
    let all: Vec<usize> = (0..ds.n).collect();
    let parts = dp.map(&chunk_ranges(ds.n, EVAL_CHUNK), |r| {
        let x = model.crops_to_tensor_raw(&clips_tensor(ds, clips, &all[r], device)?)?;
        Ok(model.networks().image_encoder.forward(&x)?.detach())
    })?;
    Ok(Tensor::cat(&parts, 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(t: Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn pixcorr_loss_is_zero_for_a_match_two_for_a_negative_and_ignores_contrast() {
        let dev = Device::Cpu;
        let a = Tensor::randn(0f32, 1f32, (3, 1, 6, 6), &dev).unwrap();
        assert!(scalar(pixcorr_loss(&a, &a).unwrap()).abs() < 1e-5);
        // Brightness and contrast do not matter to a correlation.
        let b = a.affine(2.5, 0.7).unwrap();
        assert!(scalar(pixcorr_loss(&b, &a).unwrap()).abs() < 1e-5);
        assert!((scalar(pixcorr_loss(&a.neg().unwrap(), &a).unwrap()) - 2.0).abs() < 1e-5);
        let c = Tensor::randn(0f32, 1f32, (3, 1, 6, 6), &dev).unwrap();
        let l = scalar(pixcorr_loss(&c, &a).unwrap());
        assert!(l > 0.0 && l < 2.0, "unrelated images: {l}");
    }

    #[test]
    fn ssim_loss_matches_the_report_metric() {
        use v1_metrics::image::{ssim, GrayImageF32};
        let dev = Device::Cpu;
        let a: Vec<f32> = (0..2 * 24 * 24).map(|i| ((i * 37 % 101) as f32 / 100.0).clamp(0.0, 1.0)).collect();
        let b: Vec<f32> = a.iter().enumerate().map(|(i, v)| (0.6 * v + 0.2 + 0.1 * ((i % 7) as f32 / 7.0)).clamp(0.0, 1.0)).collect();
        let ta = Tensor::from_vec(a.clone(), (2, 1, 24, 24), &dev).unwrap();
        let tb = Tensor::from_vec(b.clone(), (2, 1, 24, 24), &dev).unwrap();
        let ours = 1.0 - scalar(ssim_loss(&ta, &tb).unwrap()) as f64;
        let mut expected = 0.0;
        for k in 0..2 {
            let img = |v: &[f32]| GrayImageF32::new(24, 24, v[k * 576..(k + 1) * 576].to_vec()).unwrap();
            expected += ssim(&img(&b), &img(&a)).unwrap() / 2.0;
        }
        assert!((ours - expected).abs() < 1e-4, "loss gives SSIM {ours}, the metric {expected}");
    }

    #[test]
    fn mean_rows_carry_the_predicted_means_clean_and_the_others_are_drawn() {
        use rand::SeedableRng;
        let dir = tempfile::tempdir().unwrap();
        let (model_dir, data) = crate::testing::tiny_fixture(dir.path()).unwrap();
        let mut cfg = crate::testing::fixture_config();
        cfg.phase2.mean_fraction = 0.5;
        cfg.phase2.synthetic_fraction = 0.25;
        cfg.phase2.input_noise = 0.3;
        let input = neural_data::build::read_input(&data, true).unwrap();
        let (ds, _) = neural_data::build::load_or_build(&input, &cfg.data, false).unwrap();
        let model = V1Model::load(&model_dir).unwrap();
        let clips = Clips::new(&ds, model.info(), model.clip_frames());
        let dev = Device::Cpu;
        let x = Inputs { model: &model, ds: &ds, clips: &clips, cfg: &cfg, device: &dev, source: ResponseSource::Recorded };
        let idx: Vec<usize> = (0..8).collect();
        let b = phase2_batch(&x, &idx, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3), None).unwrap();
        let clip = model.crops_to_tensor_raw(&clips_tensor(&ds, &clips, &idx, &dev).unwrap()).unwrap();
        let means = model.normalise_responses(&model.predict_tensor(&clip).unwrap()).unwrap();
        let recorded = model.normalise_responses(&responses_tensor(&ds, &idx, &dev).unwrap()).unwrap();
        let gap = |a: &Tensor, b: &Tensor, from: usize, n: usize| {
            scalar((a.narrow(0, from, n).unwrap() - b.narrow(0, from, n).unwrap()).unwrap().abs().unwrap().max_all().unwrap())
        };
        // Rows 0-3: the predicted means, without noise.
        assert!(gap(&b.r, &means, 0, 4) < 1e-5, "mean rows differ from the predicted means by {}", gap(&b.r, &means, 0, 4));
        // Rows 4-5: Poisson samples with noise (not the means); rows 6-7: recorded with noise.
        assert!(gap(&b.r, &means, 4, 2) > 0.1);
        let noise = scalar((b.r.narrow(0, 6, 2).unwrap() - recorded.narrow(0, 6, 2).unwrap()).unwrap().sqr().unwrap().mean_all().unwrap()).sqrt();
        assert!((noise - 0.3).abs() < 0.05, "recorded rows carry noise of sd {noise}, not 0.3");
    }

    #[test]
    fn mean_and_synthetic_fractions_over_one_are_refused() {
        let mut cfg = TrainConfig::default();
        cfg.phase2.mean_fraction = 0.6;
        let err = cfg.validate().unwrap_err();
        assert!(err.contains("phase2.mean_fraction") && err.contains("at most 1"), "{err}");
        cfg.phase2.synthetic_fraction = 0.4;
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn a_negative_loss_weight_is_refused_with_its_name() {
        let mut cfg = TrainConfig::default();
        cfg.phase2.pixcorr_weight = -1.0;
        let err = cfg.validate().unwrap_err();
        assert!(err.contains("phase2.pixcorr_weight"), "{err}");
    }
}
