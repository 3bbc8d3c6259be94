//! The dataset builder: a pvc-1 tree (real or simulated) -> training-ready pairs.
//!
//! Steps, in order:
//! 1. Read the tree; single-trial files (noRepeats = 1) define the channels, repeat files
//!    (noRepeats > 1) give the noise ceiling. Non-movie conditions are skipped.
//! 2. Keep the movie segments that have frames and are covered by every single-trial file.
//! 3. Split by whole (movie, segment): the repeated segments (or `test_segments`) are the
//!    test split; a seeded hash of (movie, segment) picks validation; the rest trains.
//! 4. Decode every frame once: grayscale, 2x2 de-interlacing, and bin the spike counts of
//!    every channel into 1/30 s bins (optionally spikes only, by 2-means on snippet troughs).
//! 5. Estimate the response latency from the onset transient and receptive fields from
//!    contrast-energy STAs on the training split ([`crate::rf`]); the lags (from the onset
//!    on) and the crop window follow unless the config fixes them.
//! 6. Cut crops and full frames, gather responses at the lags, attach the simulator's
//!    noise-free rates when `ground_truth/` is present, and write the cache.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::{CacheMeta, Channel, Dataset, Split, CACHE_VERSION};
use crate::error::{io_err, DataError};
use crate::progress::progress_bar;
use crate::pvc1::{ElectrodeEvents, Recording, FRAME_HEIGHT, FRAME_RATE_HZ, FRAME_WIDTH};
use crate::rf::{self, StaAccumulator};

/// How a pvc-1 tree becomes training pairs. Part of the training config file (`[data]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildConfig {
    /// Side of the square grayscale crop the networks see (pixels).
    pub image_size: usize,
    /// Crop window [x, y, width, height] in 320x240 frame pixels; absent = estimated from the
    /// population's RF footprint.
    pub crop: Option<[u32; 4]>,
    /// Margin added on each side of the estimated footprint (frame pixels).
    pub crop_margin_px: u32,
    /// Explicit response lags (frames after the frame onset); absent = `n_lags` lags
    /// starting `lags_before_onset` frames before the estimated response latency.
    pub lags: Option<Vec<u32>>,
    pub n_lags: usize,
    /// How many of the `n_lags` bins come before the estimated response latency. Those bins
    /// answer the previous frames, which in a 30 Hz movie resemble the current one, so a
    /// decoder reading them gets more spikes about the scene and reconstructs better (the
    /// measurements, with `bench/decoding_noise.py`, are in docs/evaluation-history.md). The
    /// previous frames are in the image encoder's clip (placed by the onset: it ends at the
    /// last frame the latest bin answers), so the encoding model can predict these bins,
    /// with less of their history than the later bins get. A config file without this
    /// key means 0, the window that configs written before the key existed had.
    #[serde(default)]
    pub lags_before_onset: u32,
    /// Largest lag searched when estimating the latency (frames).
    pub max_latency_frames: u32,
    /// Frames dropped at each segment onset (onset transient; pvc-1 loaders drop 15).
    pub drop_onset_frames: usize,
    /// Count only events sorted as spikes (2-means on snippet troughs, per channel)
    /// instead of all threshold crossings. On by default: noise crossings carry nothing
    /// about the stimulus but add Poisson noise, so dropping them brings single-trial
    /// decoding closer to what the noise-free rates allow (how many events are noise on
    /// the simulated dataset, and the gain: docs/evaluation-history.md).
    pub spikes_only: bool,
    /// Average 2x2 pixel blocks before anything else (VHS frames are interlaced).
    pub deinterlace: bool,
    /// Fraction of the non-test segments used for validation.
    pub validation_fraction: f64,
    /// Test segments as [movie, segment]; absent = the segments that have repeats, or
    /// `test_fraction` of all segments when no file has repeats.
    pub test_segments: Option<Vec<[u16; 2]>>,
    pub test_fraction: f64,
    pub split_seed: u64,
    /// Size [width, height] of the downsampled full frames kept for full-frame metrics.
    pub full_frame_size: [u32; 2],
    /// Match repeat-file electrodes to single-trial channels by (sub-folder, electrode id),
    /// i.e. assume files of one `neurodata/` sub-folder record from the same array.
    pub match_repeats_by_electrode: bool,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            image_size: 48,
            crop: None,
            crop_margin_px: 24,
            lags: None,
            n_lags: 5,
            lags_before_onset: 2,
            max_latency_frames: 6,
            drop_onset_frames: 15,
            spikes_only: true,
            deinterlace: true,
            validation_fraction: 0.1,
            test_segments: None,
            test_fraction: 0.15,
            split_seed: 7,
            full_frame_size: [80, 60],
            match_repeats_by_electrode: true,
        }
    }
}

