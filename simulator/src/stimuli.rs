//! Movie frames with natural-image statistics: procedural "dead leaves" scenes, or the
//! user's photographs, turned into 30 Hz movies by camera pans and zooms.
//!
//! Dead leaves (Matheron 1968; Lee, Mumford & Huang 2001, Int J Comput Vis 41:35):
//! opaque shapes stacked front to back until the canvas is covered, with sizes drawn from
//! p(r) ~ r^-3, the scale-invariant law that gives the 1/f^2 power spectrum, sharp edges
//! and occlusions of natural scenes. Each shape carries a 1/f ("fractal") texture, mild
//! shading and a colour with a skewed, roughly log-normal luminance distribution (natural
//! scenes: Frazor & Geisler 2006, Vision Res 46:1585). Movies are made by moving a
//! virtual camera over the scene, plus a few independently moving objects, a cut to a new
//! scene every 3–8 s (as in the commercial clips of pvc-1), and a slight blur of the kind
//! VHS digitisation leaves.
//!
//! Every (movie, segment) has its own seeded stream, so segments can be made in any order.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::error::SimError;
use super::rng::{self, Domain};
use neural_data::pvc1::{FRAME_HEIGHT, FRAME_WIDTH};

const FW: usize = FRAME_WIDTH as usize;
const FH: usize = FRAME_HEIGHT as usize;
/// Dead-leaves canvas: 1.5x the frame, room for pans and zooms.
const CANVAS_W: usize = FW * 3 / 2;
const CANVAS_H: usize = FH * 3 / 2;
/// Photo canvas: photos are resized to cover 1.25x the frame.
const PHOTO_W: u32 = FRAME_WIDTH * 5 / 4;
const PHOTO_H: u32 = FRAME_HEIGHT * 5 / 4;
/// Smallest leaf radius (px): objects down to a few pixels, as in natural movies.
const MIN_LEAF_RADIUS: f64 = 2.5;
/// Colour balance of the scenes: the pvc-1 movies average about RGB (83, 81, 73), warmer
/// than untinted leaves (the leaves' luminance is set separately).
const BASE_TINT: [f32; 3] = [0.83, 0.81, 0.73];
/// Shot length range (frames): a cut every 3–8 s.
const SHOT_FRAMES: [usize; 2] = [90, 240];
/// Blur of every frame (px, Gaussian sigma) for luma and for chroma: see `blur_to_image`.
const LUMA_BLUR_SIGMA: f32 = 0.6;
const CHROMA_BLUR_SIGMA: f32 = 2.0;

/// Where the frames come from.
#[derive(Debug, Clone)]
pub enum StimulusSource {
    /// Procedural dead-leaves scenes (the default).
    DeadLeaves,
    /// The user's photographs: each segment pans and zooms over one of them.
    Photos(Arc<PhotoLibrary>),
}

impl StimulusSource {
    /// The `nframes` frames of one movie segment. `global_index` numbers the segment across
    /// the dataset (used to deal photos out evenly).
    pub fn segment(&self, seed: u64, movie: u16, segment: u16, global_index: usize, nframes: usize) -> Result<Vec<RgbImage>, SimError> {
        let mut rng = rng::stream(seed, Domain::Stimulus, [movie as u64, segment as u64, 0, 0]);
        match self {
            StimulusSource::DeadLeaves => Ok(dead_leaves_movie(&mut rng, nframes)),
            StimulusSource::Photos(lib) => {
                let canvas = lib.canvas(lib.pick(seed, global_index))?;
                let path = CameraPath::draw(&mut rng, canvas.width, canvas.height, nframes);
                Ok((0..nframes).map(|t| render(&canvas, &path, t, &[])).collect())
            }
        }
    }
}

/// The dead-leaves scenes used to calibrate firing rates: same generator, own streams.
pub fn calibration_scenes(seed: u64, scenes: usize, nframes: usize) -> Vec<Vec<RgbImage>> {
    (0..scenes)
        .map(|k| {
            let mut rng = rng::stream(seed, Domain::Calibration, [k as u64, 0, 0, 0]);
            dead_leaves_movie(&mut rng, nframes)
        })
        .collect()
}

