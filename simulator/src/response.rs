//! From frames to noise-free firing rates: the encoding model of every unit.
//!
//! Per frame (spatial stage):
//! - luminance image `I` in [0, 1]; per good electrode a Gaussian window ~2.5x the RF
//!   size gives the local mean luminance `mu` and the local RMS contrast `S` (scaled so
//!   that a full-field grating of contrast c gives S = c);
//! - per unit the zero-mean Gabor filter(s) divided by `mu`: `l = (K . I) / mu`, in
//!   contrast units (a matched grating of contrast c gives l = c);
//! - for units with a luminance signal, the mean luminance under the RF envelope `E`
//!   against the surround mean, weighted: `b = w (E . I - mu) / mu` (w > 0 ON, < 0 OFF).
//!
//! Per 1/30 s bin t (temporal and nonlinear stage), with latency `lat`:
//! - `L(t) = sum_j h[j] l(t - lat - j)` with the unit's biphasic kernel h; frames before
//!   the segment onset are a blank screen (l = 0, S = 0);
//! - contrast drive `c = max(L + B, 0)` (simple) or `sqrt(L_0^2 + L_90^2) + max(B, 0)`
//!   (complex), with `B` the temporally filtered luminance signal `b` (0 for units
//!   without one);
//! - normalisation `g = c^n / (c50^n + (1 - a_o - a_s) c^n + a_o P + a_s S_t^n)` with `P` the
//!   mean `c^n` over the units of the 3x3 electrode neighbourhood (all orientations of
//!   the map) and `S_t` the surround contrast low-passed by the kernel's positive lobe;
//! - output `d = [softplus(k(g - theta)) - softplus(-k theta)] / k` (zero at g = 0) and
//!   rate `r = spont + R (1 - exp(-A d / R))`, `R = peak - spont`: linear (`A d`) for weak
//!   drive, saturating at the unit's peak rate (a firing-rate ceiling).
//!
//! `A` is set per unit by [`calibrate`] so that a typical dead-leaves scene drives the
//! unit to `calibration_level` (90%) of the way from its spontaneous to its peak rate,
//! scaled by the unit's responsiveness (weakly driven units are common in V1).

use super::population::{CellType, Population, Unit};

/// One linear filter (a Gabor, or one of a quadrature pair) on a box of the frame.
#[derive(Debug, Clone)]
struct BoxFilter {
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
    weights: Vec<f32>,
}

impl BoxFilter {
    fn apply(&self, lum: &[f32], frame_w: usize) -> f32 {
        let mut acc = 0f32;
        for r in 0..self.h {
            let row = &lum[(self.y0 + r) * frame_w + self.x0..][..self.w];
            let k = &self.weights[r * self.w..][..self.w];
            acc += row.iter().zip(k).map(|(a, b)| a * b).sum::<f32>();
        }
        acc
    }
}

/// Gaussian window on the half-resolution luminance image, weights summing to 1.
#[derive(Debug, Clone)]
struct Window {
    filter: BoxFilter,
}

/// The encoding model of a population, with its filters precomputed.
#[derive(Debug, Clone)]
pub struct Model {
    frame_w: usize,
    frame_h: usize,
    latency: usize,
    /// Per unit: one filter (simple) or a quadrature pair (complex).
    filters: Vec<Vec<BoxFilter>>,
    /// Per unit with a luminance signal: its RF envelope (weights sum to 1) and weight.
    luminance: Vec<Option<(BoxFilter, f32)>>,
    /// Per unit: index into `windows` (its electrode's surround window).
    unit_window: Vec<usize>,
    windows: Vec<Window>,
    /// Per unit: the units of its 3x3 electrode neighbourhood (orientation pool).
    pools: Vec<Vec<usize>>,
    kinds: Vec<CellType>,
    kernels: Vec<Vec<f32>>,
    nr: Vec<(f32, f32, f32, f32)>,
    sharpness: f32,
    threshold: f32,
}

/// Per-frame output of the spatial stage for one segment.
#[derive(Debug, Clone)]
struct Spatial {
    /// [frame][unit][phase 0, phase 90, weighted relative luminance]
    linear: Vec<Vec<[f32; 3]>>,
    /// [frame][window]
    surround: Vec<Vec<f32>>,
}