impl BuildConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=256).contains(&self.image_size) || !self.image_size.is_multiple_of(4) {
            return Err(format!("data.image_size {} must be a multiple of 4 in 8..=256", self.image_size));
        }
        if let Some([x, y, w, h]) = self.crop {
            if w < 8 || h < 8 || x + w > FRAME_WIDTH || y + h > FRAME_HEIGHT {
                return Err(format!(
                    "data.crop [{x}, {y}, {w}, {h}] must lie inside the {FRAME_WIDTH}x{FRAME_HEIGHT} frame and be at least 8 pixels wide"
                ));
            }
        }
        match &self.lags {
            Some(l) if l.is_empty() || l.len() > 16 => return Err("data.lags must have 1 to 16 entries".into()),
            Some(l) if l.iter().any(|&v| v > 30) => return Err("data.lags must be at most 30 frames".into()),
            None if self.n_lags == 0 || self.n_lags > 16 => return Err("data.n_lags must be 1 to 16".into()),
            _ => {}
        }
        if self.lags.is_none() && self.lags_before_onset as usize >= self.n_lags {
            return Err(format!(
                "data.lags_before_onset ({}) must be smaller than data.n_lags ({}): the window must reach the response",
                self.lags_before_onset, self.n_lags
            ));
        }
        if !(0.0..0.9).contains(&self.validation_fraction) || !(0.0..0.9).contains(&self.test_fraction) {
            return Err("data.validation_fraction and data.test_fraction must be in [0, 0.9)".into());
        }
        if self.full_frame_size[0] < 8 || self.full_frame_size[1] < 6 || self.full_frame_size[0] > 320 || self.full_frame_size[1] > 240 {
            return Err("data.full_frame_size must be between [8, 6] and [320, 240]".into());
        }
        Ok(())
    }
}

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

struct Deinterlaced {
    width: usize,
    height: usize,
    /// Grayscale frames, u8, row-major.
    frames: Vec<Vec<u8>>,
}

/// Loads one frame as grayscale (ITU-R BT.601 luma), de-interlaced by 2x2 averaging if asked.
pub fn load_gray_frame(path: &Path, deinterlace: bool) -> Result<(Vec<u8>, usize, usize), DataError> {
    let img = image::open(path).map_err(|e| DataError::Image { path: path.to_owned(), message: e.to_string() })?;
    let gray = img.to_luma8();
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    if (w, h) != (FRAME_WIDTH as usize, FRAME_HEIGHT as usize) {
        return Err(DataError::Image {
            path: path.to_owned(),
            message: format!("frame is {w}x{h}; pvc-1 frames are {FRAME_WIDTH}x{FRAME_HEIGHT}"),
        });
    }
    if !deinterlace {
        return Ok((gray.into_raw(), w, h));
    }
    let raw = gray.as_raw();
    let (dw, dh) = (w / 2, h / 2);
    let mut out = vec![0u8; dw * dh];
    for y in 0..dh {
        for x in 0..dw {
            let s = raw[2 * y * w + 2 * x] as u32
                + raw[2 * y * w + 2 * x + 1] as u32
                + raw[(2 * y + 1) * w + 2 * x] as u32
                + raw[(2 * y + 1) * w + 2 * x + 1] as u32;
            out[y * dw + x] = ((s + 2) / 4) as u8;
        }
    }
    Ok((out, dw, dh))
}

fn load_segment(seg: &SegmentSource, deinterlace: bool) -> Result<Deinterlaced, DataError> {
    let mut frames = Vec::with_capacity(seg.nframes);
    let (mut width, mut height) = (0, 0);
    for p in &seg.frame_paths {
        let (f, w, h) = load_gray_frame(p, deinterlace)?;
        width = w;
        height = h;
        frames.push(f);
    }
    Ok(Deinterlaced { width, height, frames })
}

