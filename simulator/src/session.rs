//! The recording sessions: which files exist, which electrodes each records, which
//! conditions it holds, and when each trial was shown.
//!
//! Like the real data set: several single-trial files (noRepeats = 1) whose electrode
//! lists partition the array, each holding every movie segment plus one non-movie
//! `rseed` condition; and one repeat file (noRepeats = 10 by default) over a subset of
//! electrodes and of segments. Every file is its own session with its own clock: trials
//! are shown in a random order (blocks of one repeat each in the repeat file), `tzero`
//! increases through the session and `timeTag` is the 0-based trial number.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::population::{shuffle, Population};
use super::rng::{self, Domain};
use super::spikes::TrialKey;
use neural_data::pvc1::FRAME_RATE_HZ;

/// Sub-folder of `neurodata/` for all files, as in pvc-1.
pub const SUBDIR: &str = "ac1";
/// Symbols of the non-movie condition every file carries.
pub const RSEED_SYMBOLS: [&str; 2] = ["rseed", "contrast"];

/// One presentation: which condition (index into `FilePlan::conditions`), which repeat of
/// it, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialPlan {
    pub condition: usize,
    pub repeat: usize,
    pub tzero: f64,
    pub time_tag: u32,
}

/// A condition of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlannedCondition {
    Movie { movie: u16, segment: u16 },
    /// The non-movie `rseed` condition (spontaneous activity only), with its seed value.
    Rseed { value: u32 },
}

/// One `.mat` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilePlan {
    /// Position in `SessionPlan::files`; part of every trial's random stream key.
    pub index: u16,
    pub name: String,
    /// Electrode ids, ascending.
    pub electrodes: Vec<u16>,
    pub repeats: usize,
    /// `rseed` first, then the movie segments in (movie, segment) order.
    pub conditions: Vec<PlannedCondition>,
    /// Presentation order.
    pub trials: Vec<TrialPlan>,
}

impl FilePlan {
    pub fn records_segment(&self, movie: u16, segment: u16) -> bool {
        self.conditions.contains(&PlannedCondition::Movie { movie, segment })
    }

    /// Stream key of one trial.
    pub fn key(&self, condition: PlannedCondition, repeat: usize) -> TrialKey {
        let (movie, segment) = match condition {
            PlannedCondition::Movie { movie, segment } => (movie, segment),
            PlannedCondition::Rseed { .. } => (u16::MAX, 0),
        };
        TrialKey { movie, segment, file: self.index, trial: repeat as u16 }
    }
}

/// All files of the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionPlan {
    /// The `neurodata/` sub-folder the files are written to (and their name prefix).
    pub subdir: String,
    pub files: Vec<FilePlan>,
}

/// What the plan needs from the configuration.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub movies: u16,
    pub segments: u16,
    pub frames_per_segment: usize,
    pub single_trial_files: usize,
    pub repeat_electrodes: usize,
    pub repeats: usize,
    pub repeat_movies: u16,
    pub repeat_segments: u16,
}

