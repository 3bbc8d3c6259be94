//! The simulated array and its units: where each electrode sits on cortex, what part of
//! the visual field it sees (retinotopy + scatter), which orientation column it is in
//! (pinwheel map), and the parameters of the 2–5 units it records.
//!
//! Conventions used everywhere in the simulator:
//! - frame pixels: x to the right, y down, origin at the top-left corner of the 320x240
//!   frame; positions are pixel centres at integer + 0.5;
//! - orientation: of the *bars* a unit prefers, in degrees in [0, 180), counter-clockwise
//!   from horizontal as seen on the screen (so 90 = vertical bars);
//! - cortex: mm from the array centre, x along columns, y along rows.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::params::PopulationParams;
use super::rng::{self, Domain};
use neural_data::pvc1::{SNIPPET_LEN, FRAME_RATE_HZ};

/// Simple (linear, half-wave rectified) or complex (quadrature energy) cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellType {
    Simple,
    Complex,
}

fn one() -> f64 {
    1.0
}

/// One unit (neuron) recorded by an electrode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub kind: CellType,
    /// RF centre in frame pixels.
    pub center_px: [f64; 2],
    /// Preferred bar orientation (deg, [0, 180)).
    pub orientation_deg: f64,
    /// Peak spatial frequency (cycles/deg).
    pub sf_cpd: f64,
    /// Spatial phase of the Gabor (deg): 0 = even (bright bar centre), 90 = odd. Complex
    /// cells use the quadrature pair (0 and 90).
    pub phase_deg: f64,
    /// Envelope standard deviation across the bars and along them (pixels).
    pub sigma_across_px: f64,
    pub sigma_along_px: f64,
    /// RF size: 4 sigma of the envelope across the bars (pixels).
    pub rf_size_px: f64,
    /// Orientation half-width at half height of the linear filter (deg).
    pub orientation_halfwidth_deg: f64,
    /// Weight of the RF's mean luminance relative to its surround (contrast units; > 0
    /// ON, < 0 OFF, 0 for a unit that signals contrast only). See
    /// `PopulationParams::luminance_fraction`.
    #[serde(default)]
    pub luminance_weight: f64,
    /// Naka–Rushton exponent and semi-saturation contrast.
    pub nr_exponent: f64,
    pub c50: f64,
    /// Weights of the orientation pool and of the surround in the normalisation signal.
    pub pool_weight: f64,
    pub surround_weight: f64,
    /// Spontaneous rate and the ceiling of the rate (spikes/s).
    pub spontaneous_hz: f64,
    pub peak_hz: f64,
    /// Gain of the driven part of the rate for weak drive (spikes/s per unit of softplus
    /// output), set by calibration (see `response`).
    pub drive_scale_hz: f64,
    /// Temporal kernel: weight of frame `t - latency - j` for bin `t`, j = 0.. (biphasic,
    /// starting after the unit's own delay).
    pub temporal_kernel: Vec<f64>,
    /// Onset transient: relative extra driven rate at the segment onset (see
    /// `PopulationParams::onset_gain`).
    #[serde(default)]
    pub onset_gain: f64,
    /// Scale of the driven rate set by calibration (see `PopulationParams::responsiveness`).
    #[serde(default = "one")]
    pub responsiveness: f64,
    /// Mean spikes per burst (1 = no bursts).
    #[serde(default = "one")]
    pub burst_mean_spikes: f64,
    /// Mean spike waveform, 48 samples at 30 kHz (int8 units, before noise).
    pub template: Vec<f64>,
}

/// One electrode of the 10x10 array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Electrode {
    /// 1..=100, row-major (see `pvc1::electrode_position`).
    pub id: u16,
    pub row: u8,
    pub col: u8,
    /// Position on cortex (mm from the array centre).
    pub cortex_mm: [f64; 2],
    /// Records units (true) or noise only (false).
    pub good: bool,
    /// Retinotopic map position (frame px) before per-unit scatter.
    pub map_position_px: [f64; 2],
    /// Orientation-map preference at the electrode (deg) and map selectivity (|z|/rms,
    /// ~0 at a pinwheel centre, ~1 typical).
    pub map_orientation_deg: f64,
    pub map_selectivity: f64,
    /// Sub-threshold noise crossings per second on this electrode.
    pub noise_crossing_hz: f64,
    /// Indices into `Population::units`.
    pub units: Vec<usize>,
}

