//! From rates to what an electrode records in one trial: modulated-Poisson spikes of its
//! units, sub-threshold noise crossings, and a 48-sample snippet for every event.
//!
//! - Shared slow gain (Goris, Movshon & Simoncelli 2014): each electrode's spikes are
//!   Poisson with rate `r(t) * G(t)`, `G = exp(sigma z - sigma^2 / 2)` (mean 1, so the
//!   ground-truth rates stay the expected counts). `z` is a unit-variance mix of a global
//!   AR(1) process, a local field (AR(1) sources at every electrode position, smoothed
//!   with a Gaussian over the array: neighbours share more) and a private process; and a
//!   gain per file and electrode (each recording is its own session).
//! - Bursts and refractoriness: bursts start at `rate / mean burst size` and carry 1 +
//!   Poisson spikes 2–6 ms apart; no unit fires twice within its refractory period.
//! - Noise crossings: their rate follows the population's mean drive a little (untuned).
//! - Event times: on the 30 kHz grid, so every time is an exact multiple of 1/30000 s
//!   inside [0, nframes / 30).
//! - Snippets: the unit's template with a little amplitude jitter, or a noise crossing
//!   (a shallow dip just past threshold), plus band-limited background noise, rounded
//!   and clamped to int8.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::params::PopulationParams;
use super::population::Population;
use super::rng::{self, Domain};
use neural_data::pvc1::{ElectrodeEvents, FRAME_RATE_HZ, SAMPLE_RATE_HZ, SNIPPET_LEN};

/// Samples of the 30 kHz clock per 1/30 s frame.
pub const SAMPLES_PER_FRAME: u64 = (SAMPLE_RATE_HZ / FRAME_RATE_HZ) as u64;

/// Identifies one trial: which stimulus, which file (session), which repeat. Non-movie
/// conditions use `movie = u16::MAX` and their condition number as `segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrialKey {
    pub movie: u16,
    pub segment: u16,
    pub file: u16,
    pub trial: u16,
}

impl TrialKey {
    fn ids(&self, electrode: u16) -> [u64; 4] {
        [((self.movie as u64) << 16) | self.segment as u64, self.file as u64, self.trial as u64, electrode as u64]
    }
}

/// The slow gain of the listed electrodes (array indices) in every frame: [electrode][frame].
pub fn gain(pop: &Population, seed: u64, key: TrialKey, electrodes: &[usize], nframes: usize) -> Vec<Vec<f32>> {
    let p = &pop.params;
    let mut rng = rng::stream(seed, Domain::Events, key.ids(0));
    let phi = (-1.0 / (FRAME_RATE_HZ * p.gain_tau_s)).exp();
    let innov = (1.0 - phi * phi).sqrt();
    let n_el = pop.electrodes.len();
    let ar = |rng: &mut ChaCha8Rng| -> Vec<f64> {
        let mut x: f64 = rng.sample(StandardNormal);
        (0..nframes)
            .map(|_| {
                let v = x;
                x = phi * x + innov * rng.sample::<f64, _>(StandardNormal);
                v
            })
            .collect()
    };
    let global = ar(&mut rng);
    let local: Vec<Vec<f64>> = (0..n_el).map(|_| ar(&mut rng)).collect();
    let private: Vec<Vec<f64>> = (0..n_el).map(|_| ar(&mut rng)).collect();
    let total: f64 = p.gain_shares.iter().sum();
    let [wg, wl, wp] = p.gain_shares.map(|s| (s / total).sqrt());
    let sigma = p.gain_log_sd;
    let file_sd = p.file_gain_log_sd;
    let l2 = 2.0 * p.gain_local_length_mm * p.gain_local_length_mm;
    electrodes
        .iter()
        .map(|&e| {
            let pe = pop.electrodes[e].cortex_mm;
            let weights: Vec<(usize, f64)> = pop
                .electrodes
                .iter()
                .enumerate()
                .map(|(k, o)| {
                    let d2 = (o.cortex_mm[0] - pe[0]).powi(2) + (o.cortex_mm[1] - pe[1]).powi(2);
                    (k, (-d2 / l2).exp())
                })
                .filter(|(_, w)| *w > 1e-4)
                .collect();
            let norm = weights.iter().map(|(_, w)| w * w).sum::<f64>().sqrt().max(1e-12);
            // This file's gain of the electrode: the same for every trial of the file.
            let file_z = rng::normal(&mut rng::stream(seed, Domain::FileGain, [key.file as u64, pop.electrodes[e].id as u64, 0, 0]));
            let file_gain = (file_sd * file_z - 0.5 * file_sd * file_sd).exp();
            (0..nframes)
                .map(|t| {
                    let l: f64 = weights.iter().map(|(k, w)| w * local[*k][t]).sum::<f64>() / norm;
                    let z = wg * global[t] + wl * l + wp * private[e][t];
                    (file_gain * (sigma * z - 0.5 * sigma * sigma).exp()) as f32
                })
                .collect()
        })
        .collect()
}

