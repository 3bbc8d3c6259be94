//! A wide-field population: many 10x10 arrays whose receptive fields tile the whole frame,
//! dense near the centre of gaze and sparser outwards (cortical magnification).
//!
//! Each axis of the visual field maps to cortex by the one-dimensional log map
//! `u = k ln(1 + |x| / E2)` (mm of cortex from the centre of gaze for `x` deg of
//! eccentricity along that axis), the separable form of the log-polar model of V1
//! retinotopy (Schwartz 1980, Vision Res 20:645). Its magnification `k / (E2 + |x|)` falls
//! with eccentricity as measured in macaque V1: with `k` = 10 mm and `E2` = 1 deg it is
//! 10 mm/deg at the fovea and 2 mm/deg at 4 deg (Dow, Snyder, Vautin & Bauer 1981, J Comp
//! Neurol 201:1; Van Essen, Newsome & Maunsell 1984, Vision Res 24:429), the value the
//! one-array preset uses at its eccentricity.
//!
//! The electrodes sit on a regular grid over the cortical image of the frame, split into
//! `arrays[0] x arrays[1]` arrays of 10x10; an electrode's units get RFs scaled by the
//! inverse of the local magnification (a roughly constant RF size on cortex: Hubel &
//! Wiesel 1974, J Comp Neurol 158:295), never below `min_rf_size_deg`, the finest RF that
//! the frame's 32 px/deg can show (a peak spatial frequency of at most ~8 c/deg, a quarter
//! cycle per pixel). Everything else (unit types, tuning, noise, bursts, calibration,
//! sessions) is the one-array model's, array by array: each array is recorded in its own
//! `neurodata/ac{k}/` folder in the pvc-1 layout, with its own files and repeat file.
//!
//! With the default 4x4 arrays (1,600 electrodes, half of them recording units as on the
//! pvc-1 arrays) 91% of the frame lies within 2 sigma of some unit's RF centre; the gaps
//! are between the sparse electrodes of the periphery (a 4x3 grid of arrays left 17% of
//! the frame uncovered, 5x4 would put arrays across the vertical meridian, which divides
//! the two hemispheres' maps). Four columns keep every array on one side of it.
//!
//! Spreading 1,600 electrodes over the whole field puts them ~0.8–0.9 mm apart on cortex,
//! sparser than a Utah array's 0.4 mm: this is a population for asking what V1 carries
//! about a whole scene, not a model of any one recording (real multi-array recordings,
//! e.g. 1,024 electrodes on 16 arrays in Chen, Wang, Klink, Roelfsema & Self 2020, Science
//! 370:1191, cover a smaller part of the field more densely).

use serde::{Deserialize, Serialize};

use super::params::PopulationParams;
use super::population::{Population, Retinotopy, Site};
use neural_data::pvc1::{FRAME_HEIGHT, FRAME_WIDTH};

/// How the wide-field population covers the frame. Part of [`crate::SimConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WideField {
    /// Arrays across and down the field, [columns, rows]; each is a 10x10 array recorded
    /// in its own `neurodata/ac{k}/` folder, k = 1.. row by row from the top left.
    pub arrays: [usize; 2],
    /// Centre of gaze in frame pixels: where magnification peaks.
    pub gaze_px: [f64; 2],
    /// `k` of the map `u = k ln(1 + |x| / E2)` (mm).
    pub map_scale_mm: f64,
    /// `E2` of the map (deg): the eccentricity at which magnification has halved.
    pub e2_deg: f64,
    /// Smallest RF size (4 sigma across the bars, deg).
    pub min_rf_size_deg: f64,
}

impl Default for WideField {
    fn default() -> Self {
        WideField { arrays: [4, 4], gaze_px: [160.0, 120.0], map_scale_mm: 10.0, e2_deg: 1.0, min_rf_size_deg: 0.25 }
    }
}

impl WideField {
    /// Number of arrays.
    pub fn count(&self) -> usize {
        self.arrays[0] * self.arrays[1]
    }

    /// Folder (and file-name prefix) of array `index` (0-based): `ac1`, `ac2`, …
    pub fn subdir(index: usize) -> String {
        format!("ac{}", index + 1)
    }