/// Where one electrode of an array sits: on cortex (mm from the array centre), where the
/// retinotopic map puts it in the frame (px), and how much larger than the parameters'
/// `rf_size_deg` its units' RFs are (the inverse of the local cortical magnification
/// relative to `magnification_mm_per_deg`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    pub cortex_mm: [f64; 2],
    pub map_position_px: [f64; 2],
    pub rf_scale: f64,
}

/// A linear retinotopic map: frame px = `center_px` + `px_per_mm` * cortex mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retinotopy {
    pub center_px: [f64; 2],
    pub px_per_mm: [[f64; 2]; 2],
}

/// The pinwheel orientation map: the angle of a sum of plane waves of one wavelength.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrientationMap {
    /// Wave vectors (rad/mm) and phases (rad).
    pub waves: Vec<([f64; 2], f64)>,
}

impl OrientationMap {
    fn generate<R: Rng>(rng: &mut R, n: usize, period_mm: f64) -> Self {
        let k = std::f64::consts::TAU / period_mm;
        let waves = (0..n)
            .map(|j| {
                let a = std::f64::consts::TAU * (j as f64 + rng.random::<f64>()) / n as f64;
                ([k * a.cos(), k * a.sin()], std::f64::consts::TAU * rng.random::<f64>())
            })
            .collect();
        OrientationMap { waves }
    }

    /// Preferred orientation (deg, [0, 180)) and selectivity (|z| / rms |z|) at a cortical
    /// position (mm).
    pub fn at(&self, x_mm: f64, y_mm: f64) -> (f64, f64) {
        let (mut re, mut im) = (0.0, 0.0);
        for ([kx, ky], phase) in &self.waves {
            let a = kx * x_mm + ky * y_mm + phase;
            re += a.cos();
            im += a.sin();
        }
        let angle = im.atan2(re).rem_euclid(std::f64::consts::TAU) / 2.0;
        let selectivity = (re * re + im * im).sqrt() / (self.waves.len() as f64).sqrt();
        (angle.to_degrees().rem_euclid(180.0), selectivity)
    }
}

/// The whole simulated population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    pub params: PopulationParams,
    /// 100 electrodes, index = id - 1.
    pub electrodes: Vec<Electrode>,
    pub units: Vec<Unit>,
    pub orientation_map: OrientationMap,
    /// Centre of the retinotopic map (frame px) and its linear part: frame px per mm of
    /// cortex, as a 2x2 matrix applied to (x_mm, y_mm).
    pub retinotopy_center_px: [f64; 2],
    pub retinotopy_px_per_mm: [[f64; 2]; 2],
}

impl Population {
    /// Draws the population for a seed. Pure function of (seed, params); the drive scales
    /// are set later by calibration (`response::calibrate`).
    pub fn generate(seed: u64, params: &PopulationParams) -> Population {
        let mut rng = rng::stream(seed, Domain::Population, [0; 4]);
        let p = params;
        let ppd = p.pixels_per_degree;

        // Retinotopy: a rotated, possibly mirrored, mildly anisotropic linear map.
        let rot = rng::uniform(&mut rng, 0.0, std::f64::consts::TAU);
        let mirror = if rng.random::<bool>() { -1.0 } else { 1.0 };
        let aniso = rng::uniform(&mut rng, p.magnification_anisotropy[0], p.magnification_anisotropy[1]);
        let (ma, mb) = (p.magnification_mm_per_deg * aniso.sqrt(), p.magnification_mm_per_deg / aniso.sqrt());
        // px per mm along the two cortical axes before rotation.
        let (sa, sb) = (ppd / ma, mirror * ppd / mb);
        let (c, s) = (rot.cos(), rot.sin());
        let m = [[c * sa, -s * sb], [s * sa, c * sb]];
        let center = [
            p.footprint_center_px[0] + rng::uniform(&mut rng, -p.footprint_jitter_px, p.footprint_jitter_px),
            p.footprint_center_px[1] + rng::uniform(&mut rng, -p.footprint_jitter_px, p.footprint_jitter_px),
        ];
        let n = p.array_size;
        let mid = (n as f64 - 1.0) / 2.0;
        let sites: Vec<Site> = (0..n * n)
            .map(|i| {
                let (row, col) = (i / n, i % n);
                let cortex = [(col as f64 - mid) * p.pitch_mm, (row as f64 - mid) * p.pitch_mm];
                let pos = [
                    center[0] + m[0][0] * cortex[0] + m[0][1] * cortex[1],
                    center[1] + m[1][0] * cortex[0] + m[1][1] * cortex[1],
                ];
                Site { cortex_mm: cortex, map_position_px: pos, rf_scale: 1.0 }
            })
            .collect();
        Self::populate(rng, p, &sites, Retinotopy { center_px: center, px_per_mm: m }, 0.0)
    }

