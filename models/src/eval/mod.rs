//! The evaluation report: encoding and reconstruction metrics on the held-out test split,
//! with baselines and controls in the same tables (science guide §3).
//!
//! Settings (loss weights, architectures) are compared on the validation split instead
//! (`EvalOptions::split`), so that the test split stays untouched until the final report.
//! There the ridge baselines pick their regularisation on a tenth of the training
//! segments' samples held out from their fit, and the repeat-based metrics, which exist
//! for test segments only, are left out.
//!
//! Encoding (per channel, on the count summed over the response's lag bins): Pearson r
//! against the single-trial recording; r against the simulator's noise-free rates when
//! ground truth exists; correlation to the trial average, FEVE (FEV > 0.15) and CCnorm on
//! repeated segments. Baseline: ridge regression from pixels.
//!
//! Reconstruction (grayscale in [0,1]; on the RF-footprint crop, and on the full frame
//! with the crop pasted into the mean frame): MSE, PSNR, SSIM, PixCorr, 2-way
//! identification. Controls: the mean training image, ridge regression from responses,
//! the same decoder fed responses shuffled across test stimuli, and (simulated data) the
//! same architecture trained and tested on the noise-free rates — the upper bound.

use std::fmt::Write as _;
use std::path::Path;

use candle_core::{Device, Tensor};
use neural_data::cache::{Dataset, Split};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use v1_metrics::figures;
use v1_metrics::GrayImageF32;

use crate::data::{clips_tensor, responses_tensor, truth_tensor, Clips};
use crate::error::{io_err, ModelError, Result};
use crate::pipeline::{write_atomic, V1Model};
use crate::ridge::Ridge;

/// Channels whose max R² is at most this carry (almost) no explainable variance; the
/// normalised correlation divides by at least its square root.
pub const MAX_R2_FLOOR: f64 = 0.1;

/// Ridge regularisation strengths tried (relative to the mean diagonal of XᵀX).
const LAMBDAS: [f64; 7] = [1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0];

#[derive(Debug, Clone, Serialize)]
pub struct EncodingMethod {
    pub name: String,
    /// Mean r against the single-trial recording, over the evaluated channels.
    pub r_single_trial: f64,
    /// Mean r against the noise-free rates (simulated data).
    pub r_noise_free: Option<f64>,
    pub correlation_to_average: Option<f64>,
    pub feve: Option<f64>,
    pub ccnorm: Option<f64>,
    /// Mean FEVE over the repeated channels whose max R² exceeds [`MAX_R2_FLOOR`]: the
    /// practice of pvc-1 analyses (channels without explainable variance say nothing).
    pub feve_max_r2_above_floor: Option<f64>,
    /// Mean over the same channels of r(prediction, trial average) / sqrt(max(max R², 0.1)).
    pub normalised_correlation: Option<f64>,
    /// FEVE over the same channels after a per-channel gain and offset fitted on the other
    /// half of the repeated segments (2-fold, by segment): the repeat file is a session of
    /// its own, with its own gain per electrode, and a model fitted on other sessions
    /// predicts its shape, not its scale. Fitted on held-out segments only, never on the
    /// segment it is scored on.
    pub feve_session_gain: Option<f64>,
    pub per_channel_r: Vec<f64>,
    pub per_channel_r_noise_free: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconMethod {
    pub name: String,
    pub mse: f64,
    pub psnr_db: Option<f64>,
    pub ssim: f64,
    pub pixcorr: f64,
    pub identification: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The split evaluated: "test" (the report) or "validation" (choosing settings).
    pub split: String,
    /// Samples of the evaluated split.
    pub test_samples: usize,
    pub evaluated_images: usize,
    pub channels: usize,
    pub good_channels: usize,
    pub repeated_channels: usize,
    pub reliable_channels: usize,
    /// Max R² (Sahani & Linden 2003) of every repeated channel, on the lag-summed counts
    /// the model predicts: the ceiling of any encoding model on that channel.
    pub repeated_max_r2: Vec<f64>,
    /// Repeated channels with max R² above [`MAX_R2_FLOOR`].
    pub channels_above_max_r2_floor: usize,
    pub lags: Vec<u32>,
    pub image_size: usize,
    pub crop_window: [u32; 4],
    pub encoding: Vec<EncodingMethod>,
    pub reconstruction_crop: Vec<ReconMethod>,
    pub reconstruction_full_frame: Vec<ReconMethod>,
    /// The same decoders fed repeat-averaged responses: the repeated channels' counts
    /// averaged over the repeats (lag by lag), the other channels single trials. Empty
    /// without repeats.
    pub reconstruction_crop_repeat_averaged: Vec<ReconMethod>,
    /// What the repeat-averaged input averages: (repeated channels, repeats).
    pub repeat_averaged_channels: usize,
    /// Model PixCorr on the crop divided by the noise-free upper bound's.
    pub pixcorr_fraction_of_upper_bound: Option<f64>,
    /// Projective-field centres against receptive-field centres over the good channels.
    pub projective_fields: Option<crate::projective::PfRfComparison>,
    /// The same for the ridge decoder (response -> pixels): what a linear decoder of the
    /// same responses gives.
    pub projective_fields_ridge: Option<crate::projective::PfRfComparison>,
    pub notes: Vec<String>,
}

pub struct EvalOptions {
    /// At most this many test images (evenly spaced) enter the reconstruction metrics.
    pub max_images: usize,
    pub seed: u64,
    /// Per channel: whether it is a "good" channel (units present). None = all.
    pub good_channels: Option<Vec<bool>>,
    /// The split evaluated: `Split::Test` for the report, `Split::Validation` to compare
    /// settings without looking at the test split. (`Split::Train` is refused.)
    pub split: Split,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { max_images: 600, seed: 11, good_channels: None, split: Split::Test }
    }
}

fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Validation => "validation",
        Split::Test => "test",
    }
}

/// Pearson r of one channel's predicted and recorded series, by the metrics crate's
/// definition. Both series have one value per evaluated sample (at least 2); a series
/// with a NaN or infinity gives NaN, so a broken prediction shows in the report.
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    v1_metrics::pearson_r(a, b).unwrap_or(f64::NAN)
}

/// Per channel, the value summed over lags: [N, L*C] -> per channel Vec over N.
fn sum_over_lags(flat: &[f32], n: usize, lags: usize, channels: usize) -> Vec<Vec<f64>> {
    let mut out = vec![vec![0f64; n]; channels];
    for i in 0..n {
        for l in 0..lags {
            for c in 0..channels {
                out[c][i] += flat[i * lags * channels + l * channels + c] as f64;
            }
        }
    }
    out
}

fn batched(n: usize, f: impl Fn(std::ops::Range<usize>) -> Result<Vec<f32>>) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    let mut s = 0;
    while s < n {
        let e = (s + 256).min(n);
        out.extend(f(s..e)?);
        s = e;
    }
    Ok(out)
}

fn mean_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn downsample2(px: &[u8], s: usize) -> Vec<f32> {
    let h = s / 2;
    let mut out = Vec::with_capacity(h * h);
    for y in 0..h {
        for x in 0..h {
            let v = px[2 * y * s + 2 * x] as f32 + px[2 * y * s + 2 * x + 1] as f32 + px[(2 * y + 1) * s + 2 * x] as f32 + px[(2 * y + 1) * s + 2 * x + 1] as f32;
            out.push(v / (4.0 * 255.0));
        }
    }
    out
}

/// 2x2 mean pooling of an s x s image of floats.
fn downsample2_f32(px: &[f32], s: usize) -> Vec<f32> {
    let h = s / 2;
    let mut out = Vec::with_capacity(h * h);
    for y in 0..h {
        for x in 0..h {
            out.push(0.25 * (px[2 * y * s + 2 * x] + px[2 * y * s + 2 * x + 1] + px[(2 * y + 1) * s + 2 * x] + px[(2 * y + 1) * s + 2 * x + 1]));
        }
    }
    out
}

fn gray(w: usize, h: usize, px: Vec<f32>) -> Result<GrayImageF32> {
    GrayImageF32::new(w as u32, h as u32, px.into_iter().map(|v| v.clamp(0.0, 1.0)).collect())
        .map_err(|e| ModelError::Invalid(e.to_string()))
}

/// Pastes a crop reconstruction into a background full frame at the crop window.
fn paste(background: &[f32], fw: usize, fh: usize, recon: &[f32], s: usize, window: [f32; 4]) -> Vec<f32> {
    let mut out = background.to_vec();
    let [wx, wy, ww, wh] = window;
    for y in 0..fh {
        for x in 0..fw {
            let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
            if cx >= wx && cx < wx + ww && cy >= wy && cy < wy + wh {
                // Bilinear sample of the crop.
                let u = ((cx - wx) / ww * s as f32 - 0.5).clamp(0.0, (s - 1) as f32);
                let v = ((cy - wy) / wh * s as f32 - 0.5).clamp(0.0, (s - 1) as f32);
                let (u0, v0) = (u.floor() as usize, v.floor() as usize);
                let (u1, v1) = ((u0 + 1).min(s - 1), (v0 + 1).min(s - 1));
                let (fu, fv) = (u - u0 as f32, v - v0 as f32);
                let p = recon[v0 * s + u0] * (1.0 - fu) * (1.0 - fv)
                    + recon[v0 * s + u1] * fu * (1.0 - fv)
                    + recon[v1 * s + u0] * (1.0 - fu) * fv
                    + recon[v1 * s + u1] * fu * fv;
                out[y * fw + x] = p;
            }
        }
    }
    out
}

fn recon_method(name: &str, targets: &[GrayImageF32], recons: &[GrayImageF32]) -> Result<ReconMethod> {
    let m = v1_metrics::evaluate_reconstructions(targets, recons).map_err(|e| ModelError::Invalid(e.to_string()))?;
    Ok(ReconMethod {
        name: name.to_string(),
        mse: m.mean_mse,
        psnr_db: m.mean_psnr_db,
        ssim: m.mean_ssim,
        pixcorr: m.mean_pixcorr,
        identification: m.identification.map(|i| i.mean),
    })
}

fn fig_err(e: figures::FigureError) -> ModelError {
    ModelError::Invalid(format!("figure: {e}"))
}

