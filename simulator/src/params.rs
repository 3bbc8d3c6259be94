//! Every number of the simulated V1 in one place, each with the measurement it stands for.
//!
//! Ranges are drawn per unit or per electrode (uniform unless a field says log-uniform).
//! The defaults describe anaesthetised macaque V1 at 2–6 deg eccentricity recorded with a
//! 10x10 Utah array, the preparation of the CRCNS pvc-1 data (Nauhaus & Ringach 2007,
//! J Neurophysiol 97:3781). They are targets for realism, not fitted values.

use serde::{Deserialize, Serialize};

/// An inclusive range `[lo, hi]` that values are drawn from.
pub type Range = [f64; 2];

/// Parameters of the simulated population, the electrode signal and the noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopulationParams {
    // ---------------------------------------------------------------- geometry
    /// Frame pixels per degree of visual angle. pvc-1 publishes none; 32 px/deg makes the
    /// 320x240 frame 10 x 7.5 deg, a plausible CRT field for the recordings.
    pub pixels_per_degree: f64,
    /// Rows and columns of the array (Utah array, 10x10).
    pub array_size: usize,
    /// Electrode spacing (mm): 0.4 mm for the Utah arrays used in pvc-1.
    pub pitch_mm: f64,
    /// Fraction of electrodes that record units; the rest record noise only. pvc-1 has
    /// about 50 reliable electrodes per 100 (pvc-1 description; Kelly et al. 2007,
    /// J Neurosci 27:261 report similar yields for Utah arrays in V1).
    pub good_fraction: f64,
    /// Cortical magnification (mm of cortex per deg) at the RF eccentricity: ~2 mm/deg at
    /// 2–6 deg (Van Essen, Newsome & Maunsell 1984, Vision Res 24:429; Dow et al. 1981,
    /// J Comp Neurol 201:1). The 3.6 mm array then spans ~1.8 deg of visual field.
    pub magnification_mm_per_deg: f64,
    /// Where the centre of the population's footprint lies in the frame (x, y px).
    /// Off-centre on purpose: decoders must find it rather than assume the frame centre.
    pub footprint_center_px: [f64; 2],
    /// Random offset of that centre, per seed (px, uniform in ±value on each axis).
    pub footprint_jitter_px: f64,
    /// Anisotropy of the retinotopic map (ratio of magnification along the two array
    /// axes): V1 magnification is anisotropic by ~1.2–1.6 (Van Essen et al. 1984).
    pub magnification_anisotropy: Range,
    /// Scatter of RF centres around the retinotopic map (standard deviation per axis, as a
    /// fraction of the unit's RF size). Neighbouring RFs scatter by up to about half an RF
    /// (Hubel & Wiesel 1974, J Comp Neurol 158:295); 0.3 keeps the population footprint
    /// (union of RFs, +-2 sigma) near 110 px across with the 2 deg array span.
    pub rf_scatter_fraction: f64,

    // ---------------------------------------------------------------- orientation map
    /// Column period of the orientation map (mm): ~0.7–0.8 mm in macaque V1 (Obermayer &
    /// Blasdel 1993, J Neurosci 13:4114).
    pub orientation_period_mm: f64,
    /// Plane waves summed to build the pinwheel map (complex sum, angle/2 = preference),
    /// the standard random-map model (Kaschube et al. 2010, Science 330:1113).
    pub orientation_waves: usize,
    /// Orientation half-width at half height (deg) of units far from pinwheels: median
    /// ~20–25 deg (Ringach, Shapley & Hawken 2002, J Neurosci 22:5639).
    pub orientation_halfwidth_deg: Range,
    /// Half-width reached at a pinwheel centre: tuning is broader near pinwheels (Nauhaus,
    /// Benucci, Carandini & Ringach 2008, Neuron 57:673).
    pub pinwheel_halfwidth_deg: f64,
    /// Preferred-orientation scatter of units on one electrode around the map value (deg,
    /// standard deviation; larger near pinwheels where the map changes fast).
    pub unit_orientation_jitter_deg: f64,

    // ---------------------------------------------------------------- units
    /// Units per good electrode (multi-unit activity), inclusive range: a Utah-array
    /// electrode's threshold crossings mix the spikes of several nearby neurons, 2–5 in
    /// the multi-unit recordings this preparation gives (Kelly et al. 2007, J Neurosci
    /// 27:261). With fewer, single simple cells dominate channels and their phase-locked
    /// linear RF shows in a whitened-pixel STA far more than on the real files.
    pub units_per_electrode: [usize; 2],
    /// Fraction of simple cells (linear Gabor, rectified); the rest are complex (energy
    /// model). ~40% of all V1 cells are simple (Skottun et al. 1991, Vision Res 31:1079),
    /// but they sit mostly in layers 4 and 6, and the supragranular layers that a Utah
    /// array's 1–1.5 mm electrodes record from are mostly complex (Ringach, Shapley &
    /// Hawken 2002, J Neurosci 22:5639): 12% here.
    pub simple_fraction: f64,
    /// Fraction of units (simple or complex) that also signal the luminance of their RF
    /// relative to its surround. Many V1 neurons respond to uniform surfaces and track
    /// their luminance or brightness, not only contrast edges (Kinoshita & Komatsu 2001,
    /// J Neurophysiol 86:2559; Peng & Van Essen 2005, J Neurophysiol 93:1620, who found
    /// such responses tuned to the luminance of a patch relative to its background). In the
    /// model this is an unbalanced receptive field: besides its zero-mean Gabor the unit
    /// weighs the mean luminance under its RF envelope against the surround mean. The real
    /// files' luminance signal is weak (whitened-pixel STA ratio 1.22, docs/twin.md): 3%.
    pub luminance_fraction: f64,
    /// Magnitude of that luminance weight, in the same contrast units as the Gabor drive
    /// (a patch 50% brighter than its surround gives 0.5 times the weight). Its sign (ON
    /// or OFF: brighter or darker than the surround) is drawn with equal odds.
    pub luminance_weight: Range,
    /// RF size (deg): 4 sigma of the Gabor envelope across the bars, log-uniform.
    /// ~0.3–1 deg at 2–6 deg eccentricity (Ringach 2002, J Neurophysiol 88:455).
    pub rf_size_deg: Range,
    /// Cycles per envelope sigma across the bars (n_x = sigma_x * f, Ringach 2002). It
    /// sets the SF bandwidth: n_x ~0.42 gives ~1.4 octaves, the median of De Valois,
    /// Albrecht & Thorell 1982 (Vision Res 22:545). With the RF sizes above this puts the
    /// peak SF at ~1.2–7 c/deg, median ~3 c/deg (De Valois et al. 1982: ~1–8 c/deg).
    pub cycles_per_sigma: Range,
    /// Naka–Rushton exponent n: ~2 (Albrecht & Hamilton 1982, J Neurophysiol 48:217).
    pub naka_rushton_n: Range,
    /// Semi-saturation contrast c50: ~10–30% (Albrecht & Hamilton 1982; Sclar, Maunsell &
    /// Lennie 1990, Vision Res 30:1).
    pub c50: Range,
    /// Weight of the local orientation pool in the normalisation signal (units on the
    /// electrode and its 8 neighbours, which cover all orientations of the map): divisive
    /// normalisation (Heeger 1992, Vis Neurosci 9:181; Carandini & Heeger 2012, Nat Rev
    /// Neurosci 13:51).
    pub orientation_pool_weight: Range,
    /// Weight of the surround contrast in the normalisation signal (Cavanaugh, Bair &
    /// Movshon 2002, J Neurophysiol 88:2530).
    pub surround_weight: Range,
    /// Surround window size as a multiple of the RF size: the suppressive surround is
    /// ~2–3x the classical RF (Cavanaugh et al. 2002).
    pub surround_scale: f64,
    /// Softplus output d = [softplus(k (g - theta)) - softplus(-k theta)] / k of the
    /// normalised drive g, then rate = spont + R (1 - exp(-A d / R)) with R = peak - spont:
    /// linear in d for weak drive, saturating at the peak rate. `softplus_sharpness` is
    /// k, `softplus_threshold` theta: 0.3 leaves weakly matched stimuli near silent, so
    /// responses to natural movies are sparse (Vinje & Gallant 2000, Science 287:1273).
    pub softplus_sharpness: f64,
    pub softplus_threshold: f64,
    /// Spontaneous rate (spikes/s), log-uniform. Spontaneous rates of V1 cells are mostly
    /// low, a few spikes/s or less, many below 1 (Ringach et al. 2002; Albrecht & Hamilton
    /// 1982); 0.05–1.5 keeps the real files' long silences between responses (ISI CV ~2).
    pub spontaneous_hz: Range,
    /// Driven peak rate (spikes/s), log-uniform: the ceiling of the unit's rate. Optimal
    /// gratings drive V1 cells to 20–100 sp/s (Albrecht & Hamilton 1982), natural movies
    /// far less (Vinje & Gallant 2000); 8–35 sp/s with the responsiveness below gives the
    /// real multi-unit event rates (5–30/s) and repeat-file reliability (max R² median 0.37).
    pub peak_hz: Range,
    /// Calibration: the median over calibration scenes of the unit's per-scene largest
    /// drive is mapped to this fraction of the way from spontaneous to peak rate, so that
    /// a typical scene drives each unit close to (but not past) its ceiling.
    pub calibration_level: f64,
    /// Responsiveness: the calibrated driven rate is scaled by this factor, drawn per unit
    /// (log-uniform). Many V1 neurons respond weakly and unreliably to natural movies
    /// (Vinje & Gallant 2000, Science 287:1273; David, Vinje & Gallant 2004, J Neurosci
    /// 24:6991); with it the repeat file's max R² spreads into a continuum as on the real
    /// files instead of splitting into good and dead electrodes.
    pub responsiveness: Range,
    /// A factor on the responsiveness of all units of one electrode (log-uniform): the
    /// flat array's tips sit at different depths of the curved cortex, some in the
    /// strongly driven middle layers, some in weakly driven superficial ones, and the
    /// recording quality differs from site to site (Suner, Fellows, Vargas-Irwin, Nakata &
    /// Donoghue 2005, IEEE TNSRE 13:524). It spreads the repeat file's max R² over a
    /// continuum as on the real files instead of bunching the good electrodes together.
    pub site_responsiveness: Range,
    /// Calibration movies: dead-leaves scenes on their own seed stream, and frames each.
    /// Several scenes, because how hard a scene drives a unit varies a lot between scenes.
    pub calibration_scenes: usize,
    pub calibration_scene_frames: usize,

    // ---------------------------------------------------------------- time
    /// Biphasic temporal kernel, ~100–150 ms long in all (Ringach, Hawken & Shapley 1997,
    /// Nature 387:281; De Valois et al. 2000, PNAS 97:4997): a positive lobe peaking
    /// `kernel_peak_ms` after the response onset (the planted latency) and lasting twice
    /// that, then a negative lobe lasting `kernel_suppression_ms`. A peak at 38–48 ms
    /// falls in the second 1/30 s bin, so the strongest response comes one frame after
    /// onset (~100 ms after the frame with a 2-frame latency, as in V1).
    pub kernel_peak_ms: Range,
    pub kernel_suppression_ms: Range,
    /// Area of the negative lobe relative to the positive one (0 = monophasic,
    /// 1 = fully transient).
    pub kernel_rebound: Range,
    /// Per-unit delay of the kernel beyond the planted latency (ms). Visual latencies of
    /// V1 cells spread over tens of ms (Maunsell & Gibson 1992, J Neurophysiol 68:1332;
    /// Schmolesky et al. 1998, J Neurophysiol 79:3272); with the 3-frame latency this puts
    /// the contrast-energy STA peak at 4 or 5 frames, mostly 5, as on the real files.
    pub kernel_delay_ms: Range,
    /// Onset transient: after the segment onset the driven part of the rate is multiplied
    /// by `1 + a exp(-t / onset_tau_ms)`, `a` drawn per unit. V1 responses to a new
    /// stimulus are transient-sustained, the transient several times the sustained rate
    /// (Albrecht, Geisler, Frazor & Crane 2002, J Neurophysiol 88:888; Müller et al. 2001,
    /// J Neurophysiol 85:1687).
    pub onset_gain: Range,
    pub onset_tau_ms: f64,

    // ---------------------------------------------------------------- noise
    /// Standard deviation of the log of the shared slow gain. A modulated Poisson process
    /// (Goris, Movshon & Simoncelli 2014, Nat Neurosci 17:858): with the bursts below,
    /// Fano factors of ~2–2.5 for multi-unit counts in 1/3 s windows over repeats, as
    /// under anaesthesia; the bursts carry most of it, so the gain is kept small.
    pub gain_log_sd: f64,
    /// Time constant of the gain (s): slow, ~1 s (Goris et al. 2014; Ecker et al. 2014,
    /// Neuron 82:235).
    pub gain_tau_s: f64,
    /// Shares of the log-gain variance that are global (whole array), local (smooth over
    /// the array, length `gain_local_length_mm`) and private (per electrode). Sums to 1
    /// after normalisation. With these, noise correlations of neighbouring electrodes are
    /// ~0.1–0.2 and fall with distance (Smith & Kohn 2008, J Neurosci 28:12591).
    pub gain_shares: [f64; 3],
    /// Length scale (mm) of the local gain field.
    pub gain_local_length_mm: f64,
    /// Standard deviation of the log of a per-file, per-electrode gain: every recording
    /// is its own session, and the same electrode records more or less of its units from
    /// one session to the next (array micromotion, impedance drift; Barrese et al. 2013,
    /// J Neural Eng 10:066014).
    pub file_gain_log_sd: f64,
    /// Bursts: each unit fires in bursts of 1 + Poisson spikes with this mean
    /// (drawn per unit), spikes of a burst this many ms apart, and no two spikes of a unit
    /// closer than `refractory_ms`. Multi-unit activity in V1 is bursty: ISI CV ~2 where
    /// Poisson gives 1 (DeBusk, DeBruyn, Snider, Kabara & Bonds 1997, J Neurophysiol
    /// 78:199; Livingstone, Freeman & Hubel 1996, Cereb Cortex 6:513).
    pub burst_mean_spikes: Range,
    pub burst_isi_ms: Range,
    pub refractory_ms: f64,

    // ---------------------------------------------------------------- electrode signal
    /// Spike trough (negative peak) amplitude of each unit's template (int8 units).
    pub spike_trough: Range,
    /// Trough half-width (samples at 30 kHz, Gaussian sigma).
    pub spike_trough_width: Range,
    /// After-hyperpolarisation: positive peak relative to the trough amplitude.
    pub spike_rebound: Range,
    /// Delay of the positive peak after the trough (samples): narrow to broad spikes,
    /// 0.2–0.45 ms (Mitchell, Sundberg & Reynolds 2007, Neuron 55:131).
    pub spike_rebound_delay: Range,
    /// Detection threshold (int8 units, negative); events are aligned so that the
    /// crossing falls on sample `crossing_sample`.
    pub threshold: f64,
    /// Snippet sample at which the threshold is crossed (pvc-1: ~10).
    pub crossing_sample: usize,
    /// Background noise on every snippet: standard deviation (int8 units) and the
    /// correlation of adjacent samples (band-limited recording noise).
    pub snippet_noise_sd: f64,
    pub snippet_noise_corr: f64,
    /// Amplitude jitter of a unit's spikes (relative standard deviation).
    pub spike_amplitude_jitter: f64,
    /// Rate of sub-threshold noise crossings on every electrode (per s), good or not. A
    /// few per second: more would fill the silences between responses that make the real
    /// multi-unit trains bursty (ISI CV ~2, docs/twin.md).
    pub noise_crossing_hz: Range,
    /// How far past the threshold a noise crossing dips (int8 units, |normal| sd).
    pub noise_crossing_overshoot: f64,
    /// Weak, untuned drive of the noise crossings: their rate follows the population's
    /// mean drive with this relative depth (distant units' spikes that barely cross the
    /// threshold carry some stimulus, but no tuning), so sorting them away is not free.
    pub noise_crossing_drive: f64,
}

