//! Small f64 statistics shared by the image and response metrics.
//!
//! Everything is accumulated in f64 whatever the input type, so that results agree with
//! numpy's float64 reference values to about 1e-12 rather than to f32 precision.

use crate::MetricError;

/// Smallest value a metric denominator is allowed to take.
///
/// The evaluation protocol clips denominators (variances, signal power) at a small
/// epsilon so that a constant prediction or a noise-free electrode yields a finite
/// number (usually 0) instead of NaN. It is far below the variance of any real response
/// or image, so it only changes degenerate cases.
pub const DENOMINATOR_EPSILON: f64 = 1e-12;

/// Copies `values` into f64 and rejects NaN and infinities.
pub(crate) fn to_finite_f64<T: Copy + Into<f64>>(
    values: &[T],
    what: &'static str,
) -> Result<Vec<f64>, MetricError> {
    values
        .iter()
        .enumerate()
        .map(|(index, &v)| {
            let value: f64 = v.into();
            if value.is_finite() {
                Ok(value)
            } else {
                Err(MetricError::NonFinite { what, index, value })
            }
        })
        .collect()
}

/// Arithmetic mean; the caller guarantees a non-empty slice.
pub(crate) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Variance with `ddof` degrees of freedom removed (numpy's `var(ddof=...)`).
///
/// The caller guarantees `values.len() > ddof`.
pub(crate) fn variance(values: &[f64], ddof: usize) -> f64 {
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    ss / (values.len() - ddof) as f64
}

/// Population (ddof 0) covariance of two equally long, non-empty slices.
pub(crate) fn covariance(x: &[f64], y: &[f64]) -> f64 {
    let mx = mean(x);
    let my = mean(y);
    let s: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    s / x.len() as f64
}

/// Pearson correlation of two equally long, non-empty slices.
///
/// The denominator is clipped at [`DENOMINATOR_EPSILON`], so a constant input gives 0
/// (no linear relation can be read from it) instead of NaN.
pub(crate) fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let mx = mean(x);
    let my = mean(y);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let dx = a - mx;
        let dy = b - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    sxy / (sxx * syy).sqrt().max(DENOMINATOR_EPSILON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_matches_hand_computation() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((variance(&v, 0) - 1.25).abs() < 1e-15);
        assert!((variance(&v, 1) - 5.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn pearson_of_constant_is_zero_not_nan() {
        let r = pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]);
        assert_eq!(r, 0.0);
    }

    #[test]
    fn non_finite_values_are_reported_with_their_index() {
        let err = to_finite_f64(&[1.0f32, f32::NAN], "x").unwrap_err();
        assert!(matches!(
            err,
            MetricError::NonFinite {
                what: "x",
                index: 1,
                ..
            }
        ));
    }
}