/// Runs the whole evaluation and writes `metrics.json`, `report.md` and PNG figures.
pub fn evaluate(ds: &Dataset, model: &V1Model, upper: Option<&V1Model>, out: &Path, opts: &EvalOptions) -> Result<EvalReport> {
    std::fs::create_dir_all(out).map_err(io_err(format!("creating {}", out.display())))?;
    let dev = Device::Cpu;
    let info = model.info();
    let (n_l, n_c) = (info.n_lags(), info.n_channels());
    let rlen = n_l * n_c;
    let s = info.image_size;
    if opts.split == Split::Train {
        return Err(ModelError::Invalid("evaluate the test split (the report) or the validation split (choosing settings), not the training split".into()));
    }
    // `test` is the evaluated split throughout.
    let test = ds.indices(opts.split);
    if test.len() < 2 {
        return Err(ModelError::Invalid(format!("the {} split has fewer than 2 samples", split_name(opts.split))));
    }
    let all_train = ds.indices(Split::Train);
    let validation = ds.indices(Split::Validation);
    // Ridge fits on `train` and picks its regularisation on `val`, which must not overlap
    // the evaluated split or each other: the validation split when the test split is
    // evaluated, otherwise every tenth training sample, held out from the fit.
    let (train, val): (Vec<usize>, Vec<usize>) = if opts.split == Split::Test && !validation.is_empty() {
        (all_train, validation)
    } else {
        let held = |k: &usize| k % 10 == 9;
        let pick = |keep: bool| all_train.iter().enumerate().filter(|(k, _)| held(k) == keep).map(|(_, &i)| i).collect();
        (pick(false), pick(true))
    };
    if train.is_empty() || val.is_empty() {
        return Err(ModelError::Invalid("the training split is too small to fit and tune the ridge baselines".into()));
    }
    let mut notes = Vec::new();
    let good: Vec<bool> = opts.good_channels.clone().unwrap_or_else(|| vec![true; n_c]);
    let good_idx: Vec<usize> = (0..n_c).filter(|&c| good.get(c).copied().unwrap_or(true)).collect();

    // ---------------- Encoding ----------------
    let clips = Clips::new(ds, info, model.clip_frames());
    let pred = batched(test.len(), |r| {
        let x = model.crops_to_tensor_raw(&clips_tensor(ds, &clips, &test[r], &dev)?)?;
        Ok(model.predict_tensor(&x)?.flatten_all()?.to_vec1::<f32>()?)
    })?;
    let rec: Vec<f32> = test.iter().flat_map(|&i| ds.response(i).iter().copied()).collect();
    let truth: Option<Vec<f32>> = ds.truth.as_ref().map(|_| test.iter().flat_map(|&i| ds.truth_response(i).unwrap_or(&[]).iter().copied()).collect());
    // Ridge encoding from the same clip the CNN sees: the sample's frame 2x-downsampled,
    // and every frame of the clip 4x (a full-resolution clip would make the closed-form
    // solve huge).
    let feat = |idx: &[usize]| -> Vec<f32> {
        idx.iter()
            .flat_map(|&i| {
                let mut f = downsample2(ds.crop(i), s);
                if clips.frames > 1 {
                    for &j in clips.of(i) {
                        f.extend(downsample2_f32(&downsample2(ds.crop(j as usize), s), s / 2));
                    }
                }
                f
            })
            .collect()
    };
    let resp = |idx: &[usize]| -> Vec<f32> { idx.iter().flat_map(|&i| ds.response(i).iter().copied()).collect() };
    let n_feat = feat(&test[..1]).len();
    let ridge_enc = Ridge::fit(&feat(&train), &resp(&train), &feat(&val), &resp(&val), n_feat, rlen, &LAMBDAS)?;
    let ridge_pred = ridge_enc.predict(&feat(&test))?;

    let rec_sum = sum_over_lags(&rec, test.len(), n_l, n_c);
    let truth_sum = truth.as_ref().map(|t| sum_over_lags(t, test.len(), n_l, n_c));
    let pos_in_test: std::collections::HashMap<usize, usize> = test.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    // Repeats exist for test samples only.
    let n_rep_samples = ds.repeat_samples.len();
    let use_repeats = opts.split == Split::Test && ds.n_repeats >= 2 && n_rep_samples > 0;
    // Lag-summed repeats, [r * M + m][channel].
    let rep_sum: Vec<Vec<f32>> = if use_repeats { (0..ds.n_repeats).flat_map(|r| (0..n_rep_samples).map(move |m| (r, m))).map(|(r, m)| ds.repeat_response(r, m)).collect() } else { Vec::new() };
    let repeated: Vec<usize> = (0..n_c).filter(|&c| use_repeats && (0..n_rep_samples).all(|m| rep_sum[m][c].is_finite())).collect();
    // The repeats of each repeated channel (M samples x R repeats) and its max R².
    let repeat_mats: Vec<(usize, v1_metrics::TrialMatrix)> = repeated
        .iter()
        .filter_map(|&c| {
            let m = ds.repeat_samples.len();
            let vals: Vec<f64> = (0..m).flat_map(|mi| (0..ds.n_repeats).map(move |r| (mi, r))).map(|(mi, r)| rep_sum[r * m + mi][c] as f64).collect();
            v1_metrics::TrialMatrix::from_flat(&vals, m, ds.n_repeats).ok().map(|tm| (c, tm))
        })
        .collect();
    let repeated_max_r2: Vec<f64> = repeat_mats.iter().map(|(_, tm)| v1_metrics::max_r2(tm).ok().flatten().unwrap_or(0.0)).collect();
    let above_floor: Vec<bool> = repeated_max_r2.iter().map(|v| *v > MAX_R2_FLOOR).collect();
    // Two folds of the repeated samples by whole segment (alternate segments).
    let fold: Vec<bool> = ds.repeat_samples.iter().map(|&i| ds.index[i as usize][1] % 2 == 1).collect();
    let mut encoding = Vec::new();
    let mut reliable_channels = 0;
    for (name, p) in [("CNN (image_encoder + waveform_decoder)", &pred), ("ridge (pixels -> response)", &ridge_pred)] {
        let p_sum = sum_over_lags(p, test.len(), n_l, n_c);
        let per_r: Vec<f64> = (0..n_c).map(|c| pearson(&p_sum[c], &rec_sum[c])).collect();
        let per_rt: Option<Vec<f64>> = truth_sum.as_ref().map(|t| (0..n_c).map(|c| pearson(&p_sum[c], &t[c])).collect());
        let mut electrode_metrics = Vec::new();
        let (mut feve_above, mut normalised, mut feve_gain) = (Vec::new(), Vec::new(), Vec::new());
        for (k, (c, tm)) in repeat_mats.iter().enumerate() {
            let preds: Vec<f64> = ds
                .repeat_samples
                .iter()
                .map(|&s| p_sum[*c][pos_in_test.get(&(s as usize)).copied().unwrap_or(0)])
                .collect();
            if let Ok(em) = v1_metrics::electrode_metrics(tm, &preds) {
                if above_floor[k] {
                    feve_above.push(em.feve);
                    normalised.push(v1_metrics::normalised_correlation(em.correlation_to_average, repeated_max_r2[k], MAX_R2_FLOOR));
                    if let Some(rescaled) = cross_fitted_gain(&preds, &tm.trial_means(), &fold) {
                        if let Ok(g) = v1_metrics::electrode_metrics(tm, &rescaled) {
                            feve_gain.push(g.feve);
                        }
                    }
                }
                electrode_metrics.push(em);
            }
        }
        let summary = if electrode_metrics.is_empty() { None } else { v1_metrics::summarize_electrodes(&electrode_metrics).ok() };
        if let Some(sm) = &summary {
            reliable_channels = sm.n_reliable;
        }
        encoding.push(EncodingMethod {
            name: name.to_string(),
            r_single_trial: mean_of(&good_idx.iter().map(|&c| per_r[c]).collect::<Vec<_>>()),
            r_noise_free: per_rt.as_ref().map(|v| mean_of(&good_idx.iter().map(|&c| v[c]).collect::<Vec<_>>())),
            correlation_to_average: summary.map(|s| s.mean_correlation_to_average),
            feve: summary.and_then(|s| s.mean_feve_reliable),
            ccnorm: summary.and_then(|s| s.mean_ccnorm),
            feve_max_r2_above_floor: (!feve_above.is_empty()).then(|| mean_of(&feve_above)),
            normalised_correlation: (!normalised.is_empty()).then(|| mean_of(&normalised)),
            feve_session_gain: (!feve_gain.is_empty()).then(|| mean_of(&feve_gain)),
            per_channel_r: per_r,
            per_channel_r_noise_free: per_rt,
        });
    }
    if opts.split != Split::Test {
        notes.push(format!("Evaluated on the {} split: FEVE, CCnorm and correlation to average need the repeated (test) segments.", split_name(opts.split)));
    } else if repeated.is_empty() {
        notes.push("No repeated test trials matched the model's channels: FEVE, CCnorm and correlation to average are not available.".into());
    }

    // ---------------- Reconstruction ----------------
    let step = test.len().div_ceil(opts.max_images.max(2));
    let eval_idx: Vec<usize> = test.iter().copied().step_by(step.max(1)).collect();
    let n_eval = eval_idx.len();
    let targets: Vec<GrayImageF32> = eval_idx
        .iter()
        .map(|&i| gray(s, s, ds.crop(i).iter().map(|v| *v as f32 / 255.0).collect()))
        .collect::<Result<_>>()?;
    let to_images = |flat: &[f32]| -> Result<Vec<GrayImageF32>> { flat.chunks(s * s).map(|c| gray(s, s, c.to_vec())).collect() };
    let recon_of = |m: &V1Model, counts: &Tensor| -> Result<Vec<f32>> { Ok(m.reconstruct_tensor(counts)?.flatten_all()?.to_vec1::<f32>()?) };
    let counts = responses_tensor(ds, &eval_idx, &dev)?;
    let model_recon = recon_of(model, &counts)?;
    // Shuffled: the same decoder fed responses of other stimuli of the split.
    let mut perm: Vec<usize> = (0..n_eval).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    perm.shuffle(&mut rng);
    let shuffled_idx: Vec<usize> = perm.iter().map(|&k| eval_idx[k]).collect();
    let shuffled_recon = recon_of(model, &responses_tensor(ds, &shuffled_idx, &dev)?)?;
    // Mean training image.
    let mut mean_img = vec![0f32; s * s];
    for &i in &train {
        for (m, v) in mean_img.iter_mut().zip(ds.crop(i)) {
            *m += *v as f32 / 255.0;
        }
    }
    mean_img.iter_mut().for_each(|v| *v /= train.len().max(1) as f32);
    let mean_recon: Vec<f32> = (0..n_eval).flat_map(|_| mean_img.iter().copied()).collect();
    // Ridge decoding from responses.
    let pix = |idx: &[usize]| -> Vec<f32> { idx.iter().flat_map(|&i| ds.crop(i).iter().map(|v| *v as f32 / 255.0)).collect() };
    let ridge_dec = Ridge::fit(&resp(&train), &pix(&train), &resp(&val), &pix(&val), rlen, s * s, &LAMBDAS)?;
    let ridge_recon: Vec<f32> = ridge_dec.predict(&resp(&eval_idx))?.into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
    let upper_recon = match (upper, truth_tensor(ds, &eval_idx, &dev)?) {
        (Some(u), Some(t)) => Some(recon_of(u, &t)?),
        _ => None,
    };
    if upper.is_some() && ds.truth.is_none() {
        notes.push("An upper-bound model was given but the dataset has no noise-free rates.".into());
    }

    let mut methods: Vec<(&str, &Vec<f32>)> = vec![
        ("model (waveform_encoder + image_decoder)", &model_recon),
        ("ridge (response -> pixels)", &ridge_recon),
        ("model, shuffled responses", &shuffled_recon),
        ("mean training image", &mean_recon),
    ];
    // The linear decoder on the noise-free rates: how much of the gap between the model
    // and its upper bound a linear decoder loses to the same noise.
    let ridge_noise_free: Option<Vec<f32>> = match (&upper_recon, &ds.truth) {
        (Some(_), Some(_)) => {
            let rates = |idx: &[usize]| -> Vec<f32> { idx.iter().flat_map(|&i| ds.truth_response(i).unwrap_or(&[]).iter().copied()).collect() };
            let fit = Ridge::fit(&rates(&train), &pix(&train), &rates(&val), &pix(&val), rlen, s * s, &LAMBDAS)?;
            Some(fit.predict(&rates(&eval_idx))?.into_iter().map(|v| v.clamp(0.0, 1.0)).collect())
        }
        _ => None,
    };
    if let (Some(r), Some(u)) = (&ridge_noise_free, &upper_recon) {
        methods.push(("ridge on noise-free rates", r));
        methods.push(("upper bound (noise-free rates)", u));
    }
    let mut reconstruction_crop = Vec::new();
    for (name, flat) in &methods {
        reconstruction_crop.push(recon_method(name, &targets, &to_images(flat)?)?);
    }
    // Repeat-averaged responses: the repeated channels' counts averaged over the repeats,
    // lag by lag, the other channels as recorded once; the same trained decoders.
    let m_of: std::collections::HashMap<usize, usize> = ds.repeat_samples.iter().enumerate().map(|(m, &i)| (i as usize, m)).collect();
    let averaged = |idx: &[usize]| -> Option<Vec<f32>> {
        if repeated.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(idx.len() * rlen);
        for &i in idx {
            let m = *m_of.get(&i)?;
            let mut r = ds.response(i).to_vec();
            for &c in &repeated {
                for l in 0..n_l {
                    let sum: f32 = (0..ds.n_repeats).map(|rep| ds.repeat_response_lagged(rep, m)[l * n_c + c]).sum();
                    r[l * n_c + c] = sum / ds.n_repeats as f32;
                }
            }
            out.extend(r);
        }
        Some(out)
    };
    let mut reconstruction_crop_repeat_averaged = Vec::new();
    if let (Some(avg), Some(avg_shuffled)) = (averaged(&eval_idx), averaged(&shuffled_idx)) {
        let as_tensor = |v: Vec<f32>| Tensor::from_vec(v, (n_eval, rlen), &dev);
        let model_avg = recon_of(model, &as_tensor(avg.clone())?)?;
        let ridge_avg: Vec<f32> = ridge_dec.predict(&avg)?.into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
        let shuffled_avg = recon_of(model, &as_tensor(avg_shuffled)?)?;
        let mut avg_methods: Vec<(&str, &Vec<f32>)> =
            vec![("model (waveform_encoder + image_decoder)", &model_avg), ("ridge (response -> pixels)", &ridge_avg), ("model, shuffled responses", &shuffled_avg)];
        if let Some(u) = &upper_recon {
            avg_methods.push(("upper bound (noise-free rates)", u));
        }
        for (name, flat) in &avg_methods {
            reconstruction_crop_repeat_averaged.push(recon_method(name, &targets, &to_images(flat)?)?);
        }
    } else if opts.split == Split::Test {
        notes.push("No repeat-averaged reconstruction: the evaluated images have no repeated trials on the model's channels.".into());
    }
    // Full frame: each crop reconstruction pasted into the mean training frame.
    let [fw, fh] = ds.meta.full_size;
    let (fw, fh) = (fw as usize, fh as usize);
    let mut mean_full = vec![0f32; fw * fh];
    for &i in &train {
        for (m, v) in mean_full.iter_mut().zip(ds.full_frame(i)) {
            *m += *v as f32 / 255.0;
        }
    }
    mean_full.iter_mut().for_each(|v| *v /= train.len().max(1) as f32);
    let sx = fw as f32 / neural_data::pvc1::FRAME_WIDTH as f32;
    let sy = fh as f32 / neural_data::pvc1::FRAME_HEIGHT as f32;
    let cw = ds.meta.crop_window;
    let window = [cw[0] as f32 * sx, cw[1] as f32 * sy, cw[2] as f32 * sx, cw[3] as f32 * sy];
    let full_targets: Vec<GrayImageF32> = eval_idx
        .iter()
        .map(|&i| gray(fw, fh, ds.full_frame(i).iter().map(|v| *v as f32 / 255.0).collect()))
        .collect::<Result<_>>()?;
    let mut reconstruction_full_frame = Vec::new();
    let mut full_model_images = Vec::new();
    for (k, (name, flat)) in methods.iter().enumerate() {
        let imgs: Vec<GrayImageF32> = flat
            .chunks(s * s)
            .map(|c| gray(fw, fh, paste(&mean_full, fw, fh, c, s, window)))
            .collect::<Result<_>>()?;
        reconstruction_full_frame.push(recon_method(name, &full_targets, &imgs)?);
        if k == 0 {
            full_model_images = imgs;
        }
    }
    let pixcorr_fraction_of_upper_bound = upper_recon.as_ref().map(|_| {
        let m = reconstruction_crop[0].pixcorr;
        let u = reconstruction_crop.last().map(|r| r.pixcorr).unwrap_or(f64::NAN);
        m / u
    });

    // ---------------- Figures ----------------
    let rows_n = 8.min(n_eval);
    let pick: Vec<usize> = (0..rows_n).map(|k| k * n_eval / rows_n).collect();
    let mut grid_rows = Vec::new();
    let mut labels = Vec::new();
    for &k in &pick {
        let mut row = vec![targets[k].clone()];
        for (_, flat) in &methods {
            row.push(gray(s, s, flat[k * s * s..(k + 1) * s * s].to_vec())?);
        }
        grid_rows.push(row);
        let [m, sg, f] = ds.index[eval_idx[k]];
        labels.push(format!("m{m} s{sg} f{f}"));
    }
    let mut titles = vec!["target"];
    let short = ["model", "ridge", "shuffled", "mean", "ridge, noise-free", "upper bound"];
    titles.extend(short.iter().take(methods.len()));
    let label_refs: Vec<&str> = labels.iter().map(|s| s.as_str()).collect();
    figures::image_grid(&grid_rows, &titles, &label_refs, 3, &out.join("reconstructions.png")).map_err(fig_err)?;
    let full_rows: Vec<Vec<GrayImageF32>> = pick.iter().take(4).map(|&k| vec![full_targets[k].clone(), full_model_images[k].clone()]).collect();
    figures::image_grid(&full_rows, &["full frame", "model (crop pasted)"], &label_refs[..full_rows.len()], 3, &out.join("full_frame.png")).map_err(fig_err)?;
    let (cnn, ridge) = (&encoding[0], &encoding[1]);
    let (xs, ys, what) = match (&ridge.per_channel_r_noise_free, &cnn.per_channel_r_noise_free) {
        (Some(a), Some(b)) => (a, b, "r vs noise-free rates"),
        _ => (&ridge.per_channel_r, &cnn.per_channel_r, "r vs single trials"),
    };
    let gx: Vec<f32> = good_idx.iter().map(|&c| xs[c] as f32).collect();
    let gy: Vec<f32> = good_idx.iter().map(|&c| ys[c] as f32).collect();
    figures::scatter(&gx, &gy, &format!("Encoding per channel ({what})"), "ridge r", "CNN r", &out.join("encoding_scatter.png")).map_err(fig_err)?;
    // Traces of the best channel over the first test segment.
    let best_c = good_idx.iter().copied().max_by(|&a, &b| cnn.per_channel_r[a].total_cmp(&cnn.per_channel_r[b])).unwrap_or(0);
    let len = 150.min(test.len());
    let p_sum = sum_over_lags(&pred, test.len(), n_l, n_c);
    let tr_rec: Vec<f32> = rec_sum[best_c][..len].iter().map(|v| *v as f32).collect();
    let tr_pred: Vec<f32> = p_sum[best_c][..len].iter().map(|v| *v as f32).collect();
    let mut series: Vec<(&str, &[f32])> = vec![("recorded (single trial)", &tr_rec), ("CNN prediction", &tr_pred)];
    let tr_truth: Vec<f32> = truth_sum.as_ref().map(|t| t[best_c][..len].iter().map(|v| *v as f32).collect()).unwrap_or_default();
    if !tr_truth.is_empty() {
        series.push(("noise-free rate", &tr_truth));
    }
    let ch = &info.channels[best_c];
    figures::traces(&series, &format!("Channel {} e{}: counts per {}-bin window", ch.file, ch.electrode, n_l), &out.join("traces.png")).map_err(fig_err)?;
    let mut map = [None; 100];
    let mut map_n = [0u32; 100];
    let rvals = cnn.per_channel_r_noise_free.as_ref().unwrap_or(&cnn.per_channel_r);
    for (c, chn) in info.channels.iter().enumerate() {
        let k = (chn.row as usize) * 10 + chn.col as usize;
        if k < 100 {
            map[k] = Some(map[k].unwrap_or(0.0) + rvals[c] as f32);
            map_n[k] += 1;
        }
    }
    for k in 0..100 {
        if let Some(v) = map[k] {
            map[k] = Some(v / map_n[k] as f32);
        }
    }
    figures::heatmap_10x10(&map, "Encoding r per electrode (array position)", &out.join("electrode_map.png")).map_err(fig_err)?;
    let bar_labels: Vec<&str> = short.iter().take(methods.len()).copied().collect();
    let bar_vals: Vec<f32> = reconstruction_crop.iter().map(|r| r.pixcorr as f32).collect();
    figures::bar_chart(&bar_labels, &bar_vals, "Reconstruction PixCorr (RF crop)", &out.join("pixcorr.png")).map_err(fig_err)?;

    let (projective_fields, projective_fields_ridge) = projective_section(ds, model, &ridge_dec, &good, out)?;

    let report = EvalReport {
        split: split_name(opts.split).to_string(),
        test_samples: test.len(),
        evaluated_images: n_eval,
        channels: n_c,
        good_channels: good_idx.len(),
        repeated_channels: repeated.len(),
        channels_above_max_r2_floor: above_floor.iter().filter(|a| **a).count(),
        repeated_max_r2,
        reliable_channels,
        lags: info.lags.clone(),
        image_size: s,
        crop_window: ds.meta.crop_window,
        encoding,
        reconstruction_crop,
        reconstruction_full_frame,
        reconstruction_crop_repeat_averaged,
        repeat_averaged_channels: repeated.len(),
        pixcorr_fraction_of_upper_bound,
        projective_fields,
        projective_fields_ridge,
        notes,
    };
    let json = serde_json::to_string_pretty(&report).map_err(|e| ModelError::Invalid(e.to_string()))?;
    write_atomic(&out.join("metrics.json"), json.as_bytes())?;
    write_atomic(&out.join("report.md"), markdown(&report, ds).as_bytes())?;
    Ok(report)
}