/// The untuned drive of the noise crossings in every frame: 1 + depth * (m(t) / mean(m) - 1)
/// with m(t) the population's mean drive, floored at 0 (see
/// `PopulationParams::noise_crossing_drive`). All ones for a flat drive.
pub fn noise_drive(pop: &Population, drive: &[Vec<f32>]) -> Vec<f32> {
    let depth = pop.params.noise_crossing_drive as f32;
    let m: Vec<f32> = drive.iter().map(|row| row.iter().sum::<f32>() / row.len().max(1) as f32).collect();
    let mean = m.iter().sum::<f32>() / m.len().max(1) as f32;
    if mean <= 0.0 {
        return vec![1.0; m.len()];
    }
    m.iter().map(|v| (1.0 + depth * (v / mean - 1.0)).max(0.0)).collect()
}

/// Everything the listed electrodes record in one trial, in the order of `electrodes`
/// (ids 1..=100). `rates` are the units' rates [frame][unit] (spikes/s); `noise_drive`
/// scales the noise-crossing rate per frame (see [`noise_drive`]).
pub fn trial_events(pop: &Population, rates: &[Vec<f32>], noise_drive: &[f32], electrode_ids: &[u16], seed: u64, key: TrialKey) -> Vec<ElectrodeEvents> {
    let nframes = rates.len();
    let indices: Vec<usize> = electrode_ids.iter().map(|&id| (id as usize).saturating_sub(1).min(pop.electrodes.len() - 1)).collect();
    let gains = gain(pop, seed, key, &indices, nframes);
    indices
        .iter()
        .zip(&gains)
        .map(|(&ei, g)| electrode_events(pop, rates, g, noise_drive, ei, seed, key))
        .collect()
}

/// Spike times (samples) of one unit in one trial: bursts start as a Poisson process of
/// rate `rate * gain / burst_mean_spikes`; each burst is one spike plus a Poisson number
/// of further spikes (mean `burst_mean_spikes - 1`) `burst_isi_ms` apart; a spike closer
/// than `refractory_ms` to the previous one is not fired. The expected count stays the
/// rate (less the few spikes refractoriness removes). For mean burst size b this gives an
/// ISI CV of about sqrt(2b - 1) at a constant rate, and a Fano factor of b + 1 - 1/b
/// (geometric bursts would give 2b - 1: more count noise for the same burstiness).
fn unit_spike_samples(rng: &mut ChaCha8Rng, p: &PopulationParams, rate: impl Fn(usize) -> f64, nframes: usize, burst_mean: f64) -> Vec<u64> {
    let burst_mean = burst_mean.max(1.0);
    let ms = SAMPLE_RATE_HZ / 1000.0;
    let refractory = (p.refractory_ms * ms).round() as u64;
    let total = nframes as u64 * SAMPLES_PER_FRAME;
    let mut out = Vec::new();
    let mut last: Option<u64> = None;
    let mut starts = Vec::new();
    for t in 0..nframes {
        let lambda = rate(t) / FRAME_RATE_HZ / burst_mean;
        starts.clear();
        starts.extend((0..rng::poisson(rng, lambda)).map(|_| t as u64 * SAMPLES_PER_FRAME + rng.random_range(0..SAMPLES_PER_FRAME)));
        starts.sort_unstable();
        for &s0 in &starts {
            let mut s = s0;
            for k in 0..=rng::poisson(rng, burst_mean - 1.0) {
                if k > 0 {
                    s += (rng::uniform(rng, p.burst_isi_ms[0], p.burst_isi_ms[1]) * ms).round() as u64;
                }
                if s >= total {
                    break;
                }
                if last.is_none_or(|l| s >= l + refractory) {
                    out.push(s);
                    last = Some(s);
                }
            }
        }
    }
    out
}