/// Frame luminance in [0, 1] (Rec. 601 weights), row-major.
pub fn luminance(img: &RgbImage) -> Vec<f32> {
    img.pixels()
        .map(|p| (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0)
        .collect()
}

// ------------------------------------------------------------------------ canvas

/// An RGB image in [0, 1], row-major, 3 floats per pixel.
#[derive(Debug, Clone)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<f32>,
}

impl Canvas {
    fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let y = y.clamp(0.0, (self.height - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let at = |xx: usize, yy: usize, c: usize| self.rgb[(yy * self.width + xx) * 3 + c];
        let mut out = [0.0; 3];
        for (c, o) in out.iter_mut().enumerate() {
            let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
            let bot = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
            *o = top * (1.0 - fy) + bot * fy;
        }
        out
    }
}

/// Tileable fractal value noise: octaves of bilinearly interpolated random grids with
/// equal variance per octave, which is what a 1/f amplitude spectrum puts in each octave.
#[derive(Debug)]
struct FractalNoise {
    size: usize,
    data: Vec<f32>,
}

impl FractalNoise {
    fn generate(rng: &mut ChaCha8Rng) -> FractalNoise {
        let size = 256usize;
        let mut data = vec![0f32; size * size];
        let mut spacing = 2usize;
        while spacing <= size / 2 {
            let g = size / spacing;
            let grid: Vec<f32> = (0..g * g).map(|_| rng::normal(rng) as f32).collect();
            for y in 0..size {
                let gy = y as f32 / spacing as f32;
                let (y0, fy) = (gy.floor() as usize % g, gy.fract());
                let y1 = (y0 + 1) % g;
                for x in 0..size {
                    let gx = x as f32 / spacing as f32;
                    let (x0, fx) = (gx.floor() as usize % g, gx.fract());
                    let x1 = (x0 + 1) % g;
                    let v = (grid[y0 * g + x0] * (1.0 - fx) + grid[y0 * g + x1] * fx) * (1.0 - fy)
                        + (grid[y1 * g + x0] * (1.0 - fx) + grid[y1 * g + x1] * fx) * fy;
                    data[y * size + x] += v;
                }
            }
            spacing *= 2;
        }
        let n = data.len() as f32;
        let mean = data.iter().sum::<f32>() / n;
        let sd = (data.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt().max(1e-6);
        data.iter_mut().for_each(|v| *v = (*v - mean) / sd);
        FractalNoise { size, data }
    }

    fn at(&self, u: f32, v: f32) -> f32 {
        let s = self.size as f32;
        let (u, v) = (u.rem_euclid(s), v.rem_euclid(s));
        let (x0, y0) = (u as usize % self.size, v as usize % self.size);
        let (x1, y1) = ((x0 + 1) % self.size, (y0 + 1) % self.size);
        let (fx, fy) = (u.fract(), v.fract());
        let d = |x: usize, y: usize| self.data[y * self.size + x];
        (d(x0, y0) * (1.0 - fx) + d(x1, y0) * fx) * (1.0 - fy) + (d(x0, y1) * (1.0 - fx) + d(x1, y1) * fx) * fy
    }
}

#[derive(Debug, Clone, Copy)]
enum ShapeKind {
    Ellipse,
    Rectangle,
}

/// One opaque "leaf": geometry, colour, texture and shading.
#[derive(Debug, Clone)]
struct Leaf {
    kind: ShapeKind,
    center: [f32; 2],
    /// Semi-axes (px) and rotation (rad).
    a: f32,
    b: f32,
    cos: f32,
    sin: f32,
    colour: [f32; 3],
    texture_amp: f32,
    /// Texture coordinates: (u, v) = tex * (x, y) + offset.
    tex: [[f32; 2]; 2],
    tex_offset: [f32; 2],
    /// Shading gradient (relative change per semi-axis).
    shade: [f32; 2],
}

impl Leaf {
    fn draw(rng: &mut ChaCha8Rng, center: [f32; 2], radius: f32, tint: [f32; 3]) -> Leaf {
        let kind = if rng.random::<f32>() < 0.7 { ShapeKind::Ellipse } else { ShapeKind::Rectangle };
        let aspect = rng::log_uniform(rng, 1.0, 3.0) as f32;
        let angle = rng::uniform(rng, 0.0, std::f64::consts::PI) as f32;
        // Luminance: log-normal around 0.28 (mean ~0.32, the pvc-1 movies' ~82 of 255), the
        // skew of natural scenes.
        let lum = ((0.28f64.ln() + 0.55 * rng::normal(rng)).exp()).clamp(0.03, 0.95) as f32;
        let mut colour = [0f32; 3];
        for (c, t) in colour.iter_mut().zip(tint) {
            *c = (t * (0.08 * rng::normal(rng) as f32).exp()).max(0.05);
        }
        let y = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2];
        colour.iter_mut().for_each(|c| *c = (*c * lum / y).clamp(0.0, 1.0));
        // Oriented 1/f texture: a random stretch makes grain, bark and grass-like texture.
        let scale = rng::log_uniform(rng, 0.1, 0.6) as f32;
        let stretch = rng::log_uniform(rng, 1.0, 4.0) as f32;
        let ta = rng::uniform(rng, 0.0, std::f64::consts::PI) as f32;
        let (tc, ts) = (ta.cos(), ta.sin());
        let tex = [[scale * tc, scale * ts], [-scale * stretch * ts, scale * stretch * tc]];
        let texture_amp = 0.25 * rng.random::<f32>().powi(2);
        Leaf {
            kind,
            center,
            a: radius * aspect.sqrt(),
            b: radius / aspect.sqrt(),
            cos: angle.cos(),
            sin: angle.sin(),
            colour,
            texture_amp,
            tex,
            tex_offset: [rng::uniform(rng, 0.0, 256.0) as f32, rng::uniform(rng, 0.0, 256.0) as f32],
            shade: [0.25 * rng::normal(rng) as f32, 0.25 * rng::normal(rng) as f32],
        }
    }

