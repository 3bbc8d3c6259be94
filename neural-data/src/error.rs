//! The error of the dataset builder and cache: each variant says what was wrong, where,
//! and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: no pvc-1 tree found (expected a `crcns-ringach-data/` folder with `movie_frames/` and `neurodata/`). Create the simulated default with `v1 simulate --out {path}`, or point --data at the folder that holds a downloaded pvc-1")]
    NoTree { path: PathBuf },
    #[error("{0}")]
    Tree(String),
    #[error("the dataset has no usable movie segments after {stage}: {detail}")]
    Empty { stage: &'static str, detail: String },
    #[error("build config: {0}")]
    Config(String),
    #[error("cache {path}: {message}. Delete it and run `v1 build` again")]
    Cache { path: PathBuf, message: String },
    #[error("ground truth {path}: {message}")]
    GroundTruth { path: PathBuf, message: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{path}: cannot decode image: {message}")]
    Image { path: PathBuf, message: String },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DataError {
    let context = context.into();
    move |source| DataError::Io { context, source }
}
