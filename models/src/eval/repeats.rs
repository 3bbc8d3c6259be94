//! The noise ceiling: the repeated segments of the test split (the same movie shown
//! several times), each repeated channel's max R² over them, and the two folds by
//! segment that the session-gain FEVE fits on.

use neural_data::cache::{Dataset, Split};
use v1_metrics::TrialMatrix;

use super::{EvalOptions, MAX_R2_FLOOR};

/// The repeats of the channels that have them.
pub(super) struct Repeats {
    /// Channels with a finite lag-summed count in every repeated sample.
    pub repeated: Vec<usize>,
    /// The repeats of each repeated channel (M samples x R repeats), by channel.
    pub mats: Vec<(usize, TrialMatrix)>,
    /// Max R² of each entry of `mats`.
    pub max_r2: Vec<f64>,
    /// Whether each entry of `mats` has a max R² above [`MAX_R2_FLOOR`].
    pub above_floor: Vec<bool>,
    /// Two folds of the repeated samples by whole segment (alternate segments).
    pub fold: Vec<bool>,
}

impl Repeats {
    /// The repeats of `n_c` channels; none unless the test split is evaluated (repeats
    /// exist for test samples only).
    pub fn new(ds: &Dataset, n_c: usize, opts: &EvalOptions) -> Self {
        let n_rep_samples = ds.repeat_samples.len();
        let use_repeats = opts.split == Split::Test && ds.n_repeats >= 2 && n_rep_samples > 0;
        // Lag-summed repeats, [r * M + m][channel].
        let rep_sum: Vec<Vec<f32>> = if use_repeats { (0..ds.n_repeats).flat_map(|r| (0..n_rep_samples).map(move |m| (r, m))).map(|(r, m)| ds.repeat_response(r, m)).collect() } else { Vec::new() };
        let repeated: Vec<usize> = (0..n_c).filter(|&c| use_repeats && (0..n_rep_samples).all(|m| rep_sum[m][c].is_finite())).collect();
        let mats: Vec<(usize, TrialMatrix)> = repeated
            .iter()
            .filter_map(|&c| {
                let m = ds.repeat_samples.len();
                let vals: Vec<f64> = (0..m).flat_map(|mi| (0..ds.n_repeats).map(move |r| (mi, r))).map(|(mi, r)| rep_sum[r * m + mi][c] as f64).collect();
                TrialMatrix::from_flat(&vals, m, ds.n_repeats).ok().map(|tm| (c, tm))
            })
            .collect();
        let max_r2: Vec<f64> = mats.iter().map(|(_, tm)| v1_metrics::max_r2(tm).ok().flatten().unwrap_or(0.0)).collect();
        let above_floor: Vec<bool> = max_r2.iter().map(|v| *v > MAX_R2_FLOOR).collect();
        let fold: Vec<bool> = ds.repeat_samples.iter().map(|&i| ds.index[i as usize][1] % 2 == 1).collect();
        Self { repeated, mats, max_r2, above_floor, fold }
    }
}

/// `pred` rescaled fold by fold with the gain and offset that fit `target` best (least
/// squares) on the other fold; None when a fold has fewer than two samples.
pub(super) fn cross_fitted_gain(pred: &[f64], target: &[f64], fold: &[bool]) -> Option<Vec<f64>> {
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
