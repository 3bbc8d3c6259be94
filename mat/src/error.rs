//! Errors of the MAT reader, the accessors and the writer.
//!
//! Every variant names the file (or the name the caller gave to an in-memory buffer) and,
//! for parse errors, the byte position, so that a report about a bad file can be acted on
//! without a debugger. Positions inside a zlib-compressed element are given relative to
//! the inflated bytes, together with the file offset of that element.

use std::fmt;
use std::path::PathBuf;

/// A byte position in a MAT file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Offset in the file, or in the inflated bytes when `compressed_at` is set.
    pub offset: u64,
    /// File offset of the tag of the `miCOMPRESSED` element the position lies in.
    pub compressed_at: Option<u64>,
}

impl Pos {
    pub fn file(offset: u64) -> Self {
        Pos {
            offset,
            compressed_at: None,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.compressed_at {
            None => write!(f, "byte {}", self.offset),
            Some(c) => write!(
                f,
                "byte {} of the inflated data of the compressed element at byte {}",
                self.offset, c
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MatError {
    #[error("cannot read MAT file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{path} is a MATLAB v7.3 (HDF5) file, which this Level-5 reader cannot read; convert it \
         with MATLAB `load(f); save(f, '-v7')` or in Python with scipy.io.savemat after loading \
         it with h5py/mat73"
    )]
    V73 { path: PathBuf },

    #[error("{path} is not a Level-5 MAT file: {reason}")]
    NotLevel5 { path: PathBuf, reason: String },

    #[error("{path}: truncated at {at}: {what} needs {needed} bytes but only {available} remain; the file was cut short (re-copy or re-download it)")]
    Truncated {
        path: PathBuf,
        at: Pos,
        what: String,
        needed: u64,
        available: u64,
    },

    #[error("{path}: malformed {what} at {at}: {detail}")]
    Malformed {
        path: PathBuf,
        at: Pos,
        what: String,
        detail: String,
    },

    #[error("{path}: cannot inflate the compressed element at byte {at}: {detail}")]
    Inflate {
        path: PathBuf,
        at: u64,
        detail: String,
    },

    #[error("{path}: the compressed element at byte {at} inflates to more than {limit} bytes (the reader's limit; raise ReadOptions::max_inflated_bytes if the file is genuine)")]
    TooLarge { path: PathBuf, at: u64, limit: u64 },

    #[error("{path}: arrays nested deeper than {limit} levels at {at}")]
    TooDeep {
        path: PathBuf,
        at: Pos,
        limit: usize,
    },

    #[error("{path}: no variable `{name}`; variables in the file: [{}]", available.join(", "))]
    NoSuchVariable {
        path: PathBuf,
        name: String,
        available: Vec<String>,
    },

    #[error("{path}: `{node}` has no field `{field}`; its fields are: [{}]", available.join(", "))]
    NoSuchField {
        path: PathBuf,
        node: String,
        field: String,
        available: Vec<String>,
    },

    #[error("{path}: `{node}` should be {expected}, but it is {found}")]
    WrongType {
        path: PathBuf,
        node: String,
        expected: String,
        found: String,
    },

    #[error("cannot write variable `{variable}`: {reason}")]
    Unwritable { variable: String, reason: String },

    #[error("cannot write MAT file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