/// `pred` rescaled fold by fold with the gain and offset that fit `target` best (least
/// squares) on the other fold; None when a fold has fewer than two samples.
fn cross_fitted_gain(pred: &[f64], target: &[f64], fold: &[bool]) -> Option<Vec<f64>> {
    let fit = |on: bool| -> Option<(f64, f64)> {
        let pts: Vec<(f64, f64)> = pred.iter().zip(target).zip(fold).filter(|(_, f)| **f == on).map(|((p, t), _)| (*p, *t)).collect();
        if pts.len() < 2 {
            return None;
        }
        let n = pts.len() as f64;
        let (mp, mt) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
        let var: f64 = pts.iter().map(|p| (p.0 - mp).powi(2)).sum();
        let cov: f64 = pts.iter().map(|p| (p.0 - mp) * (p.1 - mt)).sum();
        let a = if var > 0.0 { cov / var } else { 0.0 };
        Some((a, mt - a * mp))
    };
    let (a_true, b_true) = fit(true)?;
    let (a_false, b_false) = fit(false)?;
    Some(pred.iter().zip(fold).map(|(p, f)| if *f { a_false * p + b_false } else { a_true * p + b_true }).collect())
}

/// The projective-field comparisons of the model and of the ridge decoder.
pub type ModelAndRidge = (Option<crate::projective::PfRfComparison>, Option<crate::projective::PfRfComparison>);

