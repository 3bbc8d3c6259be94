//! Step 4 of the build: decode every frame once (grayscale, optionally de-interlaced) and
//! bin the spike counts of every channel into frame-long bins, optionally counting only
//! the events that 2-means on snippet troughs sorts as spikes.

use std::path::Path;

use crate::error::DataError;
use crate::progress::progress_bar;
use crate::pvc1::{ElectrodeEvents, Recording, FRAME_HEIGHT, FRAME_RATE_HZ, FRAME_WIDTH};

use super::{movie_conditions, BuildConfig, SegmentSource};

pub(super) struct Deinterlaced {
    width: usize,
    height: usize,
    /// Grayscale frames, u8, row-major.
    pub(super) frames: Vec<Vec<u8>>,
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

/// Step 4's product: the decoded frames and binned counts of every used segment.
pub(super) struct Decoded {
    /// Frames per segment, in the order of the segments.
    pub(super) frames: Vec<Deinterlaced>,
    /// Counts per segment, each `[nframes][channel]`.
    pub(super) counts: Vec<Vec<f32>>,
    /// Spike/noise threshold per channel (`None`: every crossing counts).
    pub(super) thresholds: Vec<Option<f32>>,
    /// Size of the decoded frames (pixels).
    pub(super) width: usize,
    pub(super) height: usize,
    /// Frame pixels per decoded pixel: 2 when de-interlaced.
    pub(super) scale: usize,
    pub(super) n_ch: usize,
    /// How many frames were decoded.
    pub(super) frames_decoded: usize,
}

/// Step 4: decodes the frames of `segments` and bins the counts of the channels of
/// `single_files` (`n_ch` in all).
pub(super) fn decode(
    cfg: &BuildConfig,
    segments: &[&SegmentSource],
    single_files: &[&Recording],
    n_ch: usize,
    progress: bool,
) -> Result<Decoded, DataError> {
    let thresholds = spike_thresholds(cfg.spikes_only, single_files, n_ch);
    let (frames, frames_decoded) = decode_segments(segments, cfg.deinterlace, progress)?;
    let (width, height) = (frames[0].width, frames[0].height);
    let scale = FRAME_WIDTH as usize / width;
    let counts = segment_counts(segments, single_files, &thresholds);
    Ok(Decoded { frames, counts, thresholds, width, height, scale, n_ch, frames_decoded })
}

/// Decodes the frames of every segment, on up to four threads. Returns the frames in the
/// order of `segments` and how many frames were decoded.
fn decode_segments(
    segments: &[&SegmentSource],
    deinterlace: bool,
    progress: bool,
) -> Result<(Vec<Deinterlaced>, usize), DataError> {
    let bar = progress_bar(progress, segments.len() as u64, "{msg:>16} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}", "decoding frames");
    let n_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
    let mut decoded: Vec<Option<Result<Deinterlaced, DataError>>> = (0..segments.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunks: Vec<Vec<usize>> = (0..n_threads).map(|t| (t..segments.len()).step_by(n_threads).collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|idx| {
                let bar = &bar;
                scope.spawn(move || {
                    idx.into_iter()
                        .map(|i| {
                            let r = load_segment(segments[i], deinterlace);
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
    Ok((frames_by_seg, frames_decoded))
}

/// Spike sorting thresholds, per channel (in the order of the single-trial files and their
/// electrodes), from all of the channel's snippets; `None` everywhere when every crossing
/// counts.
fn spike_thresholds(spikes_only: bool, single_files: &[&Recording], n_ch: usize) -> Vec<Option<f32>> {
    if !spikes_only {
        return vec![None; n_ch];
    }
    let mut out = Vec::with_capacity(n_ch);
    for r in single_files {
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
}

/// Counts per segment, each `[nframes][channel]`, from the first trial of every
/// single-trial file.
fn segment_counts(
    segments: &[&SegmentSource],
    single_files: &[&Recording],
    thresholds: &[Option<f32>],
) -> Vec<Vec<f32>> {
    let n_ch = thresholds.len();
    let mut counts_by_seg = Vec::with_capacity(segments.len());
    for seg in segments {
        let n_bins = seg.nframes;
        let mut counts = vec![0f32; n_bins * n_ch];
        let mut ch = 0;
        for r in single_files {
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
    counts_by_seg
}

/// Bins event times into `n_bins` bins of 1/30 s. With `threshold`, only events whose
/// snippet trough is below it count.
pub(super) fn bin_events(ev: &ElectrodeEvents, n_bins: usize, threshold: Option<f32>) -> Vec<f32> {
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