    fn bounding_radius(&self) -> f32 {
        match self.kind {
            ShapeKind::Ellipse => self.a.max(self.b),
            ShapeKind::Rectangle => (self.a * self.a + self.b * self.b).sqrt(),
        }
    }

    /// Shape-local coordinates scaled by the semi-axes, or None when outside.
    fn local(&self, x: f32, y: f32) -> Option<(f32, f32)> {
        let (dx, dy) = (x - self.center[0], y - self.center[1]);
        let u = (dx * self.cos + dy * self.sin) / self.a;
        let v = (-dx * self.sin + dy * self.cos) / self.b;
        let inside = match self.kind {
            ShapeKind::Ellipse => u * u + v * v <= 1.0,
            ShapeKind::Rectangle => u.abs() <= 1.0 && v.abs() <= 1.0,
        };
        inside.then_some((u, v))
    }

    fn colour_at(&self, noise: &FractalNoise, x: f32, y: f32, u: f32, v: f32) -> [f32; 3] {
        let tu = self.tex[0][0] * x + self.tex[0][1] * y + self.tex_offset[0];
        let tv = self.tex[1][0] * x + self.tex[1][1] * y + self.tex_offset[1];
        let m = (1.0 + self.texture_amp * noise.at(tu, tv) + self.shade[0] * u + self.shade[1] * v).max(0.0);
        [
            (self.colour[0] * m).clamp(0.0, 1.0),
            (self.colour[1] * m).clamp(0.0, 1.0),
            (self.colour[2] * m).clamp(0.0, 1.0),
        ]
    }
}

/// Leaf radius from p(r) ~ r^-3 on [r_min, r_max] (inverse CDF).
fn leaf_radius(rng: &mut ChaCha8Rng, r_min: f64, r_max: f64) -> f32 {
    let u = rng.random::<f64>();
    let (a, b) = (r_min.powi(-2), r_max.powi(-2));
    (a - u * (a - b)).powf(-0.5) as f32
}

/// A dead-leaves scene: leaves placed front to back until the canvas is covered.
fn dead_leaves(rng: &mut ChaCha8Rng, noise: &FractalNoise, width: usize, height: usize) -> Canvas {
    let tint = [
        BASE_TINT[0] * (0.08 * rng::normal(rng)).exp() as f32,
        BASE_TINT[1] * (0.08 * rng::normal(rng)).exp() as f32,
        BASE_TINT[2] * (0.08 * rng::normal(rng)).exp() as f32,
    ];
    let mut rgb = vec![0f32; width * height * 3];
    let mut covered = vec![false; width * height];
    let mut uncovered = width * height;
    let max_leaves = 40_000;
    for _ in 0..max_leaves {
        if uncovered == 0 {
            break;
        }
        let r = leaf_radius(rng, MIN_LEAF_RADIUS, 300.0);
        let c = [
            rng::uniform(rng, -0.1 * width as f64, 1.1 * width as f64) as f32,
            rng::uniform(rng, -0.1 * height as f64, 1.1 * height as f64) as f32,
        ];
        let leaf = Leaf::draw(rng, c, r, tint);
        let br = leaf.bounding_radius();
        let x0 = (c[0] - br).floor().max(0.0) as usize;
        let y0 = (c[1] - br).floor().max(0.0) as usize;
        let x1 = ((c[0] + br).ceil().max(0.0) as usize).min(width);
        let y1 = ((c[1] + br).ceil().max(0.0) as usize).min(height);
        for y in y0..y1 {
            for x in x0..x1 {
                let i = y * width + x;
                if covered[i] {
                    continue;
                }
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                if let Some((u, v)) = leaf.local(px, py) {
                    let col = leaf.colour_at(noise, px, py, u, v);
                    rgb[i * 3..i * 3 + 3].copy_from_slice(&col);
                    covered[i] = true;
                    uncovered -= 1;
                }
            }
        }
    }
    if uncovered > 0 {
        // The far background: one large textured leaf behind everything.
        let bg = Leaf::draw(rng, [width as f32 / 2.0, height as f32 / 2.0], (width + height) as f32, tint);
        for (i, done) in covered.iter().enumerate() {
            if !done {
                let (px, py) = ((i % width) as f32 + 0.5, (i / width) as f32 + 0.5);
                let col = bg.colour_at(noise, px, py, 0.0, 0.0);
                rgb[i * 3..i * 3 + 3].copy_from_slice(&col);
            }
        }
    }
    Canvas { width, height, rgb }
}

// ------------------------------------------------------------------------ camera

/// A smooth camera path over a canvas: per axis a sum of two sinusoids (periods
/// 3–12 s) and a gently oscillating zoom, kept inside the canvas.
#[derive(Debug, Clone)]
struct CameraPath {
    canvas: [f32; 2],
    amp: [[f32; 2]; 2],
    period: [[f32; 2]; 2],
    phase: [[f32; 2]; 2],
    zoom0: f32,
    zoom_amp: f32,
    zoom_period: f32,
    zoom_phase: f32,
}

impl CameraPath {
    fn draw(rng: &mut ChaCha8Rng, width: usize, height: usize, nframes: usize) -> CameraPath {
        let (w, h) = (width as f32, height as f32);
        // Smallest zoom (frame px per canvas px) at which the view still fits.
        let z_fit = (FW as f32 / w).max(FH as f32 / h);
        let zoom0 = z_fit.max(1.0) * rng::uniform(rng, 1.0, 1.15) as f32;
        let zoom_amp = rng::uniform(rng, 0.0, 0.06) as f32;
        let z_min = zoom0 * (1.0 - zoom_amp);
        let mut amp = [[0f32; 2]; 2];
        let mut period = [[0f32; 2]; 2];
        let mut phase = [[0f32; 2]; 2];
        for axis in 0..2 {
            let half_view = if axis == 0 { FW as f32 } else { FH as f32 } / (2.0 * z_min);
            let room = ((if axis == 0 { w } else { h }) / 2.0 - half_view - 1.0).max(0.0);
            let share = rng.random::<f32>();
            amp[axis] = [room * share * 0.95, room * (1.0 - share) * 0.95];
            for k in 0..2 {
                period[axis][k] = rng::uniform(rng, 90.0, 360.0) as f32;
                phase[axis][k] = rng::uniform(rng, 0.0, std::f64::consts::TAU) as f32;
            }
        }
        let _ = nframes;
        CameraPath {
            canvas: [w, h],
            amp,
            period,
            phase,
            zoom0,
            zoom_amp,
            zoom_period: rng::uniform(rng, 150.0, 600.0) as f32,
            zoom_phase: rng::uniform(rng, 0.0, std::f64::consts::TAU) as f32,
        }
    }

