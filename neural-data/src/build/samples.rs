//! Step 6 of the build: cut crops and full frames, gather the responses at the lags,
//! attach the simulator's noise-free rates when `ground_truth/` is present, and collect the
//! repeated trials of the test samples.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::cache::Split;
use crate::error::{io_err, DataError};

use super::decode::bin_events;
use super::Steps;

/// The samples of a dataset, in the fields' order of [`crate::cache::Dataset`].
pub(super) struct Samples {
    pub(super) crops: Vec<u8>,
    pub(super) full: Vec<u8>,
    pub(super) responses: Vec<f32>,
    pub(super) truth: Option<Vec<f32>>,
    pub(super) index: Vec<[u16; 3]>,
    pub(super) split: Vec<Split>,
    /// The (movie, segment) pairs of each split, by split name.
    pub(super) segments: BTreeMap<String, Vec<[u16; 2]>>,
    /// Sample index of each (movie, segment, frame).
    pub(super) sample_of: HashMap<(u16, u16, u16), usize>,
}

/// Repeated trials of the test samples, laid out as [`crate::cache::Dataset`] keeps them.
pub(super) struct Repeats {
    pub(super) n_repeats: usize,
    pub(super) repeats: Vec<f32>,
    pub(super) repeat_samples: Vec<u32>,
}

