//! The simulator's error: each variant says what was wrong, where, and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulation config: field `{field}`: {message}")]
    Config { field: String, message: String },

    #[error("{path} already holds a complete simulated dataset (ground_truth/COMPLETE exists). Set `overwrite` (`v1 simulate --overwrite`) to replace it, or choose another output folder")]
    AlreadyExists { path: PathBuf },

    #[error("{path} exists but is not a complete simulated dataset (no ground_truth/COMPLETE beside it); it may be a downloaded pvc-1 tree or an interrupted run. Refusing to touch it: remove it, choose another output folder, or set `overwrite` to replace it")]
    ForeignData { path: PathBuf },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("images folder {dir}: {source}. Pass an existing folder of .jpg/.jpeg/.png photographs, or leave images_dir unset for procedural dead-leaves movies")]
    ImagesDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("images folder {dir} has no readable images ({candidates} files named .jpg/.jpeg/.png{detail}). Add photographs there, or leave images_dir unset for procedural dead-leaves movies")]
    NoImages { dir: PathBuf, candidates: usize, detail: String },

    #[error("{path}: cannot decode image: {message}. Remove or replace the file")]
    Image { path: PathBuf, message: String },

    #[error("writing {what}: {message}")]
    Write { what: String, message: String },

    #[error("ground truth {path}: {message}")]
    Truth { path: PathBuf, message: String },

    #[error("{path}: the simulated dataset is incomplete (no ground_truth/COMPLETE marker); run `v1 simulate` again with `overwrite`")]
    Incomplete { path: PathBuf },

    #[error("a simulation worker thread stopped unexpectedly: {message}")]
    Worker { message: String },
}

/// Shorthand for `map_err` on I/O results.
pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SimError {
    let path = path.into();
    move |source| SimError::Io { action, path, source }
}
