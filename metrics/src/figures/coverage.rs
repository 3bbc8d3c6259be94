//! Receptive-field coverage: circles over a (dimmed) movie frame, one colour per array.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ensure_font, render_error, save_png, white_buffer, FigureError, FONT};

const FIGURE: &str = "rf_coverage";
/// Pixels of the figure per frame pixel.
const SCALE: u32 = 3;
const TOP: u32 = 56;
const BOTTOM: u32 = 40;

/// Sixteen colours that stay apart from each other and from grey (mostly from Paul Tol's
/// "muted" and "bright" qualitative schemes), one per array; more groups reuse them in turn.
const GROUP_COLORS: [(u8, u8, u8); 16] = [
    (51, 34, 136),
    (136, 204, 238),
    (68, 170, 153),
    (17, 119, 51),
    (153, 153, 51),
    (221, 204, 119),
    (204, 102, 119),
    (136, 34, 85),
    (170, 68, 153),
    (238, 102, 119),
    (34, 136, 51),
    (255, 140, 0),
    (0, 0, 0),
    (140, 86, 40),
    (0, 140, 160),
    (150, 100, 255),
];

fn group_color(group: usize) -> RGBColor {
    let (r, g, b) = GROUP_COLORS[group % GROUP_COLORS.len()];
    RGBColor(r, g, b)
}

/// One receptive field to draw: its centre and radius in frame pixels, and the index of
/// the group (array) it belongs to, which picks its colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfCircle {
    pub center: [f32; 2],
    pub radius: f32,
    pub group: usize,
}

/// Draws `circles` over `frame` (8-bit grey, `width` x `height`, shown at half contrast
/// so that the circles stand out), three figure pixels per frame pixel, with `title`
/// above and `caption` below. Circles may reach past the frame; they are clipped to it.
pub fn rf_coverage(
    frame: &[u8],
    width: u32,
    height: u32,
    circles: &[RfCircle],
    title: &str,
    caption: &str,
    path: &Path,
) -> Result<(u32, u32), FigureError> {
    if frame.is_empty() || width == 0 || height == 0 {
        return Err(FigureError::Empty { figure: FIGURE, what: "frame" });
    }
    let expected = width as usize * height as usize;
    if frame.len() != expected {
        return Err(FigureError::LengthMismatch {
            figure: FIGURE,
            what: format!("frame pixels ({width} x {height})"),
            expected,
            got: frame.len(),
        });
    }
    for (index, c) in circles.iter().enumerate() {
        for v in [c.center[0], c.center[1], c.radius] {
            if !v.is_finite() {
                return Err(FigureError::NonFinite { figure: FIGURE, what: "circles".to_owned(), index, value: f64::from(v) });
            }
        }
    }
    ensure_font()?;
    let (w, h) = (width * SCALE, TOP + height * SCALE + BOTTOM);
    let mut buf = white_buffer(FIGURE, u64::from(w), u64::from(h))?;
    // The frame, dimmed towards mid-grey, straight into the buffer.
    for y in 0..height {
        for x in 0..width {
            let v = 96 + frame[(y * width + x) as usize] / 2;
            for dy in 0..SCALE {
                let row = (TOP + y * SCALE + dy) as usize;
                for dx in 0..SCALE {
                    let i = 3 * (row * w as usize + (x * SCALE + dx) as usize);
                    buf[i..i + 3].copy_from_slice(&[v, v, v]);
                }
            }
        }
    }
    {
        let err = render_error(FIGURE);
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let area = root.margin(TOP, BOTTOM, 0, 0);
        for c in circles {
            let centre = ((c.center[0] * SCALE as f32).round() as i32, (c.center[1] * SCALE as f32).round() as i32);
            let r = (c.radius * SCALE as f32).round().max(1.0) as u32;
            area.draw(&Circle::new(centre, r, group_color(c.group).stroke_width(1))).map_err(&err)?;
            area.draw(&Circle::new(centre, 1, group_color(c.group).filled())).map_err(&err)?;
        }
        // Circles reaching past the frame are cut off by the title and caption bands.
        root.draw(&Rectangle::new([(0, 0), (w as i32, TOP as i32)], WHITE.filled())).map_err(&err)?;
        root.draw(&Rectangle::new([(0, (TOP + height * SCALE) as i32), (w as i32, h as i32)], WHITE.filled())).map_err(&err)?;
        area.draw(&Rectangle::new([(0, 0), ((width * SCALE) as i32 - 1, (height * SCALE) as i32 - 1)], BLACK.stroke_width(1)))
            .map_err(&err)?;
        let text = |size: u32| TextStyle::from((FONT, size).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(title.to_owned(), (w as i32 / 2, TOP as i32 / 2), text(24))).map_err(&err)?;
        root.draw(&Text::new(caption.to_owned(), (w as i32 / 2, (h - BOTTOM / 2) as i32), text(16))).map_err(&err)?;
    }
    save_png(buf, w, h, path)?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_circles_in_their_group_colour_over_the_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cov.png");
        let frame = vec![200u8; 40 * 30];
        let circles = [
            RfCircle { center: [10.0, 10.0], radius: 4.0, group: 0 },
            RfCircle { center: [30.0, 20.0], radius: 6.0, group: 1 },
            RfCircle { center: [20.0, 1.0], radius: 5.0, group: 2 },
        ];
        let (w, h) = rf_coverage(&frame, 40, 30, &circles, "coverage", "2 RFs", &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (w, h));
        // The frame is dimmed: 96 + 200 / 2 = 196 away from the circles.
        assert_eq!(img.get_pixel(3 * 36, TOP + 3 * 3).0, [196, 196, 196]);
        // A point on circle 0's outline carries its colour, one on circle 1's the other.
        let on = |cx: f32, cy: f32, r: f32| {
            let (x, y) = ((cx * 3.0).round() as u32 + (r * 3.0).round() as u32, TOP + (cy * 3.0).round() as u32);
            (x.saturating_sub(1)..=x + 1).map(|x| img.get_pixel(x, y).0).find(|p| p[0] != p[1] || p[1] != p[2])
        };
        let (a, b) = (on(10.0, 10.0, 4.0).expect("outline of circle 0"), on(30.0, 20.0, 6.0).expect("outline of circle 1"));
        assert_ne!(a, b);
        // Nothing spills into the title band above the frame.
        let spill = (0..w).any(|x| img.get_pixel(x, TOP - 2).0 != [255, 255, 255]);
        assert!(!spill, "a circle reached into the title band");
    }

    #[test]
    fn refuses_a_frame_of_the_wrong_size_and_non_finite_circles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cov.png");
        let e = rf_coverage(&[0u8; 10], 4, 4, &[], "t", "c", &path).unwrap_err();
        assert!(matches!(e, FigureError::LengthMismatch { expected: 16, got: 10, .. }), "{e}");
        let bad = [RfCircle { center: [f32::NAN, 1.0], radius: 1.0, group: 0 }];
        assert!(matches!(rf_coverage(&[0u8; 16], 4, 4, &bad, "t", "c", &path).unwrap_err(), FigureError::NonFinite { .. }));
        assert!(!path.exists());
    }
}
