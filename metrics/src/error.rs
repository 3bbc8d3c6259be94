//! The error type of every metric in the crate.
//!
//! Metrics are computed on data that comes from outside (model outputs, recordings), so
//! every shape or value problem is reported as a structured variant that names the input,
//! what was expected and what came, instead of a panic or a silent NaN.

use thiserror::Error;

/// What went wrong while computing a metric.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricError {
    /// Two inputs that must pair up element by element have different lengths.
    #[error(
        "{what}: expected {expected} values to pair with the other input, got {got}; \
         pass inputs of equal length"
    )]
    LengthMismatch {
        /// Which input (or pair of inputs) disagreed.
        what: &'static str,
        /// The length the other input has.
        expected: usize,
        /// The length this input has.
        got: usize,
    },

    /// An input had no values at all, so no statistic is defined.
    #[error("{what}: input is empty; at least one value is needed")]
    Empty {
        /// Which input was empty.
        what: &'static str,
    },

    /// An input held NaN or an infinity.
    #[error(
        "{what}: value at index {index} is {value}, not a finite number; \
         remove or repair non-finite values before computing metrics"
    )]
    NonFinite {
        /// Which input held the value.
        what: &'static str,
        /// Position of the first non-finite value (flattened, row-major).
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// A pixel buffer does not have `width * height` values.
    #[error("image of {width}x{height}: expected {expected} pixels (width * height), got {got}")]
    PixelCount {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// `width * height`.
        expected: usize,
        /// Length of the pixel buffer.
        got: usize,
    },

    /// Two images that are compared pixel by pixel have different sizes.
    #[error(
        "{what}: image sizes differ, expected {}x{} (the target), got {}x{}; \
         resize or crop both to the same resolution first",
        expected.0, expected.1, got.0, got.1
    )]
    SizeMismatch {
        /// Which comparison (and at which position in a batch, if any).
        what: String,
        /// Width and height of the target.
        expected: (u32, u32),
        /// Width and height of the reconstruction.
        got: (u32, u32),
    },

    /// SSIM needs at least one full 11x11 Gaussian window inside the image.
    #[error(
        "SSIM needs images of at least {min}x{min} pixels (one full Gaussian window), \
         got {width}x{height}"
    )]
    TooSmallForSsim {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
        /// Smallest allowed side (the window size).
        min: u32,
    },

    /// A crop rectangle reaches outside the image.
    #[error(
        "crop {crop_width}x{crop_height} at ({x}, {y}) does not fit inside the \
         {width}x{height} image; it must have a positive size and lie inside the image"
    )]
    CropOutOfBounds {
        /// Left edge of the crop.
        x: u32,
        /// Top edge of the crop.
        y: u32,
        /// Crop width.
        crop_width: u32,
        /// Crop height.
        crop_height: u32,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },

    /// 2-way identification compares each reconstruction with the *other* targets, so it
    /// needs at least two pairs.
    #[error("2-way identification needs at least 2 target/reconstruction pairs, got {got}")]
    TooFewForIdentification {
        /// Number of pairs given.
        got: usize,
    },

    /// A similarity function returned NaN or an infinity, so no ranking is defined.
    #[error(
        "similarity of reconstruction {reconstruction} to target {target} is {value}, \
         not a finite number; the similarity function must return finite values"
    )]
    NonFiniteSimilarity {
        /// Index of the target.
        target: usize,
        /// Index of the reconstruction.
        reconstruction: usize,
        /// The value returned.
        value: f64,
    },

    /// A trial matrix row has a different number of repeats than the first row.
    #[error(
        "trial matrix row {row} (stimulus {row}) has {got} repeats, expected {expected} \
         like row 0; every stimulus needs the same number of repeats"
    )]
    RaggedTrials {
        /// Index of the offending row.
        row: usize,
        /// Repeats in row 0.
        expected: usize,
        /// Repeats in this row.
        got: usize,
    },

    /// Noise variance (and with it FEV, FEVE, CCnorm) needs repeated trials.
    #[error("trial matrix has {got} repeat(s) per stimulus; noise variance needs at least {min}")]
    TooFewRepeats {
        /// Repeats per stimulus.
        got: usize,
        /// The minimum.
        min: usize,
    },

    /// A variance across stimuli needs more than one stimulus.
    #[error("{what}: needs at least {min} stimuli, got {got}")]
    TooFewStimuli {
        /// Which metric.
        what: &'static str,
        /// Number of stimuli.
        got: usize,
        /// The minimum.
        min: usize,
    },
}