fn electrode_events(pop: &Population, rates: &[Vec<f32>], gain: &[f32], noise_drive: &[f32], ei: usize, seed: u64, key: TrialKey) -> ElectrodeEvents {
    let p = &pop.params;
    let e = &pop.electrodes[ei];
    let mut rng = rng::stream(seed, Domain::Events, key.ids(e.id));
    let nframes = rates.len();
    let mut events: Vec<(u64, [i8; SNIPPET_LEN])> = Vec::new();
    for &u in &e.units {
        let unit = &pop.units[u];
        let samples = unit_spike_samples(&mut rng, p, |t| rates[t][u] as f64 * gain[t] as f64, nframes, unit.burst_mean_spikes);
        for sample in samples {
            let amp = 1.0 + p.spike_amplitude_jitter * rng.sample::<f64, _>(StandardNormal);
            let snippet = detect(&mut rng, p, |i| {
                // The template is aligned on its crossing; outside its 48 samples it is 0.
                let k = i - PAD as i64;
                if (0..SNIPPET_LEN as i64).contains(&k) { amp * unit.template[k as usize] } else { 0.0 }
            });
            events.push((sample, snippet));
        }
    }
    let mut noise_samples = Vec::new();
    for t in 0..nframes {
        let lambda = e.noise_crossing_hz * noise_drive.get(t).copied().unwrap_or(1.0) as f64 / FRAME_RATE_HZ;
        for _ in 0..rng::poisson(&mut rng, lambda) {
            noise_samples.push(t as u64 * SAMPLES_PER_FRAME + rng.random_range(0..SAMPLES_PER_FRAME));
        }
    }
    for sample in noise_samples {
        let depth = -p.threshold + p.noise_crossing_overshoot * rng.sample::<f64, _>(StandardNormal).abs();
        let width = rng::uniform(&mut rng, 1.0, 2.5);
        let lead = width * (2.0 * (depth / -p.threshold).max(1.0).ln()).sqrt();
        let t0 = p.crossing_sample as f64 + lead;
        let snippet = detect(&mut rng, p, |i| {
            let d = (i - PAD as i64) as f64 - t0;
            -depth * (-d * d / (2.0 * width * width)).exp()
        });
        events.push((sample, snippet));
    }
    // Stable: simultaneous events keep their generation order.
    events.sort_by_key(|(s, _)| *s);
    ElectrodeEvents {
        times: events.iter().map(|(s, _)| *s as f64 / SAMPLE_RATE_HZ).collect(),
        snippets: events.into_iter().map(|(_, w)| w).collect(),
    }
}

/// Samples recorded on each side of the 48-sample window, so that the detector can
/// re-align on where the noisy signal actually crosses.
const PAD: usize = 8;

/// What a threshold detector stores for one event: `shape(i)` (i = index into a buffer of
/// 48 + 2 PAD samples, the nominal crossing at PAD + crossing_sample) plus AR(1) background
/// noise, cut so that the first sample at or below threshold is `crossing_sample`, rounded
/// and clamped to int8. When the noise lifts a shallow event above threshold, the noise is
/// drawn again (a detector would not have fired on that one).
fn detect(rng: &mut ChaCha8Rng, p: &PopulationParams, shape: impl Fn(i64) -> f64) -> [i8; SNIPPET_LEN] {
    let (sd, corr) = (p.snippet_noise_sd, p.snippet_noise_corr);
    let innov = sd * (1.0 - corr * corr).sqrt();
    let len = SNIPPET_LEN + 2 * PAD;
    let mut buf = vec![0f64; len];
    let nominal = PAD + p.crossing_sample;
    for attempt in 0..16 {
        let mut x = sd * rng.sample::<f64, _>(StandardNormal);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = shape(i as i64) + x;
            x = corr * x + innov * rng.sample::<f64, _>(StandardNormal);
        }
        if attempt == 15 {
            // Practically unreachable; keep the event at its nominal alignment, crossing.
            buf[nominal] = buf[nominal].min(p.threshold);
        }
        let lo = p.crossing_sample.max(nominal.saturating_sub(PAD));
        let hi = (nominal + PAD).min(len - (SNIPPET_LEN - p.crossing_sample));
        if let Some(i) = (lo..=hi).find(|&i| buf[i].round() <= p.threshold) {
            let start = i - p.crossing_sample;
            let mut out = [0i8; SNIPPET_LEN];
            for (o, v) in out.iter_mut().zip(&buf[start..start + SNIPPET_LEN]) {
                *o = v.round().clamp(-128.0, 127.0) as i8;
            }
            return out;
        }
    }
    let mut out = [0i8; SNIPPET_LEN];
    for (o, v) in out.iter_mut().zip(&buf[PAD..PAD + SNIPPET_LEN]) {
        *o = v.round().clamp(-128.0, 127.0) as i8;
    }
    out
}
