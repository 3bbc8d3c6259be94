//! PNG figures for the evaluation report.
//!
//! People judge reconstructions and predictions faster from pictures than from tables,
//! so the report pairs every table with a figure: image grids (target | reconstruction |
//! controls), predicted-vs-measured scatter plots with the identity line, example
//! response traces, bar charts of metric comparisons and 10x10 electrode maps.
//!
//! Rendering is pure Rust: plotters draws into an in-memory RGB buffer with text from
//! DejaVu Sans, which is compiled into the crate (`assets/`, Bitstream Vera licence), so
//! no system font or library is needed at run time; the buffer is written with the
//! `image` crate's PNG encoder. Every function validates its input, writes one PNG and
//! returns the `(width, height)` it wrote.
//!
//! # Layout
//! - [`image_grid`] (`grid.rs`): rows of grayscale images with column titles and row labels.
//! - [`scatter`], [`traces`], [`bar_chart`] (`charts.rs`): x/y charts.
//! - [`heatmap_10x10`] (`heatmap.rs`): a Utah-array style electrode map with a colour bar.
//! - [`rf_coverage`] (`coverage.rs`): receptive fields as circles over a movie frame.

mod charts;
mod coverage;
mod grid;
mod heatmap;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};
use thiserror::Error;

pub use charts::{bar_chart, scatter, traces, CHART_HEIGHT, CHART_WIDTH};
pub use coverage::{rf_coverage, RfCircle};
pub use grid::{image_grid, image_grid_size, MAX_SCALE};
pub use heatmap::{heatmap_10x10, HEATMAP_HEIGHT, HEATMAP_WIDTH};

/// The embedded font: DejaVu Sans (see `assets/README.md` for its licence).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Font family name under which the embedded font is registered with plotters; plotters
/// uses this name for axis labels by default.
pub(crate) const FONT: &str = "sans-serif";

/// Largest figure, in pixels, a function agrees to render (about 190 MB of RGB buffer);
/// anything bigger is almost certainly a wrong `scale` or image size.
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// What went wrong while making a figure.
#[derive(Debug, Error)]
pub enum FigureError {
    /// An input that the figure needs was empty.
    #[error("{figure}: {what} is empty; nothing to draw")]
    Empty {
        /// Which figure function.
        figure: &'static str,
        /// Which input.
        what: &'static str,
    },

    /// Two inputs that pair up have different lengths.
    #[error("{figure}: {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// Which figure function.
        figure: &'static str,
        /// Which input, relative to what.
        what: String,
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },

    /// A value to plot is NaN or infinite.
    #[error(
        "{figure}: {what}[{index}] is {value}, not a finite number; \
         filter non-finite values out before plotting"
    )]
    NonFinite {
        /// Which figure function.
        figure: &'static str,
        /// Which input (series name or argument).
        what: String,
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
    },

    /// The upscaling factor of an image grid is outside 1..=[`MAX_SCALE`].
    #[error("image_grid: scale must be between 1 and {max}, got {got}")]
    InvalidScale {
        /// The scale given.
        got: u32,
        /// The largest allowed scale.
        max: u32,
    },

    /// The figure would be larger than [`MAX_PIXELS`].
    #[error(
        "{figure}: a {width}x{height} figure exceeds the limit of {max_pixels} pixels; \
         use a smaller scale or fewer/smaller images"
    )]
    TooLarge {
        /// Which figure function.
        figure: &'static str,
        /// Width it would have.
        width: u64,
        /// Height it would have.
        height: u64,
        /// The limit.
        max_pixels: u64,
    },

    /// The embedded font could not be loaded (a corrupted build).
    #[error("the embedded DejaVu Sans font could not be parsed; the crate's assets/ are damaged")]
    Font,

    /// plotters failed while drawing.
    #[error("{figure}: drawing failed: {detail}")]
    Render {
        /// Which figure function.
        figure: &'static str,
        /// plotters' description of the failure.
        detail: String,
    },

    /// The PNG could not be written.
    #[error("could not write figure PNG to {}: {source}", path.display())]
    Write {
        /// Destination path.
        path: PathBuf,
        /// The encoder or file-system error.
        #[source]
        source: ::image::ImageError,
    },
}