    /// Camera centre (canvas px) and zoom at frame t.
    fn at(&self, t: usize) -> ([f32; 2], f32) {
        let t = t as f32;
        let zoom = self.zoom0 * (1.0 + self.zoom_amp * (std::f32::consts::TAU * t / self.zoom_period + self.zoom_phase).sin());
        let mut c = [0f32; 2];
        for (axis, ca) in c.iter_mut().enumerate() {
            let mut v = self.canvas[axis] / 2.0;
            for k in 0..2 {
                v += self.amp[axis][k] * (std::f32::consts::TAU * t / self.period[axis][k] + self.phase[axis][k]).sin();
            }
            let half_view = if axis == 0 { FW as f32 } else { FH as f32 } / (2.0 * zoom);
            let lo = half_view;
            let hi = (self.canvas[axis] - half_view).max(lo);
            *ca = v.clamp(lo, hi);
        }
        (c, zoom)
    }
}

/// An occluder moving across the frame on a straight line, in frame coordinates.
#[derive(Debug, Clone)]
struct Occluder {
    leaf: Leaf,
    start: [f32; 2],
    velocity: [f32; 2],
    noise: Arc<FractalNoise>,
}

fn render(canvas: &Canvas, path: &CameraPath, t: usize, occluders: &[Occluder]) -> RgbImage {
    let (c, zoom) = path.at(t);
    let mut buf = vec![0f32; FW * FH * 3];
    for y in 0..FH {
        let cy = c[1] + (y as f32 + 0.5 - FH as f32 / 2.0) / zoom - 0.5;
        for x in 0..FW {
            let cx = c[0] + (x as f32 + 0.5 - FW as f32 / 2.0) / zoom - 0.5;
            let v = canvas.sample(cx, cy);
            buf[(y * FW + x) * 3..(y * FW + x) * 3 + 3].copy_from_slice(&v);
        }
    }
    for occ in occluders {
        let mut leaf = occ.leaf.clone();
        leaf.center = [occ.start[0] + occ.velocity[0] * t as f32, occ.start[1] + occ.velocity[1] * t as f32];
        let br = leaf.bounding_radius();
        let x0 = (leaf.center[0] - br).floor().max(0.0) as usize;
        let y0 = (leaf.center[1] - br).floor().max(0.0) as usize;
        let x1 = ((leaf.center[0] + br).ceil().max(0.0) as usize).min(FW);
        let y1 = ((leaf.center[1] + br).ceil().max(0.0) as usize).min(FH);
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                if let Some((u, v)) = leaf.local(px, py) {
                    // Texture moves with the occluder.
                    let col = leaf.colour_at(&occ.noise, px - leaf.center[0], py - leaf.center[1], u, v);
                    buf[(y * FW + x) * 3..(y * FW + x) * 3 + 3].copy_from_slice(&col);
                }
            }
        }
    }
    blur_to_image(&buf)
}

