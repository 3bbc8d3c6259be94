//! Errors of the models crate: each says what was wrong, where, and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model directory {dir}: {what}. Train one with `v1 train`, or point --model at the shipped `models/default`")]
    MissingFile { dir: PathBuf, what: String },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("weights in {path} do not match model.json: {message}. The weights and model.json must come from the same `v1 train` run")]
    WeightsMismatch { path: PathBuf, message: String },
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("response has {got} values; the model expects {expected} ({lags} lags x {channels} channels)")]
    ResponseLength { got: usize, expected: usize, lags: usize, channels: usize },
    #[error("response value {index} is not finite ({value})")]
    NonFinite { index: usize, value: f32 },
    #[error("image is {width}x{height}; it must be at least 1x1 and at most {max}x{max}")]
    ImageSize { width: u32, height: u32, max: u32 },
    #[error("{0}")]
    Data(#[from] neural_data::DataError),
    #[error("numerical backend: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ModelError {
    let context = context.into();
    move |source| ModelError::Io { context, source }
}
