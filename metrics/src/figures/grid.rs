//! Image grids: one row per test image, one column per source (target, reconstruction,
//! controls), upscaled with nearest-neighbour so single pixels stay visible.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    approx_text_width, ensure_font, render_error, save_png, white_buffer, FigureError, FONT,
};
use crate::image::GrayImageF32;

/// Largest nearest-neighbour upscaling factor accepted by [`image_grid`].
pub const MAX_SCALE: u32 = 32;

const FIGURE: &str = "image_grid";
/// Gap between cells and around the figure, in pixels.
const PAD: u32 = 12;
/// Font size of column titles and row labels, in pixels.
const LABEL_FONT: u32 = 18;
/// Height of the column-title band.
const TITLE_BAND: u32 = 34;
/// Grey of the one-pixel frame drawn around each image, so a bright image edge is still
/// visible against the white background.
const FRAME: u8 = 160;

/// Where everything goes; computed once, used for both the size query and the drawing.
struct Layout {
    width: u32,
    height: u32,
    col_x: Vec<u32>,
    col_w: Vec<u32>,
    row_y: Vec<u32>,
    row_h: Vec<u32>,
    label_w: u32,
    title_h: u32,
}

fn layout(
    rows: &[Vec<GrayImageF32>],
    col_titles: &[&str],
    row_labels: &[&str],
    scale: u32,
) -> Result<Layout, FigureError> {
    if !(1..=MAX_SCALE).contains(&scale) {
        return Err(FigureError::InvalidScale {
            got: scale,
            max: MAX_SCALE,
        });
    }
    let Some(first) = rows.first() else {
        return Err(FigureError::Empty {
            figure: FIGURE,
            what: "rows",
        });
    };
    let n_cols = first.len();
    if n_cols == 0 {
        return Err(FigureError::Empty {
            figure: FIGURE,
            what: "row 0",
        });
    }
    for (i, row) in rows.iter().enumerate() {
        if row.len() != n_cols {
            return Err(FigureError::LengthMismatch {
                figure: FIGURE,
                what: format!("images in row {i} (same count as row 0)"),
                expected: n_cols,
                got: row.len(),
            });
        }
    }
    if !col_titles.is_empty() && col_titles.len() != n_cols {
        return Err(FigureError::LengthMismatch {
            figure: FIGURE,
            what: "column titles (one per column, or none)".to_owned(),
            expected: n_cols,
            got: col_titles.len(),
        });
    }
    if !row_labels.is_empty() && row_labels.len() != rows.len() {
        return Err(FigureError::LengthMismatch {
            figure: FIGURE,
            what: "row labels (one per row, or none)".to_owned(),
            expected: rows.len(),
            got: row_labels.len(),
        });
    }

    let s = u64::from(scale);
    let too_large = |width: u64, height: u64| FigureError::TooLarge {
        figure: FIGURE,
        width,
        height,
        max_pixels: super::MAX_PIXELS,
    };
    let mut col_w = Vec::with_capacity(n_cols);
    for c in 0..n_cols {
        let img_w = rows
            .iter()
            .map(|r| u64::from(r[c].width()))
            .max()
            .unwrap_or(1)
            * s;
        let title_w = col_titles
            .get(c)
            .map_or(0, |t| u64::from(approx_text_width(t, LABEL_FONT)) + 8);
        let w = img_w.max(title_w);
        col_w.push(u32::try_from(w).map_err(|_| too_large(w, 0))?);
    }
    let mut row_h = Vec::with_capacity(rows.len());
    for row in rows {
        let h = row.iter().map(|i| u64::from(i.height())).max().unwrap_or(1) * s;
        row_h.push(u32::try_from(h).map_err(|_| too_large(0, h))?);
    }
    let label_w = row_labels
        .iter()
        .map(|l| approx_text_width(l, LABEL_FONT) + PAD)
        .max()
        .unwrap_or(0)
        .min(400);
    let title_h = if col_titles.is_empty() { 0 } else { TITLE_BAND };

    let mut x = u64::from(PAD + label_w);
    let mut col_x = Vec::with_capacity(n_cols);
    for w in &col_w {
        col_x.push(x);
        x += u64::from(*w) + u64::from(PAD);
    }
    let mut y = u64::from(PAD + title_h);
    let mut row_y = Vec::with_capacity(rows.len());
    for h in &row_h {
        row_y.push(y);
        y += u64::from(*h) + u64::from(PAD);
    }
    if x * y > super::MAX_PIXELS {
        return Err(too_large(x, y));
    }
    // Both fit in u32 now: their product is at most MAX_PIXELS.
    let narrow = |v: u64| u32::try_from(v).map_err(|_| too_large(x, y));
    Ok(Layout {
        width: narrow(x)?,
        height: narrow(y)?,
        col_x: col_x.into_iter().map(narrow).collect::<Result<_, _>>()?,
        col_w,
        row_y: row_y.into_iter().map(narrow).collect::<Result<_, _>>()?,
        row_h,
        label_w,
        title_h,
    })
}

