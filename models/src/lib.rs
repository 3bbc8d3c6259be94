//! The models of the V1 system, on candle.
//!
//! # Layout
//! - The four networks, one file each: [`image_encoder`], [`waveform_decoder`],
//!   [`waveform_encoder`], [`image_decoder`].
//! - [`pipeline`]: a loaded model, [`V1Model`], with the two paths as functions:
//!   `predict` (image -> response) and `reconstruct` (response -> image).
//! - [`config`]: every hyper-parameter in one TOML file.
//! - [`info`]: what a model knows about its data (channels, lags, crop, statistics).
//! - [`train`]: two-phase training; [`eval`]: the evaluation report; [`ridge`]: the
//!   linear baselines; [`projective`]: each channel's projective field against its
//!   receptive field.

pub mod config;
pub mod conv;
pub mod data;
pub mod device;
pub mod eval;
pub mod error;
pub mod image_decoder;
pub mod image_encoder;
pub mod info;
pub mod parallel;
pub mod pipeline;
pub mod projective;
pub mod recorded;
pub mod ridge;
pub mod testing;
pub mod train;
pub mod waveform_decoder;
pub mod waveform_encoder;

pub use config::{ArchConfig, TrainConfig, TrainPreset, WaveformEncoderKind};
pub use candle_core::Device;
pub use device::DeviceChoice;
pub use error::{ModelError, Result};
pub use info::{ChannelInfo, CropWindow, ModelInfo};
pub use pipeline::{GrayCrop, V1Model};
