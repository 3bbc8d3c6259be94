//! pvc-1 tree -> one NWB file per recording (see the crate docs for what a file holds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hdf5::{File, H5Type, ObjectReference1};
use neural_data::build::{SegmentSource, TreeInput};
use neural_data::pvc1::{
    electrode_position, ConditionKind, Recording, FRAME_RATE_HZ, SAMPLE_RATE_HZ, SNIPPET_LEN,
};
use serde::Serialize;
use v1_sim::GroundTruth;

use crate::h5::{self, Ids, CORE, HDMF};
use crate::{NwbError, FRAMES, GROUND_TRUTH_MODULE, NWB_VERSION};

/// Electrode pitch of the 10x10 array (µm).
const PITCH_UM: f32 = 400.0;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Replace `.nwb` files that already exist in the output folder.
    pub overwrite: bool,
    /// Show a progress bar (drawn on a terminal only; a line per file otherwise).
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedFile {
    pub path: PathBuf,
    pub recording: String,
    pub electrodes: usize,
    pub trials: usize,
    pub spikes: usize,
    pub frames: usize,
    pub bytes: u64,
    pub ground_truth: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub files: Vec<ExportedFile>,
    pub seconds: f64,
}

impl ExportSummary {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// The `timeseries` column of the trials table: which frames of `movie_frames` a trial
/// showed (NWB's `TimeSeriesReferenceVectorData`; idx_start -1 and count -1 when none).
#[derive(H5Type, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct FrameRef {
    pub idx_start: i32,
    pub count: i32,
    pub timeseries: ObjectReference1,
}

/// One presentation, in session-time order.
struct TrialRow<'a> {
    condition_index: usize,
    repeat: usize,
    tzero: f64,
    time_tag: f64,
    kind: &'a ConditionKind,
    condition: f64,
    /// Frames shown (paths), empty for a non-movie condition or a segment without frames.
    frames: &'a [PathBuf],
    stop: f64,
}