impl Model {
    /// Builds the filters of every unit for frames of `frame_w` x `frame_h` pixels and a
    /// response latency of `latency` frames.
    pub fn new(pop: &Population, latency: usize, frame_w: usize, frame_h: usize) -> Model {
        let ppd = pop.params.pixels_per_degree;
        let mut filters = Vec::with_capacity(pop.units.len());
        let mut unit_window = vec![0usize; pop.units.len()];
        let mut windows = Vec::new();
        let mut pools = vec![Vec::new(); pop.units.len()];
        for (ei, e) in pop.electrodes.iter().enumerate() {
            if !e.good || e.units.is_empty() {
                continue;
            }
            // Surround window: centred on the units' mean RF, sigma = scale * RF size / 4.
            let n = e.units.len() as f64;
            let cx = e.units.iter().map(|&u| pop.units[u].center_px[0]).sum::<f64>() / n;
            let cy = e.units.iter().map(|&u| pop.units[u].center_px[1]).sum::<f64>() / n;
            let size = e.units.iter().map(|&u| pop.units[u].rf_size_px).sum::<f64>() / n;
            let sigma = pop.params.surround_scale * size / 4.0;
            let wi = windows.len();
            windows.push(Window { filter: gaussian_window(cx / 2.0, cy / 2.0, sigma / 2.0, frame_w / 2, frame_h / 2) });
            let pool: Vec<usize> = pop.neighbourhood(ei).iter().flat_map(|&j| pop.electrodes[j].units.iter().copied()).collect();
            for &u in &e.units {
                unit_window[u] = wi;
                pools[u] = pool.clone();
            }
        }
        for u in &pop.units {
            let phases: &[f64] = match u.kind {
                CellType::Simple => &[u.phase_deg],
                CellType::Complex => &[0.0, 90.0],
            };
            filters.push(
                phases
                    .iter()
                    .map(|&ph| gabor(u.center_px, u.orientation_deg, u.sf_cpd / ppd, ph, u.sigma_across_px, u.sigma_along_px, frame_w, frame_h))
                    .collect(),
            );
        }
        let luminance = pop
            .units
            .iter()
            .map(|u| {
                (u.luminance_weight != 0.0).then(|| {
                    let env = envelope(u.center_px, u.orientation_deg, u.sigma_across_px, u.sigma_along_px, frame_w, frame_h);
                    (env, u.luminance_weight as f32)
                })
            })
            .collect();
        Model {
            frame_w,
            frame_h,
            latency,
            filters,
            luminance,
            unit_window,
            windows,
            pools,
            kinds: pop.units.iter().map(|u| u.kind).collect(),
            kernels: pop.units.iter().map(|u| u.temporal_kernel.iter().map(|v| *v as f32).collect()).collect(),
            nr: pop.units.iter().map(|u| (u.nr_exponent as f32, u.c50 as f32, u.pool_weight as f32, u.surround_weight as f32)).collect(),
            sharpness: pop.params.softplus_sharpness as f32,
            threshold: pop.params.softplus_threshold as f32,
        }
    }

    pub fn latency(&self) -> usize {
        self.latency
    }

    pub fn n_units(&self) -> usize {
        self.filters.len()
    }

