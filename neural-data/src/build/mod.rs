//! The dataset builder: a pvc-1 tree (real or simulated) -> training-ready pairs.
//!
//! Steps, in order, each in its own module:
//! 1. Read the tree; single-trial files (noRepeats = 1) define the channels, repeat files
//!    (noRepeats > 1) give the noise ceiling. Non-movie conditions are skipped
//!    (`select`).
//! 2. Keep the movie segments that have frames and are covered by every single-trial file
//!    (`select`).
//! 3. Split by whole (movie, segment): the repeated segments (or `test_segments`) are the
//!    test split; a seeded hash of (movie, segment) picks validation; the rest trains
//!    (`select`).
//! 4. Decode every frame once: grayscale, 2x2 de-interlacing, and bin the spike counts of
//!    every channel into 1/30 s bins (optionally spikes only, by 2-means on snippet troughs)
//!    (`decode`).
//! 5. Estimate the response latency from the onset transient and receptive fields from
//!    contrast-energy STAs on the training split ([`crate::rf`]); the lags (from the onset
//!    on) and the crop window follow unless the config fixes them (`estimate`).
//! 6. Cut crops and full frames, gather responses at the lags, attach the simulator's
//!    noise-free rates when `ground_truth/` is present (`samples`), and write the cache.
//!
//! `config` holds [`BuildConfig`]; `input` reads a tree into a [`TreeInput`].

mod config;
mod decode;
mod estimate;
mod input;
mod samples;
mod select;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cache::{CacheMeta, Dataset, Split, CACHE_VERSION};
use crate::error::DataError;
use crate::pvc1::Recording;

pub use config::BuildConfig;
pub use decode::{load_gray_frame, two_means_threshold};
pub use input::read_input;

/// A movie segment with frames on disk.
#[derive(Debug, Clone)]
pub struct SegmentSource {
    pub movie: u16,
    pub segment: u16,
    pub nframes: usize,
    /// Path of frame k.
    pub frame_paths: Vec<PathBuf>,
}

/// What the builder needs of a pvc-1 tree.
#[derive(Debug, Clone)]
pub struct TreeInput {
    pub root: PathBuf,
    pub segments: Vec<SegmentSource>,
    pub recordings: Vec<Recording>,
    /// Problems the reader skipped over (lenient mode).
    pub warnings: Vec<String>,
    /// File names and sizes, for the cache fingerprint.
    pub files: Vec<(String, u64)>,
}

/// Summary printed after a build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSummary {
    pub samples: usize,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
    pub channels: usize,
    pub lags: Vec<u32>,
    pub crop_window: [u32; 4],
    pub repeated_samples: usize,
    pub repeats: usize,
    pub seconds: f64,
    pub frames_per_second: f64,
}

impl Dataset {
    pub fn summary(&self, seconds: f64, frames_decoded: usize) -> BuildSummary {
        BuildSummary {
            samples: self.n,
            train: self.indices(Split::Train).len(),
            validation: self.indices(Split::Validation).len(),
            test: self.indices(Split::Test).len(),
            channels: self.n_channels(),
            lags: self.meta.lags.clone(),
            crop_window: self.meta.crop_window,
            repeated_samples: self.repeat_samples.len(),
            repeats: self.n_repeats,
            seconds,
            frames_per_second: frames_decoded as f64 / seconds.max(1e-9),
        }
    }
}

/// Where the cache of a dataset root lives for a given config.
pub fn cache_path(root: &Path, fingerprint: &str) -> PathBuf {
    root.join("cache").join(format!("dataset-{fingerprint}.safetensors"))
}

fn fingerprint(input: &TreeInput, cfg: &BuildConfig) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    CACHE_VERSION.hash(&mut h);
    for (name, size) in &input.files {
        name.hash(&mut h);
        size.hash(&mut h);
    }
    serde_json::to_string(cfg).unwrap_or_default().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Loads the cache for `input` and `cfg` if one exists and matches, else builds and saves it.
pub fn load_or_build(input: &TreeInput, cfg: &BuildConfig, progress: bool) -> Result<(Dataset, Option<BuildSummary>), DataError> {
    let fp = fingerprint(input, cfg);
    let path = cache_path(&input.root, &fp);
    if path.exists() {
        match Dataset::load(&path) {
            Ok(ds) if ds.meta.fingerprint == fp => return Ok((ds, None)),
            Ok(_) | Err(_) => tracing::warn!("cache {} is stale or unreadable; rebuilding", path.display()),
        }
    }
    let start = std::time::Instant::now();
    let (ds, decoded) = build(input, cfg, progress)?;
    ds.save(&path)?;
    let summary = ds.summary(start.elapsed().as_secs_f64(), decoded);
    Ok((ds, Some(summary)))
}

fn movie_conditions(rec: &Recording) -> impl Iterator<Item = (u16, u16, &crate::pvc1::Condition)> {
    rec.movie_conditions()
}

/// What steps 1 to 5 decided, read by step 6.
struct Steps<'a> {
    cfg: &'a BuildConfig,
    files: select::Files<'a>,
    segments: Vec<&'a SegmentSource>,
    splits: select::Splits,
    decoded: decode::Decoded,
    window: estimate::Window,
}

/// Builds the dataset in memory. Returns it and the number of frames decoded.
pub fn build(input: &TreeInput, cfg: &BuildConfig, progress: bool) -> Result<(Dataset, usize), DataError> {
    cfg.validate().map_err(DataError::Config)?;
    let mut warnings = input.warnings.clone();
    let files = select::files(input, &mut warnings)?;
    let segments = select::segments(input, &files.single, &mut warnings)?;
    let splits = select::Splits::new(cfg, &files.repeat, &segments);
    let decoded = decode::decode(cfg, &segments, &files.single, files.channels.len(), progress)?;
    let window = estimate::window(cfg, &segments, &splits, &decoded)?;
    let steps = Steps { cfg, files, segments, splits, decoded, window };

    // Ground truth (simulated data).
    let truth = samples::load_truth_rates(&input.root)?;
    let (truth_rates, truth_latency, truth_peak) = match &truth {
        Some((rates, json)) => (
            Some(rates),
            json.get("latency_frames").and_then(|v| v.as_u64()).map(|v| v as u32),
            json.get("peak_lag_frames").and_then(|v| v.as_u64()).map(|v| v as u32),
        ),
        None => (None, None, None),
    };
    let samples = samples::cut(&steps, &input.root, truth_rates)?;
    let reps = samples::repeats(&steps, &samples.sample_of);

    let frames_decoded = steps.decoded.frames_decoded;
    let Steps { files, window, .. } = steps;
    let meta = CacheMeta {
        version: CACHE_VERSION,
        source: input.root.clone(),
        fingerprint: fingerprint(input, cfg),
        config: cfg.clone(),
        channels: files.channels,
        lags: window.lags,
        image_size: cfg.image_size,
        crop_window: window.crop_window,
        full_size: cfg.full_frame_size,
        rf: window.rf,
        rf_cell_px: estimate::RF_CELL_PX,
        truth_latency_frames: truth_latency,
        truth_peak_lag_frames: truth_peak,
        segments: samples.segments.into_iter().collect(),
        warnings,
    };
    Ok((
        Dataset {
            meta,
            n: samples.index.len(),
            crops: samples.crops,
            full: samples.full,
            responses: samples.responses,
            truth: samples.truth,
            index: samples.index,
            split: samples.split,
            n_repeats: reps.n_repeats,
            repeats: reps.repeats,
            repeat_samples: reps.repeat_samples,
        },
        frames_decoded,
    ))
}