/// Bins event times into `n_bins` bins of 1/30 s. With `threshold`, only events whose
/// snippet trough is below it count.
fn bin_events(ev: &ElectrodeEvents, n_bins: usize, threshold: Option<f32>) -> Vec<f32> {
    let mut counts = vec![0f32; n_bins];
    for (i, &t) in ev.times.iter().enumerate() {
        if let Some(th) = threshold {
            let trough = ev.snippets.get(i).map(|s| *s.iter().min().unwrap_or(&0) as f32).unwrap_or(0.0);
            if trough >= th {
                continue;
            }
        }
        if t >= 0.0 {
            let b = (t * FRAME_RATE_HZ).floor() as usize;
            if b < n_bins {
                counts[b] += 1.0;
            }
        }
    }
    counts
}

/// Spike/noise threshold for one channel: 1-D 2-means on snippet troughs. Returns None when
/// the two clusters do not separate (then every crossing counts).
pub fn two_means_threshold(troughs: &[f32]) -> Option<f32> {
    if troughs.len() < 10 {
        return None;
    }
    let (mut lo, mut hi) = troughs.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if hi - lo < 1.0 {
        return None;
    }
    for _ in 0..50 {
        let mid = 0.5 * (lo + hi);
        let (mut s0, mut n0, mut s1, mut n1) = (0f64, 0f64, 0f64, 0f64);
        for &v in troughs {
            if v < mid {
                s0 += v as f64;
                n0 += 1.0;
            } else {
                s1 += v as f64;
                n1 += 1.0;
            }
        }
        if n0 == 0.0 || n1 == 0.0 {
            return None;
        }
        let (nlo, nhi) = ((s0 / n0) as f32, (s1 / n1) as f32);
        if (nlo - lo).abs() < 1e-4 && (nhi - hi).abs() < 1e-4 {
            break;
        }
        lo = nlo;
        hi = nhi;
    }
    Some(0.5 * (lo + hi))
}

/// Resizes a crop of a grayscale image with a triangle (bilinear, antialiased) filter.
fn crop_resize(frame: &[u8], w: usize, h: usize, window: [u32; 4], out_w: u32, out_h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_raw(w as u32, h as u32, frame.to_vec()).unwrap_or_default();
    let [x, y, cw, ch] = window;
    let cropped = image::imageops::crop_imm(&img, x, y, cw, ch).to_image();
    image::imageops::resize(&cropped, out_w, out_h, image::imageops::FilterType::Triangle).into_raw()
}

fn hash_unit(seed: u64, movie: u16, segment: u16) -> f64 {
    // SplitMix64 of (seed, movie, segment): a stable, well-mixed value in [0,1).
    let mut z = seed ^ ((movie as u64) << 32) ^ (segment as u64) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The simulator's noise-free rates per (movie, segment): (frames, rates [frames, 100]).
type TruthRates = HashMap<(u16, u16), (usize, Vec<f32>)>;

/// Noise-free rates of the simulator, per (movie, segment): [nframes, 100] per electrode id.
fn load_truth_rates(root: &Path) -> Result<Option<(TruthRates, serde_json::Value)>, DataError> {
    let dir = root.join("ground_truth");
    let rates_path = dir.join("rates.safetensors");
    let truth_path = dir.join("truth.json");
    if !rates_path.exists() || !truth_path.exists() {
        return Ok(None);
    }
    let gt_err = |path: &Path, message: String| DataError::GroundTruth { path: path.to_owned(), message };
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&truth_path).map_err(io_err(format!("reading {}", truth_path.display())))?,
    )
    .map_err(|e| gt_err(&truth_path, e.to_string()))?;
    let bytes = std::fs::read(&rates_path).map_err(io_err(format!("reading {}", rates_path.display())))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| gt_err(&rates_path, e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let parsed = name
            .strip_prefix('m')
            .and_then(|r| r.split_once("_s"))
            .and_then(|(m, s)| Some((m.parse::<u16>().ok()?, s.parse::<u16>().ok()?)));
        let Some(key) = parsed else { continue };
        let shape = view.shape();
        if view.dtype() != safetensors::Dtype::F32 || shape.len() != 2 || shape[1] != 100 {
            return Err(gt_err(&rates_path, format!("tensor {name} must be f32 [nframes, 100], got {:?} {shape:?}", view.dtype())));
        }
        let data: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.insert(key, (shape[0], data));
    }
    Ok(Some((out, truth)))
}