    /// Checks every field, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let [c, r] = self.arrays;
        if !(1..=8).contains(&c) || !(1..=8).contains(&r) {
            return Err(("arrays", format!("expected [columns, rows] each in 1..=8, got [{c}, {r}]")));
        }
        let [gx, gy] = self.gaze_px;
        if !(gx.is_finite() && gy.is_finite() && (0.0..=FRAME_WIDTH as f64).contains(&gx) && (0.0..=FRAME_HEIGHT as f64).contains(&gy)) {
            return Err(("gaze_px", format!("expected a point inside the {FRAME_WIDTH}x{FRAME_HEIGHT} frame, got [{gx}, {gy}]")));
        }
        if !(self.map_scale_mm.is_finite() && (0.5..=100.0).contains(&self.map_scale_mm)) {
            return Err(("map_scale_mm", format!("expected 0.5..=100 mm, got {}", self.map_scale_mm)));
        }
        if !(self.e2_deg.is_finite() && (0.05..=20.0).contains(&self.e2_deg)) {
            return Err(("e2_deg", format!("expected 0.05..=20 deg, got {}", self.e2_deg)));
        }
        if !(self.min_rf_size_deg.is_finite() && (0.0..=2.0).contains(&self.min_rf_size_deg)) {
            return Err(("min_rf_size_deg", format!("expected 0..=2 deg, got {}", self.min_rf_size_deg)));
        }
        Ok(())
    }

    /// mm of cortex from the centre of gaze for `x_deg` along one axis.
    fn to_cortex(&self, x_deg: f64) -> f64 {
        x_deg.signum() * self.map_scale_mm * (x_deg.abs() / self.e2_deg).ln_1p()
    }

    /// Inverse of [`Self::to_cortex`].
    fn to_field(&self, u_mm: f64) -> f64 {
        u_mm.signum() * self.e2_deg * (u_mm.abs() / self.map_scale_mm).exp_m1()
    }

    /// Magnification (mm/deg) along one axis at `x_deg`.
    pub fn magnification(&self, x_deg: f64) -> f64 {
        self.map_scale_mm / (self.e2_deg + x_deg.abs())
    }

    /// The cortical extent of the frame along each axis: ([u0, u1] across, [v0, v1] down), mm.
    fn extent(&self, ppd: f64) -> ([f64; 2], [f64; 2]) {
        let [gx, gy] = self.gaze_px;
        let u = [self.to_cortex(-gx / ppd), self.to_cortex((FRAME_WIDTH as f64 - gx) / ppd)];
        let v = [self.to_cortex(-gy / ppd), self.to_cortex((FRAME_HEIGHT as f64 - gy) / ppd)];
        (u, v)
    }

    /// Electrode spacing on cortex, [across, down] (mm).
    pub fn pitch_mm(&self, params: &PopulationParams) -> [f64; 2] {
        let (u, v) = self.extent(params.pixels_per_degree);
        let n = params.array_size as f64;
        [(u[1] - u[0]) / (self.arrays[0] as f64 * n), (v[1] - v[0]) / (self.arrays[1] as f64 * n)]
    }

    /// The electrodes of array `index` (row-major, as [`Population::generate_at_sites`]
    /// takes them) and the map's linear approximation at the array's centre.
    pub fn sites(&self, params: &PopulationParams, index: usize) -> (Vec<Site>, Retinotopy) {
        let ppd = params.pixels_per_degree;
        let n = params.array_size;
        let (u, v) = self.extent(ppd);
        let [du, dv] = self.pitch_mm(params);
        let (ac, ar) = (index % self.arrays[0], index / self.arrays[0]);
        // Cortical centre of the array.
        let cu = u[0] + (ac * n) as f64 * du + 0.5 * n as f64 * du;
        let cv = v[0] + (ar * n) as f64 * dv + 0.5 * n as f64 * dv;
        let [gx, gy] = self.gaze_px;
        let sites = (0..n * n)
            .map(|i| {
                let (row, col) = (i / n, i % n);
                let eu = u[0] + ((ac * n + col) as f64 + 0.5) * du;
                let ev = v[0] + ((ar * n + row) as f64 + 0.5) * dv;
                let (x, y) = (self.to_field(eu), self.to_field(ev));
                let local = (self.magnification(x) * self.magnification(y)).sqrt();
                Site { cortex_mm: [eu - cu, ev - cv], map_position_px: [gx + x * ppd, gy + y * ppd], rf_scale: params.magnification_mm_per_deg / local }
            })
            .collect();
        let (x, y) = (self.to_field(cu), self.to_field(cv));
        let retinotopy = Retinotopy {
            center_px: [gx + x * ppd, gy + y * ppd],
            px_per_mm: [[ppd / self.magnification(x), 0.0], [0.0, ppd / self.magnification(y)]],
        };
        (sites, retinotopy)
    }

    /// Array `index`'s population, on its own seed stream.
    pub fn population(&self, seed: u64, params: &PopulationParams, index: usize) -> Population {
        let (sites, retinotopy) = self.sites(params, index);
        Population::generate_at_sites(super::rng::array_seed(seed, index), params, &sites, retinotopy, self.min_rf_size_deg)
    }
}

