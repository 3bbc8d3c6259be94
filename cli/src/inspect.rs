//! `v1 inspect`: what a user needs to see first about a dataset.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use neural_data::pvc1::ConditionKind;
use serde::Serialize;

#[derive(Serialize)]
struct FileSummary {
    name: String,
    subdir: String,
    electrodes: usize,
    movie_conditions: usize,
    other_conditions: usize,
    repeats: usize,
    events: usize,
    /// Mean threshold-crossing rate per electrode (events/s) over movie trials.
    mean_rate_hz: f64,
    min_rate_hz: f64,
    max_rate_hz: f64,
}

#[derive(Serialize)]
struct Summary {
    root: String,
    segments: usize,
    frames: usize,
    frames_per_segment: [usize; 2],
    movies: Vec<u16>,
    files: Vec<FileSummary>,
    estimated_peak_lag_frames: Option<u32>,
    planted_peak_lag_frames: Option<u32>,
    reliable_channels: Option<usize>,
    rf_footprint_px: Option<[f32; 4]>,
    crop_window_px: Option<[u32; 4]>,
    /// The statistics that compare the tree with real V1 (reliability, rates, bursts,
    /// latency, luminance signal, movies), and each beside the real value.
    twin: Option<neural_data::stats::TwinStats>,
    twin_vs_real: Vec<neural_data::stats::Comparison>,
    warnings: Vec<String>,
}