fn movie_conditions(rec: &Recording) -> impl Iterator<Item = (u16, u16, &crate::pvc1::Condition)> {
    rec.movie_conditions()
}

fn is_repeat_file(rec: &Recording) -> bool {
    movie_conditions(rec).any(|(_, _, c)| c.repeats.len() > 1)
}

/// Builds the dataset in memory. Returns it and the number of frames decoded.
pub fn build(input: &TreeInput, cfg: &BuildConfig, progress: bool) -> Result<(Dataset, usize), DataError> {
    cfg.validate().map_err(DataError::Config)?;
    let mut warnings = input.warnings.clone();

    // 1. Channels from single-trial files; repeat files kept aside.
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
    let n_ch = channels.len();

    // 2. Segments covered by frames and by every single-trial file.
    let mut covered: Option<BTreeSet<(u16, u16)>> = None;
    for r in &single_files {
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

    // 3. Splits.
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
    let split_of = |m: u16, s: u16| -> Split {
        if test_set.contains(&(m, s)) {
            Split::Test
        } else if hash_unit(cfg.split_seed, m, s) < cfg.validation_fraction {
            Split::Validation
        } else {
            Split::Train
        }
    };

    // Spike sorting thresholds, per channel, from all of the channel's snippets.
    let thresholds: Vec<Option<f32>> = if cfg.spikes_only {
        let mut out = Vec::with_capacity(n_ch);
        for r in &single_files {
            for e in 0..r.electrodes.len() {
                let troughs: Vec<f32> = movie_conditions(r)
                    .flat_map(|(_, _, c)| c.repeats.iter())
                    .filter_map(|t| t.electrodes.get(e))
                    .flat_map(|ev| ev.snippets.iter().map(|s| *s.iter().min().unwrap_or(&0) as f32))
                    .collect();
                out.push(two_means_threshold(&troughs));
            }
        }
        out
    } else {
        vec![None; n_ch]
    };

    // 4. Decode frames and bin counts, segment by segment (two threads).
    let bar = progress_bar(progress, segments.len() as u64, "{msg:>16} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}", "decoding frames");
    let n_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
    let mut decoded: Vec<Option<Result<Deinterlaced, DataError>>> = (0..segments.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunks: Vec<Vec<usize>> = (0..n_threads).map(|t| (t..segments.len()).step_by(n_threads).collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|idx| {
                let segs = &segments;
                let bar = &bar;
                scope.spawn(move || {
                    idx.into_iter()
                        .map(|i| {
                            let r = load_segment(segs[i], cfg.deinterlace);
                            bar.inc(1);
                            (i, r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            if let Ok(results) = h.join() {
                for (i, r) in results {
                    decoded[i] = Some(r);
                }
            }
        }
    });
    bar.finish_and_clear();
    let mut frames_by_seg = Vec::with_capacity(segments.len());
    let mut frames_decoded = 0usize;
    for (i, d) in decoded.into_iter().enumerate() {
        let d = d.ok_or_else(|| DataError::Tree(format!("decoding segment {} failed", i)))??;
        frames_decoded += d.frames.len();
        frames_by_seg.push(d);
    }
    let (dw, dh) = (frames_by_seg[0].width, frames_by_seg[0].height);
    let scale = FRAME_WIDTH as usize / dw; // 2 when de-interlaced

    // Counts per segment: [nframes][channel].
    let mut counts_by_seg = Vec::with_capacity(segments.len());
    for seg in &segments {
        let n_bins = seg.nframes;
        let mut counts = vec![0f32; n_bins * n_ch];
        let mut ch = 0;
        for r in &single_files {
            let cond = movie_conditions(r).find(|(m, s, _)| *m == seg.movie && *s == seg.segment).map(|(_, _, c)| c);
            for e in 0..r.electrodes.len() {
                if let Some(trial) = cond.and_then(|c| c.repeats.first()) {
                    if let Some(ev) = trial.electrodes.get(e) {
                        let b = bin_events(ev, n_bins, thresholds[ch]);
                        for (t, v) in b.into_iter().enumerate() {
                            counts[t * n_ch + ch] = v;
                        }
                    }
                }
                ch += 1;
            }
        }
        counts_by_seg.push(counts);
    }

    // 5. STA on the training split: latency and footprint.
    let cell_px = 8u32; // grid cell in frame pixels
    let cell = (cell_px as usize / scale).max(1);
    let max_lag = cfg.max_latency_frames as usize;
    let (gw, gh) = (dw / cell, dh / cell);
    let mut acc = StaAccumulator::new(n_ch, gw * gh, max_lag);
    for (k, seg) in segments.iter().enumerate() {
        if split_of(seg.movie, seg.segment) != Split::Train {
            continue;
        }
        let maps: Vec<Vec<f32>> = frames_by_seg[k]
            .frames
            .iter()
            .map(|f| {
                let px: Vec<f32> = f.iter().map(|&v| v as f32 / 255.0).collect();
                rf::energy_map(&px, dw, dh, cell).0
            })
            .collect();
        acc.add_segment(&maps, &counts_by_seg[k], seg.nframes, cfg.drop_onset_frames);
    }
    let mut est = rf::estimate(&acc.finish(), n_ch, gw, gh, max_lag);
    // Response latency from the onset transient: each segment starts after a blank screen,
    // so the population rate stays at its spontaneous level until the latency, then jumps.
    let onset_bins = (max_lag + 4).min(segments.iter().map(|s| s.nframes).min().unwrap_or(0));
    let mut onset_curve = vec![0f64; onset_bins];
    let mut n_onsets = 0f64;
    for (k, seg) in segments.iter().enumerate() {
        if split_of(seg.movie, seg.segment) != Split::Train {
            continue;
        }
        n_onsets += 1.0;
        for (b, v) in onset_curve.iter_mut().enumerate() {
            *v += counts_by_seg[k][b * n_ch..(b + 1) * n_ch].iter().map(|&x| x as f64).sum::<f64>();
        }
    }
    onset_curve.iter_mut().for_each(|v| *v /= n_onsets.max(1.0));
    est.onset_latency = rf::onset_latency(&onset_curve);
    est.onset_curve = onset_curve.iter().map(|v| *v as f32).collect();
    let lags: Vec<u32> = match &cfg.lags {
        Some(l) => l.clone(),
        None => {
            // The positive lobe of V1's temporal kernel follows the response onset; the
            // window starts `lags_before_onset` bins earlier (bins that answer the previous
            // frames).
            let first = est.response_onset().saturating_sub(cfg.lags_before_onset);
            (first..first + cfg.n_lags as u32).collect()
        }
    };
    let crop_window = match cfg.crop {
        Some(c) => c,
        None => {
            let fp = est.footprint.ok_or_else(|| DataError::Empty {
                stage: "estimating receptive fields",
                detail: "no channel has a reliable spike-triggered average; set data.crop = [x, y, w, h] in the config".into(),
            })?;
            square_window(fp, cell_px as f32, cfg.crop_margin_px)
        }
    };
    let max_needed_lag = *lags.iter().max().unwrap_or(&0) as usize;

    // Ground truth (simulated data).
    let truth = load_truth_rates(&input.root)?;
    let (truth_rates, truth_latency, truth_peak) = match &truth {
        Some((rates, json)) => (
            Some(rates),
            json.get("latency_frames").and_then(|v| v.as_u64()).map(|v| v as u32),
            json.get("peak_lag_frames").and_then(|v| v.as_u64()).map(|v| v as u32),
        ),
        None => (None, None, None),
    };

    // 6. Samples.
    let s = cfg.image_size;
    let [fw, fh] = cfg.full_frame_size;
    let win = [crop_window[0] / scale as u32, crop_window[1] / scale as u32, (crop_window[2] / scale as u32).max(1), (crop_window[3] / scale as u32).max(1)];
    let mut crops = Vec::new();
    let mut full = Vec::new();
    let mut responses = Vec::new();
    let mut truth_out: Option<Vec<f32>> = truth_rates.map(|_| Vec::new());
    let mut index = Vec::new();
    let mut split = Vec::new();
    let mut seg_lists: BTreeMap<String, Vec<[u16; 2]>> = BTreeMap::new();
    let mut sample_of: HashMap<(u16, u16, u16), usize> = HashMap::new();
    for (k, seg) in segments.iter().enumerate() {
        let sp = split_of(seg.movie, seg.segment);
        seg_lists.entry(format!("{sp:?}").to_lowercase()).or_default().push([seg.movie, seg.segment]);
        let tr = match truth_rates {
            Some(rates) => match rates.get(&(seg.movie, seg.segment)) {
                Some(v) => Some(v),
                None => {
                    return Err(DataError::GroundTruth {
                        path: input.root.join("ground_truth/rates.safetensors"),
                        message: format!("no rates for movie {} segment {}", seg.movie, seg.segment),
                    })
                }
            },
            None => None,
        };
        let d = &frames_by_seg[k];
        let counts = &counts_by_seg[k];
        for t in cfg.drop_onset_frames..seg.nframes {
            if t + max_needed_lag >= seg.nframes {
                break;
            }
            sample_of.insert((seg.movie, seg.segment, t as u16), index.len());
            crops.extend(crop_resize(&d.frames[t], dw, dh, win, s as u32, s as u32));
            full.extend(crop_resize(&d.frames[t], dw, dh, [0, 0, dw as u32, dh as u32], fw, fh));
            for &lag in &lags {
                let b = t + lag as usize;
                responses.extend_from_slice(&counts[b * n_ch..(b + 1) * n_ch]);
                if let (Some(out), Some((nb, rates))) = (truth_out.as_mut(), tr) {
                    for c in &channels {
                        let v = if b < *nb { rates[b * 100 + (c.electrode as usize).saturating_sub(1).min(99)] } else { 0.0 };
                        out.push(v);
                    }
                }
            }
            index.push([seg.movie, seg.segment, t as u16]);
            split.push(sp);
        }
    }
    let n = index.len();
    if n == 0 {
        return Err(DataError::Empty { stage: "cutting samples", detail: "segments are shorter than the onset drop plus the lags".into() });
    }
    if !split.contains(&Split::Train) {
        return Err(DataError::Empty { stage: "splitting", detail: "the training split is empty".into() });
    }

    // Repeats of test samples.
    let mut rep_trials: Vec<(usize, usize, Vec<Vec<f32>>)> = Vec::new(); // (sample, channel, per repeat the count in each lag bin)
    let mut n_repeats = 0usize;
    if cfg.match_repeats_by_electrode {
        for r in &repeat_files {
            for (m, sgm, cond) in movie_conditions(r) {
                if cond.repeats.len() < 2 || !test_set.contains(&(m, sgm)) {
                    continue;
                }
                let Some(seg) = segments.iter().find(|s| s.movie == m && s.segment == sgm) else { continue };
                n_repeats = n_repeats.max(cond.repeats.len());
                for (e, &elec) in r.electrodes.iter().enumerate() {
                    let targets: Vec<usize> = channels
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.subdir == r.subdir && c.electrode == elec)
                        .map(|(i, _)| i)
                        .collect();
                    if targets.is_empty() {
                        continue;
                    }
                    for &ch in &targets {
                        // The same spike/noise threshold as the single-trial channel this
                        // electrode is matched to, so that repeats count what the model predicts.
                        let binned: Vec<Vec<f32>> = cond
                            .repeats
                            .iter()
                            .map(|tr| tr.electrodes.get(e).map(|ev| bin_events(ev, seg.nframes, thresholds[ch])).unwrap_or_else(|| vec![0.0; seg.nframes]))
                            .collect();
                        for t in 0..seg.nframes {
                            let Some(&si) = sample_of.get(&(m, sgm, t as u16)) else { continue };
                            let per_rep: Vec<Vec<f32>> = binned
                                .iter()
                                .map(|b| lags.iter().map(|&l| b.get(t + l as usize).copied().unwrap_or(0.0)).collect())
                                .collect();
                            rep_trials.push((si, ch, per_rep));
                        }
                    }
                }
            }
        }
    }
    let repeat_samples: Vec<u32> = rep_trials.iter().map(|(s, _, _)| *s as u32).collect::<BTreeSet<_>>().into_iter().collect();
    let m_of: HashMap<u32, usize> = repeat_samples.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let n_rep_samples = repeat_samples.len();
    let n_lags = lags.len();
    let mut repeats = vec![f32::NAN; n_repeats * n_rep_samples * n_lags * n_ch];
    for (si, ch, per_rep) in &rep_trials {
        let m = m_of[&(*si as u32)];
        for (r, bins) in per_rep.iter().enumerate() {
            for (k, v) in bins.iter().enumerate() {
                repeats[((r * n_rep_samples + m) * n_lags + k) * n_ch + ch] = *v;
            }
        }
    }

    let meta = CacheMeta {
        version: CACHE_VERSION,
        source: input.root.clone(),
        fingerprint: fingerprint(input, cfg),
        config: cfg.clone(),
        channels,
        lags,
        image_size: s,
        crop_window,
        full_size: [fw, fh],
        rf: est,
        rf_cell_px: cell_px,
        truth_latency_frames: truth_latency,
        truth_peak_lag_frames: truth_peak,
        segments: seg_lists.into_iter().collect(),
        warnings,
    };
    Ok((
        Dataset {
            meta,
            n,
            crops,
            full,
            responses,
            truth: truth_out,
            index,
            split,
            n_repeats,
            repeats,
            repeat_samples,
        },
        frames_decoded,
    ))
}

/// A square crop window around a footprint given in grid cells, with a margin, inside the frame.
fn square_window(fp: [f32; 4], cell_px: f32, margin: u32) -> [u32; 4] {
    let x0 = fp[0] * cell_px;
    let y0 = fp[1] * cell_px;
    let x1 = fp[2] * cell_px;
    let y1 = fp[3] * cell_px;
    let side = ((x1 - x0).max(y1 - y0) + 2.0 * margin as f32).max(32.0).min(FRAME_HEIGHT as f32);
    let side = (side / 4.0).ceil() as u32 * 4;
    let cx = 0.5 * (x0 + x1);
    let cy = 0.5 * (y0 + y1);
    let x = (cx - side as f32 / 2.0).round().clamp(0.0, (FRAME_WIDTH - side) as f32) as u32;
    let y = (cy - side as f32 / 2.0).round().clamp(0.0, (FRAME_HEIGHT - side) as f32) as u32;
    // Even coordinates so the de-interlaced grid maps exactly.
    [x & !1, y & !1, side, side]
}

/// Reads a pvc-1 tree for the builder. `root` is the folder that holds
/// `crcns-ringach-data/` (or that folder itself). In lenient mode broken segment folders
/// and files are skipped with a warning; in strict mode they are errors.
pub fn read_input(root: &Path, strict: bool) -> Result<TreeInput, DataError> {
    use crate::pvc1::reader::{read_tree_with, resolve_data_dir, TreeOptions};
    let tree_dir = resolve_data_dir(root).map_err(|_| DataError::NoTree { path: root.to_owned() })?;
    let opts = if strict { TreeOptions::default() } else { TreeOptions::lenient() };
    let tree = read_tree_with(root, &opts).map_err(|e| DataError::Tree(e.to_string()))?;
    let warnings: Vec<String> = tree.problems.iter().map(|p| format!("skipped {}: {}", p.path.display(), p.error)).collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let mut files = Vec::new();
    let rel = |p: &Path| p.strip_prefix(&tree_dir).unwrap_or(p).display().to_string();
    let mut segments = Vec::with_capacity(tree.segments.len());
    for s in &tree.segments {
        let paths = s.frame_paths();
        let size: u64 = paths.iter().filter_map(|p| p.metadata().ok()).map(|m| m.len()).sum();
        files.push((rel(&s.dir), size));
        segments.push(SegmentSource { movie: s.movie, segment: s.segment, nframes: s.nframes, frame_paths: paths });
    }
    let neuro = tree_dir.join("neurodata");
    if let Ok(subdirs) = std::fs::read_dir(&neuro) {
        let mut mats: Vec<PathBuf> = subdirs
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().filter_map(|e| e.ok()).map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "mat"))
            .collect();
        mats.sort();
        for m in mats {
            files.push((rel(&m), m.metadata().map(|x| x.len()).unwrap_or(0)));
        }
    }
    Ok(TreeInput { root: root.to_owned(), segments, recordings: tree.recordings, warnings, files })
}