/// The `(width, height)` that [`image_grid`] would produce for these inputs, after the
/// same validation.
pub fn image_grid_size(
    rows: &[Vec<GrayImageF32>],
    col_titles: &[&str],
    row_labels: &[&str],
    scale: u32,
) -> Result<(u32, u32), FigureError> {
    layout(rows, col_titles, row_labels, scale).map(|l| (l.width, l.height))
}

/// Writes a grid of grayscale images to `path` as PNG.
///
/// `rows[r][c]` is drawn in row `r`, column `c`, upscaled `scale` times (1..=32) with
/// nearest-neighbour sampling and clamped to [0, 1] for display. Every row needs the same
/// number of images; images in a column may differ in size (each is centred in its cell).
/// `col_titles` (one per column) and `row_labels` (one per row) may be empty to omit them.
pub fn image_grid(
    rows: &[Vec<GrayImageF32>],
    col_titles: &[&str],
    row_labels: &[&str],
    scale: u32,
    path: &Path,
) -> Result<(u32, u32), FigureError> {
    let l = layout(rows, col_titles, row_labels, scale)?;
    ensure_font()?;
    let mut buf = white_buffer(FIGURE, u64::from(l.width), u64::from(l.height))?;
    let stride = l.width as usize * 3;

    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate() {
            let (iw, ih) = (img.width() * scale, img.height() * scale);
            let x0 = (l.col_x[c] + (l.col_w[c] - iw) / 2) as usize;
            let y0 = (l.row_y[r] + (l.row_h[r] - ih) / 2) as usize;
            // Frame one pixel outside the image (the PAD gap always has room for it).
            for yy in y0 - 1..=y0 + ih as usize {
                for xx in [x0 - 1, x0 + iw as usize] {
                    buf[yy * stride + xx * 3..yy * stride + xx * 3 + 3].fill(FRAME);
                }
            }
            for xx in x0 - 1..=x0 + iw as usize {
                for yy in [y0 - 1, y0 + ih as usize] {
                    buf[yy * stride + xx * 3..yy * stride + xx * 3 + 3].fill(FRAME);
                }
            }
            for py in 0..ih as usize {
                let src_y = py / scale as usize;
                let dst = (y0 + py) * stride;
                for px in 0..iw as usize {
                    let v = img.pixels()[src_y * img.width() as usize + px / scale as usize];
                    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    let at = dst + (x0 + px) * 3;
                    buf[at..at + 3].fill(g);
                }
            }
        }
    }

    {
        let root = BitMapBackend::with_buffer(&mut buf, (l.width, l.height)).into_drawing_area();
        let centred = TextStyle::from((FONT, LABEL_FONT).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        for (c, title) in col_titles.iter().enumerate() {
            let x = (l.col_x[c] + l.col_w[c] / 2) as i32;
            let y = (PAD + l.title_h / 2) as i32;
            root.draw(&Text::new(title.to_string(), (x, y), centred.clone()))
                .map_err(render_error(FIGURE))?;
        }
        let right = TextStyle::from((FONT, LABEL_FONT).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (r, label) in row_labels.iter().enumerate() {
            let x = (PAD + l.label_w - PAD / 2) as i32;
            let y = (l.row_y[r] + l.row_h[r] / 2) as i32;
            root.draw(&Text::new(label.to_string(), (x, y), right.clone()))
                .map_err(render_error(FIGURE))?;
        }
        root.present().map_err(render_error(FIGURE))?;
    }
    save_png(buf, l.width, l.height, path)?;
    Ok((l.width, l.height))
}