pub fn run(data: &Path, json: bool, coverage: Option<&Path>) -> Result<()> {
    let input = crate::nwb::read_tree(data, false)?;
    let (summary, built) = summarise(data, &input, !json)?;
    if let Some(path) = coverage {
        let (w, h, what) = draw_coverage(data, &input, built.as_ref(), path)?;
        if !json {
            println!("RF coverage ({what}): {} ({w}x{h})", path.display());
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print(&summary);
    }
    Ok(())
}

/// Counts, rates per file, latency and RF footprint (from the cached build) and the
/// statistics against real V1; `progress` shows the long steps' progress bars. Also the
/// cache's metadata (channels, RF estimates) when the build succeeded.
fn summarise(data: &Path, input: &neural_data::build::TreeInput, progress: bool) -> Result<(Summary, Option<neural_data::cache::CacheMeta>)> {
    let files: Vec<FileSummary> = input.recordings.iter().map(|r| file_summary(r, input)).collect();
    let movies: BTreeSet<u16> = input.segments.iter().map(|s| s.movie).collect();
    let frames: usize = input.segments.iter().map(|s| s.nframes).sum();
    // Latency and RF footprint from the (cached) build with default settings.
    let built = neural_data::build::load_or_build(input, &neural_data::BuildConfig::default(), progress);
    let (est_lag, planted, reliable, footprint, crop, mut warnings) = match &built {
        Ok((ds, _)) => {
            let cell = ds.meta.rf_cell_px as f32;
            (
                Some(ds.meta.rf.peak_lag),
                ds.meta.truth_peak_lag_frames,
                Some(ds.meta.rf.channels.iter().filter(|c| c.snr >= neural_data::rf::RELIABLE_SNR).count()),
                ds.meta.rf.footprint.map(|f| [f[0] * cell, f[1] * cell, f[2] * cell, f[3] * cell]),
                Some(ds.meta.crop_window),
                ds.meta.warnings.clone(),
            )
        }
        Err(e) => (None, None, None, None, None, vec![format!("could not estimate latency and RFs: {e}")]),
    };
    warnings.extend(input.warnings.iter().cloned());
    let opts = neural_data::stats::StatsOptions { progress, ..Default::default() };
    let twin = match neural_data::stats::measure(input, &opts) {
        Ok(t) => Some(t),
        Err(e) => {
            warnings.push(format!("could not measure the statistics against real V1: {e}"));
            None
        }
    };
    let twin_vs_real = twin.as_ref().map(|t| t.compare()).unwrap_or_default();
    let summary = Summary {
        root: data.display().to_string(),
        segments: input.segments.len(),
        frames,
        frames_per_segment: [
            input.segments.iter().map(|s| s.nframes).min().unwrap_or(0),
            input.segments.iter().map(|s| s.nframes).max().unwrap_or(0),
        ],
        movies: movies.into_iter().collect(),
        files,
        estimated_peak_lag_frames: est_lag,
        planted_peak_lag_frames: planted,
        reliable_channels: reliable,
        rf_footprint_px: footprint,
        crop_window_px: crop,
        twin,
        twin_vs_real,
        warnings,
    };
    Ok((summary, built.ok().map(|(ds, _)| ds.meta)))
}

/// One recording's row: conditions, repeats, events and rates over its movie trials.
fn file_summary(r: &neural_data::pvc1::Recording, input: &neural_data::build::TreeInput) -> FileSummary {
    let (mut movie, mut other, mut reps, mut events, mut secs) = (0, 0, 0, 0usize, 0f64);
    let mut per_elec = vec![0usize; r.electrodes.len()];
    for c in &r.conditions {
        match c.kind {
            ConditionKind::Movie { movie: m, segment: s } => {
                movie += 1;
                reps = reps.max(c.repeats.len());
                let nframes = input.segments.iter().find(|x| x.movie == m && x.segment == s).map(|x| x.nframes).unwrap_or(0);
                for t in &c.repeats {
                    secs += nframes as f64 / neural_data::pvc1::FRAME_RATE_HZ;
                    for (e, ev) in t.electrodes.iter().enumerate() {
                        events += ev.times.len();
                        if let Some(p) = per_elec.get_mut(e) {
                            *p += ev.times.len();
                        }
                    }
                }
            }
            ConditionKind::Other { .. } => other += 1,
        }
    }
    let rates: Vec<f64> = per_elec.iter().map(|n| *n as f64 / secs.max(1e-9)).collect();
    FileSummary {
        name: r.name.clone(),
        subdir: r.subdir.clone(),
        electrodes: r.electrodes.len(),
        movie_conditions: movie,
        other_conditions: other,
        repeats: reps,
        events,
        mean_rate_hz: rates.iter().sum::<f64>() / rates.len().max(1) as f64,
        min_rate_hz: rates.iter().copied().fold(f64::INFINITY, f64::min),
        max_rate_hz: rates.iter().copied().fold(0.0, f64::max),
    }
}

/// The summary as a human reads it.
fn print(summary: &Summary) {
    println!("pvc-1 tree under {}", summary.root);
    println!(
        "  movie segments: {} (movies {:?}), {} frames, {}..{} frames per segment",
        summary.segments, summary.movies, summary.frames, summary.frames_per_segment[0], summary.frames_per_segment[1]
    );
    println!("  recordings:");
    println!("    {:<22} {:>5} {:>7} {:>6} {:>8} {:>10} {:>22}", "file", "elec", "movies", "other", "repeats", "events", "rate Hz (mean/min/max)");
    for f in &summary.files {
        println!(
            "    {:<22} {:>5} {:>7} {:>6} {:>8} {:>10} {:>8.1} {:>6.1} {:>6.1}",
            format!("{}/{}", f.subdir, f.name),
            f.electrodes,
            f.movie_conditions,
            f.other_conditions,
            f.repeats,
            f.events,
            f.mean_rate_hz,
            f.min_rate_hz,
            f.max_rate_hz
        );
    }
    match summary.estimated_peak_lag_frames {
        Some(l) => println!(
            "  estimated peak latency: {l} frames ({:.0} ms){}",
            l as f64 * 1000.0 / 30.0,
            summary.planted_peak_lag_frames.map(|p| format!("; planted: {p} frames")).unwrap_or_default()
        ),
        None => println!("  estimated latency: unavailable"),
    }
    if let (Some(r), Some(f)) = (summary.reliable_channels, summary.rf_footprint_px) {
        println!("  reliable channels (STA): {r}; RF footprint (x0, y0, x1, y1 px): {f:?}");
    }
    if let Some(c) = summary.crop_window_px {
        println!("  reconstruction crop (x, y, w, h px): {c:?}");
    }
    if !summary.twin_vs_real.is_empty() {
        println!("  against real V1 (pvc-1; sources in docs/twin.md):");
        println!("    {:<46} {:<40} {:<32} {:<22}", "measure", "this tree", "real pvc-1", "target");
        for c in &summary.twin_vs_real {
            let mark = match c.holds {
                Some(true) => "ok",
                Some(false) => "MISS",
                None => "",
            };
            println!("    {:<46} {:<40} {:<32} {:<22} {mark}", c.measure, c.measured, c.real, c.target);
        }
    }
    for w in &summary.warnings {
        println!("  warning: {w}");
    }
}

/// Draws every array's receptive fields over the first movie frame: the planted RFs (2
/// sigma) when the tree has the simulator's ground truth, else the RF centres estimated
/// from the spike-triggered averages of the reliable channels. One colour per
/// `neurodata/` sub-folder (array). Returns the PNG's size and what it shows.
fn draw_coverage(
    data: &Path,
    input: &neural_data::build::TreeInput,
    built: Option<&neural_data::cache::CacheMeta>,
    path: &Path,
) -> Result<(u32, u32, &'static str)> {
    let Some(first) = input.segments.first().and_then(|s| s.frame_paths.first()) else {
        anyhow::bail!("{} has no movie frames to draw the RFs over; point --data at a pvc-1 tree with movie_frames/", data.display());
    };
    let (frame, fw, fh) = neural_data::build::load_gray_frame(first, false)?;
    // Sub-folders in natural order (ac2 before ac10), so that colours follow the arrays.
    let mut subdirs: Vec<String> = input.recordings.iter().map(|r| r.subdir.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    subdirs.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    let mut circles = Vec::new();
    let (what, caption) = match v1_sim::GroundTruth::load_arrays(data) {
        Ok((arrays, layout)) => {
            for (subdir, truth) in &arrays {
                if !subdirs.contains(subdir) {
                    subdirs.push(subdir.clone());
                }
                let group = subdirs.iter().position(|s| s == subdir).unwrap_or(0);
                for e in truth.truth.electrodes.iter().filter(|e| e.good) {
                    if let (Some(c), Some(size)) = (e.rf_center_px, e.rf_size_px) {
                        circles.push(v1_metrics::figures::RfCircle { center: [c[0] as f32, c[1] as f32], radius: (size / 2.0) as f32, group });
                    }
                }
            }
            let share = layout.map(|l| format!(", {:.1}% of the frame within 2 sigma of a unit", 100.0 * l.coverage)).unwrap_or_default();
            ("planted RFs", format!("planted RFs (2 sigma) of {} good electrodes on {} array(s){share}", circles.len(), arrays.len()))
        }
        Err(_) => {
            let Some(meta) = built else {
                anyhow::bail!("{} has no ground truth and its RFs could not be estimated (see the warnings of v1 inspect); no coverage to draw", data.display());
            };
            let cell = meta.rf_cell_px as f32;
            for (ch, rf) in meta.channels.iter().zip(&meta.rf.channels) {
                if rf.snr >= neural_data::rf::RELIABLE_SNR {
                    let group = subdirs.iter().position(|s| *s == ch.subdir).unwrap_or(0);
                    let center = [(rf.center[0] + 0.5) * cell, (rf.center[1] + 0.5) * cell];
                    circles.push(v1_metrics::figures::RfCircle { center, radius: cell / 2.0, group });
                }
            }
            ("estimated RF centres", format!("RF centres of {} reliable channels, estimated from spike-triggered averages", circles.len()))
        }
    };
    let title = format!("Receptive fields over the frame: {} array(s)", subdirs.len());
    let (w, h) = v1_metrics::figures::rf_coverage(&frame, fw as u32, fh as u32, &circles, &title, &caption, path)?;
    Ok((w, h, what))
}
