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
//!
//! # Layout
//! The evaluation runs in steps, one file each, in this order: `repeats` (the noise
//! ceiling of the repeated segments), `encoding` (prediction metrics), `reconstruction`
//! (crop metrics with the controls and baselines), `full_frame`, `figures`,
//! `projective_fields` and `report` (`metrics.json`, `report.md`).

mod encoding;
mod figures;
mod full_frame;
mod projective_fields;
mod reconstruction;
mod repeats;
mod report;

use std::path::Path;

use candle_core::Device;
use neural_data::cache::{Dataset, Split};
use serde::Serialize;
use v1_metrics::GrayImageF32;

use crate::error::{io_err, ModelError, Result};
use crate::info::ModelInfo;
use crate::pipeline::V1Model;
use crate::projective::PfRfComparison;
pub use projective_fields::{projective_section, ModelAndRidge};
pub use report::{markdown, projective_markdown};

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
    pub projective_fields: Option<PfRfComparison>,
    /// The same for the ridge decoder (response -> pixels): what a linear decoder of the
    /// same responses gives.
    pub projective_fields_ridge: Option<PfRfComparison>,
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


/// Runs the whole evaluation and writes `metrics.json`, `report.md` and PNG figures.
pub fn evaluate(ds: &Dataset, model: &V1Model, upper: Option<&V1Model>, out: &Path, opts: &EvalOptions) -> Result<EvalReport> {
    std::fs::create_dir_all(out).map_err(io_err(format!("creating {}", out.display())))?;
    let cx = Setup::new(ds, model, opts)?;
    let mut notes = Vec::new();
    let repeats = repeats::Repeats::new(ds, cx.n_c, opts);
    let enc = encoding::evaluate(&cx, &repeats, opts, &mut notes)?;
    let rec = reconstruction::evaluate(&cx, upper, &repeats.repeated, opts, &mut notes)?;
    let full = full_frame::evaluate(&cx, &rec)?;
    figures::write(&cx, &enc, &rec, &full, out)?;
    let (projective_fields, projective_fields_ridge) = projective_section(ds, model, &rec.ridge_dec, &cx.good, out)?;
    let report = EvalReport {
        split: split_name(opts.split).to_string(),
        test_samples: cx.test.len(),
        evaluated_images: rec.eval_idx.len(),
        channels: cx.n_c,
        good_channels: cx.good_idx.len(),
        repeated_channels: repeats.repeated.len(),
        channels_above_max_r2_floor: repeats.above_floor.iter().filter(|a| **a).count(),
        repeated_max_r2: repeats.max_r2,
        reliable_channels: enc.reliable_channels,
        lags: cx.info.lags.clone(),
        image_size: cx.s,
        crop_window: ds.meta.crop_window,
        encoding: enc.methods,
        reconstruction_crop: rec.crop,
        reconstruction_full_frame: full.metrics,
        reconstruction_crop_repeat_averaged: rec.repeat_averaged,
        repeat_averaged_channels: repeats.repeated.len(),
        pixcorr_fraction_of_upper_bound: rec.pixcorr_fraction_of_upper_bound,
        projective_fields,
        projective_fields_ridge,
        notes,
    };
    report::write(&report, ds, out)?;
    Ok(report)
}

/// What every step of an evaluation reads: the model's shape and the samples.
struct Setup<'a> {
    ds: &'a Dataset,
    model: &'a V1Model,
    info: &'a ModelInfo,
    dev: Device,
    /// Lags and channels of a response, and its length (lags x channels).
    n_l: usize,
    n_c: usize,
    rlen: usize,
    /// Side of the crop the networks see.
    s: usize,
    /// The evaluated split's samples (named `test` as it is the test split in the report).
    test: Vec<usize>,
    /// Where the ridge baselines fit, and where they pick their regularisation.
    train: Vec<usize>,
    val: Vec<usize>,
    /// Per channel: whether it is good; and the good channels' indices.
    good: Vec<bool>,
    good_idx: Vec<usize>,
}

impl<'a> Setup<'a> {
    fn new(ds: &'a Dataset, model: &'a V1Model, opts: &EvalOptions) -> Result<Self> {
        let info = model.info();
        let (n_l, n_c) = (info.n_lags(), info.n_channels());
        if opts.split == Split::Train {
            return Err(ModelError::Invalid("evaluate the test split (the report) or the validation split (choosing settings), not the training split".into()));
        }
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
        let good: Vec<bool> = opts.good_channels.clone().unwrap_or_else(|| vec![true; n_c]);
        let good_idx: Vec<usize> = (0..n_c).filter(|&c| good.get(c).copied().unwrap_or(true)).collect();
        Ok(Self { ds, model, info, dev: model.device().clone(), n_l, n_c, rlen: n_l * n_c, s: info.image_size, test, train, val, good, good_idx })
    }
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

fn mean_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The recorded responses of `idx`, [N, L*C] flat.
fn responses_of(ds: &Dataset, idx: &[usize]) -> Vec<f32> {
    idx.iter().flat_map(|&i| ds.response(i).iter().copied()).collect()
}

fn gray(w: usize, h: usize, px: Vec<f32>) -> Result<GrayImageF32> {
    GrayImageF32::new(w as u32, h as u32, px.into_iter().map(|v| v.clamp(0.0, 1.0)).collect())
        .map_err(|e| ModelError::Invalid(e.to_string()))
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

/// (`ground_truth/truth.json`, or one per array of a wide-field dataset; field
/// `electrodes[].good`). None for real data.
pub fn good_channels_from_truth(data_root: &Path, info: &ModelInfo) -> Option<Vec<bool>> {
    // One array: ground_truth/truth.json; several (wide field): one truth.json per array in
    // the sub-folders that ground_truth/arrays.json lists. A channel is (file, electrode),
    // and each truth names the files of its array.
    let dir = data_root.join("ground_truth");
    let truth_files: Vec<std::path::PathBuf> = match neural_data::truth_layout::array_subdirs(&dir).ok()? {
        Some(subdirs) => subdirs.iter().map(|s| dir.join(s).join("truth.json")).collect(),
        None => vec![dir.join("truth.json")],
    };
    let mut good: std::collections::HashMap<(String, u64), bool> = std::collections::HashMap::new();
    for path in truth_files {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        let by_id: std::collections::HashMap<u64, bool> = v
            .get("electrodes")?
            .as_array()?
            .iter()
            .filter_map(|e| Some((e.get("id")?.as_u64()?, e.get("good")?.as_bool()?)))
            .collect();
        for f in v.get("files")?.as_array()? {
            let name = f.get("name")?.as_str()?.to_string();
            for id in f.get("electrodes")?.as_array()?.iter().filter_map(|e| e.as_u64()) {
                good.insert((name.clone(), id), by_id.get(&id).copied().unwrap_or(false));
            }
        }
    }
    Some(info.channels.iter().map(|c| good.get(&(c.file.clone(), c.electrode as u64)).copied().unwrap_or(false)).collect())
}
