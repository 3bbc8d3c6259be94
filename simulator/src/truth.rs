//! The ground truth written beside the simulated pvc-1 tree, in `out/ground_truth/`:
//!
//! - `truth.json`: seed, geometry, planted latency, the peak lag, the population
//!   footprint, and per electrode its position, RF, orientation, units and files;
//! - `rates.safetensors`: per movie segment a tensor `m{MMM}_s{SSS}` of shape
//!   [nframes, 100] f32, the noise-free expected spike count of every array electrode
//!   (column = id - 1) in every 1/30 s bin, from its units only;
//! - `COMPLETE`: written last; its presence means the whole dataset is there.
//!
//! A wide-field dataset (several arrays) has `truth.json` and `rates.safetensors` per
//! array in `ground_truth/ac{k}/` (named like the array's `neurodata/` folder) and
//! `arrays.json` ([`ArrayLayout`]) beside them.
//!
//! [`GroundTruth::load`] reads a one-array truth back, [`GroundTruth::load_arrays`] either.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde::{Deserialize, Serialize};

use super::error::{io, SimError};
use super::params::PopulationParams;
use super::population::{Population, Unit};
use super::session::SessionPlan;
use super::wide::WideField;
use super::SimConfig;
use neural_data::pvc1::{FRAME_HEIGHT, FRAME_WIDTH};

pub const TRUTH_DIR: &str = "ground_truth";
pub const TRUTH_JSON: &str = "truth.json";
pub const RATES_FILE: &str = "rates.safetensors";
pub const COMPLETE_MARKER: &str = "COMPLETE";
/// Present in `ground_truth/` of a multi-array dataset only ([`ArrayLayout`]).
pub const ARRAYS_JSON: &str = neural_data::truth_layout::ARRAYS_JSON;
/// Bumped when the meaning of a field changes.
pub const TRUTH_FORMAT_VERSION: u32 = 1;