/// Registers the embedded font with plotters once per process.
fn ensure_font() -> Result<(), FigureError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(FigureError::Font)
    }
}

/// Maps a plotters error into [`FigureError::Render`] for `figure`.
fn render_error<E: Display>(figure: &'static str) -> impl Fn(E) -> FigureError {
    move |e| FigureError::Render {
        figure,
        detail: e.to_string(),
    }
}

/// Checks the size limit and allocates a white RGB buffer.
fn white_buffer(figure: &'static str, width: u64, height: u64) -> Result<Vec<u8>, FigureError> {
    if width == 0 || height == 0 || width * height > MAX_PIXELS {
        return Err(FigureError::TooLarge {
            figure,
            width,
            height,
            max_pixels: MAX_PIXELS,
        });
    }
    Ok(vec![255; (width * height * 3) as usize])
}

/// Encodes an RGB buffer as PNG at `path`.
fn save_png(buffer: Vec<u8>, width: u32, height: u32, path: &Path) -> Result<(), FigureError> {
    let write_error = |source| FigureError::Write {
        path: path.to_path_buf(),
        source,
    };
    let img = ::image::RgbImage::from_raw(width, height, buffer).ok_or_else(|| {
        write_error(::image::ImageError::Parameter(
            ::image::error::ParameterError::from_kind(
                ::image::error::ParameterErrorKind::DimensionMismatch,
            ),
        ))
    })?;
    img.save_with_format(path, ::image::ImageFormat::Png)
        .map_err(write_error)
}

/// Rejects NaN and infinities in a series to plot.
fn check_finite(figure: &'static str, what: &str, values: &[f32]) -> Result<(), FigureError> {
    match values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &v)) => Err(FigureError::NonFinite {
            figure,
            what: what.to_owned(),
            index,
            value: f64::from(v),
        }),
        None => Ok(()),
    }
}

/// A value range padded by `frac` of its span on both sides; a zero span is widened so
/// constant data still gets a usable axis.
fn padded_range(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let span = hi - lo;
    if span.abs() < 1e-12 {
        let half = (lo.abs() * 0.1).max(0.5);
        (lo - half, hi + half)
    } else {
        (lo - span * frac, hi + span * frac)
    }
}

/// Min and max of a non-empty, finite collection.
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// Formats axis tick values over `lo..hi` with as many decimals as the tick spacing
/// needs (about ten ticks), and without the "-0.0" that rounding noise would print.
fn tick_label(v: f64, lo: f64, hi: f64) -> String {
    let step = ((hi - lo) / 10.0).abs().max(1e-12);
    let decimals = (-step.log10()).ceil().clamp(0.0, 6.0) as usize;
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// A rough text width in pixels for DejaVu Sans at `size` px, used to size label areas
/// before drawing (the average advance of DejaVu Sans is about 0.6 em).
fn approx_text_width(text: &str, size: u32) -> u32 {
    (text.chars().count() as f64 * f64::from(size) * 0.62).ceil() as u32
}

/// Ten well-separated colours (the Tableau 10 palette) for multi-series charts.
const SERIES_COLORS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn series_color(i: usize) -> plotters::style::RGBColor {
    let (r, g, b) = SERIES_COLORS[i % SERIES_COLORS.len()];
    plotters::style::RGBColor(r, g, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_range_widens_constant_data() {
        let (lo, hi) = padded_range(2.0, 2.0, 0.05);
        assert!(lo < 2.0 && hi > 2.0);
        let (lo, hi) = padded_range(0.0, 10.0, 0.1);
        assert_eq!((lo, hi), (-1.0, 11.0));
    }

    #[test]
    fn tick_labels_have_sensible_precision() {
        assert_eq!(tick_label(-1e-17, -1.0, 0.2), "0.0");
        assert_eq!(tick_label(0.04, 0.0, 0.18), "0.04");
        assert_eq!(tick_label(120.0, 0.0, 150.0), "120");
    }

    #[test]
    fn oversized_figures_are_refused() {
        assert!(matches!(
            white_buffer("t", 100_000, 100_000),
            Err(FigureError::TooLarge { .. })
        ));
        assert_eq!(white_buffer("t", 2, 3).unwrap().len(), 18);
    }

    #[test]
    fn font_registers() {
        ensure_font().unwrap();
        ensure_font().unwrap();
    }
}