impl Default for PopulationParams {
    fn default() -> Self {
        PopulationParams {
            pixels_per_degree: 32.0,
            array_size: 10,
            pitch_mm: 0.4,
            good_fraction: 0.5,
            magnification_mm_per_deg: 2.0,
            footprint_center_px: [200.0, 140.0],
            footprint_jitter_px: 6.0,
            magnification_anisotropy: [1.0, 1.3],
            rf_scatter_fraction: 0.3,
            orientation_period_mm: 0.7,
            orientation_waves: 30,
            orientation_halfwidth_deg: [18.0, 26.0],
            pinwheel_halfwidth_deg: 40.0,
            unit_orientation_jitter_deg: 8.0,
            units_per_electrode: [2, 5],
            simple_fraction: 0.12,
            luminance_fraction: 0.03,
            luminance_weight: [0.2, 0.6],
            rf_size_deg: [0.3, 1.0],
            cycles_per_sigma: [0.32, 0.52],
            naka_rushton_n: [1.7, 2.5],
            c50: [0.10, 0.30],
            orientation_pool_weight: [0.2, 0.4],
            surround_weight: [0.1, 0.3],
            surround_scale: 2.5,
            softplus_sharpness: 12.0,
            softplus_threshold: 0.3,
            spontaneous_hz: [0.05, 1.5],
            peak_hz: [8.0, 35.0],
            calibration_level: 0.9,
            responsiveness: [0.04, 1.0],
            site_responsiveness: [0.25, 1.0],
            calibration_scenes: 12,
            calibration_scene_frames: 40,
            kernel_peak_ms: [38.0, 48.0],
            kernel_suppression_ms: [35.0, 55.0],
            kernel_rebound: [0.3, 0.6],
            kernel_delay_ms: [6.0, 24.0],
            onset_gain: [1.5, 4.0],
            onset_tau_ms: 200.0,
            gain_log_sd: 0.25,
            gain_tau_s: 1.0,
            gain_shares: [0.1, 0.2, 0.7],
            gain_local_length_mm: 0.8,
            file_gain_log_sd: 0.3,
            burst_mean_spikes: [1.3, 2.6],
            burst_isi_ms: [2.0, 6.0],
            refractory_ms: 1.5,
            spike_trough: [60.0, 110.0],
            spike_trough_width: [1.6, 2.6],
            spike_rebound: [0.15, 0.45],
            spike_rebound_delay: [6.0, 14.0],
            threshold: -30.0,
            crossing_sample: 10,
            snippet_noise_sd: 3.5,
            snippet_noise_corr: 0.6,
            spike_amplitude_jitter: 0.05,
            noise_crossing_hz: [0.2, 1.2],
            noise_crossing_overshoot: 6.0,
            noise_crossing_drive: 0.3,
        }
    }
}