/// Share of the frame's pixels within 2 sigma of at least one unit's RF centre (the RF
/// radius across the bars): how completely a set of units covers the frame.
pub fn coverage(units: impl IntoIterator<Item = ([f64; 2], f64)>) -> f64 {
    let (w, h) = (FRAME_WIDTH as usize, FRAME_HEIGHT as usize);
    let mut covered = vec![false; w * h];
    for ([cx, cy], sigma) in units {
        let r = 2.0 * sigma;
        let (x0, x1) = (((cx - r).floor().max(0.0)) as usize, ((cx + r).ceil().min(w as f64 - 1.0)).max(0.0) as usize);
        let (y0, y1) = (((cy - r).floor().max(0.0)) as usize, ((cy + r).ceil().min(h as f64 - 1.0)).max(0.0) as usize);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                if dx * dx + dy * dy <= r * r {
                    covered[y * w + x] = true;
                }
            }
        }
    }
    covered.iter().filter(|&&c| c).count() as f64 / (w * h) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_and_its_inverse_agree_and_magnification_falls_with_eccentricity() {
        let w = WideField::default();
        for x in [-4.7, -1.0, 0.0, 0.3, 2.0, 5.0] {
            assert!((w.to_field(w.to_cortex(x)) - x).abs() < 1e-9, "x = {x}");
        }
        assert!((w.magnification(0.0) - 10.0).abs() < 1e-12);
        assert!((w.magnification(4.0) - 2.0).abs() < 1e-12);
        assert!(w.magnification(1.0) > w.magnification(3.0));
    }

    #[test]
    fn electrodes_tile_the_frame_densely_at_the_centre_and_sparsely_outwards() {
        let (w, p) = (WideField::default(), PopulationParams::default());
        let mut positions = Vec::new();
        for k in 0..w.count() {
            let (sites, _) = w.sites(&p, k);
            assert_eq!(sites.len(), 100);
            positions.extend(sites.iter().map(|s| (s.map_position_px, s.rf_scale)));
        }
        // Inside the frame, reaching close to all four edges.
        let xs: Vec<f64> = positions.iter().map(|(p, _)| p[0]).collect();
        let ys: Vec<f64> = positions.iter().map(|(p, _)| p[1]).collect();
        let (x0, x1) = (xs.iter().cloned().fold(f64::INFINITY, f64::min), xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        let (y0, y1) = (ys.iter().cloned().fold(f64::INFINITY, f64::min), ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        assert!(x0 > 0.0 && x0 < 12.0 && x1 < 320.0 && x1 > 308.0, "x range {x0}..{x1}");
        assert!(y0 > 0.0 && y0 < 12.0 && y1 < 240.0 && y1 > 228.0, "y range {y0}..{y1}");
        // Electrodes per 40x40 px block: many more at the centre than at a corner.
        let count = |cx: f64, cy: f64| xs.iter().zip(&ys).filter(|(x, y)| (*x - cx).abs() < 20.0 && (*y - cy).abs() < 20.0).count();
        let (centre, corner) = (count(160.0, 120.0), count(20.0, 20.0));
        assert!(centre > 8 * corner.max(1), "centre {centre}, corner {corner}");
        // RFs grow outwards: the site scale at the corner is several times the centre's.
        let scale_at = |cx: f64, cy: f64| {
            positions.iter().min_by(|a, b| ((a.0[0] - cx).hypot(a.0[1] - cy)).total_cmp(&(b.0[0] - cx).hypot(b.0[1] - cy))).map(|p| p.1).unwrap()
        };
        assert!(scale_at(5.0, 5.0) > 4.0 * scale_at(160.0, 120.0));
    }

    #[test]
    fn arrays_are_distinct_populations_whose_rfs_cover_the_frame() {
        let (w, p) = (WideField::default(), PopulationParams::default());
        let pops: Vec<Population> = (0..w.count()).map(|k| w.population(9, &p, k)).collect();
        assert_ne!(pops[0].units[0].orientation_deg, pops[1].units[0].orientation_deg);
        let units = pops.iter().flat_map(|pop| pop.units.iter().map(|u| (u.center_px, u.sigma_across_px)));
        let c = coverage(units);
        assert!(c > 0.88, "coverage {c}");
        // The finest RFs stay resolvable at the frame's resolution.
        let min_size = pops.iter().flat_map(|pop| pop.units.iter().map(|u| u.rf_size_px)).fold(f64::INFINITY, f64::min);
        assert!(min_size >= 0.25 * p.pixels_per_degree - 1e-9, "{min_size}");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = WideField { arrays: [0, 3], ..WideField::default() };
        assert_eq!(bad.validate().unwrap_err().0, "arrays");
        let bad = WideField { gaze_px: [400.0, 10.0], ..WideField::default() };
        assert_eq!(bad.validate().unwrap_err().0, "gaze_px");
        let bad = WideField { e2_deg: f64::NAN, ..WideField::default() };
        assert_eq!(bad.validate().unwrap_err().0, "e2_deg");
        assert!(WideField::default().validate().is_ok());
    }
}
