//! The CRCNS pvc-1 tree: in-memory model, reader and writer.
//!
//! - [`model`]: [`Recording`] and its parts, the form every other module works with;
//! - [`reader`]: `crcns-ringach-data/` on disk -> [`Pvc1Tree`] (segment folders and
//!   recordings), strict or lenient;
//! - [`writer`]: [`Recording`] -> `neurodata/<subdir>/<name>.mat`, frames ->
//!   `movie_frames/movie{MMM}_{SSS}.images/`, both in the byte-exact layout of the real
//!   data set so that tools written for pvc-1 read the synthetic twin unchanged.
//!
//! [`Pvc1Error`] is shared by both directions; every variant names the file and, for
//! content errors, the condition, repeat and electrode.

pub mod model;
pub mod reader;
pub mod writer;

use std::fmt;
use std::path::PathBuf;

pub use model::*;
pub use reader::{
    read_recording, read_recording_with, read_tree, read_tree_with, recording_from_mat,
    resolve_data_dir, MovieSegment, Pvc1Tree, TreeOptions, TreeProblem,
};
pub use writer::{
    recording_to_mat, write_recording, write_segment_frames, JPEG_QUALITY, PEPANA_FIELDS,
    REPEAT_FIELDS, RESULT_FIELDS,
};

pub use v1_mat::Compression;

/// Name of the folder the pvc-1 zip unpacks to.
pub const DATA_DIR_NAME: &str = "crcns-ringach-data";
/// Folder of the movie segments, inside [`DATA_DIR_NAME`].
pub const MOVIE_FRAMES_DIR: &str = "movie_frames";
/// Folder of the recordings, inside [`DATA_DIR_NAME`].
pub const NEURODATA_DIR: &str = "neurodata";
/// The one variable of a pvc-1 recording file.
pub const PEPANA: &str = "pepANA";
/// The file in each segment folder that holds its frame count.
pub const NFRAMES_FILE: &str = "nframes";

/// `movie{MMM}_{SSS}.images`
pub fn segment_dir_name(movie: u16, segment: u16) -> String {
    format!("movie{movie:03}_{segment:03}.images")
}

/// `movie{MMM}_{SSS}_{FFF}.jpeg` (frame indices past 999 simply get more digits).
pub fn frame_file_name(movie: u16, segment: u16, frame: usize) -> String {
    format!("movie{movie:03}_{segment:03}_{frame:03}.jpeg")
}

/// Where inside `pepANA` a content error was found. Indices are 0-based in the fields and
/// printed 1-based, as MATLAB (and the `listOfResults{c}` notation) counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PepLocation {
    pub condition: Option<usize>,
    pub repeat: Option<usize>,
    /// (index into `elec_list`, electrode id)
    pub electrode: Option<(usize, u16)>,
}

impl fmt::Display for PepLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PEPANA}")?;
        if let Some(c) = self.condition {
            write!(f, ".listOfResults{{{}}}", c + 1)?;
        }
        if let Some(r) = self.repeat {
            write!(f, ".repeat{{{}}}", r + 1)?;
        }
        if let Some((i, _)) = self.electrode {
            write!(f, ".data{{{}}}", i + 1)?;
        }
        let mut parts = Vec::new();
        if let Some(c) = self.condition {
            parts.push(format!("condition {}", c + 1));
        }
        if let Some(r) = self.repeat {
            parts.push(format!("repeat {}", r + 1));
        }
        if let Some((_, id)) = self.electrode {
            parts.push(format!("electrode {id}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Pvc1Error {
    #[error(transparent)]
    Mat(#[from] v1_mat::MatError),

    #[error("{root}: no pvc-1 tree: {detail}")]
    NoTree { root: PathBuf, detail: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{dir}: no `nframes` file, so the segment is incomplete (writers create it last); re-copy or re-generate this folder")]
    MissingNframes { dir: PathBuf },

    #[error("{path}: cannot read a frame count from {content:?}: {reason}")]
    BadNframes {
        path: PathBuf,
        content: String,
        reason: String,
    },

    #[error("{dir}: frame {index} (`{file}`) is missing: `nframes` says {nframes} frames and {found} frame files are present; re-copy or re-generate this folder")]
    MissingFrame {
        dir: PathBuf,
        index: usize,
        file: String,
        nframes: usize,
        found: usize,
    },

    #[error("{dir}: frame {index} requested but the segment has {nframes} frames")]
    FrameOutOfRange {
        dir: PathBuf,
        index: usize,
        nframes: usize,
    },

    #[error("{path}: cannot decode the JPEG frame: {message}; the file is corrupt, re-copy or re-generate it")]
    FrameDecode { path: PathBuf, message: String },

    #[error("{path}: no variable `pepANA`, so this is not a pvc-1 recording; variables in the file: [{}]", found.join(", "))]
    NoPepAna { path: PathBuf, found: Vec<String> },

    #[error("{path}: {at}: {detail}")]
    Invalid {
        path: PathBuf,
        at: PepLocation,
        detail: String,
    },

    #[error("cannot write recording {name}: {detail}")]
    InvalidRecording { name: String, detail: String },

    #[error("cannot write frames of movie {movie} segment {segment}: {detail}")]
    InvalidFrames {
        movie: u16,
        segment: u16,
        detail: String,
    },
}