/// One sample per frame of every segment that has all its lag bins, after the onset drop.
/// `truth_rates` are the simulator's noise-free rates; `root` names them in errors.
pub(super) fn cut(steps: &Steps<'_>, root: &Path, truth_rates: Option<&TruthSet>) -> Result<Samples, DataError> {
    let (cfg, decoded, lags) = (steps.cfg, &steps.decoded, &steps.window.lags);
    let (dw, dh, n_ch, scale) = (decoded.width, decoded.height, decoded.n_ch, decoded.scale);
    let crop_window = steps.window.crop_window;
    let max_needed_lag = *lags.iter().max().unwrap_or(&0) as usize;
    let s = cfg.image_size;
    let [fw, fh] = cfg.full_frame_size;
    let win = [crop_window[0] / scale as u32, crop_window[1] / scale as u32, (crop_window[2] / scale as u32).max(1), (crop_window[3] / scale as u32).max(1)];
    let mut crops = Vec::new();
    let mut full = Vec::new();
    let mut responses = Vec::new();
    let mut truth_out: Option<Vec<f32>> = truth_rates.map(|_| Vec::new());
    let mut index = Vec::new();
    let mut split = Vec::new();
    let mut seg_lists: BTreeMap<String, Vec<[u16; 2]>> = BTreeMap::new();
    let mut sample_of: HashMap<(u16, u16, u16), usize> = HashMap::new();
    for (k, seg) in steps.segments.iter().enumerate() {
        let sp = steps.splits.of(seg.movie, seg.segment);
        seg_lists.entry(format!("{sp:?}").to_lowercase()).or_default().push([seg.movie, seg.segment]);
        // Per channel: the noise-free rates of its array for this segment.
        let tr: Option<Vec<&(usize, Vec<f32>)>> = match truth_rates {
            Some(set) => Some(
                steps
                    .files
                    .channels
                    .iter()
                    .map(|c| {
                        set.of(&c.subdir).and_then(|rates| rates.get(&(seg.movie, seg.segment))).ok_or_else(|| DataError::GroundTruth {
                            path: root.join("ground_truth"),
                            message: format!("no rates for movie {} segment {} of array {}", seg.movie, seg.segment, c.subdir),
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        let d = &decoded.frames[k];
        let counts = &decoded.counts[k];
        for t in cfg.drop_onset_frames..seg.nframes {
            if t + max_needed_lag >= seg.nframes {
                break;
            }
            sample_of.insert((seg.movie, seg.segment, t as u16), index.len());
            crops.extend(crop_resize(&d.frames[t], dw, dh, win, s as u32, s as u32));
            full.extend(crop_resize(&d.frames[t], dw, dh, [0, 0, dw as u32, dh as u32], fw, fh));
            for &lag in lags {
                let b = t + lag as usize;
                responses.extend_from_slice(&counts[b * n_ch..(b + 1) * n_ch]);
                if let (Some(out), Some(per_channel)) = (truth_out.as_mut(), tr.as_ref()) {
                    for (c, (nb, rates)) in steps.files.channels.iter().zip(per_channel) {
                        let v = if b < *nb { rates[b * 100 + (c.electrode as usize).saturating_sub(1).min(99)] } else { 0.0 };
                        out.push(v);
                    }
                }
            }
            index.push([seg.movie, seg.segment, t as u16]);
            split.push(sp);
        }
    }
    if index.is_empty() {
        return Err(DataError::Empty { stage: "cutting samples", detail: "segments are shorter than the onset drop plus the lags".into() });
    }
    if !split.contains(&Split::Train) {
        return Err(DataError::Empty { stage: "splitting", detail: "the training split is empty".into() });
    }
    Ok(Samples { crops, full, responses, truth: truth_out, index, split, segments: seg_lists, sample_of })
}

/// The repeated trials of the test samples (when `match_repeats_by_electrode`): per repeat,
/// repeated sample, lag and channel, the count; NaN where a repeat file has fewer repeats.
pub(super) fn repeats(steps: &Steps<'_>, sample_of: &HashMap<(u16, u16, u16), usize>) -> Repeats {
    let (lags, n_ch) = (&steps.window.lags, steps.decoded.n_ch);
    let mut rep_trials: Vec<(usize, usize, Vec<Vec<f32>>)> = Vec::new(); // (sample, channel, per repeat the count in each lag bin)
    let mut n_repeats = 0usize;
    if steps.cfg.match_repeats_by_electrode {
        for r in &steps.files.repeat {
            for (m, sgm, cond) in super::movie_conditions(r) {
                if cond.repeats.len() < 2 || !steps.splits.test_set.contains(&(m, sgm)) {
                    continue;
                }
                let Some(seg) = steps.segments.iter().find(|s| s.movie == m && s.segment == sgm) else { continue };
                n_repeats = n_repeats.max(cond.repeats.len());
                for (e, &elec) in r.electrodes.iter().enumerate() {
                    let targets: Vec<usize> = steps
                        .files
                        .channels
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.subdir == r.subdir && c.electrode == elec)
                        .map(|(i, _)| i)
                        .collect();
                    if targets.is_empty() {
                        continue;
                    }
                    for &ch in &targets {
                        // The same spike/noise threshold as the single-trial channel this
                        // electrode is matched to, so that repeats count what the model predicts.
                        let threshold = steps.decoded.thresholds[ch];
                        let binned: Vec<Vec<f32>> = cond
                            .repeats
                            .iter()
                            .map(|tr| tr.electrodes.get(e).map(|ev| bin_events(ev, seg.nframes, threshold)).unwrap_or_else(|| vec![0.0; seg.nframes]))
                            .collect();
                        for t in 0..seg.nframes {
                            let Some(&si) = sample_of.get(&(m, sgm, t as u16)) else { continue };
                            let per_rep: Vec<Vec<f32>> = binned
                                .iter()
                                .map(|b| lags.iter().map(|&l| b.get(t + l as usize).copied().unwrap_or(0.0)).collect())
                                .collect();
                            rep_trials.push((si, ch, per_rep));
                        }
                    }
                }
            }
        }
    }
    let repeat_samples: Vec<u32> = rep_trials.iter().map(|(s, _, _)| *s as u32).collect::<BTreeSet<_>>().into_iter().collect();
    let m_of: HashMap<u32, usize> = repeat_samples.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let n_rep_samples = repeat_samples.len();
    let n_lags = lags.len();
    let mut repeats = vec![f32::NAN; n_repeats * n_rep_samples * n_lags * n_ch];
    for (si, ch, per_rep) in &rep_trials {
        let m = m_of[&(*si as u32)];
        for (r, bins) in per_rep.iter().enumerate() {
            for (k, v) in bins.iter().enumerate() {
                repeats[((r * n_rep_samples + m) * n_lags + k) * n_ch + ch] = *v;
            }
        }
    }
    Repeats { n_repeats, repeats, repeat_samples }
}

/// Resizes a crop of a grayscale image with a triangle (bilinear, antialiased) filter.
fn crop_resize(frame: &[u8], w: usize, h: usize, window: [u32; 4], out_w: u32, out_h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_raw(w as u32, h as u32, frame.to_vec()).unwrap_or_default();
    let [x, y, cw, ch] = window;
    let cropped = image::imageops::crop_imm(&img, x, y, cw, ch).to_image();
    image::imageops::resize(&cropped, out_w, out_h, image::imageops::FilterType::Triangle).into_raw()
}

/// The simulator's noise-free rates per (movie, segment): (frames, rates [frames, 100]).
pub(super) type TruthRates = HashMap<(u16, u16), (usize, Vec<f32>)>;

/// The noise-free rates of every array, by `neurodata/` sub-folder; a one-array dataset
/// has one entry under "" that stands for every sub-folder.
pub(super) struct TruthSet {
    arrays: HashMap<String, TruthRates>,
}

impl TruthSet {
    /// The rates of the array recorded in `subdir`.
    pub(super) fn of(&self, subdir: &str) -> Option<&TruthRates> {
        self.arrays.get(subdir).or_else(|| self.arrays.get(""))
    }
}

/// Noise-free rates of the simulator: `ground_truth/rates.safetensors` of a one-array
/// dataset, or `ground_truth/ac{k}/rates.safetensors` of each array listed in
/// `ground_truth/arrays.json` (wide field). With them the JSON of the (first) array's
/// `truth.json`, for the planted latency.
pub(super) fn load_truth_rates(root: &Path) -> Result<Option<(TruthSet, serde_json::Value)>, DataError> {
    let dir = root.join("ground_truth");
    let gt_err = |path: &Path, message: String| DataError::GroundTruth { path: path.to_owned(), message };
    let Some(subdirs) = crate::truth_layout::array_subdirs(&dir).map_err(|m| gt_err(&dir, m))? else {
        return Ok(load_array_truth(&dir)?.map(|(rates, json)| (TruthSet { arrays: HashMap::from([(String::new(), rates)]) }, json)));
    };
    let mut arrays = HashMap::new();
    let mut first_json = None;
    for subdir in subdirs {
        let sub = dir.join(&subdir);
        let Some((rates, json)) = load_array_truth(&sub)? else {
            return Err(gt_err(&sub, "listed in arrays.json but has no truth.json and rates.safetensors".into()));
        };
        first_json.get_or_insert(json);
        arrays.insert(subdir, rates);
    }
    Ok(first_json.map(|json| (TruthSet { arrays }, json)))
}

/// `truth.json` and `rates.safetensors` of one array from `dir`, if both are there.
fn load_array_truth(dir: &Path) -> Result<Option<(TruthRates, serde_json::Value)>, DataError> {
    let rates_path = dir.join("rates.safetensors");
    let truth_path = dir.join("truth.json");
    if !rates_path.exists() || !truth_path.exists() {
        return Ok(None);
    }
    let gt_err = |path: &Path, message: String| DataError::GroundTruth { path: path.to_owned(), message };
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&truth_path).map_err(io_err(format!("reading {}", truth_path.display())))?,
    )
    .map_err(|e| gt_err(&truth_path, e.to_string()))?;
    let bytes = std::fs::read(&rates_path).map_err(io_err(format!("reading {}", rates_path.display())))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| gt_err(&rates_path, e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let parsed = name
            .strip_prefix('m')
            .and_then(|r| r.split_once("_s"))
            .and_then(|(m, s)| Some((m.parse::<u16>().ok()?, s.parse::<u16>().ok()?)));
        let Some(key) = parsed else { continue };
        let shape = view.shape();
        if view.dtype() != safetensors::Dtype::F32 || shape.len() != 2 || shape[1] != 100 {
            return Err(gt_err(&rates_path, format!("tensor {name} must be f32 [nframes, 100], got {:?} {shape:?}", view.dtype())));
        }
        let data: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.insert(key, (shape[0], data));
    }
    Ok(Some((out, truth)))
}