    fn spatial(&self, frames: &[Vec<f32>]) -> Spatial {
        let (w, h) = (self.frame_w, self.frame_h);
        let (hw, hh) = (w / 2, h / 2);
        let mut linear = Vec::with_capacity(frames.len());
        let mut surround = Vec::with_capacity(frames.len());
        let mut half = vec![0f32; hw * hh];
        let mut sq = vec![0f32; hw * hh];
        for lum in frames {
            for y in 0..hh {
                for x in 0..hw {
                    let i = 2 * y * w + 2 * x;
                    half[y * hw + x] = 0.25 * (lum[i] + lum[i + 1] + lum[i + w] + lum[i + w + 1]);
                }
            }
            half.iter().zip(sq.iter_mut()).for_each(|(v, s)| *s = v * v);
            let mut means = Vec::with_capacity(self.windows.len());
            let mut contrast = Vec::with_capacity(self.windows.len());
            for win in &self.windows {
                let m = win.filter.apply(&half, hw);
                let m2 = win.filter.apply(&sq, hw);
                let mu = m.max(0.02);
                means.push(mu);
                contrast.push((2.0 * (m2 - m * m).max(0.0)).sqrt() / mu);
            }
            let lin: Vec<[f32; 3]> = self
                .filters
                .iter()
                .enumerate()
                .map(|(u, fs)| {
                    let mu = means[self.unit_window[u]];
                    let mut out = [0f32; 3];
                    for (o, f) in out.iter_mut().zip(fs) {
                        *o = f.apply(lum, w) / mu;
                    }
                    if let Some((env, weight)) = &self.luminance[u] {
                        out[2] = weight * (env.apply(lum, w) - mu) / mu;
                    }
                    out
                })
                .collect();
            linear.push(lin);
            surround.push(contrast);
        }
        Spatial { linear, surround }
    }

    /// The normalised, soft-thresholded drive `softplus_0(g)` of every unit in every bin:
    /// [nframes][unit]. `frames` are luminance images (row-major, [0, 1]).
    pub fn drive(&self, frames: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let sp = self.spatial(frames);
        let nt = frames.len();
        let nu = self.n_units();
        // Contrast drive c (temporally filtered) and surround S_t per unit.
        let mut c = vec![vec![0f32; nu]; nt];
        let mut s = vec![vec![0f32; nu]; nt];
        for t in 0..nt {
            for u in 0..nu {
                let k = &self.kernels[u];
                let mut l = [0f32; 3];
                let mut st = 0f32;
                for (j, hj) in k.iter().enumerate() {
                    let Some(src) = t.checked_sub(self.latency + j) else { break };
                    let v = sp.linear[src][u];
                    l[0] += hj * v[0];
                    l[1] += hj * v[1];
                    l[2] += hj * v[2];
                    if *hj > 0.0 {
                        st += hj * sp.surround[src][self.unit_window[u]];
                    }
                }
                c[t][u] = match self.kinds[u] {
                    CellType::Simple => (l[0] + l[2]).max(0.0),
                    CellType::Complex => (l[0] * l[0] + l[1] * l[1]).sqrt() + l[2].max(0.0),
                };
                s[t][u] = st;
            }
        }
        let k = self.sharpness;
        let base = softplus(-k * self.threshold);
        let mut out = vec![vec![0f32; nu]; nt];
        for t in 0..nt {
            for u in 0..nu {
                let (n, c50, a_o, a_s) = self.nr[u];
                let cn = c[t][u].powf(n);
                let pool = if self.pools[u].is_empty() {
                    cn
                } else {
                    self.pools[u].iter().map(|&q| c[t][q].powf(n)).sum::<f32>() / self.pools[u].len() as f32
                };
                let g = cn / (c50.powf(n) + (1.0 - a_o - a_s) * cn + a_o * pool + a_s * s[t][u].powf(n));
                out[t][u] = (softplus(k * (g - self.threshold)) - base) / k;
            }
        }
        out
    }
}

fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// The rate (spikes/s) of a unit for output drive `d` (see the module docs).
pub fn rate(u: &Unit, d: f64) -> f64 {
    let range = (u.peak_hz - u.spontaneous_hz).max(1e-9);
    u.spontaneous_hz + range * (1.0 - (-u.drive_scale_hz * d / range).exp())
}

/// Rates (spikes/s) of every unit in every bin from the drive: [nframes][unit].
pub fn unit_rates(pop: &Population, drive: &[Vec<f32>]) -> Vec<Vec<f32>> {
    drive
        .iter()
        .map(|row| {
            row.iter()
                .zip(&pop.units)
                .map(|(d, u)| rate(u, *d as f64) as f32)
                .collect()
        })
        .collect()
}

