//! Seeded random streams: every piece of the simulation draws from its own ChaCha stream,
//! keyed by the dataset seed and by what it is for (a domain tag plus up to four ids,
//! e.g. movie, segment, file, trial). Work can then be split across threads in any order
//! and the output stays byte-identical for a seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for. The discriminant is mixed into the seed, so streams
/// of different domains never coincide even when their ids do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Domain {
    /// Array, units, maps: one stream for the whole population.
    Population = 1,
    /// Content of one movie segment (dead-leaves scene, camera path, occluders).
    Stimulus = 2,
    /// Spikes, gain noise and noise crossings of one trial of one file.
    Events = 3,
    /// Which electrodes each file records, presentation order, inter-trial intervals.
    Session = 4,
    /// The movie used to calibrate each unit's peak firing rate.
    Calibration = 5,
    /// The per-file, per-electrode session gain.
    FileGain = 6,
}

/// SplitMix64 step: a cheap, well-mixed 64-bit permutation.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A ChaCha stream for (seed, domain, ids). The ids are mixed in one at a time so that
/// (1, 2) and (2, 1) give different streams.
pub fn stream(seed: u64, domain: Domain, ids: [u64; 4]) -> ChaCha8Rng {
    let mut h = splitmix64(seed ^ 0x5EED_5EED_5EED_5EED);
    h = splitmix64(h ^ domain as u64);
    for id in ids {
        h = splitmix64(h ^ id.wrapping_mul(0xA24B_AED4_963E_E407));
    }
    let mut key = [0u8; 32];
    let mut k = h;
    for chunk in key.chunks_exact_mut(8) {
        k = splitmix64(k);
        chunk.copy_from_slice(&k.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// The seed of array `index` of a multi-array population: array 0 keeps the dataset seed
/// (so a one-array population is the same for the same seed), the others get their own,
/// so that every stream of every array is distinct.
pub fn array_seed(seed: u64, index: usize) -> u64 {
    if index == 0 {
        seed
    } else {
        splitmix64(seed ^ splitmix64(0xA77A_0000_0000_0000 ^ index as u64))
    }
}

/// A standard normal deviate (Box–Muller on two uniforms; one of the pair is discarded,
/// which keeps the number of draws per call fixed and the streams easy to reason about).
pub fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Uniform in [lo, hi).
pub fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Log-uniform in [lo, hi): scale-free draws for sizes and rates.
pub fn log_uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp()
}

/// A Poisson count with mean `lambda` (>= 0). Knuth's product method for small means
/// (the common case: expected counts per 1/30 s bin are below ~5), a normal
/// approximation with continuity correction beyond 30 where it is accurate to well under
/// a percent.
pub fn poisson<R: Rng + ?Sized>(rng: &mut R, lambda: f64) -> u32 {
    if lambda <= 0.0 || !lambda.is_finite() {
        return 0;
    }
    if lambda < 30.0 {
        let limit = (-lambda).exp();
        let mut k = 0u32;
        let mut p = rng.random::<f64>();
        while p > limit {
            k += 1;
            p *= rng.random::<f64>();
        }
        k
    } else {
        let x = lambda + lambda.sqrt() * normal(rng) + 0.5;
        x.max(0.0).floor() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_domain_and_id_order() {
        let a: u64 = stream(7, Domain::Events, [1, 2, 0, 0]).random();
        let b: u64 = stream(7, Domain::Events, [2, 1, 0, 0]).random();
        let c: u64 = stream(7, Domain::Stimulus, [1, 2, 0, 0]).random();
        let d: u64 = stream(7, Domain::Events, [1, 2, 0, 0]).random();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, d);
    }

    #[test]
    fn poisson_mean_and_variance() {
        let mut rng = stream(1, Domain::Events, [0; 4]);
        for &lambda in &[0.3, 2.5, 45.0] {
            let n = 40_000;
            let xs: Vec<f64> = (0..n).map(|_| poisson(&mut rng, lambda) as f64).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            assert!((mean - lambda).abs() < 0.05 * lambda + 0.02, "mean {mean} for {lambda}");
            assert!((var / lambda - 1.0).abs() < 0.08, "var {var} for {lambda}");
        }
    }
}
