//! Single trials: a response drawn as one Poisson sample per predicted mean count (the
//! spike count of one bin of one trial, given the model's rate), for `trial: "single"`.
//!
//! Each session has its own generator, seeded from the operating system the first time
//! the session asks for a single trial, so that the trials of one session form one
//! stream of draws and sessions never share noise; it is forgotten with the session's
//! last browser connection.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::SeedableRng;
use shared_protocol::SessionId;

/// The per-session generators of single trials.
#[derive(Debug, Default)]
pub struct Trials {
    rngs: Mutex<HashMap<SessionId, StdRng>>,
}

impl Trials {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, StdRng>> {
        // A generator is always in a usable state, so a poisoned lock is still good.
        self.rngs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One trial of `means` (predicted mean counts) from `session`'s generator.
    pub fn sample(&self, session: &SessionId, means: &[f32]) -> Vec<f32> {
        let mut rngs = self.lock();
        let rng = rngs.entry(session.clone()).or_insert_with(|| StdRng::from_rng(&mut rand::rng()));
        models::waveform_decoder::poisson_counts(means, rng)
    }

    /// Forgets the generators of `sessions`.
    pub fn forget<'a>(&self, sessions: impl IntoIterator<Item = &'a SessionId>) {
        let mut rngs = self.lock();
        for s in sessions {
            rngs.remove(s);
        }
    }

    /// Sessions with a generator.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_whole_counts_with_the_predicted_means() {
        let trials = Trials::default();
        let session = SessionId::parse("s1").unwrap();
        let means = vec![0.0, 0.3, 2.5, 12.0, -1.0, f32::NAN];
        let n = 4000;
        let mut sums = vec![0.0f64; means.len()];
        for _ in 0..n {
            let draw = trials.sample(&session, &means);
            for (s, v) in sums.iter_mut().zip(&draw) {
                assert!(*v >= 0.0 && v.fract() == 0.0, "{v}");
                *s += f64::from(*v);
            }
        }
        for (i, mean) in [0.0, 0.3, 2.5, 12.0, 0.0, 0.0].into_iter().enumerate() {
            let got = sums[i] / f64::from(n);
            // Within 5 standard errors of the mean.
            let tolerance = 5.0 * (mean / f64::from(n)).sqrt() + 1e-9;
            assert!((got - mean).abs() <= tolerance, "channel {i}: mean {got}, expected {mean}");
        }
        assert_eq!(trials.len(), 1);
        trials.forget([&session]);
        assert!(trials.is_empty());
    }
}