/// Writes `sub-<subdir>_ses-<name>.nwb` for every recording of `input` into `out`.
/// `truth` (the simulator's ground truth) adds the ground-truth module to every file.
pub fn export_tree(
    input: &TreeInput,
    truth: Option<&GroundTruth>,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportSummary, NwbError> {
    export_tree_with(input, |_| truth, out, opts)
}

/// [`export_tree`] for a tree of several arrays (a wide-field simulated dataset): the
/// ground truth of each recording is `truth_of(its neurodata/ sub-folder)`.
pub fn export_tree_with<'t>(
    input: &TreeInput,
    truth_of: impl Fn(&str) -> Option<&'t GroundTruth>,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportSummary, NwbError> {
    let start = Instant::now();
    if input.recordings.is_empty() {
        return Err(NwbError::Input(format!(
            "{}: the tree has no recordings (neurodata/*/*.mat) to export",
            input.root.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| NwbError::Io {
        path: out.to_owned(),
        action: "creating the output folder",
        source: e,
    })?;
    let out = out.canonicalize().map_err(|e| NwbError::Io {
        path: out.to_owned(),
        action: "resolving the output folder",
        source: e,
    })?;
    let targets: Vec<PathBuf> = input
        .recordings
        .iter()
        .map(|r| out.join(file_name(r)))
        .collect();
    if !opts.overwrite {
        if let Some(existing) = targets.iter().find(|p| p.exists()) {
            return Err(NwbError::Input(format!(
                "{} already exists; pass --overwrite to replace it",
                existing.display()
            )));
        }
    }
    let segments: HashMap<(u16, u16), &SegmentSource> = input
        .segments
        .iter()
        .map(|s| ((s.movie, s.segment), s))
        .collect();
    let bar = progress_bar(opts.progress, input.recordings.len() as u64);
    let mut files = Vec::new();
    for (rec, target) in input.recordings.iter().zip(&targets) {
        bar.set_message(rec.name.clone());
        let partial = target.with_extension("nwb.partial");
        let written = write_recording(rec, &segments, truth_of(&rec.subdir), &partial, &out).inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
        std::fs::rename(&partial, target).map_err(|e| NwbError::Io {
            path: target.clone(),
            action: "moving the finished file into place",
            source: e,
        })?;
        let bytes = target.metadata().map(|m| m.len()).unwrap_or(0);
        if !bar.is_hidden() {
            bar.inc(1);
        } else if opts.progress {
            eprintln!("wrote {} ({:.1} MB)", target.display(), bytes as f64 / 1e6);
        }
        files.push(ExportedFile {
            path: target.clone(),
            bytes,
            ..written
        });
    }
    bar.finish_and_clear();
    Ok(ExportSummary {
        files,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// DANDI-style name: subject = the pvc-1 sub-folder, session = the recording.
pub fn file_name(rec: &Recording) -> String {
    format!("sub-{}_ses-{}.nwb", rec.subdir, rec.name)
}

/// The shared bar of the batch jobs, so that `v1` also reports it where no terminal draws it.
fn progress_bar(show: bool, len: u64) -> indicatif::ProgressBar {
    neural_data::progress::progress_bar(show, len, "exporting NWB {bar:30} {pos}/{len} files {msg} [{elapsed}]", "")
}

fn trial_rows<'a>(
    rec: &'a Recording,
    segments: &HashMap<(u16, u16), &'a SegmentSource>,
    path: &Path,
) -> Result<Vec<TrialRow<'a>>, NwbError> {
    let mut rows = Vec::new();
    for (ci, cond) in rec.conditions.iter().enumerate() {
        let frames: &[PathBuf] = match cond.kind {
            ConditionKind::Movie { movie, segment } => segments
                .get(&(movie, segment))
                .map(|s| &s.frame_paths[..])
                .unwrap_or(&[]),
            ConditionKind::Other { .. } => &[],
        };
        for (ri, trial) in cond.repeats.iter().enumerate() {
            let last_event = trial
                .electrodes
                .iter()
                .filter_map(|e| e.times.last().copied())
                .fold(0.0f64, f64::max);
            let shown = frames.len() as f64 / FRAME_RATE_HZ;
            rows.push(TrialRow {
                condition_index: ci,
                repeat: ri,
                tzero: trial.tzero,
                time_tag: trial.time_tag,
                kind: &cond.kind,
                condition: cond.condition,
                frames,
                stop: trial.tzero + shown.max(last_event),
            });
        }
    }
    rows.sort_by(|a, b| {
        a.tzero
            .total_cmp(&b.tzero)
            .then(a.time_tag.total_cmp(&b.time_tag))
    });
    // Spikes go back to their trial by time: each trial's events must lie before the next
    // trial starts, and none before its own start.
    for w in rows.windows(2) {
        if w[0].stop > w[1].tzero {
            return Err(NwbError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "recording {}: a trial starting at {:.3} s has events or frames until {:.3} s, after the next trial starts ({:.3} s); NWB trials must not overlap",
                    rec.name, w[0].tzero, w[0].stop, w[1].tzero
                ),
            });
        }
    }
    for cond in &rec.conditions {
        for trial in &cond.repeats {
            if let Some(t) = trial
                .electrodes
                .iter()
                .flat_map(|e| e.times.iter())
                .find(|t| !t.is_finite() || **t < 0.0)
            {
                return Err(NwbError::Invalid {
                    path: path.to_owned(),
                    message: format!("recording {}: an event at {t} s in the trial at {:.3} s (times must be finite and >= 0)", rec.name, trial.tzero),
                });
            }
        }
    }
    Ok(rows)
}

fn write_recording(
    rec: &Recording,
    segments: &HashMap<(u16, u16), &SegmentSource>,
    truth: Option<&GroundTruth>,
    path: &Path,
    out_dir: &Path,
) -> Result<ExportedFile, NwbError> {
    let rows = trial_rows(rec, segments, path)?;
    let h = |action: &str| {
        let action = action.to_string();
        move |e: hdf5::Error| NwbError::hdf5(path, action, e)
    };
    // HDF5 1.8 object formats: attributes over 64 KiB (the frame list's `starting_frame`)
    // need its dense attribute storage, and every HDF5 reader since 1.8 reads them.
    let file = File::with_options()
        .with_fapl(|p| {
            p.libver_bounds(
                hdf5::file::LibraryVersion::V18,
                hdf5::file::LibraryVersion::V18,
            )
        })
        .create(path)
        .map_err(h("creating the file"))?;
    let identifier = format!("pvc1/{}/{}", rec.subdir, rec.name);
    let ids = Ids::new(&identifier);
    let simulated = truth.is_some();

    // Root: the NWBFile.
    h5::typed(&file, &ids, CORE, "NWBFile").map_err(h("writing the root attributes"))?;
    h5::attr_str(&file, "nwb_version", NWB_VERSION).map_err(h("writing the root attributes"))?;
    let epoch = "1970-01-01T00:00:00+00:00";
    let what = if simulated {
        "SIMULATED macaque V1 (a model, no animal) written in the layout of"
    } else {
        "Recording from"
    };
    let description = format!(
        "{what} the CRCNS pvc-1 data set (Nauhaus & Ringach 2007): multi-unit threshold crossings on a 10x10 microelectrode array in V1 during natural movies (320x240 px, 30 frames/s); recording {}/{}.",
        rec.subdir, rec.name
    );
    (|| -> hdf5::Result<()> {
        h5::scalar_str(&file, "identifier", &identifier)?;
        h5::scalar_str(&file, "session_description", &description)?;
        h5::scalar_str(&file, "session_start_time", epoch)?;
        h5::scalar_str(&file, "timestamps_reference_time", epoch)?;
        h5::strings(&file, "file_create_date", &[epoch.to_string()])?;
        for g in ["acquisition", "analysis", "processing", "stimulus/presentation", "stimulus/templates", "intervals", "general/devices", "general/extracellular_ephys"] {
            file.create_group(g).or_else(|_| file.group(g))?;
        }
        let general = file.group("general")?;
        h5::scalar_str(&general, "session_id", &rec.name)?;
        h5::scalar_str(&general, "lab", "Ringach lab")?;
        h5::scalar_str(&general, "institution", "University of California, Los Angeles")?;
        h5::scalar_str(
            &general,
            "experiment_description",
            "Natural movies (commercial clips, greyscale-balanced RGB, 320x240 at 30 Hz) shown in segments; single-trial recordings and one recording of 10 repeats of some segments (CRCNS pvc-1).",
        )?;
        h5::strings(&general, "related_publications", &["Nauhaus I, Ringach DL (2007) Precise alignment of micromachined electrode arrays with V1 functional maps. J Neurophysiol 97:3781-3789".to_string()])?;
        h5::strings(&general, "keywords", &["V1".into(), "macaque".into(), "natural movies".into(), "Utah array".into(), "pvc-1".into()])?;
        let notes = if simulated {
            "SIMULATED DATA: written by the simulated V1 of this system, not recorded from an animal; its ground truth (noise-free rates, planted receptive fields) is in processing/simulated_ground_truth. Recording dates are not part of pvc-1: session_start_time is the Unix epoch and times are on the recording's own clock."
        } else {
            "Recording dates are not part of pvc-1: session_start_time is the Unix epoch and times are on the recording's own clock. Waveform snippets are in the files' raw int8 units (scale not published)."
        };
        h5::scalar_str(&general, "notes", notes)?;
        let subject = h5::typed_group(&general, "subject", &ids, CORE, "Subject")?;
        h5::scalar_str(&subject, "subject_id", &rec.subdir)?;
        h5::scalar_str(&subject, "species", "Macaca fascicularis")?;
        h5::scalar_str(
            &subject,
            "description",
            if simulated { "SIMULATED: a model of anaesthetised macaque V1, no animal" } else { "anaesthetised, paralysed adult macaque (pvc-1)" },
        )?;
        h5::scalar_str(&subject, "age", "P3Y/")?;
        h5::scalar_str(&subject, "sex", "U")?;
        Ok(())
    })()
    .map_err(h("writing the session metadata"))?;

    write_electrodes(&file, &ids, rec).map_err(h("writing the electrodes table"))?;
    let (frame_starts, n_frames, timestamps) = write_frames(&file, &ids, &rows, path, out_dir)?;
    write_trials(&file, &ids, &rows, &frame_starts).map_err(h("writing the trials table"))?;
    let spikes = write_units(&file, &ids, rec, &rows).map_err(h("writing the units table"))?;
    if let Some(t) = truth {
        write_truth(&file, &ids, rec, &rows, &timestamps, t)
            .map_err(h("writing the ground truth"))?;
    }
    file.flush().map_err(h("flushing the file"))?;
    drop(file);
    Ok(ExportedFile {
        path: path.to_owned(),
        recording: format!("{}/{}", rec.subdir, rec.name),
        electrodes: rec.electrodes.len(),
        trials: rows.len(),
        spikes,
        frames: n_frames,
        bytes: 0,
        ground_truth: simulated,
    })
}

fn write_electrodes(file: &File, ids: &Ids, rec: &Recording) -> hdf5::Result<()> {
    let ephys = file.group("general/extracellular_ephys")?;
    let devices = file.group("general/devices")?;
    let device = h5::typed_group(&devices, "array", ids, CORE, "Device")?;
    h5::attr_str(
        &device,
        "description",
        "10x10 microelectrode array (Utah type), 400 um pitch",
    )?;
    let group = h5::typed_group(&ephys, "array", ids, CORE, "ElectrodeGroup")?;
    h5::attr_str(&group, "description", "the 10x10 array of this recording")?;
    h5::attr_str(&group, "location", "V1")?;
    group.link_soft("/general/devices/array", "device")?;

    let table = h5::typed_group(&ephys, "electrodes", ids, CORE, "ElectrodesTable")?;
    let cols = [
        "location",
        "group",
        "group_name",
        "rel_x",
        "rel_y",
        "rel_z",
        "electrode_id",
        "label",
    ];
    h5::table_attrs(
        &table,
        "the electrodes of this recording (pvc-1 elec_list), on the 10x10 array",
        &cols,
    )?;
    let n = rec.electrodes.len();
    h5::element_ids(&table, ids, n)?;
    h5::vector_strings(
        &table,
        ids,
        "location",
        "Location of the electrode (channel).",
        &vec!["V1".to_string(); n],
    )?;
    let gref = file.reference::<ObjectReference1>("/general/extracellular_ephys/array")?;
    h5::vector_data(
        &table,
        ids,
        "group",
        "Reference to the ElectrodeGroup.",
        &vec![gref; n],
    )?;
    h5::vector_strings(
        &table,
        ids,
        "group_name",
        "Name of the ElectrodeGroup.",
        &vec!["array".to_string(); n],
    )?;
    let pos: Vec<(u8, u8)> = rec
        .electrodes
        .iter()
        .map(|&e| electrode_position(e).unwrap_or((0, 0)))
        .collect();
    let rel_x: Vec<f32> = pos.iter().map(|&(_, c)| c as f32 * PITCH_UM).collect();
    let rel_y: Vec<f32> = pos.iter().map(|&(r, _)| r as f32 * PITCH_UM).collect();
    h5::vector_data(
        &table,
        ids,
        "rel_x",
        "x on the array (um): column x 400 um pitch.",
        &rel_x,
    )?;
    h5::vector_data(
        &table,
        ids,
        "rel_y",
        "y on the array (um): row x 400 um pitch.",
        &rel_y,
    )?;
    h5::vector_data(
        &table,
        ids,
        "rel_z",
        "z on the array (um): 0, a planar array.",
        &vec![0f32; n],
    )?;
    let eid: Vec<i32> = rec.electrodes.iter().map(|&e| e as i32).collect();
    h5::vector_data(
        &table,
        ids,
        "electrode_id",
        "pvc-1 electrode id (1..100, row-major on the 10x10 array).",
        &eid,
    )?;
    let labels: Vec<String> = rec.electrodes.iter().map(|e| format!("elec{e}")).collect();
    h5::vector_strings(&table, ids, "label", "pvc-1 electrode name.", &labels)?;
    Ok(())
}

/// The `movie_frames` ImageSeries; returns each trial's first frame index (-1 when it
/// showed none), the number of frames and their times.
fn write_frames(
    file: &File,
    ids: &Ids,
    rows: &[TrialRow],
    path: &Path,
    out_dir: &Path,
) -> Result<(Vec<i32>, usize, Vec<f64>), NwbError> {
    let mut external = Vec::new();
    let mut timestamps = Vec::new();
    let mut starts = Vec::with_capacity(rows.len());
    let mut relative: HashMap<&Path, String> = HashMap::new();
    for row in rows {
        if row.frames.is_empty() {
            starts.push(-1);
            continue;
        }
        starts.push(
            i32::try_from(external.len()).map_err(|_| NwbError::Invalid {
                path: path.to_owned(),
                message: "more than 2^31 frames".into(),
            })?,
        );
        for (k, f) in row.frames.iter().enumerate() {
            let rel = match relative.get(f.as_path()) {
                Some(r) => r.clone(),
                None => {
                    let abs = f.canonicalize().map_err(|e| NwbError::Io {
                        path: f.clone(),
                        action: "resolving a frame",
                        source: e,
                    })?;
                    let r = pathdiff::diff_paths(&abs, out_dir)
                        .unwrap_or(abs)
                        .to_string_lossy()
                        .into_owned();
                    relative.insert(f.as_path(), r.clone());
                    r
                }
            };
            external.push(rel);
            timestamps.push(row.tzero + k as f64 / FRAME_RATE_HZ);
        }
    }
    let h = |e: hdf5::Error| NwbError::hdf5(path, "writing the stimulus frames", e);
    let pres = file.group("stimulus/presentation").map_err(h)?;
    let series = h5::typed_group(&pres, FRAMES, ids, CORE, "ImageSeries").map_err(h)?;
    (|| -> hdf5::Result<()> {
        h5::attr_str(&series, "description", "the movie frames shown, one external JPEG per frame (paths relative to this file), at the time each was on screen")?;
        h5::attr_str(&series, "comments", "pvc-1 frames are 320x240 RGB JPEGs; frame k of a segment is on screen during [k/30, (k+1)/30) s after the trial start")?;
        let data = series.new_dataset::<u8>().shape((0, 0, 0)).create("data")?;
        h5::attr_f64(&data, "conversion", 1.0)?;
        h5::attr_f64(&data, "offset", 0.0)?;
        h5::attr_f64(&data, "resolution", -1.0)?;
        h5::attr_str(&data, "unit", "n.a.")?;
        let ext = h5::strings(&series, "external_file", &external)?;
        let starting: Vec<i64> = (0..external.len() as i64).collect();
        ext.new_attr_builder().with_data(ndarray::ArrayView1::from(&starting[..])).create("starting_frame")?;
        h5::scalar_str(&series, "format", "external")?;
        let ts = h5::column(&series, "timestamps", &timestamps)?;
        ts.new_attr::<i32>().shape(()).create("interval")?.write_scalar(&1)?;
        h5::attr_str(&ts, "unit", "seconds")?;
        Ok(())
    })()
    .map_err(h)?;
    Ok((starts, external.len(), timestamps))
}

fn write_trials(
    file: &File,
    ids: &Ids,
    rows: &[TrialRow],
    frame_starts: &[i32],
) -> hdf5::Result<()> {
    let intervals = file.group("intervals")?;
    let table = h5::typed_group(&intervals, "trials", ids, CORE, "TimeIntervals")?;
    let cols = [
        "start_time",
        "stop_time",
        "movie",
        "segment",
        "repeat",
        "condition",
        "condition_index",
        "time_tag",
        "symbols",
        "values",
        "timeseries",
    ];
    h5::table_attrs(&table, "presentations of the pvc-1 conditions (movie segments and others such as rseed), in time order", &cols)?;
    h5::element_ids(&table, ids, rows.len())?;
    let col_f64 = |f: &dyn Fn(&TrialRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let col_i32 = |f: &dyn Fn(&TrialRow) -> i32| rows.iter().map(f).collect::<Vec<i32>>();
    h5::vector_data(
        &table,
        ids,
        "start_time",
        "Start time of epoch, in seconds",
        &col_f64(&|r| r.tzero),
    )?;
    h5::vector_data(
        &table,
        ids,
        "stop_time",
        "Stop time of epoch, in seconds",
        &col_f64(&|r| r.stop),
    )?;
    let (movie, segment): (Vec<i32>, Vec<i32>) = rows
        .iter()
        .map(|r| match r.kind {
            ConditionKind::Movie { movie, segment } => (*movie as i32, *segment as i32),
            ConditionKind::Other { .. } => (-1, -1),
        })
        .unzip();
    h5::vector_data(
        &table,
        ids,
        "movie",
        "pvc-1 movie id (0-based); -1 for a non-movie condition",
        &movie,
    )?;
    h5::vector_data(
        &table,
        ids,
        "segment",
        "pvc-1 segment id within the movie (0-based); -1 for a non-movie condition",
        &segment,
    )?;
    h5::vector_data(
        &table,
        ids,
        "repeat",
        "repeat of the condition (0-based)",
        &col_i32(&|r| r.repeat as i32),
    )?;
    h5::vector_data(
        &table,
        ids,
        "condition",
        "the pvc-1 condition field",
        &col_f64(&|r| r.condition),
    )?;
    h5::vector_data(
        &table,
        ids,
        "condition_index",
        "position of the condition in pepANA.listOfResults (0-based)",
        &col_i32(&|r| r.condition_index as i32),
    )?;
    h5::vector_data(
        &table,
        ids,
        "time_tag",
        "the pvc-1 timeTag of the presentation",
        &col_f64(&|r| r.time_tag),
    )?;
    let (symbols, values): (Vec<String>, Vec<String>) = rows
        .iter()
        .map(|r| match r.kind {
            ConditionKind::Movie { movie, segment } => (
                "[\"movie_id\",\"segment_id\"]".to_string(),
                format!("[{movie},{segment}]"),
            ),
            ConditionKind::Other { symbols, values } => (
                serde_json::to_string(symbols).unwrap_or_default(),
                serde_json::to_string(values).unwrap_or_default(),
            ),
        })
        .unzip();
    h5::vector_strings(
        &table,
        ids,
        "symbols",
        "the condition's pvc-1 symbols, as JSON",
        &symbols,
    )?;
    h5::vector_strings(
        &table,
        ids,
        "values",
        "the condition's pvc-1 values, as JSON",
        &values,
    )?;
    let frames_ref =
        file.reference::<ObjectReference1>(&format!("/stimulus/presentation/{FRAMES}"))?;
    let refs: Vec<FrameRef> = rows
        .iter()
        .zip(frame_starts)
        .map(|(r, &s)| FrameRef {
            idx_start: s,
            count: if s < 0 { -1 } else { r.frames.len() as i32 },
            timeseries: frames_ref,
        })
        .collect();
    let ts = h5::column(&table, "timeseries", &refs)?;
    h5::attr_str(
        &ts,
        "description",
        "the frames of movie_frames this trial showed",
    )?;
    h5::typed(&ts, ids, CORE, "TimeSeriesReferenceVectorData")?;
    let ends: Vec<u64> = (1..=rows.len() as u64).collect();
    h5::vector_index(&table, ids, "timeseries_index", &ts, &ends)?;
    Ok(())
}

/// One unit per electrode; returns the number of spikes written.
fn write_units(file: &File, ids: &Ids, rec: &Recording, rows: &[TrialRow]) -> hdf5::Result<usize> {
    let units = file.create_group("units")?;
    h5::typed(&units, ids, CORE, "Units")?;
    let cols = ["spike_times", "electrodes", "waveform_mean", "waveforms"];
    h5::table_attrs(&units, "multi-unit activity: every threshold crossing of each electrode (pvc-1 records no sorted units)", &cols)?;
    let n = rec.electrodes.len();
    h5::element_ids(&units, ids, n)?;
    let mut times = Vec::new();
    let mut waves: Vec<i8> = Vec::new();
    let mut ends = Vec::with_capacity(n);
    let mut means = Vec::with_capacity(n * SNIPPET_LEN);
    for e in 0..n {
        let first = times.len();
        let mut sum = [0f64; SNIPPET_LEN];
        for row in rows {
            let trial = &rec.conditions[row.condition_index].repeats[row.repeat];
            let Some(ev) = trial.electrodes.get(e) else {
                continue;
            };
            for (i, &t) in ev.times.iter().enumerate() {
                times.push(row.tzero + t);
                let snip = ev.snippets.get(i).copied().unwrap_or([0; SNIPPET_LEN]);
                waves.extend_from_slice(&snip);
                for (s, v) in sum.iter_mut().zip(snip) {
                    *s += v as f64;
                }
            }
        }
        let k = (times.len() - first).max(1) as f64;
        means.extend(sum.iter().map(|s| (s / k) as f32));
        ends.push(times.len() as u64);
    }
    let st = h5::vector_data(
        &units,
        ids,
        "spike_times",
        "the spike times for each unit in seconds",
        &times,
    )?;
    h5::attr_f64(&st, "resolution", 1.0 / SAMPLE_RATE_HZ)?;
    h5::vector_index(&units, ids, "spike_times_index", &st, &ends)?;
    let el: Vec<i64> = (0..n as i64).collect();
    let region = h5::vector_data(
        &units,
        ids,
        "electrodes",
        "the electrode each unit came from",
        &el,
    )?;
    region
        .attr("neurodata_type")?
        .write_scalar(&h5::vlu("DynamicTableRegion"))?;
    let table = file.reference::<ObjectReference1>("/general/extracellular_ephys/electrodes")?;
    h5::attr_ref(&region, "table", &table)?;
    let one_each: Vec<u64> = (1..=n as u64).collect();
    h5::vector_index(&units, ids, "electrodes_index", &region, &one_each)?;
    let wm = h5::matrix(&units, "waveform_mean", &means, SNIPPET_LEN)?;
    h5::attr_str(
        &wm,
        "description",
        "mean snippet of each unit (raw int8 units of pvc-1)",
    )?;
    h5::typed(&wm, ids, HDMF, "VectorData")?;
    h5::attr_f64(&wm, "sampling_rate", SAMPLE_RATE_HZ)?;
    h5::attr_str(&wm, "unit", "volts")?;
    let wf = h5::matrix(&units, "waveforms", &waves, SNIPPET_LEN)?;
    h5::attr_str(&wf, "description", "every crossing's 48-sample snippet at 30 kHz, in pvc-1's raw int8 units (scale not published)")?;
    h5::typed(&wf, ids, HDMF, "VectorData")?;
    h5::attr_f64(&wf, "sampling_rate", SAMPLE_RATE_HZ)?;
    h5::attr_str(&wf, "unit", "volts")?;
    // One electrode per unit: waveform i belongs to spike i.
    let per_spike: Vec<u64> = (1..=times.len() as u64).collect();
    let wi = h5::vector_index(&units, ids, "waveforms_index", &wf, &per_spike)?;
    h5::vector_index(&units, ids, "waveforms_index_index", &wi, &ends)?;
    Ok(times.len())
}

fn write_truth(
    file: &File,
    ids: &Ids,
    rec: &Recording,
    rows: &[TrialRow],
    timestamps: &[f64],
    truth: &GroundTruth,
) -> hdf5::Result<()> {
    let processing = file.group("processing")?;
    let module = h5::typed_group(
        &processing,
        GROUND_TRUTH_MODULE,
        ids,
        CORE,
        "ProcessingModule",
    )?;
    h5::attr_str(&module, "description", "SIMULATED: the simulator's ground truth for this recording (noise-free rates and planted receptive fields); not data from an animal")?;
    let n = rec.electrodes.len();
    let mut data: Vec<f32> = Vec::with_capacity(timestamps.len() * n);
    for row in rows {
        if row.frames.is_empty() {
            continue;
        }
        let rates = match row.kind {
            ConditionKind::Movie { movie, segment } => truth.rates(*movie, *segment),
            ConditionKind::Other { .. } => None,
        };
        for k in 0..row.frames.len() {
            for &e in &rec.electrodes {
                let v = rates
                    .filter(|r| k < r.nframes)
                    .map(|r| r.values[k * 100 + (e as usize).saturating_sub(1).min(99)])
                    .unwrap_or(f32::NAN);
                data.push(v);
            }
        }
    }
    let series = h5::typed_group(&module, "noise_free_rates", ids, CORE, "TimeSeries")?;
    h5::attr_str(&series, "description", "SIMULATED: expected threshold crossings per 1/30 s frame of each electrode of this recording (columns in electrodes-table order), from its units' noise-free rates; NaN where the simulator has no rate")?;
    h5::attr_str(
        &series,
        "comments",
        "the same values as ground_truth/rates.safetensors beside the pvc-1 tree",
    )?;
    let d = h5::matrix(&series, "data", &data, n.max(1))?;
    h5::attr_f64(&d, "conversion", 1.0)?;
    h5::attr_f64(&d, "offset", 0.0)?;
    h5::attr_f64(&d, "resolution", -1.0)?;
    h5::attr_str(&d, "unit", "expected events per frame")?;
    let ts = h5::column(&series, "timestamps", timestamps)?;
    ts.new_attr::<i32>()
        .shape(())
        .create("interval")?
        .write_scalar(&1)?;
    h5::attr_str(&ts, "unit", "seconds")?;

    let table = h5::typed_group(&module, "receptive_fields", ids, HDMF, "DynamicTable")?;
    let cols = [
        "electrode_id",
        "good",
        "rf_center_x_px",
        "rf_center_y_px",
        "rf_size_px",
        "preferred_orientation_deg",
        "units",
        "noise_crossing_hz",
    ];
    h5::table_attrs(&table, "SIMULATED: the planted receptive field of each electrode of this recording (frame px of the 320x240 movie; NaN on noise-only electrodes)", &cols)?;
    h5::element_ids(&table, ids, n)?;
    let by_id: HashMap<u16, &v1_sim::truth::ElectrodeTruth> =
        truth.truth.electrodes.iter().map(|e| (e.id, e)).collect();
    let get = |f: &dyn Fn(&v1_sim::truth::ElectrodeTruth) -> Option<f64>| -> Vec<f64> {
        rec.electrodes
            .iter()
            .map(|id| by_id.get(id).and_then(|e| f(e)).unwrap_or(f64::NAN))
            .collect()
    };
    let eid: Vec<i32> = rec.electrodes.iter().map(|&e| e as i32).collect();
    h5::vector_data(&table, ids, "electrode_id", "pvc-1 electrode id", &eid)?;
    let good: Vec<u8> = rec
        .electrodes
        .iter()
        .map(|id| by_id.get(id).is_some_and(|e| e.good) as u8)
        .collect();
    h5::vector_data(
        &table,
        ids,
        "good",
        "1 when the electrode records units, 0 when only noise crossings",
        &good,
    )?;
    h5::vector_data(
        &table,
        ids,
        "rf_center_x_px",
        "rate-weighted RF centre of its units, x (px)",
        &get(&|e| e.rf_center_px.map(|c| c[0])),
    )?;
    h5::vector_data(
        &table,
        ids,
        "rf_center_y_px",
        "rate-weighted RF centre of its units, y (px)",
        &get(&|e| e.rf_center_px.map(|c| c[1])),
    )?;
    h5::vector_data(
        &table,
        ids,
        "rf_size_px",
        "4 sigma of its units' envelopes (px)",
        &get(&|e| e.rf_size_px),
    )?;
    h5::vector_data(
        &table,
        ids,
        "preferred_orientation_deg",
        "rate-weighted preferred orientation (deg)",
        &get(&|e| e.preferred_orientation_deg),
    )?;
    let units: Vec<i32> = rec
        .electrodes
        .iter()
        .map(|id| by_id.get(id).map(|e| e.units.len() as i32).unwrap_or(0))
        .collect();
    h5::vector_data(&table, ids, "units", "number of planted units", &units)?;
    h5::vector_data(
        &table,
        ids,
        "noise_crossing_hz",
        "rate of its noise crossings (events/s)",
        &get(&|e| Some(e.noise_crossing_hz)),
    )?;
    Ok(())
}
