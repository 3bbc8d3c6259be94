//! Reconstruction metrics (response -> image) on the RF-footprint crop: the model, with
//! its controls and baselines beside it (ridge decoder, shuffled responses, mean training
//! image, and on simulated data the noise-free upper bound and a ridge decoder of the
//! noise-free rates), from single trials and from repeat-averaged responses; and the live
//! path, the model decoding its own predicted response.

use std::collections::HashMap;

use candle_core::Tensor;
use neural_data::cache::Split;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use v1_metrics::GrayImageF32;

use super::{gray, recon_method, responses_of, EvalOptions, ReconMethod, Setup, LAMBDAS};
use crate::data::{clips_tensor, responses_tensor, truth_tensor, Clips};
use crate::error::Result;
use crate::pipeline::V1Model;
use crate::ridge::Ridge;

/// The reconstruction step's results and what later steps read from it.
pub(super) struct Reconstruction {
    /// The evaluated images: evenly spaced samples of the split.
    pub eval_idx: Vec<usize>,
    pub targets: Vec<GrayImageF32>,
    /// Each method's reconstructions of the evaluated images, [n_eval * s * s] flat, in
    /// the order of the report's table (the model first).
    pub methods: Vec<(&'static str, Vec<f32>)>,
    /// The ridge decoder (response -> pixels), for the projective fields.
    pub ridge_dec: Ridge,
    pub crop: Vec<ReconMethod>,
    pub repeat_averaged: Vec<ReconMethod>,
    pub pixcorr_fraction_of_upper_bound: Option<f64>,
}

/// Reconstructs the evaluated images with every method and scores them.
pub(super) fn evaluate(cx: &Setup<'_>, upper: Option<&V1Model>, repeated: &[usize], opts: &EvalOptions, notes: &mut Vec<String>) -> Result<Reconstruction> {
    let (ds, s) = (cx.ds, cx.s);
    let step = cx.test.len().div_ceil(opts.max_images.max(2));
    let eval_idx: Vec<usize> = cx.test.iter().copied().step_by(step.max(1)).collect();
    let targets: Vec<GrayImageF32> = eval_idx
        .iter()
        .map(|&i| gray(s, s, ds.crop(i).iter().map(|v| *v as f32 / 255.0).collect()))
        .collect::<Result<_>>()?;
    let decoded = decode(cx, upper, &eval_idx, opts, notes)?;
    let mut crop = Vec::new();
    for (name, flat) in &decoded.methods {
        crop.push(recon_method(name, &targets, &to_images(s, flat)?)?);
    }
    let repeat_averaged = match repeat_averaged(cx, repeated, &eval_idx, &decoded, &targets)? {
        Some(rows) => rows,
        None => {
            if opts.split == Split::Test {
                notes.push("No repeat-averaged reconstruction: the evaluated images have no repeated trials on the model's channels.".into());
            }
            Vec::new()
        }
    };
    let pixcorr_fraction_of_upper_bound = decoded.upper_recon.as_ref().map(|_| {
        let m = crop[0].pixcorr;
        let u = crop.last().map(|r| r.pixcorr).unwrap_or(f64::NAN);
        m / u
    });
    Ok(Reconstruction { eval_idx, targets, methods: decoded.methods, ridge_dec: decoded.ridge_dec, crop, repeat_averaged, pixcorr_fraction_of_upper_bound })
}

/// Every method's reconstructions of the evaluated images.
struct Decoded {
    methods: Vec<(&'static str, Vec<f32>)>,
    /// The samples whose responses the shuffled control decodes, image by image.
    shuffled_idx: Vec<usize>,
    ridge_dec: Ridge,
    /// The noise-free upper bound's reconstructions (simulated data with its model).
    upper_recon: Option<Vec<f32>>,
}

fn decode(cx: &Setup<'_>, upper: Option<&V1Model>, eval_idx: &[usize], opts: &EvalOptions, notes: &mut Vec<String>) -> Result<Decoded> {
    let (ds, model, s, dev) = (cx.ds, cx.model, cx.s, &cx.dev);
    let (train, val) = (&cx.train, &cx.val);
    let n_eval = eval_idx.len();
    let counts = responses_tensor(ds, eval_idx, dev)?;
    let model_recon = recon_of(model, &counts)?;
    // Shuffled: the same decoder fed responses of other stimuli of the split.
    let mut perm: Vec<usize> = (0..n_eval).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    perm.shuffle(&mut rng);
    let shuffled_idx: Vec<usize> = perm.iter().map(|&k| eval_idx[k]).collect();
    let shuffled_recon = recon_of(model, &responses_tensor(ds, &shuffled_idx, dev)?)?;
    // Mean training image.
    let mut mean_img = vec![0f32; s * s];
    for &i in train {
        for (m, v) in mean_img.iter_mut().zip(ds.crop(i)) {
            *m += *v as f32 / 255.0;
        }
    }
    mean_img.iter_mut().for_each(|v| *v /= train.len().max(1) as f32);
    let mean_recon: Vec<f32> = (0..n_eval).flat_map(|_| mean_img.iter().copied()).collect();
    // Ridge decoding from responses.
    let pix = |idx: &[usize]| -> Vec<f32> { idx.iter().flat_map(|&i| ds.crop(i).iter().map(|v| *v as f32 / 255.0)).collect() };
    let ridge_dec = Ridge::fit(&responses_of(ds, train), &pix(train), &responses_of(ds, val), &pix(val), cx.rlen, s * s, &LAMBDAS)?;
    let ridge_recon: Vec<f32> = ridge_dec.predict(&responses_of(ds, eval_idx))?.into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
    let upper_recon = match (upper, truth_tensor(ds, eval_idx, dev)?) {
        (Some(u), Some(t)) => Some(recon_of(u, &t)?),
        _ => None,
    };
    if upper.is_some() && ds.truth.is_none() {
        notes.push("An upper-bound model was given but the dataset has no noise-free rates.".into());
    }
    let (live_mean, live_sample) = live_path(cx, eval_idx, opts.seed)?;
    let mut methods: Vec<(&'static str, Vec<f32>)> = vec![
        ("model (waveform_encoder + image_decoder)", model_recon),
        ("ridge (response -> pixels)", ridge_recon),
        ("model, shuffled responses", shuffled_recon),
        ("mean training image", mean_recon),
        (LIVE_MEAN, live_mean),
        (LIVE_SAMPLE, live_sample),
    ];
    // The linear decoder on the noise-free rates: how much of the gap between the model
    // and its upper bound a linear decoder loses to the same noise.
    let ridge_noise_free: Option<Vec<f32>> = match (&upper_recon, &ds.truth) {
        (Some(_), Some(_)) => {
            let rates = |idx: &[usize]| -> Vec<f32> { idx.iter().flat_map(|&i| ds.truth_response(i).unwrap_or(&[]).iter().copied()).collect() };
            let fit = Ridge::fit(&rates(train), &pix(train), &rates(val), &pix(val), cx.rlen, s * s, &LAMBDAS)?;
            Some(fit.predict(&rates(eval_idx))?.into_iter().map(|v| v.clamp(0.0, 1.0)).collect())
        }
        _ => None,
    };
    if let (Some(r), Some(u)) = (ridge_noise_free, &upper_recon) {
        methods.push(("ridge on noise-free rates", r));
        methods.push(("upper bound (noise-free rates)", u.clone()));
    }
    Ok(Decoded { methods, shuffled_idx, ridge_dec, upper_recon })
}

/// The live path's rows: the model's reconstruction of its own predicted response to each
/// evaluated image (the services' round trip: image -> image_encoder -> waveform_decoder
/// -> mean counts -> waveform_encoder -> image_decoder), and of a Poisson sample of those
/// counts (a simulated single trial). No recorded response enters; the image reaches the
/// reconstruction only through the predicted counts.
pub(super) const LIVE_MEAN: &str = "live path: the model's predicted mean response";
pub(super) const LIVE_SAMPLE: &str = "live path: a Poisson sample of it";

fn live_path(cx: &Setup<'_>, eval_idx: &[usize], seed: u64) -> Result<(Vec<f32>, Vec<f32>)> {
    let (ds, model) = (cx.ds, cx.model);
    let clips = Clips::new(ds, cx.info, model.clip_frames());
    let mut rates = Vec::with_capacity(eval_idx.len() * cx.rlen);
    for batch in eval_idx.chunks(256) {
        let x = model.crops_to_tensor_raw(&clips_tensor(ds, &clips, batch, &cx.dev)?)?;
        rates.extend(model.predict_tensor(&x)?.flatten_all()?.to_vec1::<f32>()?);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5e_ed0f_11fe);
    let sample = crate::waveform_decoder::poisson_counts(&rates, &mut rng);
    let as_tensor = |v: Vec<f32>| Tensor::from_vec(v, (eval_idx.len(), cx.rlen), &cx.dev);
    Ok((recon_of(model, &as_tensor(rates)?)?, recon_of(model, &as_tensor(sample)?)?))
}

/// The same decoders fed repeat-averaged responses: the repeated channels' counts
/// averaged over the repeats, lag by lag, the other channels as recorded once. None when
/// some evaluated (or shuffled) image has no repeats.
fn repeat_averaged(cx: &Setup<'_>, repeated: &[usize], eval_idx: &[usize], decoded: &Decoded, targets: &[GrayImageF32]) -> Result<Option<Vec<ReconMethod>>> {
    let (ds, model, rlen, n_l, n_c) = (cx.ds, cx.model, cx.rlen, cx.n_l, cx.n_c);
    let m_of: HashMap<usize, usize> = ds.repeat_samples.iter().enumerate().map(|(m, &i)| (i as usize, m)).collect();
    let averaged = |idx: &[usize]| -> Option<Vec<f32>> {
        if repeated.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(idx.len() * rlen);
        for &i in idx {
            let m = *m_of.get(&i)?;
            let mut r = ds.response(i).to_vec();
            for &c in repeated {
                for l in 0..n_l {
                    let sum: f32 = (0..ds.n_repeats).map(|rep| ds.repeat_response_lagged(rep, m)[l * n_c + c]).sum();
                    r[l * n_c + c] = sum / ds.n_repeats as f32;
                }
            }
            out.extend(r);
        }
        Some(out)
    };
    let (Some(avg), Some(avg_shuffled)) = (averaged(eval_idx), averaged(&decoded.shuffled_idx)) else {
        return Ok(None);
    };
    let as_tensor = |v: Vec<f32>| Tensor::from_vec(v, (eval_idx.len(), rlen), &cx.dev);
    let model_avg = recon_of(model, &as_tensor(avg.clone())?)?;
    let ridge_avg: Vec<f32> = decoded.ridge_dec.predict(&avg)?.into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
    let shuffled_avg = recon_of(model, &as_tensor(avg_shuffled)?)?;
    let mut avg_methods: Vec<(&str, &Vec<f32>)> =
        vec![("model (waveform_encoder + image_decoder)", &model_avg), ("ridge (response -> pixels)", &ridge_avg), ("model, shuffled responses", &shuffled_avg)];
    if let Some(u) = &decoded.upper_recon {
        avg_methods.push(("upper bound (noise-free rates)", u));
    }
    let mut rows = Vec::new();
    for (name, flat) in &avg_methods {
        rows.push(recon_method(name, targets, &to_images(cx.s, flat)?)?);
    }
    Ok(Some(rows))
}

/// A model's reconstructions of `counts`, [N * s * s] flat.
fn recon_of(m: &V1Model, counts: &Tensor) -> Result<Vec<f32>> {
    Ok(m.reconstruct_tensor(counts)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Flat s x s reconstructions as images.
fn to_images(s: usize, flat: &[f32]) -> Result<Vec<GrayImageF32>> {
    flat.chunks(s * s).map(|c| gray(s, s, c.to_vec())).collect()
}