/// Adds the onset transient to rates computed from the segment onset: from bin
/// `latency` on, the driven part of unit u's rate is multiplied by
/// `1 + onset_gain_u exp(-(t - latency) / onset_tau)` (see `PopulationParams::onset_gain`).
pub fn add_onset_transient(pop: &Population, rates: &mut [Vec<f32>], latency: usize) {
    let tau_bins = pop.params.onset_tau_ms / 1000.0 * neural_data::pvc1::FRAME_RATE_HZ;
    for (t, row) in rates.iter_mut().enumerate().skip(latency) {
        let decay = (-((t - latency) as f64) / tau_bins.max(1e-9)).exp();
        if decay < 1e-4 {
            break;
        }
        for (r, u) in row.iter_mut().zip(&pop.units) {
            let spont = u.spontaneous_hz as f32;
            *r = spont + (*r - spont) * (1.0 + (u.onset_gain * decay) as f32);
        }
    }
}

/// Expected spike count of every array electrode in every 1/30 s bin (units only, no
/// gain noise, no noise crossings): [nframes * 100], row-major, column = id - 1.
pub fn electrode_counts(pop: &Population, rates: &[Vec<f32>], frame_rate_hz: f64) -> Vec<f32> {
    let n_el = pop.electrodes.len();
    let mut out = vec![0f32; rates.len() * n_el];
    for (t, row) in rates.iter().enumerate() {
        for (ei, e) in pop.electrodes.iter().enumerate() {
            let r: f64 = e.units.iter().map(|&u| row[u] as f64).sum();
            out[t * n_el + ei] = (r / frame_rate_hz) as f32;
        }
    }
    out
}

/// Sets every unit's drive gain `A` so that the median over calibration scenes of its
/// per-scene largest drive reaches `calibration_level` of the way from spontaneous to
/// peak rate, and returns each unit's mean driven rate (above spontaneous) over the
/// scenes. `scenes` are luminance movies; the blank-screen onset of each (latency +
/// kernel length) is left out. The per-scene drive is floored so that a unit the scenes
/// hardly drive does not get an enormous gain.
pub fn calibrate(pop: &mut Population, model: &Model, scenes: &[Vec<Vec<f32>>]) -> Vec<f64> {
    let k = pop.params.softplus_sharpness as f32;
    let th = pop.params.softplus_threshold as f32;
    let floor = ((softplus(k * (0.15 - th)) - softplus(-k * th)) / k) as f64;
    // 1 - exp(-x) = level  <=>  x = -ln(1 - level)
    let x_level = -(1.0 - pop.params.calibration_level).ln();
    let n_units = pop.units.len();
    let drives: Vec<Vec<Vec<f32>>> = scenes
        .iter()
        .map(|scene| {
            let d = model.drive(scene);
            let skip = (model.latency() + 6).min(d.len().saturating_sub(1));
            d[skip..].to_vec()
        })
        .collect();
    let mut means = Vec::with_capacity(n_units);
    for (u, unit) in pop.units.iter_mut().enumerate() {
        let mut maxima: Vec<f64> =
            drives.iter().map(|scene| scene.iter().map(|row| row[u] as f64).fold(0.0, f64::max)).collect();
        maxima.sort_by(f64::total_cmp);
        let typical = maxima.get(maxima.len() / 2).copied().unwrap_or(0.0).max(floor);
        let range = (unit.peak_hz - unit.spontaneous_hz).max(1e-9);
        unit.drive_scale_hz = unit.responsiveness * x_level * range / typical;
        let (sum, n) = drives
            .iter()
            .flatten()
            .fold((0.0, 0usize), |(s, n), row| (s + rate(unit, row[u] as f64) - unit.spontaneous_hz, n + 1));
        means.push(sum / n.max(1) as f64);
    }
    means
}

