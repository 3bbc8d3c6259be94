//! [`BuildConfig`]: how a pvc-1 tree becomes training pairs, and its checks.

use serde::{Deserialize, Serialize};

use crate::pvc1::{FRAME_HEIGHT, FRAME_WIDTH};

/// How a pvc-1 tree becomes training pairs. Part of the training config file (`[data]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildConfig {
    /// Side of the square grayscale crop the networks see (pixels).
    pub image_size: usize,
    /// Crop window [x, y, width, height] in 320x240 frame pixels; absent = estimated from the
    /// population's RF footprint.
    pub crop: Option<[u32; 4]>,
    /// Margin added on each side of the estimated footprint (frame pixels).
    pub crop_margin_px: u32,
    /// Explicit response lags (frames after the frame onset); absent = `n_lags` lags
    /// starting `lags_before_onset` frames before the estimated response latency.
    pub lags: Option<Vec<u32>>,
    pub n_lags: usize,
    /// How many of the `n_lags` bins come before the estimated response latency. Those bins
    /// answer the previous frames, which in a 30 Hz movie resemble the current one, so a
    /// decoder reading them gets more spikes about the scene and reconstructs better (the
    /// measurements, with `bench/decoding_noise.py`, are in docs/evaluation-history.md). The
    /// previous frames are in the image encoder's clip (placed by the onset: it ends at the
    /// last frame the latest bin answers), so the encoding model can predict these bins,
    /// with less of their history than the later bins get. A config file without this
    /// key means 0, the window that configs written before the key existed had.
    #[serde(default)]
    pub lags_before_onset: u32,
    /// Largest lag searched when estimating the latency (frames).
    pub max_latency_frames: u32,
    /// Frames dropped at each segment onset (onset transient; pvc-1 loaders drop 15).
    pub drop_onset_frames: usize,
    /// Count only events sorted as spikes (2-means on snippet troughs, per channel)
    /// instead of all threshold crossings. On by default: noise crossings carry nothing
    /// about the stimulus but add Poisson noise, so dropping them brings single-trial
    /// decoding closer to what the noise-free rates allow (how many events are noise on
    /// the simulated dataset, and the gain: docs/evaluation-history.md).
    pub spikes_only: bool,
    /// Average 2x2 pixel blocks before anything else (VHS frames are interlaced).
    pub deinterlace: bool,
    /// Fraction of the non-test segments used for validation.
    pub validation_fraction: f64,
    /// Test segments as [movie, segment]; absent = the segments that have repeats, or
    /// `test_fraction` of all segments when no file has repeats.
    pub test_segments: Option<Vec<[u16; 2]>>,
    pub test_fraction: f64,
    pub split_seed: u64,
    /// Size [width, height] of the downsampled full frames kept for full-frame metrics.
    pub full_frame_size: [u32; 2],
    /// Match repeat-file electrodes to single-trial channels by (sub-folder, electrode id),
    /// i.e. assume files of one `neurodata/` sub-folder record from the same array.
    pub match_repeats_by_electrode: bool,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            image_size: 48,
            crop: None,
            crop_margin_px: 24,
            lags: None,
            n_lags: 5,
            lags_before_onset: 2,
            max_latency_frames: 6,
            drop_onset_frames: 15,
            spikes_only: true,
            deinterlace: true,
            validation_fraction: 0.1,
            test_segments: None,
            test_fraction: 0.15,
            split_seed: 7,
            full_frame_size: [80, 60],
            match_repeats_by_electrode: true,
        }
    }
}

impl BuildConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=256).contains(&self.image_size) || !self.image_size.is_multiple_of(4) {
            return Err(format!("data.image_size {} must be a multiple of 4 in 8..=256", self.image_size));
        }
        if let Some([x, y, w, h]) = self.crop {
            if w < 8 || h < 8 || x + w > FRAME_WIDTH || y + h > FRAME_HEIGHT {
                return Err(format!(
                    "data.crop [{x}, {y}, {w}, {h}] must lie inside the {FRAME_WIDTH}x{FRAME_HEIGHT} frame and be at least 8 pixels wide"
                ));
            }
        }
        match &self.lags {
            Some(l) if l.is_empty() || l.len() > 16 => return Err("data.lags must have 1 to 16 entries".into()),
            Some(l) if l.iter().any(|&v| v > 30) => return Err("data.lags must be at most 30 frames".into()),
            None if self.n_lags == 0 || self.n_lags > 16 => return Err("data.n_lags must be 1 to 16".into()),
            _ => {}
        }
        if self.lags.is_none() && self.lags_before_onset as usize >= self.n_lags {
            return Err(format!(
                "data.lags_before_onset ({}) must be smaller than data.n_lags ({}): the window must reach the response",
                self.lags_before_onset, self.n_lags
            ));
        }
        if !(0.0..0.9).contains(&self.validation_fraction) || !(0.0..0.9).contains(&self.test_fraction) {
            return Err("data.validation_fraction and data.test_fraction must be in [0, 0.9)".into());
        }
        if self.full_frame_size[0] < 8 || self.full_frame_size[1] < 6 || self.full_frame_size[0] > 320 || self.full_frame_size[1] > 240 {
            return Err("data.full_frame_size must be between [8, 6] and [320, 240]".into());
        }
        Ok(())
    }
}
