//! Prediction metrics (image -> response): the CNN and the ridge baseline from pixels,
//! per channel on the count summed over the lag bins, against single trials, the
//! noise-free rates and the repeats.

use std::collections::HashMap;

use neural_data::cache::Split;

use super::repeats::{cross_fitted_gain, Repeats};
use super::{mean_of, responses_of, split_name, sum_over_lags, EncodingMethod, EvalOptions, Setup, LAMBDAS, MAX_R2_FLOOR};
use crate::data::{clips_tensor, Clips};
use crate::error::Result;
use crate::ridge::Ridge;

/// The encoding step's results and what later steps read from it.
pub(super) struct Encoding {
    /// The CNN's predictions, [N, L*C] flat over the evaluated samples.
    pub pred: Vec<f32>,
    /// Recorded and noise-free counts per channel, summed over lags.
    pub rec_sum: Vec<Vec<f64>>,
    pub truth_sum: Option<Vec<Vec<f64>>>,
    /// The CNN, then the ridge baseline.
    pub methods: Vec<EncodingMethod>,
    /// Repeated channels with FEV > 0.15.
    pub reliable_channels: usize,
}

/// Scores the CNN and the ridge baseline on the evaluated split.
pub(super) fn evaluate(cx: &Setup<'_>, repeats: &Repeats, opts: &EvalOptions, notes: &mut Vec<String>) -> Result<Encoding> {
    let (ds, test) = (cx.ds, &cx.test);
    let (pred, ridge_pred) = predictions(cx)?;
    let rec: Vec<f32> = responses_of(ds, test);
    let truth: Option<Vec<f32>> = ds.truth.as_ref().map(|_| test.iter().flat_map(|&i| ds.truth_response(i).unwrap_or(&[]).iter().copied()).collect());
    let rec_sum = sum_over_lags(&rec, test.len(), cx.n_l, cx.n_c);
    let truth_sum = truth.as_ref().map(|t| sum_over_lags(t, test.len(), cx.n_l, cx.n_c));
    let mut methods = Vec::new();
    let mut reliable_channels = 0;
    for (name, p) in [("CNN (image_encoder + waveform_decoder)", &pred), ("ridge (pixels -> response)", &ridge_pred)] {
        let (method, reliable) = score(cx, name, p, &rec_sum, truth_sum.as_ref(), repeats);
        if let Some(n) = reliable {
            reliable_channels = n;
        }
        methods.push(method);
    }
    if opts.split != Split::Test {
        notes.push(format!("Evaluated on the {} split: FEVE, CCnorm and correlation to average need the repeated (test) segments.", split_name(opts.split)));
    } else if repeats.repeated.is_empty() {
        notes.push("No repeated test trials matched the model's channels: FEVE, CCnorm and correlation to average are not available.".into());
    }
    Ok(Encoding { pred, rec_sum, truth_sum, methods, reliable_channels })
}

/// The CNN's and the ridge baseline's predictions of the evaluated samples, [N, L*C].
fn predictions(cx: &Setup<'_>) -> Result<(Vec<f32>, Vec<f32>)> {
    let (ds, model, s) = (cx.ds, cx.model, cx.s);
    let clips = Clips::new(ds, cx.info, model.clip_frames());
    let pred = batched(cx.test.len(), |r| {
        let x = model.crops_to_tensor_raw(&clips_tensor(ds, &clips, &cx.test[r], &cx.dev)?)?;
        Ok(model.predict_tensor(&x)?.flatten_all()?.to_vec1::<f32>()?)
    })?;
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
    let (train, val) = (&cx.train, &cx.val);
    let n_feat = feat(&cx.test[..1]).len();
    let ridge_enc = Ridge::fit(&feat(train), &responses_of(ds, train), &feat(val), &responses_of(ds, val), n_feat, cx.rlen, &LAMBDAS)?;
    let ridge_pred = ridge_enc.predict(&feat(&cx.test))?;
    Ok((pred, ridge_pred))
}

/// One method's row of the encoding table from its predictions `p`, and the number of
/// reliable repeated channels when the repeats could be scored.
fn score(cx: &Setup<'_>, name: &str, p: &[f32], rec_sum: &[Vec<f64>], truth_sum: Option<&Vec<Vec<f64>>>, repeats: &Repeats) -> (EncodingMethod, Option<usize>) {
    let (ds, n_c, good_idx) = (cx.ds, cx.n_c, &cx.good_idx);
    // Pearson r by the metrics crate's definition; a series with a NaN or infinity gives
    // NaN, so a broken prediction shows in the report.
    let r = |a: &[f64], b: &[f64]| v1_metrics::pearson_r(a, b).unwrap_or(f64::NAN);
    let p_sum = sum_over_lags(p, cx.test.len(), cx.n_l, n_c);
    let per_r: Vec<f64> = (0..n_c).map(|c| r(&p_sum[c], &rec_sum[c])).collect();
    let per_rt: Option<Vec<f64>> = truth_sum.map(|t| (0..n_c).map(|c| r(&p_sum[c], &t[c])).collect());
    let pos_in_test: HashMap<usize, usize> = cx.test.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let mut electrode_metrics = Vec::new();
    let (mut feve_above, mut normalised, mut feve_gain) = (Vec::new(), Vec::new(), Vec::new());
    for (k, (c, tm)) in repeats.mats.iter().enumerate() {
        let preds: Vec<f64> = ds
            .repeat_samples
            .iter()
            .map(|&s| p_sum[*c][pos_in_test.get(&(s as usize)).copied().unwrap_or(0)])
            .collect();
        if let Ok(em) = v1_metrics::electrode_metrics(tm, &preds) {
            if repeats.above_floor[k] {
                feve_above.push(em.feve);
                normalised.push(v1_metrics::normalised_correlation(em.correlation_to_average, repeats.max_r2[k], MAX_R2_FLOOR));
                if let Some(rescaled) = cross_fitted_gain(&preds, &tm.trial_means(), &repeats.fold) {
                    if let Ok(g) = v1_metrics::electrode_metrics(tm, &rescaled) {
                        feve_gain.push(g.feve);
                    }
                }
            }
            electrode_metrics.push(em);
        }
    }
    let summary = if electrode_metrics.is_empty() { None } else { v1_metrics::summarize_electrodes(&electrode_metrics).ok() };
    let method = EncodingMethod {
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
    };
    (method, summary.map(|s| s.n_reliable))
}

/// `f` over `0..n` in batches of 256 samples, the outputs concatenated.
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

/// 2x2 mean pooling of an s x s image of bytes, to floats in [0, 1].
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
