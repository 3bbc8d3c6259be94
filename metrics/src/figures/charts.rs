//! x/y charts: predicted-vs-measured scatter plots, response traces and bar charts.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    approx_text_width, check_finite, ensure_font, min_max, padded_range, render_error, save_png,
    series_color, tick_label, white_buffer, FigureError, FONT,
};
use crate::stats::pearson;

/// Width of every chart in pixels.
pub const CHART_WIDTH: u32 = 900;
/// Height of every chart in pixels.
pub const CHART_HEIGHT: u32 = 600;

const TITLE_FONT: u32 = 26;
const AXIS_DESC_FONT: u32 = 19;
const TICK_FONT: u32 = 15;
const LEGEND_FONT: u32 = 16;

/// Scatter plot of `y` against `x` with the identity line y = x, for predicted vs
/// measured values (one point per electrode or stimulus) or one metric against another.
/// Both axes share one range so that the identity line is the diagonal; the legend gives
/// the number of points and their Pearson r.
pub fn scatter(
    x: &[f32],
    y: &[f32],
    title: &str,
    x_label: &str,
    y_label: &str,
    path: &Path,
) -> Result<(u32, u32), FigureError> {
    const FIGURE: &str = "scatter";
    if x.is_empty() {
        return Err(FigureError::Empty {
            figure: FIGURE,
            what: "x",
        });
    }
    if x.len() != y.len() {
        return Err(FigureError::LengthMismatch {
            figure: FIGURE,
            what: "y (one per x)".to_owned(),
            expected: x.len(),
            got: y.len(),
        });
    }
    check_finite(FIGURE, "x", x)?;
    check_finite(FIGURE, "y", y)?;
    ensure_font()?;

    let xs: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let ys: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    let (lo, hi) = min_max(xs.iter().chain(&ys).copied());
    let (lo, hi) = padded_range(lo, hi, 0.05);
    let r = pearson(&xs, &ys);

    let (w, h) = (CHART_WIDTH, CHART_HEIGHT);
    let mut buf = white_buffer(FIGURE, u64::from(w), u64::from(h))?;
    {
        let err = render_error(FIGURE);
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, TITLE_FONT))
            .margin(18)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(&err)?;
        let ticks = |v: &f64| tick_label(*v, lo, hi);
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&ticks)
            .y_label_formatter(&ticks)
            .axis_desc_style((FONT, AXIS_DESC_FONT))
            .label_style((FONT, TICK_FONT))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(&err)?;
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], grey.stroke_width(2)))
            .map_err(&err)?
            .label("identity (y = x)")
            .legend(move |(lx, ly)| {
                PathElement::new([(lx, ly), (lx + 20, ly)], grey.stroke_width(2))
            });
        let blue = series_color(0);
        chart
            .draw_series(
                xs.iter()
                    .zip(&ys)
                    .map(|(&a, &b)| Circle::new((a, b), 4, blue.mix(0.65).filled())),
            )
            .map_err(&err)?
            .label(format!("points (n = {}, r = {r:.3})", xs.len()))
            .legend(move |(lx, ly)| Circle::new((lx + 10, ly), 4, blue.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, LEGEND_FONT))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    save_png(buf, w, h, path)?;
    Ok((w, h))
}