    /// Draws a population whose electrodes sit at given places (one [`Site`] per electrode,
    /// row-major, `array_size`² of them) instead of on the linear map of
    /// [`Population::generate`]: the arrays of a wide-field population, each on its own
    /// stretch of a non-linear retinotopic map. `retinotopy` is the map's linear
    /// approximation at the array's centre (for the ground truth); RF sizes are the drawn
    /// ones times each site's `rf_scale`, and never below `min_rf_size_deg`.
    pub fn generate_at_sites(seed: u64, params: &PopulationParams, sites: &[Site], retinotopy: Retinotopy, min_rf_size_deg: f64) -> Population {
        let rng = rng::stream(seed, Domain::Population, [0; 4]);
        Self::populate(rng, params, sites, retinotopy, min_rf_size_deg)
    }

    fn populate(mut rng: rand_chacha::ChaCha8Rng, p: &PopulationParams, sites: &[Site], retinotopy: Retinotopy, min_rf_size_deg: f64) -> Population {
        let n_el = sites.len();
        let map = OrientationMap::generate(&mut rng, p.orientation_waves, p.orientation_period_mm);

        // Exactly round(good_fraction * 100) good electrodes, chosen at random.
        let n_good = ((p.good_fraction * n_el as f64).round() as usize).min(n_el);
        let mut order: Vec<usize> = (0..n_el).collect();
        shuffle(&mut rng, &mut order);
        let mut good = vec![false; n_el];
        for &i in &order[..n_good] {
            good[i] = true;
        }

        let mut electrodes = Vec::with_capacity(n_el);
        let mut units = Vec::new();
        for (i, (&is_good, site)) in good.iter().zip(sites).enumerate() {
            let (row, col) = (i / p.array_size, i % p.array_size);
            let (cortex, pos) = (site.cortex_mm, site.map_position_px);
            let (map_ori, selectivity) = map.at(cortex[0], cortex[1]);
            let noise_hz = rng::uniform(&mut rng, p.noise_crossing_hz[0], p.noise_crossing_hz[1]);
            let mut el = Electrode {
                id: (i + 1) as u16,
                row: row as u8,
                col: col as u8,
                cortex_mm: cortex,
                good: is_good,
                map_position_px: pos,
                map_orientation_deg: map_ori,
                map_selectivity: selectivity,
                noise_crossing_hz: noise_hz,
                units: Vec::new(),
            };
            if is_good {
                let n_units = rng.random_range(p.units_per_electrode[0]..=p.units_per_electrode[1]);
                let site_gain = rng::log_uniform(&mut rng, p.site_responsiveness[0], p.site_responsiveness[1]);
                for _ in 0..n_units {
                    el.units.push(units.len());
                    let mut unit = draw_unit(&mut rng, p, pos, map_ori, selectivity, site.rf_scale, min_rf_size_deg);
                    unit.responsiveness *= site_gain;
                    units.push(unit);
                }
            }
            electrodes.push(el);
        }
        Population {
            params: p.clone(),
            electrodes,
            units,
            orientation_map: map,
            retinotopy_center_px: retinotopy.center_px,
            retinotopy_px_per_mm: retinotopy.px_per_mm,
        }
    }

    pub fn good_electrodes(&self) -> impl Iterator<Item = &Electrode> {
        self.electrodes.iter().filter(|e| e.good)
    }

