//! Evaluation metrics and report figures for the V1 encoding and reconstruction models.
//!
//! The crate works on plain slices and a small image type, with no dependency on the
//! network code, so every model, the CLI and the services score results the same way
//! and the definitions can be checked in isolation against reference values
//! (`tests/vectors/`, produced with scikit-image and numpy).
//!
//! # Layout
//! - [`image`]: [`GrayImageF32`] and the reconstruction metrics MSE, PSNR, SSIM and
//!   PixCorr, singly and over a batch ([`evaluate_reconstructions`]).
//! - [`identification`]: 2-way identification with any similarity, pixel correlation by
//!   default.
//! - [`response`]: encoding metrics on a [`TrialMatrix`] (stimuli x repeats) and a
//!   prediction: Pearson r, noise and total variance, FEV, FEVE (with the FEV > 0.15
//!   filter), CCnorm, correlation to the trial average.
//! - [`figures`]: PNG figures for the evaluation report (image grids, scatter with the
//!   identity line, response traces, bar charts, 10x10 electrode heatmaps), rendered in
//!   pure Rust with an embedded font.
//! - [`MetricError`]: the one error type of the metrics.
//!
//! All statistics are accumulated in f64; inputs may be f32 or f64.

mod error;
pub mod figures;
pub mod identification;
pub mod image;
pub mod response;
mod stats;

pub use self::image::{
    evaluate_reconstructions, image_metrics, mse, pixcorr, psnr, psnr_from_mse, ssim, GrayImageF32,
    ImageBatchMetrics, ImageMetrics,
};
pub use error::MetricError;
pub use identification::{two_way_identification, two_way_identification_pixcorr, Identification};
pub use response::{
    ccnorm, correlation_to_average, electrode_metrics, fev, feve, is_reliable, max_r2, noise_variance,
    normalised_correlation, pearson_r, signal_power, summarize_electrodes, total_variance, ElectrodeMetrics,
    ResponseSummary, TrialMatrix, FEV_THRESHOLD,
};
pub use stats::DENOMINATOR_EPSILON;
