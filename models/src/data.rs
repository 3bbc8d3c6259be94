//! From the dataset cache to tensors: model statistics, batches, and the recorded
//! test segments that services replay.

use candle_core::{Device, Tensor};
use neural_data::cache::{Dataset, Split};

use crate::error::Result;
use crate::info::{ChannelInfo, CropWindow, ModelInfo};

/// Smallest response standard deviation used for normalisation (counts per bin), so
/// silent channels do not blow up.
pub const MIN_RESPONSE_STD: f32 = 0.1;

/// The [`ModelInfo`] of a model trained on `ds`: channels, lags, crop, and the training
/// split's statistics.
pub fn model_info(ds: &Dataset) -> ModelInfo {
    let train = ds.indices(Split::Train);
    let (mut s, mut s2, mut n) = (0f64, 0f64, 0f64);
    for &i in &train {
        for &p in ds.crop(i) {
            let v = p as f64 / 255.0;
            s += v;
            s2 += v * v;
            n += 1.0;
        }
    }
    let n = n.max(1.0);
    let pixel_mean = s / n;
    let pixel_std = (s2 / n - pixel_mean * pixel_mean).max(1e-6).sqrt();
    let len = ds.response_len();
    let mut rs = vec![0f64; len];
    let mut rs2 = vec![0f64; len];
    for &i in &train {
        for (k, &v) in ds.response(i).iter().enumerate() {
            rs[k] += v as f64;
            rs2[k] += (v as f64) * (v as f64);
        }
    }
    let m = train.len().max(1) as f64;
    let response_mean: Vec<f32> = rs.iter().map(|v| (v / m) as f32).collect();
    let response_std: Vec<f32> = rs2
        .iter()
        .zip(&response_mean)
        .map(|(s2, mu)| ((s2 / m - (*mu as f64).powi(2)).max(0.0).sqrt() as f32).max(MIN_RESPONSE_STD))
        .collect();
    let [x, y, width, height] = ds.meta.crop_window;
    let rfs = reliable_rf_centres(ds);
    ModelInfo {
        channels: ds
            .meta
            .channels
            .iter()
            .zip(rfs)
            .map(|(c, rf_centre)| {
                let (row, col) = neural_data::pvc1::electrode_position(c.electrode).unwrap_or((0, 0));
                ChannelInfo { file: c.file.clone(), electrode: c.electrode, row, col, rf_centre }
            })
            .collect(),
        lags: ds.meta.lags.clone(),
        response_onset: Some(ds.meta.rf.response_onset()),
        image_size: ds.meta.image_size,
        crop_window: CropWindow { x, y, width, height },
        pixel_mean: pixel_mean as f32,
        pixel_std: pixel_std as f32,
        response_mean,
        response_std,
    }
}

/// Each channel's receptive-field centre in the model's image pixels where its
/// contrast-energy STA (training split) is reliable and inside the image; None elsewhere.
pub fn reliable_rf_centres(ds: &Dataset) -> Vec<Option<[f32; 2]>> {
    let size = ds.meta.image_size as f32;
    crate::projective::rf_centres_in_crop(&ds.meta)
        .into_iter()
        .map(|rf| {
            let [x, y] = rf.centre;
            let inside = (0.0..size).contains(&x) && (0.0..size).contains(&y);
            (rf.snr >= neural_data::rf::RELIABLE_SNR && inside).then_some(rf.centre)
        })
        .collect()
}

/// Whether a model's info fits a dataset (same channels, lags and crop size).
pub fn matches(info: &ModelInfo, ds: &Dataset) -> bool {
    matches_meta(info, &ds.meta)
}

/// [`matches`], from a cache's metadata alone.
pub fn matches_meta(info: &ModelInfo, meta: &neural_data::cache::CacheMeta) -> bool {
    info.lags == meta.lags
        && info.image_size == meta.image_size
        && info.channels.len() == meta.channels.len()
        && info.channels.iter().zip(&meta.channels).all(|(a, b)| a.file == b.file && a.electrode == b.electrode)
}

/// Crops of `idx` as pixels in [0,1], [B, 1, S, S].
pub fn crops_tensor(ds: &Dataset, idx: &[usize], device: &Device) -> Result<Tensor> {
    let s = ds.meta.image_size;
    let mut v = Vec::with_capacity(idx.len() * s * s);
    for &i in idx {
        v.extend(ds.crop(i).iter().map(|p| *p as f32 / 255.0));
    }
    Ok(Tensor::from_vec(v, (idx.len(), 1, s, s), device)?)
}

/// The input clip of every sample: `[n][frames]` sample indices (see
/// `Dataset::clip_table`), for the offsets of a model's `clip_frames`.
#[derive(Debug, Clone)]
pub struct Clips {
    pub frames: usize,
    /// Position of the sample's own frame (offset 0) in every clip.
    pub own: usize,
    table: Vec<u32>,
}

impl Clips {
    pub fn new(ds: &Dataset, info: &ModelInfo, frames: usize) -> Self {
        let offsets = info.clip_offsets(frames);
        let own = offsets.iter().position(|&o| o == 0).unwrap_or(0);
        Self { frames, own, table: ds.clip_table(&offsets) }
    }

    /// The samples whose frames make up sample `i`'s clip, oldest first.
    pub fn of(&self, i: usize) -> &[u32] {
        &self.table[i * self.frames..][..self.frames]
    }
}

/// Clips of `idx` as pixels in [0,1], [B, frames, S, S].
pub fn clips_tensor(ds: &Dataset, clips: &Clips, idx: &[usize], device: &Device) -> Result<Tensor> {
    let s = ds.meta.image_size;
    let k = clips.frames;
    let mut v = Vec::with_capacity(idx.len() * k * s * s);
    for &i in idx {
        for &j in clips.of(i) {
            v.extend(ds.crop(j as usize).iter().map(|p| *p as f32 / 255.0));
        }
    }
    Ok(Tensor::from_vec(v, (idx.len(), k, s, s), device)?)
}

/// Responses (counts) of `idx`, [B, L*C].
pub fn responses_tensor(ds: &Dataset, idx: &[usize], device: &Device) -> Result<Tensor> {
    let n = ds.response_len();
    let mut v = Vec::with_capacity(idx.len() * n);
    for &i in idx {
        v.extend_from_slice(ds.response(i));
    }
    Ok(Tensor::from_vec(v, (idx.len(), n), device)?)
}

/// Noise-free expected counts of `idx` (simulated data), [B, L*C].
pub fn truth_tensor(ds: &Dataset, idx: &[usize], device: &Device) -> Result<Option<Tensor>> {
    let n = ds.response_len();
    if ds.truth.is_none() {
        return Ok(None);
    }
    let mut v = Vec::with_capacity(idx.len() * n);
    for &i in idx {
        if let Some(t) = ds.truth_response(i) {
            v.extend_from_slice(t);
        }
    }
    Ok(Some(Tensor::from_vec(v, (idx.len(), n), device)?))
}