/// The softness of digitised VHS: luma blurred a little (`LUMA_BLUR_SIGMA`), chroma much
/// more (`CHROMA_BLUR_SIGMA`; VHS carries colour at a fraction of the luma bandwidth),
/// then 8-bit RGB.
fn blur_to_image(buf: &[f32]) -> RgbImage {
    let n = FW * FH;
    let mut planes = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
    for i in 0..n {
        let (r, g, b) = (buf[i * 3], buf[i * 3 + 1], buf[i * 3 + 2]);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        planes[0][i] = y;
        planes[1][i] = b - y;
        planes[2][i] = r - y;
    }
    let [y, cb, cr] = planes;
    let y = blur_plane(&y, LUMA_BLUR_SIGMA);
    let cb = blur_plane(&cb, CHROMA_BLUR_SIGMA);
    let cr = blur_plane(&cr, CHROMA_BLUR_SIGMA);
    let mut out = RgbImage::new(FRAME_WIDTH, FRAME_HEIGHT);
    for (i, px) in out.pixels_mut().enumerate() {
        let r = cr[i] + y[i];
        let b = cb[i] + y[i];
        let g = (y[i] - 0.299 * r - 0.114 * b) / 0.587;
        for (c, v) in [r, g, b].into_iter().enumerate() {
            px[c] = (v * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Separable Gaussian blur of one FW x FH plane, edges clamped.
fn blur_plane(src: &[f32], sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i64;
    let taps: Vec<f32> = (-radius..=radius).map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let norm: f32 = taps.iter().sum();
    let taps: Vec<f32> = taps.iter().map(|t| t / norm).collect();
    let mut tmp = vec![0f32; src.len()];
    for y in 0..FH {
        let row = &src[y * FW..(y + 1) * FW];
        for x in 0..FW {
            let mut acc = 0f32;
            for (k, t) in taps.iter().enumerate() {
                let xx = (x as i64 + k as i64 - radius).clamp(0, FW as i64 - 1) as usize;
                acc += t * row[xx];
            }
            tmp[y * FW + x] = acc;
        }
    }
    let mut out = vec![0f32; src.len()];
    for y in 0..FH {
        for (k, t) in taps.iter().enumerate() {
            let yy = (y as i64 + k as i64 - radius).clamp(0, FH as i64 - 1) as usize;
            let (dst, srow) = (&mut out[y * FW..(y + 1) * FW], &tmp[yy * FW..(yy + 1) * FW]);
            dst.iter_mut().zip(srow).for_each(|(d, s)| *d += t * s);
        }
    }
    out
}

/// A movie of shots: every 3–8 s (`SHOT_FRAMES`) a cut to a new scene, as in the
/// commercial clips of pvc-1, each shot its own dead-leaves scene, camera path and
/// independently moving objects.
fn dead_leaves_movie(rng: &mut ChaCha8Rng, nframes: usize) -> Vec<RgbImage> {
    let mut frames = Vec::with_capacity(nframes);
    while frames.len() < nframes {
        let len = rng.random_range(SHOT_FRAMES[0]..=SHOT_FRAMES[1]).min(nframes - frames.len());
        frames.extend(dead_leaves_shot(rng, len));
    }
    frames
}

fn dead_leaves_shot(rng: &mut ChaCha8Rng, nframes: usize) -> Vec<RgbImage> {
    let noise = Arc::new(FractalNoise::generate(rng));
    let canvas = dead_leaves(rng, &noise, CANVAS_W, CANVAS_H);
    let path = CameraPath::draw(rng, canvas.width, canvas.height, nframes);
    let n_occ = rng.random_range(2..=5usize);
    let tint = BASE_TINT;
    let occluders: Vec<Occluder> = (0..n_occ)
        .map(|_| {
            let r = rng::uniform(rng, 15.0, 55.0) as f32;
            let leaf = Leaf::draw(rng, [0.0, 0.0], r, tint);
            // Crosses a random frame point at a random time of the segment.
            let cross = [rng::uniform(rng, 0.0, FW as f64) as f32, rng::uniform(rng, 0.0, FH as f64) as f32];
            let t_cross = rng::uniform(rng, 0.0, nframes.max(1) as f64) as f32;
            let dir = rng::uniform(rng, 0.0, std::f64::consts::TAU) as f32;
            let speed = rng::uniform(rng, 1.0, 6.0) as f32;
            let velocity = [speed * dir.cos(), speed * dir.sin()];
            Occluder {
                leaf,
                start: [cross[0] - velocity[0] * t_cross, cross[1] - velocity[1] * t_cross],
                velocity,
                noise: Arc::clone(&noise),
            }
        })
        .collect();
    (0..nframes).map(|t| render(&canvas, &path, t, &occluders)).collect()
}

// ------------------------------------------------------------------------ photographs

/// The user's photographs: the readable .jpg/.jpeg/.png files of a folder, sorted by name,
/// each decoded and resized once, on first use.
#[derive(Debug)]
pub struct PhotoLibrary {
    pub dir: PathBuf,
    pub paths: Vec<PathBuf>,
    cache: Vec<OnceLock<Result<Arc<Canvas>, String>>>,
}

impl PhotoLibrary {
    /// Lists the folder and keeps the files whose header decodes. Fails when there are
    /// none, naming how many candidates there were and why the first one failed.
    pub fn open(dir: &Path) -> Result<PhotoLibrary, SimError> {
        let entries = std::fs::read_dir(dir).map_err(|source| SimError::ImagesDir { dir: dir.to_owned(), source })?;
        let mut candidates = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SimError::ImagesDir { dir: dir.to_owned(), source })?;
            let path = entry.path();
            let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png")) && path.is_file() {
                candidates.push(path);
            }
        }
        candidates.sort();
        let mut paths = Vec::new();
        let mut first_error = None;
        for p in &candidates {
            let dims = image::ImageReader::open(p)
                .map_err(|e| e.to_string())
                .and_then(|r| r.with_guessed_format().map_err(|e| e.to_string()))
                .and_then(|r| r.into_dimensions().map_err(|e| e.to_string()));
            match dims {
                Ok((w, h)) if w > 0 && h > 0 => paths.push(p.clone()),
                Ok((w, h)) => {
                    first_error.get_or_insert_with(|| format!("{}: empty image {w}x{h}", p.display()));
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| format!("{}: {e}", p.display()));
                }
            }
        }
        if paths.is_empty() {
            return Err(SimError::NoImages {
                dir: dir.to_owned(),
                candidates: candidates.len(),
                detail: first_error.map(|e| format!("; first failure: {e}")).unwrap_or_default(),
            });
        }
        let cache = paths.iter().map(|_| OnceLock::new()).collect();
        Ok(PhotoLibrary { dir: dir.to_owned(), paths, cache })
    }

    /// Which photo a segment uses: a seeded shuffle of the library, dealt out in order so
    /// that every photo is used before any repeats.
    fn pick(&self, seed: u64, global_index: usize) -> usize {
        let n = self.paths.len();
        let round = (global_index / n) as u64;
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = rng::stream(seed, Domain::Stimulus, [u64::MAX, round, 0, 0]);
        super::population::shuffle(&mut rng, &mut order);
        order[global_index % n]
    }

    fn canvas(&self, i: usize) -> Result<Arc<Canvas>, SimError> {
        let path = &self.paths[i];
        let loaded = self.cache[i].get_or_init(|| {
            let img = image::open(path).map_err(|e| e.to_string())?;
            let img = img.resize_to_fill(PHOTO_W, PHOTO_H, image::imageops::FilterType::Triangle).to_rgb8();
            let rgb = img.as_raw().iter().map(|v| *v as f32 / 255.0).collect();
            Ok(Arc::new(Canvas { width: PHOTO_W as usize, height: PHOTO_H as usize, rgb }))
        });
        loaded.clone().map_err(|message| SimError::Image { path: path.clone(), message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_leaves_frames_have_natural_statistics() {
        let frames = StimulusSource::DeadLeaves.segment(11, 0, 0, 0, 8).unwrap();
        assert_eq!(frames.len(), 8);
        let lum = luminance(&frames[0]);
        let n = lum.len() as f32;
        let mean = lum.iter().sum::<f32>() / n;
        let sd = (lum.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
        assert!((0.15..0.6).contains(&mean), "mean luminance {mean}");
        assert!(sd / mean > 0.2, "RMS contrast {}", sd / mean);
        // Slow camera: consecutive frames are similar but not identical.
        let l1 = luminance(&frames[1]);
        let diff = lum.iter().zip(&l1).map(|(a, b)| (a - b).abs()).sum::<f32>() / n;
        assert!(diff > 0.0005 && diff < 0.1, "mean frame-to-frame change {diff}");
    }

    #[test]
    fn segments_differ_and_repeat() {
        let a = StimulusSource::DeadLeaves.segment(5, 0, 1, 1, 2).unwrap();
        let b = StimulusSource::DeadLeaves.segment(5, 1, 1, 31, 2).unwrap();
        let c = StimulusSource::DeadLeaves.segment(5, 0, 1, 1, 2).unwrap();
        assert_ne!(a[0], b[0]);
        assert_eq!(a[0], c[0]);
    }
}
