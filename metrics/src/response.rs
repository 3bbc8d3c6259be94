//! Encoding metrics: how well a predicted response matches recorded responses of one
//! electrode (or neuron).
//!
//! Repeated presentations are held in a [`TrialMatrix`] of stimuli x repeats; a prediction
//! has one value per stimulus. Definitions (the evaluation protocol's, checked against
//! numpy reference values in `tests/vectors/expected.json`):
//!
//! - noise variance = mean over stimuli of the variance over repeats (ddof 1);
//! - total variance = variance over all trials (ddof 1);
//! - FEV = (total - noise) / total: the fraction of variance that is stimulus-driven;
//! - FEVE = 1 - (MSE(prediction, trials) - noise) / (total - noise), where the MSE is the
//!   mean over all trials of (trial - prediction)^2: the fraction of the explainable
//!   variance that the prediction explains. It is only meaningful where FEV is high enough,
//!   so it is reported for electrodes with FEV > [`FEV_THRESHOLD`] only
//!   ([`ElectrodeMetrics::reportable_feve`], [`summarize_electrodes`]);
//! - CCnorm (Schoppe et al. 2016) = Cov(trial mean, prediction) / sqrt(SP * Var(prediction)),
//!   SP = [Var(sum over repeats) - sum over repeats of Var(repeat)] / (N (N - 1)) with N
//!   repeats; all these variances and the covariance are over stimuli with ddof 0;
//! - correlation to average = Pearson r between the prediction and the trial mean.
//!
//! Denominators are clipped at [`DENOMINATOR_EPSILON`] so degenerate electrodes give
//! finite numbers; CCnorm is `None` where the signal power is not positive, because
//! Schoppe et al. define it only for electrodes with measurable signal.

use crate::stats::{covariance, mean, pearson, to_finite_f64, variance, DENOMINATOR_EPSILON};
use crate::MetricError;

/// FEVE is reported only for electrodes whose FEV exceeds this (Cadena et al. 2019 use
/// the same kind of reliability cut-off): below it, the explainable variance is too small
/// for its explained fraction to be estimated.
pub const FEV_THRESHOLD: f64 = 0.15;

/// Responses of one electrode to repeated stimuli: `n_stimuli` rows of `n_repeats` trials,
/// stored row-major as f64.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialMatrix {
    n_stimuli: usize,
    n_repeats: usize,
    values: Vec<f64>,
}

impl TrialMatrix {
    /// Builds the matrix from one row of repeats per stimulus. All rows need the same,
    /// non-zero number of repeats, and every value must be finite.
    pub fn from_rows<T, Row>(rows: &[Row]) -> Result<Self, MetricError>
    where
        T: Copy + Into<f64>,
        Row: AsRef<[T]>,
    {
        let Some(first) = rows.first() else {
            return Err(MetricError::Empty {
                what: "trial matrix (no stimuli)",
            });
        };
        let n_repeats = first.as_ref().len();
        let mut values = Vec::with_capacity(rows.len() * n_repeats);
        for (row, r) in rows.iter().enumerate() {
            let r = r.as_ref();
            if r.len() != n_repeats {
                return Err(MetricError::RaggedTrials {
                    row,
                    expected: n_repeats,
                    got: r.len(),
                });
            }
            values.extend(r.iter().map(|&v| v.into()));
        }
        Self::from_flat(&values, rows.len(), n_repeats)
    }

    /// Builds the matrix from a row-major buffer (`values[s * n_repeats + r]` is repeat
    /// `r` of stimulus `s`).
    pub fn from_flat<T: Copy + Into<f64>>(
        values: &[T],
        n_stimuli: usize,
        n_repeats: usize,
    ) -> Result<Self, MetricError> {
        if n_stimuli == 0 || n_repeats == 0 {
            return Err(MetricError::Empty {
                what: "trial matrix (zero stimuli or zero repeats)",
            });
        }
        let expected = n_stimuli.saturating_mul(n_repeats);
        if values.len() != expected {
            return Err(MetricError::LengthMismatch {
                what: "trial values vs n_stimuli * n_repeats",
                expected,
                got: values.len(),
            });
        }
        Ok(Self {
            n_stimuli,
            n_repeats,
            values: to_finite_f64(values, "trial matrix")?,
        })
    }

    /// Number of stimuli (rows).
    pub fn n_stimuli(&self) -> usize {
        self.n_stimuli
    }

