//! pvc-1 in NWB: every recording of a pvc-1 tree (the real CRCNS files or the simulated
//! V1) as an NWB 2.x file that pynwb, nwbinspector and the tools built on them read, and
//! those files read back as the dataset builder's input.
//!
//! # What a file holds
//! One file per pvc-1 recording (`sub-<subdir>_ses-<name>.nwb`): each `.mat` file is a
//! session of its own with its own clock, and NWB keeps one session per file.
//! - `general/extracellular_ephys`: the 10x10 array as a `Device` and an `ElectrodeGroup`;
//!   the `electrodes` table has one row per electrode of the file's `elec_list`, with its
//!   pvc-1 id (`electrode_id`) and its place on the array (`rel_x`, `rel_y` in µm at the
//!   400 µm pitch, row-major numbering as in [`neural_data::pvc1::electrode_position`]).
//! - `units`: one unit per electrode — the multi-unit threshold crossings, as in pvc-1 —
//!   with spike times on the session clock (trial `tzero` + time in the trial), every
//!   crossing's 48-sample snippet in `waveforms` (int8, the files' raw units: their scale
//!   is not published), and the mean snippet in `waveform_mean`.
//! - `intervals/trials`: one row per presentation, in time order: `movie`, `segment`
//!   (-1 for a non-movie condition such as `rseed`), `repeat`, the pvc-1 `condition` id,
//!   its position in `listOfResults` (`condition_index`), `timeTag`, the condition's
//!   `symbols` and `values` (JSON), and a `timeseries` reference to its frames.
//! - `stimulus/presentation/movie_frames`: an `ImageSeries` of external files — the
//!   tree's own JPEG frames, referenced by paths relative to the NWB file, one per
//!   presented frame, with its time. Frames are not copied: the tree's JPEGs are the
//!   movies at their original size and quality, and copying them into every file would
//!   multiply the data by the number of recordings.
//! - For the simulated V1 only, `processing/simulated_ground_truth` (marked as simulated
//!   in its description and in the session description): the noise-free rates of the
//!   file's electrodes on the session clock, and a `receptive_fields` table of the planted
//!   RFs.
//!
//! Subject and session metadata are what pvc-1 documents (anaesthetised *Macaca
//! fascicularis*, V1, Nauhaus & Ringach 2007); the recording dates are not published, so
//! `session_start_time` is the Unix epoch and the notes say so.
//!
//! Files are written to `<name>.nwb.partial` and renamed when complete, so a stopped
//! export never leaves a half-written `.nwb` behind.

mod export;
mod h5;
mod import;

use std::path::PathBuf;

pub use export::{export_tree, export_tree_with, ExportOptions, ExportSummary, ExportedFile};
pub use import::{is_nwb_input, read_input};

/// The NWB version the files are written in (the `core` schema).
pub const NWB_VERSION: &str = "2.11.0";
/// Name of the stimulus frames' `ImageSeries`.
pub const FRAMES: &str = "movie_frames";
/// Name of the processing module that holds the simulator's ground truth.
pub const GROUND_TRUTH_MODULE: &str = "simulated_ground_truth";

#[derive(Debug, thiserror::Error)]
pub enum NwbError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("{path}: HDF5 error while {action}: {message}")]
    Hdf5 {
        path: PathBuf,
        action: String,
        message: String,
    },
    #[error("{path} is not an NWB file: {reason}")]
    NotNwb { path: PathBuf, reason: String },
    #[error("{path} is NWB {found}; this reader reads NWB 2.x (files written as {NWB_VERSION})")]
    Version { path: PathBuf, found: String },
    #[error("{path}: {what} is missing; export the recording again with `v1 export nwb`")]
    Missing { path: PathBuf, what: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
}

impl NwbError {
    fn hdf5(path: &std::path::Path, action: impl Into<String>, e: hdf5::Error) -> NwbError {
        NwbError::Hdf5 {
            path: path.to_owned(),
            action: action.into(),
            message: e.to_string(),
        }
    }
}
