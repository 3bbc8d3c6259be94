//! Start-up errors: each says what failed and what to do about it.

use std::path::PathBuf;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot load the model from {dir}: {source}")]
    Model { dir: PathBuf, source: models::ModelError },
    #[error("cannot load the wide-field model from {dir} (--wide-model / V1_WIDE_MODEL): {error}. Start without --wide-model to reconstruct the pvc-1 array alone")]
    WideModel { dir: PathBuf, error: models::ModelError },
    #[error("cannot open --device {choice} (V1_DEVICE): {error}")]
    Device { choice: models::DeviceChoice, error: models::ModelError },
    #[error(transparent)]
    Bind(#[from] service_kit::serve::BindError),
    #[error(transparent)]
    Store(#[from] crate::store::ConnectError),
    #[error("internal error while starting: {0}")]
    Internal(String),
}