impl PopulationParams {
    /// Checks that every range is ordered and every value is in its meaningful domain,
    /// naming the first field that is not.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let ranges: [(&'static str, Range, f64, f64); 25] = [
            ("responsiveness", self.responsiveness, 0.01, 1.0),
            ("site_responsiveness", self.site_responsiveness, 0.01, 1.0),
            ("kernel_delay_ms", self.kernel_delay_ms, 0.0, 200.0),
            ("onset_gain", self.onset_gain, 0.0, 20.0),
            ("burst_mean_spikes", self.burst_mean_spikes, 1.0, 10.0),
            ("burst_isi_ms", self.burst_isi_ms, 0.5, 30.0),
            ("luminance_weight", self.luminance_weight, 0.0, 10.0),
            ("magnification_anisotropy", self.magnification_anisotropy, 0.1, 10.0),
            ("orientation_halfwidth_deg", self.orientation_halfwidth_deg, 1.0, 89.0),
            ("rf_size_deg", self.rf_size_deg, 0.01, 5.0),
            ("cycles_per_sigma", self.cycles_per_sigma, 0.05, 5.0),
            ("naka_rushton_n", self.naka_rushton_n, 0.5, 6.0),
            ("c50", self.c50, 0.001, 1.0),
            ("orientation_pool_weight", self.orientation_pool_weight, 0.0, 0.9),
            ("surround_weight", self.surround_weight, 0.0, 0.9),
            ("spontaneous_hz", self.spontaneous_hz, 0.01, 200.0),
            ("peak_hz", self.peak_hz, 0.1, 1000.0),
            ("kernel_peak_ms", self.kernel_peak_ms, 1.0, 500.0),
            ("kernel_suppression_ms", self.kernel_suppression_ms, 1.0, 500.0),
            ("kernel_rebound", self.kernel_rebound, 0.0, 1.0),
            ("spike_trough", self.spike_trough, 1.0, 127.0),
            ("spike_trough_width", self.spike_trough_width, 0.5, 10.0),
            ("spike_rebound", self.spike_rebound, 0.0, 1.0),
            ("spike_rebound_delay", self.spike_rebound_delay, 1.0, 30.0),
            ("noise_crossing_hz", self.noise_crossing_hz, 0.0, 1000.0),
        ];
        for (name, [lo, hi], min, max) in ranges {
            if !(lo.is_finite() && hi.is_finite() && min <= lo && lo <= hi && hi <= max) {
                return Err((name, format!("expected {min} <= lo <= hi <= {max}, got [{lo}, {hi}]")));
            }
        }
        let positive: [(&'static str, f64); 9] = [
            ("onset_tau_ms", self.onset_tau_ms),
            ("pixels_per_degree", self.pixels_per_degree),
            ("pitch_mm", self.pitch_mm),
            ("magnification_mm_per_deg", self.magnification_mm_per_deg),
            ("orientation_period_mm", self.orientation_period_mm),
            ("surround_scale", self.surround_scale),
            ("softplus_sharpness", self.softplus_sharpness),
            ("gain_tau_s", self.gain_tau_s),
            ("gain_local_length_mm", self.gain_local_length_mm),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err((name, format!("expected a positive number, got {v}")));
            }
        }
        if self.array_size != 10 {
            return Err(("array_size", format!("pvc-1 electrode ids are 1..=100 on a 10x10 array; expected 10, got {}", self.array_size)));
        }
        if !(0.0..=1.0).contains(&self.luminance_fraction) {
            return Err(("luminance_fraction", format!("expected a fraction in [0, 1], got {}", self.luminance_fraction)));
        }
        if !(0.0..=1.0).contains(&self.good_fraction) || !(0.0..=1.0).contains(&self.simple_fraction) {
            return Err(("good_fraction/simple_fraction", format!("expected fractions in [0, 1], got {} and {}", self.good_fraction, self.simple_fraction)));
        }
        let [ulo, uhi] = self.units_per_electrode;
        if ulo == 0 || ulo > uhi || uhi > 16 {
            return Err(("units_per_electrode", format!("expected 1 <= lo <= hi <= 16, got [{ulo}, {uhi}]")));
        }
        if self.orientation_waves == 0 || self.orientation_waves > 1000 {
            return Err(("orientation_waves", format!("expected 1..=1000, got {}", self.orientation_waves)));
        }
        if !(0.05..=0.99).contains(&self.calibration_level) {
            return Err(("calibration_level", format!("expected a fraction in [0.05, 0.99], got {}", self.calibration_level)));
        }
        if !(1..=100).contains(&self.calibration_scenes) {
            return Err(("calibration_scenes", format!("expected 1..=100, got {}", self.calibration_scenes)));
        }
        if !(20..=2000).contains(&self.calibration_scene_frames) {
            return Err(("calibration_scene_frames", format!("expected 20..=2000 (the onset transient is skipped), got {}", self.calibration_scene_frames)));
        }
        if !(self.gain_log_sd.is_finite() && (0.0..=2.0).contains(&self.gain_log_sd)) {
            return Err(("gain_log_sd", format!("expected 0..=2, got {}", self.gain_log_sd)));
        }
        if self.gain_shares.iter().any(|s| !(s.is_finite() && *s >= 0.0)) || self.gain_shares.iter().sum::<f64>() <= 0.0 {
            return Err(("gain_shares", format!("expected non-negative shares with a positive sum, got {:?}", self.gain_shares)));
        }
        if !(self.threshold.is_finite() && (-120.0..=-1.0).contains(&self.threshold)) {
            return Err(("threshold", format!("expected a negative threshold in [-120, -1], got {}", self.threshold)));
        }
        if self.crossing_sample < 2 || self.crossing_sample > 30 {
            return Err(("crossing_sample", format!("expected 2..=30, got {}", self.crossing_sample)));
        }
        if !(0.0..=40.0).contains(&self.snippet_noise_sd) || !(0.0..1.0).contains(&self.snippet_noise_corr) {
            return Err(("snippet_noise_sd/snippet_noise_corr", format!("expected sd in [0, 40] and corr in [0, 1), got {} and {}", self.snippet_noise_sd, self.snippet_noise_corr)));
        }
        if !(0.0..=0.5).contains(&self.spike_amplitude_jitter) || !(0.0..=60.0).contains(&self.noise_crossing_overshoot) {
            return Err(("spike_amplitude_jitter/noise_crossing_overshoot", format!("expected [0, 0.5] and [0, 60], got {} and {}", self.spike_amplitude_jitter, self.noise_crossing_overshoot)));
        }
        if !(self.refractory_ms.is_finite() && (0.0..=10.0).contains(&self.refractory_ms)) {
            return Err(("refractory_ms", format!("expected 0..=10 ms, got {}", self.refractory_ms)));
        }
        if !(self.file_gain_log_sd.is_finite() && (0.0..=2.0).contains(&self.file_gain_log_sd)) {
            return Err(("file_gain_log_sd", format!("expected 0..=2, got {}", self.file_gain_log_sd)));
        }
        if !(self.noise_crossing_drive.is_finite() && (0.0..=1.0).contains(&self.noise_crossing_drive)) {
            return Err(("noise_crossing_drive", format!("expected a relative depth in [0, 1], got {}", self.noise_crossing_drive)));
        }
        if !(self.rf_scatter_fraction.is_finite() && (0.0..=3.0).contains(&self.rf_scatter_fraction)) {
            return Err(("rf_scatter_fraction", format!("expected 0..=3, got {}", self.rf_scatter_fraction)));
        }
        Ok(())
    }
}