    /// Number of repeats per stimulus (columns).
    pub fn n_repeats(&self) -> usize {
        self.n_repeats
    }

    /// The repeats of stimulus `s`, or `None` if out of range.
    pub fn row(&self, s: usize) -> Option<&[f64]> {
        (s < self.n_stimuli).then(|| &self.values[s * self.n_repeats..(s + 1) * self.n_repeats])
    }

    fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.values.chunks_exact(self.n_repeats)
    }

    /// Mean over repeats for each stimulus (the "trial average").
    pub fn trial_means(&self) -> Vec<f64> {
        self.rows().map(mean).collect()
    }

    fn require_repeats(&self) -> Result<(), MetricError> {
        if self.n_repeats < 2 {
            Err(MetricError::TooFewRepeats {
                got: self.n_repeats,
                min: 2,
            })
        } else {
            Ok(())
        }
    }

    fn require_stimuli(&self, what: &'static str) -> Result<(), MetricError> {
        if self.n_stimuli < 2 {
            Err(MetricError::TooFewStimuli {
                what,
                got: self.n_stimuli,
                min: 2,
            })
        } else {
            Ok(())
        }
    }

    fn check_prediction<T: Copy + Into<f64>>(
        &self,
        prediction: &[T],
    ) -> Result<Vec<f64>, MetricError> {
        if prediction.len() != self.n_stimuli {
            return Err(MetricError::LengthMismatch {
                what: "prediction (one value per stimulus) vs trial matrix rows",
                expected: self.n_stimuli,
                got: prediction.len(),
            });
        }
        to_finite_f64(prediction, "prediction")
    }
}

/// Pearson correlation of two equally long series, e.g. a predicted and a recorded
/// single-trial response on held-out data. A constant series gives 0.
pub fn pearson_r<T: Copy + Into<f64>>(x: &[T], y: &[T]) -> Result<f64, MetricError> {
    if x.len() != y.len() {
        return Err(MetricError::LengthMismatch {
            what: "pearson_r: y vs x",
            expected: x.len(),
            got: y.len(),
        });
    }
    if x.is_empty() {
        return Err(MetricError::Empty { what: "pearson_r" });
    }
    Ok(pearson(
        &to_finite_f64(x, "pearson_r x")?,
        &to_finite_f64(y, "pearson_r y")?,
    ))
}

/// Mean over stimuli of the variance over repeats (ddof 1). Needs at least 2 repeats.
pub fn noise_variance(trials: &TrialMatrix) -> Result<f64, MetricError> {
    trials.require_repeats()?;
    let per_stimulus: Vec<f64> = trials.rows().map(|r| variance(r, 1)).collect();
    Ok(mean(&per_stimulus))
}

/// Variance over all trials (ddof 1). Needs at least 2 trials.
pub fn total_variance(trials: &TrialMatrix) -> Result<f64, MetricError> {
    if trials.values.len() < 2 {
        return Err(MetricError::TooFewRepeats {
            got: trials.values.len(),
            min: 2,
        });
    }
    Ok(variance(&trials.values, 1))
}

fn fev_from(total: f64, noise: f64) -> f64 {
    (total - noise) / total.max(DENOMINATOR_EPSILON)
}

/// Fraction of explainable variance, (total - noise) / total.
pub fn fev(trials: &TrialMatrix) -> Result<f64, MetricError> {
    Ok(fev_from(total_variance(trials)?, noise_variance(trials)?))
}

fn feve_from(trials: &TrialMatrix, prediction: &[f64], total: f64, noise: f64) -> f64 {
    let sq_err: f64 = trials
        .rows()
        .zip(prediction)
        .map(|(row, p)| row.iter().map(|t| (t - p) * (t - p)).sum::<f64>())
        .sum();
    let mse = sq_err / trials.values.len() as f64;
    1.0 - (mse - noise) / (total - noise).max(DENOMINATOR_EPSILON)
}

/// Fraction of explainable variance explained by `prediction` (one value per stimulus).
///
/// Report it only for electrodes with FEV > [`FEV_THRESHOLD`]; see
/// [`ElectrodeMetrics::reportable_feve`].
pub fn feve<T: Copy + Into<f64>>(
    trials: &TrialMatrix,
    prediction: &[T],
) -> Result<f64, MetricError> {
    let p = trials.check_prediction(prediction)?;
    let total = total_variance(trials)?;
    let noise = noise_variance(trials)?;
    Ok(feve_from(trials, &p, total, noise))
}