/// Draws the session plan for a seed.
pub fn plan(seed: u64, pop: &Population, spec: &PlanSpec, subdir: &str) -> SessionPlan {
    let mut rng = rng::stream(seed, Domain::Session, [0; 4]);
    let n_el = pop.electrodes.len();
    let all_segments: Vec<(u16, u16)> = (0..spec.movies).flat_map(|m| (0..spec.segments).map(move |s| (m, s))).collect();
    let duration = spec.frames_per_segment as f64 / FRAME_RATE_HZ;

    // Single-trial files: a random partition of all electrodes, sizes near-equal.
    let mut ids: Vec<u16> = (1..=n_el as u16).collect();
    shuffle(&mut rng, &mut ids);
    let sizes = partition_sizes(&mut rng, n_el, spec.single_trial_files);
    let mut files = Vec::new();
    let mut start = 0;
    for (fi, &size) in sizes.iter().enumerate() {
        let mut electrodes = ids[start..start + size].to_vec();
        electrodes.sort_unstable();
        start += size;
        let conditions = with_rseed(&mut rng, &all_segments);
        let trials = schedule(&mut rng, conditions.len(), 1, duration);
        files.push(FilePlan { index: fi as u16, name: format!("{subdir}_u{:03}_000", 4 + fi), electrodes, repeats: 1, conditions, trials });
    }

    // The repeat file: mostly good electrodes (75%), the rest noise-only, as a subset of
    // the same array.
    if spec.repeats > 0 && spec.repeat_electrodes > 0 {
        let mut good: Vec<u16> = pop.electrodes.iter().filter(|e| e.good).map(|e| e.id).collect();
        let mut bad: Vec<u16> = pop.electrodes.iter().filter(|e| !e.good).map(|e| e.id).collect();
        shuffle(&mut rng, &mut good);
        shuffle(&mut rng, &mut bad);
        let n = spec.repeat_electrodes.min(n_el);
        let n_good = ((0.75 * n as f64).ceil() as usize).min(good.len());
        let n_bad = (n - n_good).min(bad.len());
        let mut electrodes: Vec<u16> = good[..n_good].iter().chain(&bad[..n_bad]).copied().collect();
        // Top up from the good list if there were not enough noise-only electrodes.
        electrodes.extend(good[n_good..].iter().take(n - electrodes.len()));
        electrodes.sort_unstable();
        let segments: Vec<(u16, u16)> = all_segments
            .iter()
            .copied()
            .filter(|&(m, s)| m < spec.repeat_movies && s < spec.repeat_segments)
            .collect();
        let conditions = with_rseed(&mut rng, &segments);
        let trials = schedule(&mut rng, conditions.len(), spec.repeats, duration);
        let fi = files.len();
        files.push(FilePlan {
            index: fi as u16,
            name: format!("{subdir}_u{:03}_000", 4 + fi),
            electrodes,
            repeats: spec.repeats,
            conditions,
            trials,
        });
    }
    SessionPlan { subdir: subdir.to_string(), files }
}

fn with_rseed<R: Rng>(rng: &mut R, segments: &[(u16, u16)]) -> Vec<PlannedCondition> {
    let mut c = vec![PlannedCondition::Rseed { value: rng.random_range(1..100_000) }];
    c.extend(segments.iter().map(|&(movie, segment)| PlannedCondition::Movie { movie, segment }));
    c
}

/// Near-equal sizes (+-30% jitter) summing to `total`, each within [5, 33] when possible.
fn partition_sizes<R: Rng>(rng: &mut R, total: usize, parts: usize) -> Vec<usize> {
    let parts = parts.max(1);
    let weights: Vec<f64> = (0..parts).map(|_| rng::uniform(rng, 0.7, 1.3)).collect();
    let wsum: f64 = weights.iter().sum();
    let (lo, hi) = (5usize.min(total / parts), 33usize.max(total.div_ceil(parts)));
    let mut sizes: Vec<usize> = weights.iter().map(|w| ((total as f64 * w / wsum).round() as usize).clamp(lo, hi)).collect();
    // Fix the sum one electrode at a time, never leaving [lo, hi].
    let mut i = 0;
    while sizes.iter().sum::<usize>() != total {
        let k = i % parts;
        let sum: usize = sizes.iter().sum();
        if sum > total && sizes[k] > lo {
            sizes[k] -= 1;
        } else if sum < total && sizes[k] < hi {
            sizes[k] += 1;
        }
        i += 1;
    }
    sizes
}

/// Presentation order and times: `repeats` blocks, each a random permutation of all
/// conditions; inter-trial intervals of 0.5–1.5 s; the session clock starts 5–30 s before
/// the first trial.
fn schedule<R: Rng>(rng: &mut R, n_conditions: usize, repeats: usize, duration: f64) -> Vec<TrialPlan> {
    let mut t = rng::uniform(rng, 5.0, 30.0);
    let mut trials = Vec::with_capacity(n_conditions * repeats);
    for r in 0..repeats {
        let mut order: Vec<usize> = (0..n_conditions).collect();
        shuffle(rng, &mut order);
        for c in order {
            trials.push(TrialPlan { condition: c, repeat: r, tzero: (t * 1000.0).round() / 1000.0, time_tag: trials.len() as u32 });
            t += duration + rng::uniform(rng, 0.5, 1.5);
        }
    }
    trials
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_sum_and_stay_in_range() {
        let mut rng = rng::stream(1, Domain::Session, [9; 4]);
        for parts in [4, 5, 7, 20] {
            let s = partition_sizes(&mut rng, 100, parts);
            assert_eq!(s.iter().sum::<usize>(), 100);
            assert!(s.iter().all(|&n| (5..=33).contains(&n)), "{s:?}");
        }
    }
}
