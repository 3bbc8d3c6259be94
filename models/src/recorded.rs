//! Recorded responses of held-out test segments with their true frames: what the
//! simulation-service replays in recorded mode, and its source of random dataset frames.

use std::path::Path;

use neural_data::cache::{Dataset, Split, SplitSamples};

use crate::data::matches_meta;
use crate::error::{ModelError, Result};
use crate::info::ModelInfo;
use crate::pipeline::GrayCrop;
use crate::projective::{rf_centres_in_crop, RfInCrop};

#[derive(Debug, Clone)]
pub struct RecordedFrame {
    /// Frame number within the segment.
    pub frame: u16,
    /// The true frame, cut and resized like the model's input.
    pub crop: GrayCrop,
    /// The recorded response (counts), lag-major like the wire payload.
    pub response: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct RecordedSegment {
    pub movie: u16,
    pub segment: u16,
    pub frames: Vec<RecordedFrame>,
}

/// The test segments of the dataset cache that fits a model.
#[derive(Debug, Clone)]
pub struct RecordedSet {
    pub segments: Vec<RecordedSegment>,
    /// Each channel's receptive field estimated when the cache was built, in crop pixels.
    pub receptive_fields: Vec<RfInCrop>,
}

impl RecordedSet {
    /// Finds, under `data_root/cache/`, the newest cache built with the model's channels,
    /// lags and crop size, and keeps its test split.
    /// Only the test split is read from the file (see [`Dataset::load_split`]).
    pub fn load(data_root: &Path, info: &ModelInfo) -> Result<Self> {
        let path = find_cache(data_root, info)?;
        let samples = Dataset::load_split(&path, Split::Test)
            .map_err(|e| ModelError::Invalid(format!("{e}; rebuild it with `v1 build --data {}`", data_root.display())))?;
        Ok(Self::from_samples(&samples))
    }

    /// The segments of samples read with [`Dataset::load_split`].
    pub fn from_samples(samples: &SplitSamples) -> Self {
        let s = samples.meta.image_size;
        let r = samples.meta.lags.len() * samples.meta.channels.len();
        let rows = samples.index.iter().zip(samples.crops.chunks_exact(s * s)).zip(samples.responses.chunks_exact(r.max(1)));
        let rows = rows.map(|((&[movie, segment, frame], crop), response)| {
            (movie, segment, RecordedFrame { frame, crop: GrayCrop::from_u8(s, crop), response: response.to_vec() })
        });
        Self::from_rows(rows, rf_centres_in_crop(&samples.meta))
    }

    pub fn from_dataset(ds: &Dataset, split: Split) -> Self {
        let s = ds.meta.image_size;
        let rows = ds.indices(split).into_iter().map(|i| {
            let [movie, segment, frame] = ds.index[i];
            (movie, segment, RecordedFrame { frame, crop: GrayCrop::from_u8(s, ds.crop(i)), response: ds.response(i).to_vec() })
        });
        Self::from_rows(rows, rf_centres_in_crop(&ds.meta))
    }

    /// Groups frames into segments, in order.
    fn from_rows(rows: impl Iterator<Item = (u16, u16, RecordedFrame)>, receptive_fields: Vec<RfInCrop>) -> Self {
        let mut segments: Vec<RecordedSegment> = Vec::new();
        for (movie, segment, f) in rows {
            match segments.last_mut() {
                Some(last) if last.movie == movie && last.segment == segment => last.frames.push(f),
                _ => segments.push(RecordedSegment { movie, segment, frames: vec![f] }),
            }
        }
        Self { segments, receptive_fields }
    }

    pub fn n_frames(&self) -> usize {
        self.segments.iter().map(|s| s.frames.len()).sum()
    }
}

/// The newest cache under `data_root/cache/` that fits `info` (judged by each file's
/// header alone).
pub fn find_cache(data_root: &Path, info: &ModelInfo) -> Result<std::path::PathBuf> {
    let dir = data_root.join("cache");
    let entries = std::fs::read_dir(&dir).map_err(|e| ModelError::Invalid(format!(
        "{}: {e}. Build the dataset cache with `v1 build --data {}` (or train once)",
        dir.display(),
        data_root.display()
    )))?;
    let mut candidates: Vec<(std::time::SystemTime, std::path::PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (_, p) in candidates {
        if Dataset::read_meta(&p).is_ok_and(|meta| matches_meta(info, &meta)) {
            return Ok(p);
        }
    }
    Err(ModelError::Invalid(format!(
        "no dataset cache in {} fits this model ({} channels, lags {:?}, {} px crops); build it with `v1 build --data {}` using the model's config.toml",
        dir.display(),
        info.n_channels(),
        info.lags,
        info.image_size,
        data_root.display()
    )))
}

/// The file in a data root that a command preparing it (`v1 simulate`, `v1 build`) keeps
/// rewriting while it works, so that a simulation-service already running on that root
/// can say how far along Recorded mode is. The dataset and its cache are themselves
/// moved into place only when whole, so this file is never needed to tell a finished
/// cache from a half-written one.
pub const PREPARATION_FILE: &str = ".preparing.json";

/// A preparation file not rewritten for this long was left by a command that stopped
/// (killed, or a `v1 simulate` that no `v1 build` followed).
pub const PREPARATION_STALE: std::time::Duration = std::time::Duration::from_secs(60);

/// The content of [`PREPARATION_FILE`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Preparation {
    /// The step running, in words.
    pub phase: String,
    /// Of that step, 0–100.
    pub percent: u8,
    /// When the file was written, in seconds since the Unix epoch.
    pub updated_unix: u64,
}

impl Preparation {
    pub fn new(phase: &str, percent: u8) -> Self {
        Self { phase: phase.to_owned(), percent: percent.min(100), updated_unix: unix_now() }
    }

    /// The preparation file of `data_root`, when there is a readable one.
    pub fn read(data_root: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(data_root.join(PREPARATION_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether the command that wrote it was still at work lately.
    pub fn is_fresh(&self) -> bool {
        unix_now().saturating_sub(self.updated_unix) < PREPARATION_STALE.as_secs()
    }

    /// Writes the file atomically (a reader never sees half of it), creating the data root
    /// when it does not exist yet.
    pub fn write(&self, data_root: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(data_root)?;
        let tmp = data_root.join(format!("{PREPARATION_FILE}.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, data_root.join(PREPARATION_FILE))
    }

    /// Removes the file (nothing to do when it is not there).
    pub fn remove(data_root: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(data_root.join(PREPARATION_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod preparation_tests {
    use super::*;

    #[test]
    fn a_written_preparation_reads_back_and_is_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("not-yet-there");
        assert_eq!(Preparation::read(&root), None);
        let p = Preparation::new("simulating the dataset", 142);
        p.write(&root).unwrap();
        let back = Preparation::read(&root).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.percent, 100);
        assert!(back.is_fresh());
        Preparation::remove(&root).unwrap();
        Preparation::remove(&root).unwrap();
        assert_eq!(Preparation::read(&root), None);
    }

    #[test]
    fn an_old_preparation_is_stale() {
        let p = Preparation { updated_unix: unix_now() - PREPARATION_STALE.as_secs() - 1, ..Preparation::new("x", 5) };
        assert!(!p.is_fresh());
    }
}