/// Everything about the simulated population that evaluation may compare against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub format_version: u32,
    pub seed: u64,
    pub preset: String,
    /// `dead_leaves` or `photos`.
    pub stimulus: String,
    pub pixels_per_degree: f64,
    /// [width, height] of the frames (px).
    pub frame_size: [u32; 2],
    pub frame_rate_hz: f64,
    pub movies: u16,
    pub segments: u16,
    pub frames_per_segment: usize,
    /// Planted onset latency: the rate in bin t depends on frames t - latency - j, j >= 0.
    pub latency_frames: u32,
    /// Lag (frames) of the strongest response: latency + the peak of the population's
    /// mean temporal kernel (weighted by each unit's driven rate).
    pub peak_lag_frames: u32,
    /// Union of the good units' RFs (centre +- 2 sigma), [x, y, w, h] in frame px,
    /// clipped to the frame.
    pub footprint_px: [f64; 4],
    /// Retinotopic map: frame px = center + px_per_mm * cortex_mm.
    pub retinotopy_center_px: [f64; 2],
    pub retinotopy_px_per_mm: [[f64; 2]; 2],
    pub electrodes: Vec<ElectrodeTruth>,
    pub files: Vec<FileTruth>,
    pub params: PopulationParams,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElectrodeTruth {
    pub id: u16,
    pub row: u8,
    pub col: u8,
    pub good: bool,
    pub cortex_mm: [f64; 2],
    /// Where the retinotopic map puts this electrode (px), with or without units.
    pub map_position_px: [f64; 2],
    /// Orientation map at the electrode (deg) and its selectivity (~0 at a pinwheel).
    pub map_orientation_deg: f64,
    pub map_selectivity: f64,
    /// Rate-weighted mean RF centre of its units (px); null on noise-only electrodes.
    pub rf_center_px: Option<[f64; 2]>,
    /// 4 sigma of the rate-weighted mixture of its units' envelopes (px); null when none.
    pub rf_size_px: Option<f64>,
    /// Rate-weighted circular mean of its units' orientations (deg); null when none.
    pub preferred_orientation_deg: Option<f64>,
    pub noise_crossing_hz: f64,
    /// Names of the files that record this electrode.
    pub files: Vec<String>,
    pub units: Vec<UnitTruth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitTruth {
    #[serde(flatten)]
    pub unit: Unit,
    /// Mean driven rate above spontaneous on the calibration scenes (spikes/s).
    pub calibration_driven_hz: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileTruth {
    pub name: String,
    pub subdir: String,
    pub repeats: usize,
    pub electrodes: Vec<u16>,
    /// Movie segments it holds, as [movie, segment].
    pub segments: Vec<[u16; 2]>,
}

/// What `truth.json` needs besides the population.
#[derive(Debug, Clone)]
pub struct TruthMeta {
    pub seed: u64,
    pub preset: String,
    pub stimulus: String,
    pub movies: u16,
    pub segments: u16,
    pub frames_per_segment: usize,
    pub latency_frames: u32,
    pub frame_size: [u32; 2],
    pub frame_rate_hz: f64,
}

impl Truth {
    pub fn build(pop: &Population, driven_hz: &[f64], plan: &SessionPlan, meta: &TruthMeta) -> Truth {
        let [fw, fh] = meta.frame_size.map(f64::from);
        let mut files_of: HashMap<u16, Vec<String>> = HashMap::new();
        for f in &plan.files {
            for &id in &f.electrodes {
                files_of.entry(id).or_default().push(f.name.clone());
            }
        }
        let weight = |u: usize| driven_hz.get(u).copied().unwrap_or(0.0).max(1e-6);
        let electrodes = pop
            .electrodes
            .iter()
            .map(|e| {
                let w: f64 = e.units.iter().map(|&u| weight(u)).sum();
                let (rf_center_px, rf_size_px, preferred) = if e.units.is_empty() {
                    (None, None, None)
                } else {
                    let cx = e.units.iter().map(|&u| weight(u) * pop.units[u].center_px[0]).sum::<f64>() / w;
                    let cy = e.units.iter().map(|&u| weight(u) * pop.units[u].center_px[1]).sum::<f64>() / w;
                    let var = e
                        .units
                        .iter()
                        .map(|&u| {
                            let un = &pop.units[u];
                            let s2 = 0.5 * (un.sigma_across_px.powi(2) + un.sigma_along_px.powi(2));
                            let d2 = 0.5 * ((un.center_px[0] - cx).powi(2) + (un.center_px[1] - cy).powi(2));
                            weight(u) * (s2 + d2)
                        })
                        .sum::<f64>()
                        / w;
                    let (mut re, mut im) = (0.0, 0.0);
                    for &u in &e.units {
                        let a = 2.0 * pop.units[u].orientation_deg.to_radians();
                        re += weight(u) * a.cos();
                        im += weight(u) * a.sin();
                    }
                    let ori = (im.atan2(re).to_degrees() / 2.0).rem_euclid(180.0);
                    (Some([cx, cy]), Some(4.0 * var.sqrt()), Some(ori))
                };
                ElectrodeTruth {
                    id: e.id,
                    row: e.row,
                    col: e.col,
                    good: e.good,
                    cortex_mm: e.cortex_mm,
                    map_position_px: e.map_position_px,
                    map_orientation_deg: e.map_orientation_deg,
                    map_selectivity: e.map_selectivity,
                    rf_center_px,
                    rf_size_px,
                    preferred_orientation_deg: preferred,
                    noise_crossing_hz: e.noise_crossing_hz,
                    files: files_of.remove(&e.id).unwrap_or_default(),
                    units: e
                        .units
                        .iter()
                        .map(|&u| UnitTruth { unit: pop.units[u].clone(), calibration_driven_hz: driven_hz.get(u).copied().unwrap_or(0.0) })
                        .collect(),
                }
            })
            .collect();

        let footprint_px = footprint(pop, [fw, fh]);

        // Peak lag: the population's mean kernel, weighted by each unit's driven rate.
        let len = pop.units.iter().map(|u| u.temporal_kernel.len()).max().unwrap_or(1);
        let mut mean_kernel = vec![0.0; len];
        for (ui, u) in pop.units.iter().enumerate() {
            for (j, v) in u.temporal_kernel.iter().enumerate() {
                mean_kernel[j] += weight(ui) * v;
            }
        }
        let peak = mean_kernel.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(j, _)| j).unwrap_or(0);

        Truth {
            format_version: TRUTH_FORMAT_VERSION,
            seed: meta.seed,
            preset: meta.preset.clone(),
            stimulus: meta.stimulus.clone(),
            pixels_per_degree: pop.params.pixels_per_degree,
            frame_size: meta.frame_size,
            frame_rate_hz: meta.frame_rate_hz,
            movies: meta.movies,
            segments: meta.segments,
            frames_per_segment: meta.frames_per_segment,
            latency_frames: meta.latency_frames,
            peak_lag_frames: meta.latency_frames + peak as u32,
            footprint_px,
            retinotopy_center_px: pop.retinotopy_center_px,
            retinotopy_px_per_mm: pop.retinotopy_px_per_mm,
            electrodes,
            files: plan
                .files
                .iter()
                .map(|f| FileTruth {
                    name: f.name.clone(),
                    subdir: plan.subdir.clone(),
                    repeats: f.repeats,
                    electrodes: f.electrodes.clone(),
                    segments: f
                        .conditions
                        .iter()
                        .filter_map(|c| match c {
                            super::session::PlannedCondition::Movie { movie, segment } => Some([*movie, *segment]),
                            super::session::PlannedCondition::Rseed { .. } => None,
                        })
                        .collect(),
                })
                .collect(),
            params: pop.params.clone(),
        }
    }
}

/// Union of the units' RFs (centre +- 2 sigma of the larger envelope axis), [x, y, w, h]
/// in frame px clipped to a frame of `size`; the whole frame when there are no units.
pub fn footprint(pop: &Population, size: [f64; 2]) -> [f64; 4] {
    let [fw, fh] = size;
    let mut bx = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for u in &pop.units {
        let r = 2.0 * u.sigma_across_px.max(u.sigma_along_px);
        bx[0] = bx[0].min(u.center_px[0] - r);
        bx[1] = bx[1].min(u.center_px[1] - r);
        bx[2] = bx[2].max(u.center_px[0] + r);
        bx[3] = bx[3].max(u.center_px[1] + r);
    }
    if pop.units.is_empty() {
        return [0.0, 0.0, fw, fh];
    }
    let (x0, y0) = (bx[0].clamp(0.0, fw), bx[1].clamp(0.0, fh));
    let (x1, y1) = (bx[2].clamp(0.0, fw), bx[3].clamp(0.0, fh));
    [x0, y0, x1 - x0, y1 - y0]
}

/// `ground_truth/arrays.json` of a wide-field dataset: the arrays, where they sit, and how
/// completely their units' RFs cover the frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayLayout {
    pub format_version: u32,
    pub seed: u64,
    pub preset: String,
    pub wide: WideField,
    /// Electrode spacing on cortex, [across, down] (mm).
    pub pitch_mm: [f64; 2],
    /// Share of the frame within 2 sigma of some unit's RF centre (see [`crate::wide::coverage`]).
    pub coverage: f64,
    pub arrays: Vec<ArrayEntry>,
}