    /// Indices of the good electrodes within one pitch (3x3 neighbourhood, itself
    /// included): the local population that forms a unit's orientation pool.
    pub fn neighbourhood(&self, electrode_index: usize) -> Vec<usize> {
        let n = self.params.array_size as i64;
        let (r, c) = ((electrode_index as i64) / n, (electrode_index as i64) % n);
        let mut out = Vec::new();
        for dr in -1..=1 {
            for dc in -1..=1 {
                let (rr, cc) = (r + dr, c + dc);
                if (0..n).contains(&rr) && (0..n).contains(&cc) {
                    let j = (rr * n + cc) as usize;
                    if self.electrodes[j].good {
                        out.push(j);
                    }
                }
            }
        }
        out
    }
}

/// Fisher–Yates shuffle on our own stream (keeps the draw sequence explicit).
pub(crate) fn shuffle<T, R: Rng>(rng: &mut R, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

fn draw_unit<R: Rng>(rng: &mut R, p: &PopulationParams, map_pos: [f64; 2], map_ori: f64, selectivity: f64, rf_scale: f64, min_rf_size_deg: f64) -> Unit {
    let ppd = p.pixels_per_degree;
    let kind = if rng.random::<f64>() < p.simple_fraction { CellType::Simple } else { CellType::Complex };

    // Size and SF: RF size (4 sigma across the bars) and cycles per sigma fix the peak SF.
    let size_deg = (rng::log_uniform(rng, p.rf_size_deg[0], p.rf_size_deg[1]) * rf_scale).max(min_rf_size_deg);
    let n_x = rng::uniform(rng, p.cycles_per_sigma[0], p.cycles_per_sigma[1]);
    let sigma_x_deg = size_deg / 4.0;
    let sf = n_x / sigma_x_deg;

    // Orientation tuning: far from pinwheels (selectivity ~1) the base half-width, at a
    // pinwheel centre the pinwheel half-width; the envelope along the bars follows
    // n_y = sqrt(2 ln 2) / (2 pi sin(hw)) (half height of the filter's amplitude).
    let w = 1.0 - (-(selectivity / 0.5).powi(2)).exp();
    let base_hw = rng::uniform(rng, p.orientation_halfwidth_deg[0], p.orientation_halfwidth_deg[1]);
    let hw = p.pinwheel_halfwidth_deg * (1.0 - w) + base_hw * w;
    let n_y = (2.0 * 2f64.ln()).sqrt() / (std::f64::consts::TAU * hw.to_radians().sin());
    let sigma_y_deg = n_y / sf;
    let jitter = p.unit_orientation_jitter_deg * (1.0 + 2.0 * (1.0 - w));
    let orientation = (map_ori + jitter * rng::normal(rng)).rem_euclid(180.0);

    let size_px = size_deg * ppd;
    let scatter = p.rf_scatter_fraction * size_px;
    let center = [map_pos[0] + scatter * rng::normal(rng), map_pos[1] + scatter * rng::normal(rng)];
    let phase = match kind {
        CellType::Simple => rng::uniform(rng, 0.0, 360.0),
        CellType::Complex => 0.0,
    };

    let nr_exponent = rng::uniform(rng, p.naka_rushton_n[0], p.naka_rushton_n[1]);
    let c50 = rng::uniform(rng, p.c50[0], p.c50[1]);
    let pool_weight = rng::uniform(rng, p.orientation_pool_weight[0], p.orientation_pool_weight[1]);
    let surround_weight = rng::uniform(rng, p.surround_weight[0], p.surround_weight[1]);
    let spontaneous_hz = rng::log_uniform(rng, p.spontaneous_hz[0], p.spontaneous_hz[1]);
    let peak_hz = rng::log_uniform(rng, p.peak_hz[0], p.peak_hz[1]).max(spontaneous_hz + 5.0);

    let peak_ms = rng::uniform(rng, p.kernel_peak_ms[0], p.kernel_peak_ms[1]);
    let suppression_ms = rng::uniform(rng, p.kernel_suppression_ms[0], p.kernel_suppression_ms[1]);
    let rebound = rng::uniform(rng, p.kernel_rebound[0], p.kernel_rebound[1]);
    let delay_ms = rng::uniform(rng, p.kernel_delay_ms[0], p.kernel_delay_ms[1]);
    let temporal_kernel = biphasic_kernel(peak_ms / 1000.0, suppression_ms / 1000.0, rebound, delay_ms / 1000.0);
    let onset_gain = rng::uniform(rng, p.onset_gain[0], p.onset_gain[1]);
    let burst_mean_spikes = rng::uniform(rng, p.burst_mean_spikes[0], p.burst_mean_spikes[1]);
    let responsiveness = rng::log_uniform(rng, p.responsiveness[0], p.responsiveness[1]);

    let template = spike_template(
        rng::uniform(rng, p.spike_trough[0], p.spike_trough[1]),
        rng::uniform(rng, p.spike_trough_width[0], p.spike_trough_width[1]),
        rng::uniform(rng, p.spike_rebound[0], p.spike_rebound[1]),
        rng::uniform(rng, p.spike_rebound_delay[0], p.spike_rebound_delay[1]),
        p.threshold,
        p.crossing_sample,
    );
    let luminance_weight = if rng.random::<f64>() < p.luminance_fraction {
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        sign * rng::uniform(rng, p.luminance_weight[0], p.luminance_weight[1])
    } else {
        0.0
    };

    Unit {
        kind,
        center_px: center,
        orientation_deg: orientation,
        sf_cpd: sf,
        phase_deg: phase,
        sigma_across_px: sigma_x_deg * ppd,
        sigma_along_px: sigma_y_deg * ppd,
        rf_size_px: size_px,
        orientation_halfwidth_deg: hw,
        luminance_weight,
        nr_exponent,
        c50,
        pool_weight,
        surround_weight,
        spontaneous_hz,
        peak_hz,
        drive_scale_hz: 0.0,
        temporal_kernel,
        onset_gain,
        responsiveness,
        burst_mean_spikes,
        template,
    }
}

/// A biphasic temporal kernel sampled in 1/30 s bins, starting `delay_s` after the
/// planted latency: a positive half-sine peaking at
/// `peak_s` after onset (so lasting `2 peak_s`), then a negative half-sine lasting
/// `suppression_s`, averaged over each frame bin. The negative lobe is scaled so that its
/// area is `rebound` times the positive area, and the positive area is 1. Bin j weights
/// frame `t - latency - j`.
pub fn biphasic_kernel(peak_s: f64, suppression_s: f64, rebound: f64, delay_s: f64) -> Vec<f64> {
    let dt = 1.0 / FRAME_RATE_HZ;
    let t1 = 2.0 * peak_s;
    let length_s = t1 + suppression_s;
    let bins = ((delay_s.max(0.0) + length_s) / dt).ceil().max(1.0) as usize;
    let sub = 32;
    let lobe = |negative: bool| -> Vec<f64> {
        (0..bins)
            .map(|j| {
                (0..sub)
                    .map(|s| {
                        let t = (j as f64 + (s as f64 + 0.5) / sub as f64) * dt - delay_s.max(0.0);
                        match (negative, t < t1, t < length_s) {
                            _ if t < 0.0 => 0.0,
                            (false, true, _) => (std::f64::consts::PI * t / t1).sin(),
                            (true, false, true) => (std::f64::consts::PI * (t - t1) / suppression_s).sin(),
                            _ => 0.0,
                        }
                    })
                    .sum::<f64>()
                    / sub as f64
            })
            .collect()
    };
    let (exc, sup) = (lobe(false), lobe(true));
    let kernel = |w: f64| -> Vec<f64> { exc.iter().zip(&sup).map(|(e, s)| e - w * s).collect() };
    let ratio = |k: &[f64]| {
        let pos: f64 = k.iter().filter(|v| **v > 0.0).sum();
        let neg: f64 = -k.iter().filter(|v| **v < 0.0).sum::<f64>();
        if pos > 0.0 { neg / pos } else { f64::INFINITY }
    };
    // The negative/positive area ratio grows with the suppressive weight: bisect.
    let (mut lo, mut hi) = (0.0, 1.0);
    while ratio(&kernel(hi)) < rebound && hi < 64.0 {
        hi *= 2.0;
    }
    for _ in 0..50 {
        let mid = 0.5 * (lo + hi);
        if ratio(&kernel(mid)) < rebound {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut k = kernel(0.5 * (lo + hi));
    let pos: f64 = k.iter().filter(|v| **v > 0.0).sum();
    if pos > 0.0 {
        k.iter_mut().for_each(|v| *v /= pos);
    }
    k
}

/// A biphasic extracellular spike template: a Gaussian trough of depth `trough` and width
/// `width` (samples), followed after `delay` samples by a broader positive peak of
/// `rebound * trough`. Shifted so that the first sample at or below `threshold` is
/// `crossing_sample`, as a threshold detector aligns its snippets.
pub fn spike_template(trough: f64, width: f64, rebound: f64, delay: f64, threshold: f64, crossing_sample: usize) -> Vec<f64> {
    let shape = |s: f64, t0: f64| {
        -trough * (-(s - t0).powi(2) / (2.0 * width * width)).exp()
            + rebound * trough * (-(s - t0 - delay).powi(2) / (2.0 * (1.8 * width).powi(2))).exp()
    };
    // Continuous crossing time relative to the trough: solve the Gaussian for threshold.
    let lead = if trough > -threshold { width * (2.0 * (trough / -threshold).ln()).sqrt() } else { 0.0 };
    let mut t0 = crossing_sample as f64 + lead - 0.5;
    // Adjust on the integer grid so that the first sample <= threshold is exactly the
    // crossing sample (the continuous estimate can be off by one).
    for _ in 0..4 {
        let first = (0..SNIPPET_LEN).find(|&s| shape(s as f64, t0) <= threshold);
        match first {
            Some(f) if f > crossing_sample => t0 -= (f - crossing_sample) as f64,
            Some(f) if f < crossing_sample => t0 += (crossing_sample - f) as f64,
            _ => break,
        }
    }
    (0..SNIPPET_LEN).map(|s| shape(s as f64, t0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_biphasic_with_unit_positive_lobe() {
        for (peak, sup) in [(0.038, 0.035), (0.043, 0.045), (0.048, 0.055)] {
            let k = biphasic_kernel(peak, sup, 0.45, 0.0);
            assert!((4..=5).contains(&k.len()), "{peak}: {k:?}");
            assert!(k[0] > 0.0);
            // The strongest weight is one frame after onset.
            let arg = k.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            assert_eq!(arg, 1, "{k:?}");
            let pos: f64 = k.iter().filter(|v| **v > 0.0).sum();
            let neg: f64 = -k.iter().filter(|v| **v < 0.0).sum::<f64>();
            assert!((pos - 1.0).abs() < 1e-9);
            assert!((neg - 0.45).abs() < 1e-3, "{k:?}");
        }
    }

    #[test]
    fn template_crosses_threshold_at_the_crossing_sample() {
        for (a, w) in [(60.0, 1.6), (110.0, 2.6), (85.0, 2.0)] {
            let t = spike_template(a, w, 0.3, 10.0, -30.0, 10);
            let first = t.iter().position(|v| *v <= -30.0);
            assert_eq!(first, Some(10), "{t:?}");
            let min = t.iter().cloned().fold(f64::INFINITY, f64::min);
            assert!((min + a).abs() < 0.15 * a, "trough {min} for {a}");
            assert!(t.iter().cloned().fold(f64::NEG_INFINITY, f64::max) > 0.0);
        }
    }

    #[test]
    fn population_counts_and_ranges() {
        let p = PopulationParams::default();
        let pop = Population::generate(3, &p);
        assert_eq!(pop.electrodes.len(), 100);
        assert_eq!(pop.good_electrodes().count(), 50);
        for e in &pop.electrodes {
            if e.good {
                assert!((p.units_per_electrode[0]..=p.units_per_electrode[1]).contains(&e.units.len()));
            } else {
                assert!(e.units.is_empty());
            }
        }
        for u in &pop.units {
            assert!(u.rf_size_px >= 0.3 * 32.0 - 1e-9 && u.rf_size_px <= 32.0 + 1e-9);
            assert!(u.sf_cpd > 1.0 && u.sf_cpd < 8.0, "sf {}", u.sf_cpd);
        }
    }
}