/// Line chart of response traces over time bins, one coloured line per `(label, values)`
/// series, with a legend. Series may differ in length; the x axis spans the longest.
pub fn traces(
    series: &[(&str, &[f32])],
    title: &str,
    path: &Path,
) -> Result<(u32, u32), FigureError> {
    const FIGURE: &str = "traces";
    if series.is_empty() {
        return Err(FigureError::Empty {
            figure: FIGURE,
            what: "series",
        });
    }
    for (label, values) in series {
        if values.is_empty() {
            return Err(FigureError::Empty {
                figure: FIGURE,
                what: "a series' values",
            });
        }
        check_finite(FIGURE, label, values)?;
    }
    ensure_font()?;

    let len = series.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
    let (lo, hi) = min_max(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().map(|&x| f64::from(x))),
    );
    let (lo, hi) = padded_range(lo, hi, 0.08);
    let x_hi = (len.max(2) - 1) as f64;

    let (w, h) = (CHART_WIDTH, CHART_HEIGHT);
    let mut buf = white_buffer(FIGURE, u64::from(w), u64::from(h))?;
    {
        let err = render_error(FIGURE);
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, TITLE_FONT))
            .margin(18)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(0.0..x_hi, lo..hi)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("time bin")
            .y_desc("response")
            .x_label_formatter(&|t: &f64| format!("{t:.0}"))
            .y_label_formatter(&|v: &f64| tick_label(*v, lo, hi))
            .axis_desc_style((FONT, AXIS_DESC_FONT))
            .label_style((FONT, TICK_FONT))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(&err)?;
        for (i, (label, values)) in series.iter().enumerate() {
            let color = series_color(i);
            chart
                .draw_series(LineSeries::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(t, &v)| (t as f64, f64::from(v))),
                    color.stroke_width(2),
                ))
                .map_err(&err)?
                .label(*label)
                .legend(move |(lx, ly)| {
                    PathElement::new([(lx, ly), (lx + 20, ly)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, LEGEND_FONT))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    save_png(buf, w, h, path)?;
    Ok((w, h))
}

/// Horizontal bar chart, one bar per label (first label on top), each bar annotated with
/// its value. Horizontal bars keep long labels such as "decoder (shuffled responses)"
/// readable. Negative values (e.g. SSIM) extend to the left of a zero line.
pub fn bar_chart(
    labels: &[&str],
    values: &[f32],
    title: &str,
    path: &Path,
) -> Result<(u32, u32), FigureError> {
    const FIGURE: &str = "bar_chart";
    if labels.is_empty() {
        return Err(FigureError::Empty {
            figure: FIGURE,
            what: "labels",
        });
    }
    if labels.len() != values.len() {
        return Err(FigureError::LengthMismatch {
            figure: FIGURE,
            what: "values (one per label)".to_owned(),
            expected: labels.len(),
            got: values.len(),
        });
    }
    check_finite(FIGURE, "values", values)?;
    ensure_font()?;

    let n = labels.len();
    let vals: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let (lo, hi) = min_max(vals.iter().copied());
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let span = if hi - lo > 1e-12 { hi - lo } else { 1.0 };
    // Room beyond the longest bars for the value annotation.
    let x_lo = if lo < 0.0 { lo - 0.18 * span } else { 0.0 };
    let x_hi = if hi > 0.0 || lo >= 0.0 {
        hi + 0.18 * span
    } else {
        0.0
    };

    let label_area = labels
        .iter()
        .map(|l| approx_text_width(l, TICK_FONT + 1) + 16)
        .max()
        .unwrap_or(60)
        .clamp(60, CHART_WIDTH * 45 / 100);
    let (w, h) = (CHART_WIDTH, CHART_HEIGHT);
    let mut buf = white_buffer(FIGURE, u64::from(w), u64::from(h))?;
    {
        let err = render_error(FIGURE);
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, TITLE_FONT))
            .margin(18)
            .x_label_area_size(45)
            .y_label_area_size(label_area)
            .build_cartesian_2d(x_lo..x_hi, 0.0..n as f64)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|v: &f64| tick_label(*v, x_lo, x_hi))
            .label_style((FONT, TICK_FONT))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(&err)?;
        // Bar i is drawn in the band [n - 1 - i, n - i], so the first label is on top.
        let band = |i: usize| (n - 1 - i) as f64;
        let color = series_color(0);
        let bar_margin = 0.18;
        chart
            .draw_series(vals.iter().enumerate().map(|(i, &v)| {
                Rectangle::new(
                    [(0.0, band(i) + bar_margin), (v, band(i) + 1.0 - bar_margin)],
                    color.filled(),
                )
            }))
            .map_err(&err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (0.0, n as f64)],
                BLACK.stroke_width(1),
            ))
            .map_err(&err)?;
        let pad = 0.01 * span;
        let annotation = |v: f64| {
            let anchor = if v >= 0.0 { HPos::Left } else { HPos::Right };
            TextStyle::from((FONT, TICK_FONT).into_font())
                .color(&BLACK)
                .pos(Pos::new(anchor, VPos::Center))
        };
        chart
            .draw_series(vals.iter().enumerate().map(|(i, &v)| {
                let x = if v >= 0.0 { v + pad } else { v - pad };
                Text::new(format!("{v:.3}"), (x, band(i) + 0.5), annotation(v))
            }))
            .map_err(&err)?;
        // Category labels sit in the label area left of the plot, which chart
        // coordinates cannot reach: place them in pixels next to each band's centre.
        let label_style = TextStyle::from((FONT, TICK_FONT + 1).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        let left = chart.plotting_area().get_pixel_range().0.start;
        for (i, label) in labels.iter().enumerate() {
            let (_, y) = chart.backend_coord(&(x_lo, band(i) + 0.5));
            root.draw(&Text::new(
                (*label).to_owned(),
                (left - 8, y),
                label_style.clone(),
            ))
            .map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    save_png(buf, w, h, path)?;
    Ok((w, h))
}