/// One array of an [`ArrayLayout`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayEntry {
    /// Its folder under `neurodata/` and under `ground_truth/`.
    pub subdir: String,
    /// [column, row] of the array in the grid of arrays.
    pub grid: [usize; 2],
    pub electrodes: usize,
    pub good_electrodes: usize,
    pub units: usize,
    /// The retinotopic map's linear approximation at the array's centre.
    pub retinotopy_center_px: [f64; 2],
    pub retinotopy_px_per_mm: [[f64; 2]; 2],
    /// Union of its units' RFs, [x, y, w, h] (px).
    pub footprint_px: [f64; 4],
}

impl ArrayLayout {
    pub fn new<'a>(cfg: &SimConfig, wide: &WideField, arrays: impl IntoIterator<Item = (&'a Population, &'a str)>) -> ArrayLayout {
        let size = [FRAME_WIDTH as f64, FRAME_HEIGHT as f64];
        let mut units = Vec::new();
        let entries = arrays
            .into_iter()
            .enumerate()
            .map(|(k, (pop, subdir))| {
                units.extend(pop.units.iter().map(|u| (u.center_px, u.sigma_across_px)));
                ArrayEntry {
                    subdir: subdir.to_string(),
                    grid: [k % wide.arrays[0], k / wide.arrays[0]],
                    electrodes: pop.electrodes.len(),
                    good_electrodes: pop.good_electrodes().count(),
                    units: pop.units.len(),
                    retinotopy_center_px: pop.retinotopy_center_px,
                    retinotopy_px_per_mm: pop.retinotopy_px_per_mm,
                    footprint_px: footprint(pop, size),
                }
            })
            .collect();
        ArrayLayout {
            format_version: TRUTH_FORMAT_VERSION,
            seed: cfg.seed,
            preset: cfg.preset.clone(),
            wide: wide.clone(),
            pitch_mm: wide.pitch_mm(&cfg.population),
            coverage: crate::wide::coverage(units),
            arrays: entries,
        }
    }
}