/// Signal power SP of Sahani & Linden (2003) as used by Schoppe et al. (2016):
/// [Var(sum over repeats) - sum over repeats of Var(repeat)] / (N (N - 1)), variances
/// over stimuli with ddof 0. It estimates the variance of the noise-free response and can
/// come out negative for an electrode without stimulus-driven signal.
pub fn signal_power(trials: &TrialMatrix) -> Result<f64, MetricError> {
    trials.require_repeats()?;
    trials.require_stimuli("signal power")?;
    let n = trials.n_repeats;
    let sums: Vec<f64> = trials.rows().map(|r| r.iter().sum()).collect();
    let mut column = vec![0.0; trials.n_stimuli];
    let mut sum_of_var = 0.0;
    for rep in 0..n {
        for (c, row) in column.iter_mut().zip(trials.rows()) {
            *c = row[rep];
        }
        sum_of_var += variance(&column, 0);
    }
    Ok((variance(&sums, 0) - sum_of_var) / (n * (n - 1)) as f64)
}

/// Explainable fraction of the response variance, "max R²" (Sahani & Linden 2003): the
/// signal power over the response power `Var(trial mean)`, variances over stimuli (here
/// usually time bins) with ddof 0. 1 for a noise-free response, about 0 (it can come out
/// negative) for one without stimulus-driven signal. `None` when the trial mean does not
/// vary at all.
pub fn max_r2(trials: &TrialMatrix) -> Result<Option<f64>, MetricError> {
    let sp = signal_power(trials)?;
    let rp = variance(&trials.trial_means(), 0);
    Ok((rp > DENOMINATOR_EPSILON).then(|| sp / rp))
}

/// Correlation normalised by the channel's ceiling, the way pvc-1 analyses report it:
/// `r / sqrt(max(max_r2, floor))`. The floor (0.1 in those analyses) keeps channels with
/// almost no explainable variance from blowing the ratio up.
pub fn normalised_correlation(r: f64, max_r2: f64, floor: f64) -> f64 {
    r / max_r2.max(floor).max(DENOMINATOR_EPSILON).sqrt()
}

fn ccnorm_from(means: &[f64], prediction: &[f64], sp: f64) -> Option<f64> {
    if sp <= 0.0 {
        return None;
    }
    let denom = (sp * variance(prediction, 0))
        .max(DENOMINATOR_EPSILON)
        .sqrt();
    Some(covariance(means, prediction) / denom)
}

/// Normalised correlation coefficient CCnorm (Schoppe et al. 2016): the correlation of the
/// prediction with the trial mean, corrected for the noise that the finite number of
/// repeats leaves in that mean. `None` when the signal power is not positive.
pub fn ccnorm<T: Copy + Into<f64>>(
    trials: &TrialMatrix,
    prediction: &[T],
) -> Result<Option<f64>, MetricError> {
    let p = trials.check_prediction(prediction)?;
    let sp = signal_power(trials)?;
    Ok(ccnorm_from(&trials.trial_means(), &p, sp))
}

/// Pearson r between the prediction and the trial average per stimulus.
pub fn correlation_to_average<T: Copy + Into<f64>>(
    trials: &TrialMatrix,
    prediction: &[T],
) -> Result<f64, MetricError> {
    let p = trials.check_prediction(prediction)?;
    trials.require_stimuli("correlation to average")?;
    Ok(pearson(&trials.trial_means(), &p))
}

/// Whether an electrode's FEV is high enough for its FEVE to be reported.
pub fn is_reliable(fev: f64) -> bool {
    fev > FEV_THRESHOLD
}

/// Every encoding metric of one electrode with repeated trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElectrodeMetrics {
    /// Mean over stimuli of the variance over repeats (ddof 1).
    pub noise_variance: f64,
    /// Variance over all trials (ddof 1).
    pub total_variance: f64,
    /// Fraction of explainable variance.
    pub fev: f64,
    /// Fraction of explainable variance explained, computed for every electrode; use
    /// [`ElectrodeMetrics::reportable_feve`] for the value to publish.
    pub feve: f64,
    /// Signal power (Schoppe et al. 2016).
    pub signal_power: f64,
    /// CCnorm; `None` when the signal power is not positive.
    pub ccnorm: Option<f64>,
    /// Pearson r between prediction and trial average.
    pub correlation_to_average: f64,
}