/// Training samples the receptive-field maps of the projective-field figure average over.
const RF_MAP_SAMPLES: usize = 20_000;

/// Each good channel's projective field against its receptive-field estimate (dataset
/// cache), for the model (with the figures) and for the ridge decoder; None when the
/// cache's RF estimates do not cover the model's channels.
pub fn projective_section(ds: &Dataset, model: &V1Model, ridge: &Ridge, good: &[bool], out: &Path) -> Result<ModelAndRidge> {
    use crate::projective;
    let info = model.info();
    let rfs = projective::rf_centres_in_crop(&ds.meta);
    if rfs.len() != info.n_channels() {
        return Ok((None, None));
    }
    let pf = projective::projective_fields(model)?;
    let cmp = projective::compare(info, &pf, &rfs, Some(good))?;
    let compared: Vec<usize> = cmp.channels.iter().map(|c| c.channel).collect();
    let rf_maps = projective::energy_sta(ds, &compared, RF_MAP_SAMPLES);
    projective::write_figures(&pf, &cmp, &rf_maps, out)?;
    let ridge_pf = projective::projective_fields_of(info, |rows, _| ridge.predict(&rows))?;
    let ridge_cmp = projective::compare(info, &ridge_pf, &rfs, Some(good))?;
    Ok((Some(cmp), Some(ridge_cmp)))
}

