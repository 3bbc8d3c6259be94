//! Recorded responses of held-out test segments with their true frames: what the
//! simulation-service replays in recorded mode, and its source of random dataset frames.

use std::path::Path;

use neural_data::cache::{Dataset, Split};

use crate::data::matches;
use crate::error::{ModelError, Result};
use crate::info::ModelInfo;
use crate::pipeline::GrayCrop;

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
}

impl RecordedSet {
    /// Finds, under `data_root/cache/`, the newest cache built with the model's channels,
    /// lags and crop size, and keeps its test split.
    pub fn load(data_root: &Path, info: &ModelInfo) -> Result<Self> {
        let ds = find_cache(data_root, info)?;
        Ok(Self::from_dataset(&ds, Split::Test))
    }

    pub fn from_dataset(ds: &Dataset, split: Split) -> Self {
        let s = ds.meta.image_size;
        let mut segments: Vec<RecordedSegment> = Vec::new();
        for i in ds.indices(split) {
            let [movie, segment, frame] = ds.index[i];
            let f = RecordedFrame { frame, crop: GrayCrop::from_u8(s, ds.crop(i)), response: ds.response(i).to_vec() };
            match segments.last_mut() {
                Some(last) if last.movie == movie && last.segment == segment => last.frames.push(f),
                _ => segments.push(RecordedSegment { movie, segment, frames: vec![f] }),
            }
        }
        Self { segments }
    }

    pub fn n_frames(&self) -> usize {
        self.segments.iter().map(|s| s.frames.len()).sum()
    }
}

/// The newest cache under `data_root/cache/` that fits `info`.
pub fn find_cache(data_root: &Path, info: &ModelInfo) -> Result<Dataset> {
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
    for (_, p) in &candidates {
        if let Ok(ds) = Dataset::load(p) {
            if matches(info, &ds) {
                return Ok(ds);
            }
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