/// A Gaussian window (weights sum to 1) centred at (cx, cy) on a w x h image.
fn gaussian_window(cx: f64, cy: f64, sigma: f64, w: usize, h: usize) -> BoxFilter {
    let sigma = sigma.max(0.5);
    let r = 3.0 * sigma;
    let (x0, x1) = (((cx - r).floor().max(0.0)) as usize, ((cx + r).ceil().max(1.0) as usize).min(w));
    let (y0, y1) = (((cy - r).floor().max(0.0)) as usize, ((cy + r).ceil().max(1.0) as usize).min(h));
    let (x0, y0) = (x0.min(w - 1), y0.min(h - 1));
    let (bw, bh) = ((x1.max(x0 + 1)) - x0, (y1.max(y0 + 1)) - y0);
    let mut weights = Vec::with_capacity(bw * bh);
    for y in y0..y0 + bh {
        for x in x0..x0 + bw {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            weights.push((-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp());
        }
    }
    let s: f64 = weights.iter().sum();
    let weights = weights.iter().map(|v| (v / s.max(1e-12)) as f32).collect();
    BoxFilter { x0, y0, w: bw, h: bh, weights }
}

/// The box around `center` (3 sigma) and, per pixel of it, the Gaussian envelope and the
/// coordinate across the bars, for a unit's RF. Shared by the Gabor and the luminance
/// envelope so that both sit on exactly the same support.
struct RfGrid {
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
    envelope: Vec<f64>,
    across: Vec<f64>,
}

fn rf_grid(center: [f64; 2], orientation_deg: f64, sigma_x: f64, sigma_y: f64, w: usize, h: usize) -> RfGrid {
    let r = 3.0 * sigma_x.max(sigma_y);
    let x0 = ((center[0] - r).floor().max(0.0) as usize).min(w - 1);
    let y0 = ((center[1] - r).floor().max(0.0) as usize).min(h - 1);
    let x1 = ((center[0] + r).ceil().max(0.0) as usize).clamp(x0 + 1, w);
    let y1 = ((center[1] + r).ceil().max(0.0) as usize).clamp(y0 + 1, h);
    let psi = (orientation_deg + 90.0).to_radians();
    let (cp, sp) = (psi.cos(), psi.sin());
    let mut envelope = Vec::with_capacity((x1 - x0) * (y1 - y0));
    let mut across = Vec::with_capacity(envelope.capacity());
    for y in y0..y1 {
        for x in x0..x1 {
            let dx = x as f64 + 0.5 - center[0];
            let dy = -(y as f64 + 0.5 - center[1]); // visual y up
            let xp = dx * cp + dy * sp;
            let yp = -dx * sp + dy * cp;
            envelope.push((-(xp * xp) / (2.0 * sigma_x * sigma_x) - (yp * yp) / (2.0 * sigma_y * sigma_y)).exp());
            across.push(xp);
        }
    }
    RfGrid { x0, y0, w: x1 - x0, h: y1 - y0, envelope, across }
}

/// A zero-mean Gabor on the frame, scaled so that a grating of contrast 1 at the
/// preferred orientation, frequency and phase gives a response of 1 (before dividing by
/// the mean luminance). `orientation_deg` is the bar orientation (screen, y up).
#[allow(clippy::too_many_arguments)]
fn gabor(center: [f64; 2], orientation_deg: f64, f_cpp: f64, phase_deg: f64, sigma_x: f64, sigma_y: f64, w: usize, h: usize) -> BoxFilter {
    let g = rf_grid(center, orientation_deg, sigma_x, sigma_y, w, h);
    let ph = phase_deg.to_radians();
    let tau = std::f64::consts::TAU;
    let arg: Vec<f64> = g.across.iter().map(|xp| tau * f_cpp * xp + ph).collect();
    let env = &g.envelope;
    let se: f64 = env.iter().sum();
    let m = if se > 0.0 { env.iter().zip(&arg).map(|(e, a)| e * a.cos()).sum::<f64>() / se } else { 0.0 };
    let k: Vec<f64> = env.iter().zip(&arg).map(|(e, a)| e * (a.cos() - m)).collect();
    // Response to the matched grating cos(arg).
    let resp: f64 = k.iter().zip(&arg).map(|(kv, a)| kv * a.cos()).sum();
    let scale = if resp.abs() > 1e-9 { 1.0 / resp } else { 0.0 };
    BoxFilter { x0: g.x0, y0: g.y0, w: g.w, h: g.h, weights: k.iter().map(|v| (v * scale) as f32).collect() }
}

/// The Gabor's envelope with weights summing to 1: the mean luminance under the RF.
fn envelope(center: [f64; 2], orientation_deg: f64, sigma_x: f64, sigma_y: f64, w: usize, h: usize) -> BoxFilter {
    let g = rf_grid(center, orientation_deg, sigma_x, sigma_y, w, h);
    let se: f64 = g.envelope.iter().sum::<f64>().max(1e-12);
    BoxFilter { x0: g.x0, y0: g.y0, w: g.w, h: g.h, weights: g.envelope.iter().map(|v| (v / se) as f32).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PopulationParams;

    fn grating(w: usize, h: usize, ori_deg: f64, f_cpp: f64, phase: f64, contrast: f64) -> Vec<f32> {
        let psi = (ori_deg + 90.0).to_radians();
        (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| {
                    let (dx, dy) = (x as f64 + 0.5, -(y as f64 + 0.5));
                    let xp = dx * psi.cos() + dy * psi.sin();
                    (0.5 * (1.0 + contrast * (std::f64::consts::TAU * f_cpp * xp + phase).cos())) as f32
                })
            })
            .collect()
    }

    /// A grey frame with a disc of luminance `disc` at `center`, radius `r` (px).
    fn disc_frame(w: usize, h: usize, center: [f64; 2], r: f64, disc: f32) -> Vec<f32> {
        (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| {
                    let (dx, dy) = (x as f64 + 0.5 - center[0], y as f64 + 0.5 - center[1]);
                    if dx * dx + dy * dy <= r * r { disc } else { 0.4 }
                })
            })
            .collect()
    }

    #[test]
    fn luminance_signal_has_the_sign_of_the_patch_relative_to_its_surround() {
        let (w, h) = (320, 240);
        // Strong weights, so that the sign is far from zero for every unit.
        let params = PopulationParams { luminance_fraction: 1.0, luminance_weight: [0.5, 1.5], ..PopulationParams::default() };
        let pop = Population::generate(3, &params);
        let model = Model::new(&pop, 2, w, h);
        let mut contrast_only = pop.clone();
        contrast_only.units.iter_mut().for_each(|u| u.luminance_weight = 0.0);
        let plain = Model::new(&contrast_only, 2, w, h);
        let (mut on, mut off) = (0, 0);
        for (u, unit) in pop.units.iter().enumerate().take(40) {
            let signal = |m: &Model, lum: f32| {
                let frame = disc_frame(w, h, unit.center_px, unit.rf_size_px / 2.0, lum);
                m.spatial(&[frame]).linear[0][u]
            };
            let (bright, dark, grey) = (signal(&model, 0.7)[2], signal(&model, 0.1)[2], signal(&model, 0.4)[2]);
            assert!(grey.abs() < 1e-3, "unit {u}: a uniform field gives {grey}");
            if unit.luminance_weight > 0.0 {
                assert!(bright > 0.05 && dark < -0.05, "ON unit {u}: bright {bright}, dark {dark}");
                on += 1;
            } else {
                assert!(bright < -0.05 && dark > 0.05, "OFF unit {u}: bright {bright}, dark {dark}");
                off += 1;
            }
            // The contrast filters do not change, and units without the signal get none.
            assert_eq!(signal(&model, 0.7)[..2], signal(&plain, 0.7)[..2]);
            assert_eq!(signal(&plain, 0.7)[2], 0.0);
        }
        assert!(on > 0 && off > 0, "expected both ON and OFF units, got {on} and {off}");
    }

    #[test]
    fn gabor_prefers_its_orientation_and_ignores_uniform_fields() {
        let (w, h) = (96, 96);
        let g = gabor([48.0, 48.0], 30.0, 0.1, 0.0, 5.0, 6.0, w, h);
        let flat = vec![0.7f32; w * h];
        assert!(g.apply(&flat, w).abs() < 1e-3);
        let amp = |ori: f64| {
            (0..8)
                .map(|k| g.apply(&grating(w, h, ori, 0.1, k as f64 * std::f64::consts::TAU / 8.0, 1.0), w).abs())
                .fold(0f32, f32::max)
        };
        let pref = amp(30.0);
        assert!(pref > 0.4, "preferred response {pref}");
        assert!(amp(120.0) < 0.1 * pref, "orthogonal {} vs {pref}", amp(120.0));
    }
}