/// The projective-field section of the report.
pub fn projective_markdown(p: &crate::projective::PfRfComparison, ridge: Option<&crate::projective::PfRfComparison>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n## Projective fields against receptive fields\n");
    let _ = writeln!(
        s,
        "{} good channels. {}.\n\n| decoder | r(PF centre, RF centre) x | y | mean PF-RF distance (crop px) | paired with other channels' RFs |\n|---|---|---|---|---|",
        p.channels.len(),
        p.method
    );
    for (name, c) in std::iter::once(("model (waveform_encoder + image_decoder)", p)).chain(ridge.map(|r| ("ridge (response -> pixels)", r))) {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} |",
            opt(c.r_x),
            opt(c.r_y),
            opt(c.mean_distance_px),
            opt(c.mean_distance_shuffled_px)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Below, for each channel (electrodes named at the left of each row, in order), its PF through the model (the change its activity makes to the reconstruction; mid-grey: none, white: brighter, black: darker) beside its RF as the training data show it (spike-triggered average of local contrast energy over up to {RF_MAP_SAMPLES} training crops; brighter: more contrast there drives the channel), both marked with the RF centre (white cross) and the PF centre (black square).\n\n![projective fields](projective_fields.png)\n\n![PF vs RF centre, x](pf_rf_x.png) ![PF vs RF centre, y](pf_rf_y.png)");
    s
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into())
}