/// Tensor name of a segment's rates.
pub fn rates_name(movie: u16, segment: u16) -> String {
    format!("m{movie:03}_s{segment:03}")
}

/// The bytes of `rates.safetensors` for (movie, segment) -> [nframes * 100] rates.
pub fn rates_bytes(rates: &BTreeMap<(u16, u16), Vec<f32>>, n_electrodes: usize) -> Result<Vec<u8>, String> {
    let bytes: Vec<(String, Vec<u8>, usize)> = rates
        .iter()
        .map(|(&(m, s), v)| (rates_name(m, s), v.iter().flat_map(|x| x.to_le_bytes()).collect(), v.len() / n_electrodes.max(1)))
        .collect();
    let views = bytes
        .iter()
        .map(|(name, b, nframes)| TensorView::new(Dtype::F32, vec![*nframes, n_electrodes], b).map(|v| (name.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    // One metadata entry only: the header must not depend on hash-map order.
    let meta = HashMap::from([(
        "layout".to_string(),
        "expected spike count per 1/30 s bin, noise-free, units only; column = electrode id - 1".to_string(),
    )]);
    safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
}

/// The noise-free rates of one movie segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRates {
    pub nframes: usize,
    /// [nframes * 100], row-major: `values[frame * 100 + id - 1]`.
    pub values: Vec<f32>,
}

impl SegmentRates {
    /// Expected count of electrode `id` (1..=100) in bin `frame`.
    pub fn get(&self, frame: usize, id: u16) -> Option<f32> {
        let e = (id as usize).checked_sub(1).filter(|&e| e < 100)?;
        (frame < self.nframes).then(|| self.values[frame * 100 + e])
    }

    /// The time course of electrode `id` over the segment.
    pub fn electrode(&self, id: u16) -> Option<Vec<f32>> {
        let e = (id as usize).checked_sub(1).filter(|&e| e < 100)?;
        Some((0..self.nframes).map(|t| self.values[t * 100 + e]).collect())
    }
}

/// Every array's ground truth by `neurodata/` sub-folder, and the layout of a multi-array
/// dataset (absent for one array).
pub type ArrayTruths = (Vec<(String, GroundTruth)>, Option<ArrayLayout>);

/// `ground_truth/` read back.
#[derive(Debug, Clone)]
pub struct GroundTruth {
    pub dir: PathBuf,
    pub truth: Truth,
    rates: BTreeMap<(u16, u16), SegmentRates>,
}

impl GroundTruth {
    /// Reads `out/ground_truth/`. `out` is the folder given to `simulate` (the one that
    /// holds `crcns-ringach-data/`). Fails on an incomplete dataset.
    pub fn load(out: &Path) -> Result<GroundTruth, SimError> {
        let dir = out.join(TRUTH_DIR);
        if !dir.join(COMPLETE_MARKER).is_file() {
            return Err(SimError::Incomplete { path: out.to_owned() });
        }
        if dir.join(ARRAYS_JSON).is_file() {
            return Err(SimError::Truth {
                path: dir.join(ARRAYS_JSON),
                message: "this is a multi-array (wide-field) dataset: read it array by array with GroundTruth::load_arrays".into(),
            });
        }
        Self::load_dir(dir)
    }

    /// Reads the ground truth of every array: one `("ac1", truth)` for a one-array dataset,
    /// one per `neurodata/` sub-folder (in `arrays.json` order) for a wide-field one, with
    /// the layout.
    pub fn load_arrays(out: &Path) -> Result<ArrayTruths, SimError> {
        let dir = out.join(TRUTH_DIR);
        if !dir.join(COMPLETE_MARKER).is_file() {
            return Err(SimError::Incomplete { path: out.to_owned() });
        }
        let layout_path = dir.join(ARRAYS_JSON);
        if !layout_path.is_file() {
            return Ok((vec![(super::session::SUBDIR.to_string(), Self::load_dir(dir)?)], None));
        }
        let text = std::fs::read(&layout_path).map_err(io("reading", &layout_path))?;
        let layout: ArrayLayout = serde_json::from_slice(&text).map_err(|e| SimError::Truth { path: layout_path.clone(), message: e.to_string() })?;
        let mut arrays = Vec::with_capacity(layout.arrays.len());
        for a in &layout.arrays {
            if !neural_data::truth_layout::is_plain_folder_name(&a.subdir) {
                return Err(SimError::Truth { path: layout_path.clone(), message: format!("array folder {:?} is not a plain folder name", a.subdir) });
            }
            arrays.push((a.subdir.clone(), Self::load_dir(dir.join(&a.subdir))?));
        }
        Ok((arrays, Some(layout)))
    }

    /// Reads `truth.json` and `rates.safetensors` of one array from `dir`.
    fn load_dir(dir: PathBuf) -> Result<GroundTruth, SimError> {
        let json_path = dir.join(TRUTH_JSON);
        let text = std::fs::read(&json_path).map_err(io("reading", &json_path))?;
        let truth: Truth = serde_json::from_slice(&text).map_err(|e| SimError::Truth { path: json_path.clone(), message: e.to_string() })?;
        let rates_path = dir.join(RATES_FILE);
        let bytes = std::fs::read(&rates_path).map_err(io("reading", &rates_path))?;
        let bad = |message: String| SimError::Truth { path: rates_path.clone(), message };
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let mut rates = BTreeMap::new();
        for (name, view) in st.tensors() {
            let key = name
                .strip_prefix('m')
                .and_then(|r| r.split_once("_s"))
                .and_then(|(m, s)| Some((m.parse::<u16>().ok()?, s.parse::<u16>().ok()?)))
                .ok_or_else(|| bad(format!("tensor name {name:?} is not m{{MMM}}_s{{SSS}}")))?;
            let shape = view.shape();
            if view.dtype() != Dtype::F32 || shape.len() != 2 || shape[1] != 100 {
                return Err(bad(format!("tensor {name}: expected f32 [nframes, 100], got {:?} {shape:?}", view.dtype())));
            }
            let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            rates.insert(key, SegmentRates { nframes: shape[0], values });
        }
        Ok(GroundTruth { dir, truth, rates })
    }

    /// Noise-free expected counts of one segment, if the dataset has it.
    pub fn rates(&self, movie: u16, segment: u16) -> Option<&SegmentRates> {
        self.rates.get(&(movie, segment))
    }

    /// The (movie, segment) pairs that have rates, in order.
    pub fn segments(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.rates.keys().copied()
    }
}
