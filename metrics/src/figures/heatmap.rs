//! 10x10 electrode maps, laid out like the Utah array that pvc-1 recordings come from,
//! for per-electrode metrics (r, FEVE, firing rate) at their array positions.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ensure_font, min_max, render_error, save_png, white_buffer, FigureError, FONT};

/// Width of a heatmap figure in pixels.
pub const HEATMAP_WIDTH: u32 = 800;
/// Height of a heatmap figure in pixels.
pub const HEATMAP_HEIGHT: u32 = 750;

const FIGURE: &str = "heatmap_10x10";
const SIDE: usize = 10;
const CELL: i32 = 56;
const GRID_X: i32 = 60;
const GRID_Y: i32 = 112;
const BAR_X: i32 = GRID_X + CELL * SIDE as i32 + 40;
const BAR_W: i32 = 30;
const EMPTY_FILL: RGBColor = RGBColor(222, 222, 222);
const EMPTY_MARK: RGBColor = RGBColor(160, 160, 160);

/// Formats a value with precision suited to the range of the map.
fn format_value(v: f64, magnitude: f64) -> String {
    if magnitude >= 100.0 {
        format!("{v:.0}")
    } else if magnitude >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Writes a 10x10 map of per-electrode values to `path` as PNG.
///
/// `values[row * 10 + col]` is drawn at that row (row 0 at the top) and column (column 0
/// at the left), coloured with viridis between the smallest and largest value and printed
/// in the cell. `None` marks a position without an electrode (or without a value): it is
/// drawn grey and crossed out. A map with no values at all is still drawn, all grey.
pub fn heatmap_10x10(
    values: &[Option<f32>; 100],
    title: &str,
    path: &Path,
) -> Result<(u32, u32), FigureError> {
    for (index, v) in values.iter().enumerate() {
        if let Some(v) = v.filter(|v| !v.is_finite()) {
            return Err(FigureError::NonFinite {
                figure: FIGURE,
                what: "values".to_owned(),
                index,
                value: f64::from(v),
            });
        }
    }
    ensure_font()?;
    let present: Vec<f64> = values.iter().flatten().map(|&v| f64::from(v)).collect();
    let (lo, hi) = if present.is_empty() {
        (0.0, 1.0)
    } else {
        min_max(present.iter().copied())
    };
    let (lo, hi) = if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let magnitude = lo.abs().max(hi.abs());
    let norm = |v: f64| ((v - lo) / (hi - lo)).clamp(0.0, 1.0) as f32;

    let (w, h) = (HEATMAP_WIDTH, HEATMAP_HEIGHT);
    let mut buf = white_buffer(FIGURE, u64::from(w), u64::from(h))?;
    {
        let err = render_error(FIGURE);
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let text = |size: u32, h_pos: HPos| {
            TextStyle::from((FONT, size).into_font())
                .color(&BLACK)
                .pos(Pos::new(h_pos, VPos::Center))
        };
        root.draw(&Text::new(
            title.to_owned(),
            (w as i32 / 2, 30),
            text(26, HPos::Center),
        ))
        .map_err(&err)?;
        root.draw(&Text::new(
            "column".to_owned(),
            (GRID_X + CELL * 5, GRID_Y - 44),
            text(15, HPos::Center),
        ))
        .map_err(&err)?;

        for i in 0..SIDE as i32 {
            let centre = i * CELL + CELL / 2;
            root.draw(&Text::new(
                i.to_string(),
                (GRID_X + centre, GRID_Y - 18),
                text(15, HPos::Center),
            ))
            .map_err(&err)?;
            root.draw(&Text::new(
                i.to_string(),
                (GRID_X - 12, GRID_Y + centre),
                text(15, HPos::Right),
            ))
            .map_err(&err)?;
        }
        root.draw(&Text::new(
            "row".to_owned(),
            (GRID_X - 12, GRID_Y - 18),
            text(15, HPos::Right),
        ))
        .map_err(&err)?;

        for (index, value) in values.iter().enumerate() {
            let (row, col) = ((index / SIDE) as i32, (index % SIDE) as i32);
            let x0 = GRID_X + col * CELL;
            let y0 = GRID_Y + row * CELL;
            let inner = [(x0 + 1, y0 + 1), (x0 + CELL - 1, y0 + CELL - 1)];
            match value {
                Some(v) => {
                    let v = f64::from(*v);
                    let c = ViridisRGB.get_color_normalized(norm(v), 0.0, 1.0);
                    root.draw(&Rectangle::new(inner, c.filled()))
                        .map_err(&err)?;
                    let luminance =
                        0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
                    let ink = if luminance < 140.0 { WHITE } else { BLACK };
                    root.draw(&Text::new(
                        format_value(v, magnitude),
                        (x0 + CELL / 2, y0 + CELL / 2),
                        TextStyle::from((FONT, 14).into_font())
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ))
                    .map_err(&err)?;
                }
                None => {
                    root.draw(&Rectangle::new(inner, EMPTY_FILL.filled()))
                        .map_err(&err)?;
                    let (a, b) = (inner[0], inner[1]);
                    let s = EMPTY_MARK.stroke_width(1);
                    root.draw(&PathElement::new([a, b], s)).map_err(&err)?;
                    root.draw(&PathElement::new([(a.0, b.1), (b.0, a.1)], s))
                        .map_err(&err)?;
                }
            }
        }

        // Colour bar: top = largest value.
        let bar_h = CELL * SIDE as i32;
        for y in 0..bar_h {
            let t = 1.0 - y as f32 / (bar_h - 1) as f32;
            let c = ViridisRGB.get_color_normalized(t, 0.0, 1.0);
            root.draw(&Rectangle::new(
                [(BAR_X, GRID_Y + y), (BAR_X + BAR_W, GRID_Y + y + 1)],
                c.filled(),
            ))
            .map_err(&err)?;
        }
        root.draw(&Rectangle::new(
            [(BAR_X, GRID_Y), (BAR_X + BAR_W, GRID_Y + bar_h)],
            BLACK.stroke_width(1),
        ))
        .map_err(&err)?;
        for k in 0..=4 {
            let frac = f64::from(k) / 4.0;
            let v = hi - frac * (hi - lo);
            let y = GRID_Y + (frac * f64::from(bar_h - 1)).round() as i32;
            root.draw(&PathElement::new(
                [(BAR_X + BAR_W, y), (BAR_X + BAR_W + 5, y)],
                BLACK.stroke_width(1),
            ))
            .map_err(&err)?;
            root.draw(&Text::new(
                format_value(v, magnitude),
                (BAR_X + BAR_W + 9, y),
                text(14, HPos::Left),
            ))
            .map_err(&err)?;
        }

        let legend = if present.is_empty() {
            "no values: every position is empty (grey)".to_owned()
        } else {
            format!(
                "{} electrodes with a value; grey crossed cells have none",
                present.len()
            )
        };
        root.draw(&Text::new(
            legend,
            (GRID_X + CELL * 5, GRID_Y + bar_h + 28),
            text(15, HPos::Center),
        ))
        .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    save_png(buf, w, h, path)?;
    Ok((w, h))
}