/// The human report.
pub fn markdown(r: &EvalReport, ds: &Dataset) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Evaluation report\n");
    let _ = writeln!(
        s,
        "{}: {} samples (whole movie segments: {:?}). {} channels ({} good), lags {:?} frames, crop window {:?} (x, y, w, h in 320x240 frame pixels) resized to {}x{} px.\n",
        if r.split == "test" { "Held-out test split".to_string() } else { format!("The {} split (for choosing settings; the test split is not used)", r.split) },
        r.test_samples,
        ds.meta.segments.get(r.split.as_str()).map(|v| v.len()).unwrap_or(0),
        r.channels,
        r.good_channels,
        r.lags,
        r.crop_window,
        r.image_size,
        r.image_size
    );
    let _ = writeln!(s, "Protocol: splits by whole (movie, segment); normalisation from the training split; first {} frames of each segment dropped. Encoding metrics per channel on the count summed over the lag bins, averaged over good channels; FEVE over channels with FEV > 0.15 ({} of {} repeated channels). Reconstruction metrics on {} evenly spaced images of the split, grayscale in [0,1]; SSIM after Wang et al. 2004 (Gaussian sigma 1.5, K1 0.01, K2 0.03); 2-way identification by pixel correlation (chance 0.5).\n", ds.meta.config.drop_onset_frames, r.reliable_channels, r.repeated_channels, r.evaluated_images);
    let _ = writeln!(s, "## Encoding (image -> response)\n");
    let _ = writeln!(s, "| method | r (single trial) | r (noise-free) | corr. to average | FEVE (FEV > 0.15) | FEVE (max R² > {MAX_R2_FLOOR}) | FEVE, session gain | normalised r | CCnorm |\n|---|---|---|---|---|---|---|---|---|");
    for e in &r.encoding {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {} | {} | {} | {} | {} | {} | {} |",
            e.name,
            e.r_single_trial,
            opt(e.r_noise_free),
            opt(e.correlation_to_average),
            opt(e.feve),
            opt(e.feve_max_r2_above_floor),
            opt(e.feve_session_gain),
            opt(e.normalised_correlation),
            opt(e.ccnorm)
        );
    }
    if !r.repeated_max_r2.is_empty() {
        let mut sorted = r.repeated_max_r2.clone();
        sorted.sort_by(f64::total_cmp);
        let list: Vec<String> = sorted.iter().map(|v| format!("{v:.2}")).collect();
        let _ = writeln!(
            s,
            "\nCeilings: max R² (Sahani & Linden 2003) of the {} repeated channels on the lag-summed counts, sorted: {}; {} above {MAX_R2_FLOOR}. Normalised r = r(prediction, trial average) / sqrt(max(max R², {MAX_R2_FLOOR})), as pvc-1 analyses report it; it and the second and third FEVE columns average the channels above {MAX_R2_FLOOR}. \"Session gain\": the repeat file is a recording of its own, with its own gain per electrode; that column scores each channel's prediction after a gain and offset fitted by least squares on the other half of the repeated segments (alternate segments, 2-fold), never on the segments it is scored on.",
            sorted.len(),
            list.join(", "),
            r.channels_above_max_r2_floor
        );
    }
    for (title, rows) in [("RF-footprint crop (primary)", &r.reconstruction_crop), ("full frame (crop pasted into the mean frame)", &r.reconstruction_full_frame)] {
        let _ = writeln!(s, "\n## Reconstruction (response -> image): {title}\n");
        let _ = writeln!(s, "| method | MSE | PSNR (dB) | SSIM | PixCorr | 2-way ident. |\n|---|---|---|---|---|---|");
        for m in rows.iter() {
            let _ = writeln!(s, "| {} | {:.4} | {} | {:.3} | {:.3} | {} |", m.name, m.mse, opt(m.psnr_db), m.ssim, m.pixcorr, opt(m.identification));
        }
    }
    if !r.reconstruction_crop_repeat_averaged.is_empty() {
        let _ = writeln!(s, "\n## Reconstruction from repeat-averaged responses: RF-footprint crop\n");
        let _ = writeln!(
            s,
            "The same decoders fed the {} repeated channels' counts averaged over the repeats of the repeat file (lag by lag), the other channels as recorded once. The repeat file is a session of its own: its gain per electrode differs from the single-trial files the decoders were trained on.\n",
            r.repeat_averaged_channels
        );
        let _ = writeln!(s, "| method | MSE | PSNR (dB) | SSIM | PixCorr | 2-way ident. |\n|---|---|---|---|---|---|");
        for m in &r.reconstruction_crop_repeat_averaged {
            let _ = writeln!(s, "| {} | {:.4} | {} | {:.3} | {:.3} | {} |", m.name, m.mse, opt(m.psnr_db), m.ssim, m.pixcorr, opt(m.identification));
        }
    }
    if let Some(f) = r.pixcorr_fraction_of_upper_bound {
        let _ = writeln!(s, "\nModel PixCorr is {:.0}% of the noise-free upper bound's.", 100.0 * f);
    }
    let pix = |name: &str| r.reconstruction_crop.iter().find(|m| m.name == name).map(|m| m.pixcorr);
    if let (Some(a), Some(b)) = (pix("ridge (response -> pixels)"), pix("ridge on noise-free rates")) {
        let _ = writeln!(
            s,
            "The linear decoder on single trials reaches {:.0}% of the same decoder on the noise-free rates: the share the response noise leaves to any decoder of that kind.",
            100.0 * a / b
        );
    }
    let _ = writeln!(s, "\n## Figures\n\n![reconstructions](reconstructions.png)\n\n![PixCorr](pixcorr.png)\n\n![full frame](full_frame.png)\n\n![encoding scatter](encoding_scatter.png)\n\n![traces](traces.png)\n\n![electrode map](electrode_map.png)");
    if let Some(p) = &r.projective_fields {
        s.push_str(&projective_markdown(p, r.projective_fields_ridge.as_ref()));
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

/// Per model channel, whether the simulator planted units on its electrode
/// (`ground_truth/truth.json`, field `electrodes[].good`). None for real data.
pub fn good_channels_from_truth(data_root: &Path, info: &crate::info::ModelInfo) -> Option<Vec<bool>> {
    let text = std::fs::read_to_string(data_root.join("ground_truth").join("truth.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let electrodes = v.get("electrodes")?.as_array()?;
    let good: std::collections::HashMap<u64, bool> = electrodes
        .iter()
        .filter_map(|e| Some((e.get("id")?.as_u64()?, e.get("good")?.as_bool()?)))
        .collect();
    Some(info.channels.iter().map(|c| good.get(&(c.electrode as u64)).copied().unwrap_or(false)).collect())
}

#[cfg(test)]
mod tests {
    use super::cross_fitted_gain;

    #[test]
    fn the_session_gain_is_fitted_on_the_other_fold_only() {
        // Fold A (true): target = 2 * pred + 1; fold B (false): target = 4 * pred.
        let pred = [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0];
        let fold = [true, true, true, true, false, false, false, false];
        let target: Vec<f64> = pred.iter().zip(&fold).map(|(p, f)| if *f { 2.0 * p + 1.0 } else { 4.0 * p }).collect();
        let out = cross_fitted_gain(&pred, &target, &fold).unwrap();
        // Fold A's predictions get fold B's fit (4p) and the other way round (2p + 1).
        for (k, (&p, &f)) in pred.iter().zip(&fold).enumerate() {
            let want = if f { 4.0 * p } else { 2.0 * p + 1.0 };
            assert!((out[k] - want).abs() < 1e-12, "{k}: {} vs {want}", out[k]);
        }
        // A fold with one sample cannot be fitted.
        assert!(cross_fitted_gain(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], &[true, false, false]).is_none());
    }
}
