//! Errors: [`StartError`] (start-up: what failed and what to do) and [`FrameError`] (one
//! frame could not be simulated; each maps to a wire error code).

use std::path::PathBuf;

use shared_protocol::{ErrorCode, ProtocolError};

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot load the model from {dir}: {source}")]
    Model { dir: PathBuf, source: models::ModelError },
    #[error("cannot load the wide-field model from {dir} (--wide-model / V1_WIDE_MODEL): {error}. Start without --wide-model to simulate the pvc-1 array alone")]
    WideModel { dir: PathBuf, error: models::ModelError },
    #[error("cannot load recorded responses from the data root {dir} (--data / V1_DATA): {source}. Start without --data to serve client images only")]
    Data { dir: PathBuf, source: models::ModelError },
    #[error("cannot use the image folder {dir} (--images / V1_IMAGES): {message}")]
    Images { dir: PathBuf, message: String },
    #[error("cannot open --device {choice} (V1_DEVICE): {error}")]
    Device { choice: models::DeviceChoice, error: models::ModelError },
    #[error(transparent)]
    Bind(#[from] service_kit::serve::BindError),
}

/// Why one frame could not be simulated.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("{field} is {width}x{height} pixels; at most {max}x{max} are accepted (the service's --max-image-side)")]
    ImageTooLarge { field: &'static str, width: u32, height: u32, max: u32 },
    /// Within the side limit but over the pixel budget (`--max-image-pixels`).
    #[error(transparent)]
    ImageCost(shared_protocol::image_limits::ImageError),
    #[error("{field} is not a JPEG or PNG image (its first bytes are {head}); send a JPEG or PNG data URL")]
    NotAnImage { field: &'static str, head: String },
    #[error("{field} could not be decoded as an image: {message}")]
    Decode { field: &'static str, message: String },
    #[error("the model failed on this frame: {0}")]
    Model(#[from] models::ModelError),
    #[error("{0}")]
    Unavailable(String),
    #[error("the worker running this frame failed: {0}")]
    Internal(String),
}

impl From<shared_protocol::image_limits::ImageError> for FrameError {
    fn from(e: shared_protocol::image_limits::ImageError) -> Self {
        use shared_protocol::image_limits::ImageError;
        match e {
            ImageError::TooLarge { field, width, height, max } => FrameError::ImageTooLarge { field, width, height, max },
            ImageError::NotAnImage { field, head } => FrameError::NotAnImage { field, head },
            ImageError::Decode { field, message } => FrameError::Decode { field, message },
            cost @ ImageError::TooManyPixels { .. } => FrameError::ImageCost(cost),
        }
    }
}

impl FrameError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::Protocol(p) => p.code(),
            FrameError::ImageTooLarge { .. } | FrameError::ImageCost(_) => ErrorCode::TooLarge,
            FrameError::NotAnImage { .. } | FrameError::Decode { .. } => ErrorCode::BadImage,
            FrameError::Model(models::ModelError::ImageSize { .. }) => ErrorCode::TooLarge,
            FrameError::Model(_) | FrameError::Internal(_) => ErrorCode::Internal,
            FrameError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}
