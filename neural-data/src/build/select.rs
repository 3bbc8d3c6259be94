//! Steps 1 to 3 of the build: which recording files give the channels, which movie
//! segments are used, and which split each segment belongs to.

use std::collections::BTreeSet;

use crate::cache::{Channel, Split};
use crate::error::DataError;
use crate::pvc1::Recording;

use super::{movie_conditions, BuildConfig, SegmentSource, TreeInput};

/// The recording files of a tree, sorted by their use.
pub(super) struct Files<'a> {
    /// Single-trial files (noRepeats = 1) with movie conditions and electrodes: one channel
    /// per electrode of each.
    pub(super) single: Vec<&'a Recording>,
    /// Files with repeated movie conditions (noRepeats > 1): the noise ceiling.
    pub(super) repeat: Vec<&'a Recording>,
    /// The channels, in the order of `single` and their electrodes.
    pub(super) channels: Vec<Channel>,
}

fn is_repeat_file(rec: &Recording) -> bool {
    movie_conditions(rec).any(|(_, _, c)| c.repeats.len() > 1)
}

/// Step 1: channels from single-trial files; repeat files kept aside. Files without movie
/// conditions or electrodes are skipped with a warning.
pub(super) fn files<'a>(input: &'a TreeInput, warnings: &mut Vec<String>) -> Result<Files<'a>, DataError> {
    let (repeat_files, single_files): (Vec<&Recording>, Vec<&Recording>) =
        input.recordings.iter().partition(|r| is_repeat_file(r));
    let single_files: Vec<&Recording> = single_files
        .into_iter()
        .filter(|r| {
            let ok = movie_conditions(r).next().is_some() && !r.electrodes.is_empty();
            if !ok {
                warnings.push(format!("{}: no movie conditions or no electrodes; skipped", r.name));
            }
            ok
        })
        .collect();
    if single_files.is_empty() {
        return Err(DataError::Empty {
            stage: "reading the recordings",
            detail: "no single-trial recording file with movie conditions was found under neurodata/".into(),
        });
    }
    let mut channels = Vec::new();
    for r in &single_files {
        for &e in &r.electrodes {
            channels.push(Channel { file: r.name.clone(), subdir: r.subdir.clone(), electrode: e });
        }
    }
    Ok(Files { single: single_files, repeat: repeat_files, channels })
}

/// Step 2: the segments covered by frames and by every single-trial file; the others are
/// skipped with a warning.
pub(super) fn segments<'a>(
    input: &'a TreeInput,
    single_files: &[&Recording],
    warnings: &mut Vec<String>,
) -> Result<Vec<&'a SegmentSource>, DataError> {
    let mut covered: Option<BTreeSet<(u16, u16)>> = None;
    for r in single_files {
        let s: BTreeSet<(u16, u16)> = movie_conditions(r).map(|(m, s, _)| (m, s)).collect();
        covered = Some(match covered {
            None => s,
            Some(c) => c.intersection(&s).copied().collect(),
        });
    }
    let covered = covered.unwrap_or_default();
    let segments: Vec<&SegmentSource> = input
        .segments
        .iter()
        .filter(|s| {
            let ok = covered.contains(&(s.movie, s.segment));
            if !ok {
                warnings.push(format!(
                    "movie {} segment {}: not recorded by every single-trial file; skipped",
                    s.movie, s.segment
                ));
            }
            ok
        })
        .collect();
    if segments.is_empty() {
        return Err(DataError::Empty {
            stage: "matching frames to recordings",
            detail: "no movie segment has both frames and responses in every single-trial file".into(),
        });
    }
    Ok(segments)
}

/// Step 3: the split of every segment, by whole (movie, segment). The repeated segments (or
/// `test_segments`) are the test split; a seeded hash of (movie, segment) picks validation;
/// the rest trains.
pub(super) struct Splits {
    pub(super) test_set: BTreeSet<(u16, u16)>,
    seed: u64,
    validation_fraction: f64,
}

impl Splits {
    pub(super) fn new(cfg: &BuildConfig, repeat_files: &[&Recording], segments: &[&SegmentSource]) -> Self {
        let repeated: BTreeSet<(u16, u16)> = repeat_files
            .iter()
            .flat_map(|r| movie_conditions(r).filter(|(_, _, c)| c.repeats.len() > 1).map(|(m, s, _)| (m, s)))
            .collect();
        let test_set: BTreeSet<(u16, u16)> = match &cfg.test_segments {
            Some(list) => list.iter().map(|[m, s]| (*m, *s)).collect(),
            None if !repeated.is_empty() => repeated.clone(),
            None => segments
                .iter()
                .filter(|s| hash_unit(cfg.split_seed ^ 0xA5A5, s.movie, s.segment) < cfg.test_fraction)
                .map(|s| (s.movie, s.segment))
                .collect(),
        };
        Splits { test_set, seed: cfg.split_seed, validation_fraction: cfg.validation_fraction }
    }

    /// The split of segment `s` of movie `m`.
    pub(super) fn of(&self, m: u16, s: u16) -> Split {
        if self.test_set.contains(&(m, s)) {
            Split::Test
        } else if hash_unit(self.seed, m, s) < self.validation_fraction {
            Split::Validation
        } else {
            Split::Train
        }
    }
}

fn hash_unit(seed: u64, movie: u16, segment: u16) -> f64 {
    // SplitMix64 of (seed, movie, segment): a stable, well-mixed value in [0,1).
    let mut z = seed ^ ((movie as u64) << 32) ^ (segment as u64) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}