impl ElectrodeMetrics {
    /// FEVE if FEV > [`FEV_THRESHOLD`], else `None`.
    pub fn reportable_feve(&self) -> Option<f64> {
        is_reliable(self.fev).then_some(self.feve)
    }
}

/// Computes all encoding metrics of one electrode. Needs at least 2 stimuli and 2 repeats.
pub fn electrode_metrics<T: Copy + Into<f64>>(
    trials: &TrialMatrix,
    prediction: &[T],
) -> Result<ElectrodeMetrics, MetricError> {
    let p = trials.check_prediction(prediction)?;
    trials.require_stimuli("electrode metrics")?;
    let noise = noise_variance(trials)?;
    let total = total_variance(trials)?;
    let sp = signal_power(trials)?;
    let means = trials.trial_means();
    Ok(ElectrodeMetrics {
        noise_variance: noise,
        total_variance: total,
        fev: fev_from(total, noise),
        feve: feve_from(trials, &p, total, noise),
        signal_power: sp,
        ccnorm: ccnorm_from(&means, &p, sp),
        correlation_to_average: pearson(&means, &p),
    })
}

/// Encoding metrics averaged over electrodes, with the FEV filter applied to FEVE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponseSummary {
    /// Number of electrodes summarised.
    pub n_electrodes: usize,
    /// Mean correlation to average over all electrodes.
    pub mean_correlation_to_average: f64,
    /// Mean FEV over all electrodes.
    pub mean_fev: f64,
    /// Electrodes with FEV > [`FEV_THRESHOLD`].
    pub n_reliable: usize,
    /// Mean FEVE over the reliable electrodes; `None` if there are none.
    pub mean_feve_reliable: Option<f64>,
    /// Electrodes with a defined CCnorm (positive signal power).
    pub n_ccnorm_defined: usize,
    /// Mean CCnorm over those electrodes; `None` if there are none.
    pub mean_ccnorm: Option<f64>,
}

