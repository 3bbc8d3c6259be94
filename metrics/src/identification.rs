//! 2-way identification: can a reconstruction be told apart from the other test images?
//!
//! For each reconstruction j, every other target i != j is compared with j's own target:
//! the reconstruction "wins" against i when it is more similar to its own target than to
//! target i. The score of reconstruction j is the fraction of the n - 1 comparisons it
//! wins; the reported value is the mean over reconstructions. Chance is 0.5, perfect
//! identification 1.
//!
//! Ties: a comparison where `similarity(target_i, recon_j)` equals
//! `similarity(target_j, recon_j)` counts as half a win. A reconstruction that carries no
//! information (e.g. a constant image, which correlates 0 with every target) therefore
//! scores exactly chance instead of 0 or 1. Without ties this is the rule of the reference
//! vectors ("fraction of other targets i != j with corr(target_i, recon_j) <
//! corr(target_j, recon_j)").

use crate::image::GrayImageF32;
use crate::stats::DENOMINATOR_EPSILON;
use crate::MetricError;

/// Result of 2-way identification.
#[derive(Debug, Clone, PartialEq)]
pub struct Identification {
    /// Score of each reconstruction (fraction of other targets it is told apart from),
    /// in input order.
    pub per_reconstruction: Vec<f64>,
    /// Mean of `per_reconstruction`: the 2-way identification accuracy (chance 0.5).
    pub mean: f64,
}

/// 2-way identification with any similarity (larger = more alike), e.g. the correlation
/// of pixels or of network features. `similarity(target, reconstruction)` is called once
/// for every (target, reconstruction) pair, n^2 calls in all.
pub fn two_way_identification<T, R, F>(
    targets: &[T],
    reconstructions: &[R],
    mut similarity: F,
) -> Result<Identification, MetricError>
where
    F: FnMut(&T, &R) -> f64,
{
    if targets.len() != reconstructions.len() {
        return Err(MetricError::LengthMismatch {
            what: "reconstructions vs targets",
            expected: targets.len(),
            got: reconstructions.len(),
        });
    }
    let n = targets.len();
    if n < 2 {
        return Err(MetricError::TooFewForIdentification { got: n });
    }
    // sim[i * n + j] = similarity(target i, reconstruction j)
    let mut sim = Vec::with_capacity(n * n);
    for (i, t) in targets.iter().enumerate() {
        for (j, r) in reconstructions.iter().enumerate() {
            let value = similarity(t, r);
            if !value.is_finite() {
                return Err(MetricError::NonFiniteSimilarity {
                    target: i,
                    reconstruction: j,
                    value,
                });
            }
            sim.push(value);
        }
    }
    let per_reconstruction: Vec<f64> = (0..n)
        .map(|j| {
            let own = sim[j * n + j];
            let wins: f64 = (0..n)
                .filter(|&i| i != j)
                .map(|i| {
                    let other = sim[i * n + j];
                    if other < own {
                        1.0
                    } else if other == own {
                        0.5
                    } else {
                        0.0
                    }
                })
                .sum();
            wins / (n - 1) as f64
        })
        .collect();
    let mean = per_reconstruction.iter().sum::<f64>() / n as f64;
    Ok(Identification {
        per_reconstruction,
        mean,
    })
}

/// An image reduced to what Pearson correlation needs: centred pixels and their norm.
struct Centred {
    values: Vec<f64>,
    norm: f64,
}

impl Centred {
    fn new(img: &GrayImageF32) -> Self {
        let n = img.pixels().len() as f64;
        let m = img.pixels().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let values: Vec<f64> = img.pixels().iter().map(|&v| f64::from(v) - m).collect();
        let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        Self { values, norm }
    }

    /// Pearson r, with the same epsilon clipping as [`crate::image::pixcorr`].
    fn corr(&self, other: &Self) -> f64 {
        let dot: f64 = self
            .values
            .iter()
            .zip(&other.values)
            .map(|(a, b)| a * b)
            .sum();
        dot / (self.norm * other.norm).max(DENOMINATOR_EPSILON)
    }
}

/// 2-way identification by pixel correlation (the protocol's default). All images, targets
/// and reconstructions alike, must have the same size.
pub fn two_way_identification_pixcorr(
    targets: &[GrayImageF32],
    reconstructions: &[GrayImageF32],
) -> Result<Identification, MetricError> {
    let Some(first) = targets.first() else {
        return Err(MetricError::TooFewForIdentification { got: 0 });
    };
    let size = first.size();
    let all = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("target {i}"), t))
        .chain(
            reconstructions
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("reconstruction {i}"), r)),
        );
    for (name, img) in all {
        if img.size() != size {
            return Err(MetricError::SizeMismatch {
                what: format!("2-way identification, {name} vs target 0"),
                expected: size,
                got: img.size(),
            });
        }
    }
    let t: Vec<Centred> = targets.iter().map(Centred::new).collect();
    let r: Vec<Centred> = reconstructions.iter().map(Centred::new).collect();
    two_way_identification(&t, &r, |a, b| a.corr(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_count_half() {
        // Every similarity equal: every comparison is a tie, so the score is chance.
        let id = two_way_identification(&[0, 1, 2], &[0, 1, 2], |_, _| 0.3).unwrap();
        assert_eq!(id.per_reconstruction, vec![0.5; 3]);
        assert_eq!(id.mean, 0.5);
    }

    #[test]
    fn perfect_and_worst_case() {
        let t = [0.0, 1.0, 2.0, 3.0];
        let same = |a: &f64, b: &f64| -(a - b).abs();
        assert_eq!(two_way_identification(&t, &t, same).unwrap().mean, 1.0);
        // Reconstruction j looks most unlike its own target: every comparison is lost.
        let far = |a: &f64, b: &f64| (a - b).abs();
        assert_eq!(two_way_identification(&t, &t, far).unwrap().mean, 0.0);
    }

    #[test]
    fn errors_for_bad_input() {
        assert!(matches!(
            two_way_identification(&[1], &[1], |_, _| 1.0),
            Err(MetricError::TooFewForIdentification { got: 1 })
        ));
        assert!(matches!(
            two_way_identification(&[1, 2], &[1], |_, _| 1.0),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(matches!(
            two_way_identification(&[1, 2], &[1, 2], |a, b| if a == b { f64::NAN } else { 0.0 }),
            Err(MetricError::NonFiniteSimilarity {
                target: 0,
                reconstruction: 0,
                ..
            })
        ));
        let a = GrayImageF32::new(2, 2, vec![0.0, 1.0, 0.5, 0.2]).unwrap();
        let b = GrayImageF32::new(4, 1, vec![0.0, 1.0, 0.5, 0.2]).unwrap();
        assert!(matches!(
            two_way_identification_pixcorr(&[a.clone(), a.clone()], &[a, b]),
            Err(MetricError::SizeMismatch { .. })
        ));
    }
}