/// Averages per-electrode metrics; FEVE only over electrodes with FEV > [`FEV_THRESHOLD`],
/// CCnorm only where it is defined.
pub fn summarize_electrodes(
    electrodes: &[ElectrodeMetrics],
) -> Result<ResponseSummary, MetricError> {
    if electrodes.is_empty() {
        return Err(MetricError::Empty {
            what: "electrode metrics to summarise",
        });
    }
    let mean_of = |v: Vec<f64>| (!v.is_empty()).then(|| mean(&v));
    let feves: Vec<f64> = electrodes
        .iter()
        .filter_map(|e| e.reportable_feve())
        .collect();
    let ccs: Vec<f64> = electrodes.iter().filter_map(|e| e.ccnorm).collect();
    let corr: Vec<f64> = electrodes
        .iter()
        .map(|e| e.correlation_to_average)
        .collect();
    let fevs: Vec<f64> = electrodes.iter().map(|e| e.fev).collect();
    Ok(ResponseSummary {
        n_electrodes: electrodes.len(),
        mean_correlation_to_average: mean(&corr),
        mean_fev: mean(&fevs),
        n_reliable: feves.len(),
        mean_feve_reliable: mean_of(feves),
        n_ccnorm_defined: ccs.len(),
        mean_ccnorm: mean_of(ccs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_r2_by_hand_and_its_limits() {
        // Var(means [2, 2, 6]) = 32/9; mean per-repeat variance (26/9 + 14/3) / 2 = 34/9;
        // SP = (2 * 32/9 - 34/9) / 1 = 30/9; max R² = 30/32.
        let t = TrialMatrix::from_rows(&[vec![1.0, 3.0], vec![2.0, 2.0], vec![5.0, 7.0]]).unwrap();
        assert!((max_r2(&t).unwrap().unwrap() - 30.0 / 32.0).abs() < 1e-12);
        // Identical repeats: everything is explainable.
        let clean = TrialMatrix::from_rows(&[vec![1.0, 1.0], vec![4.0, 4.0], vec![2.0, 2.0]]).unwrap();
        assert!((max_r2(&clean).unwrap().unwrap() - 1.0).abs() < 1e-12);
        // A trial mean that never changes has no ceiling to speak of.
        let flat = TrialMatrix::from_rows(&[vec![1.0, 3.0], vec![3.0, 1.0]]).unwrap();
        assert_eq!(max_r2(&flat).unwrap(), None);
        // The floor of the normalised correlation.
        assert!((normalised_correlation(0.3, 0.01, 0.1) - 0.3 / 0.1f64.sqrt()).abs() < 1e-12);
        assert!((normalised_correlation(0.3, 0.36, 0.1) - 0.5).abs() < 1e-12);
    }

    fn noisy_trials() -> TrialMatrix {
        TrialMatrix::from_rows(&[
            vec![1.0, 2.0, 3.0],
            vec![4.0, 6.0, 5.0],
            vec![8.0, 7.0, 9.0],
            vec![2.0, 2.0, 5.0],
        ])
        .unwrap()
    }

    #[test]
    fn construction_errors() {
        assert!(matches!(
            TrialMatrix::from_rows::<f64, Vec<f64>>(&[]),
            Err(MetricError::Empty { .. })
        ));
        assert!(matches!(
            TrialMatrix::from_rows(&[vec![1.0f32, 2.0], vec![3.0]]),
            Err(MetricError::RaggedTrials {
                row: 1,
                expected: 2,
                got: 1
            })
        ));
        assert!(matches!(
            TrialMatrix::from_flat(&[1.0, 2.0, 3.0], 2, 2),
            Err(MetricError::LengthMismatch {
                expected: 4,
                got: 3,
                ..
            })
        ));
        assert!(matches!(
            TrialMatrix::from_flat(&[1.0, f64::INFINITY], 1, 2),
            Err(MetricError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn metric_preconditions() {
        let one_repeat = TrialMatrix::from_flat(&[1.0, 2.0, 3.0], 3, 1).unwrap();
        assert!(matches!(
            noise_variance(&one_repeat),
            Err(MetricError::TooFewRepeats { got: 1, min: 2 })
        ));
        let one_stimulus = TrialMatrix::from_flat(&[1.0, 2.0], 1, 2).unwrap();
        assert!(matches!(
            ccnorm(&one_stimulus, &[1.0]),
            Err(MetricError::TooFewStimuli { .. })
        ));
        let t = noisy_trials();
        assert!(matches!(
            feve(&t, &[1.0, 2.0]),
            Err(MetricError::LengthMismatch {
                expected: 4,
                got: 2,
                ..
            })
        ));
        assert!(matches!(
            pearson_r::<f64>(&[], &[]),
            Err(MetricError::Empty { .. })
        ));
        assert!(matches!(
            pearson_r(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(MetricError::NonFinite { .. })
        ));
    }

    #[test]
    fn trial_mean_prediction_is_best_possible() {
        // Predicting the trial mean leaves only noise: correlation to average is 1, and
        // no other prediction has a smaller squared error, so any perturbation lowers FEVE.
        let t = noisy_trials();
        let means = t.trial_means();
        let best = electrode_metrics(&t, &means).unwrap();
        assert!((best.correlation_to_average - 1.0).abs() < 1e-12);
        let worse: Vec<f64> = means
            .iter()
            .enumerate()
            .map(|(i, m)| m + i as f64 * 0.3)
            .collect();
        assert!(feve(&t, &worse).unwrap() < best.feve);
    }

    #[test]
    fn constant_electrode_gives_finite_values() {
        let t = TrialMatrix::from_flat(&[2.0f32; 12], 4, 3).unwrap();
        let m = electrode_metrics(&t, &[1.0f32, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m.noise_variance, 0.0);
        assert_eq!(m.fev, 0.0);
        assert!(m.feve.is_finite());
        assert_eq!(m.ccnorm, None);
        assert_eq!(m.correlation_to_average, 0.0);
        assert_eq!(m.reportable_feve(), None);
    }

    #[test]
    fn summary_filters_unreliable_electrodes() {
        let good = electrode_metrics(&noisy_trials(), &noisy_trials().trial_means()).unwrap();
        let flat = TrialMatrix::from_flat(&[2.0; 8], 4, 2).unwrap();
        let bad = electrode_metrics(&flat, &[0.0, 1.0, 0.0, 1.0]).unwrap();
        let s = summarize_electrodes(&[good, bad]).unwrap();
        assert_eq!(s.n_electrodes, 2);
        assert_eq!(s.n_reliable, 1);
        assert_eq!(s.mean_feve_reliable, Some(good.feve));
        assert_eq!(s.n_ccnorm_defined, 1);
        assert!(summarize_electrodes(&[]).is_err());
    }
}
