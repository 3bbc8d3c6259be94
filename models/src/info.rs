//! What a trained model knows about its data: the recording channels it predicts and
//! reads, the time lags of a response, the image crop it sees, and the normalisation
//! statistics of the training split. Saved as `model.json` beside the weights.

use serde::{Deserialize, Serialize};

/// One recording channel: an electrode of one recording file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelInfo {
    /// Recording file stem, e.g. `ac1_u004_000`.
    pub file: String,
    /// Electrode id on the 10x10 array (1..=100).
    pub electrode: u16,
    /// Row and column on the array (see `neural_data::pvc1::electrode_position`).
    pub row: u8,
    pub col: u8,
    /// Receptive-field centre (x, y) in the model's image pixels where the training data's
    /// contrast-energy STA places it reliably inside the image; absent otherwise and in
    /// models written before it was stored. Lets a display put each channel of a
    /// population over many arrays at its retinotopic place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rf_centre: Option<[f32; 2]>,
}

/// Rectangle of the 320x240 movie frame, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropWindow {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Everything about the data a model was trained on that inference needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// Channels of the response, in payload order.
    pub channels: Vec<ChannelInfo>,
    /// Lags (in 1/30 s frames after the frame's onset) of the response's time bins.
    pub lags: Vec<u32>,
    /// The response latency the dataset builder estimated (frames): the bin at lag `l`
    /// answers the frames up to `l - response_onset` frames after the sample's frame.
    /// Absent in models written before it was stored; their clips are placed as if the
    /// first lag were the onset, as they were trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_onset: Option<u32>,
    /// Side of the square grayscale image the networks see (pixels).
    pub image_size: usize,
    /// The part of a pvc-1 frame that was cut out and resized to `image_size`.
    pub crop_window: CropWindow,
    /// Mean and standard deviation of training-split pixels (in [0,1]).
    pub pixel_mean: f32,
    pub pixel_std: f32,
    /// Per response element (lag-major, like the payload) mean and standard deviation of
    /// the training split, used to normalise the waveform encoder's input.
    pub response_mean: Vec<f32>,
    pub response_std: Vec<f32>,
}

impl ModelInfo {
    /// Number of values in a response payload: lags x channels.
    pub fn response_len(&self) -> usize {
        self.lags.len() * self.channels.len()
    }

    pub fn n_channels(&self) -> usize {
        self.channels.len()
    }

    /// Frame offsets (relative to the sample's frame) of an input clip of `frames`
    /// frames, oldest first: it ends at the last frame that can drive the latest response
    /// bin (`last lag - onset` frames after the sample's frame, see `response_onset`) and
    /// reaches back from there; a clip shorter than that ends earlier, so that it always
    /// holds the sample's own frame (offset 0; one frame is the frame alone).
    pub fn clip_offsets(&self, frames: usize) -> Vec<i32> {
        let first = self.lags.first().copied().unwrap_or(0) as i32;
        let last = self.lags.last().copied().unwrap_or(0) as i32;
        let onset = self.response_onset.map_or(first, |o| o as i32);
        let end = (last - onset).clamp(0, frames as i32 - 1);
        (0..frames as i32).map(|k| end - frames as i32 + 1 + k).collect()
    }

    pub fn n_lags(&self) -> usize {
        self.lags.len()
    }

    /// Checks internal consistency (lengths, finite statistics).
    pub fn validate(&self) -> Result<(), String> {
        if self.channels.is_empty() {
            return Err("no channels".into());
        }
        if self.lags.is_empty() {
            return Err("no lags".into());
        }
        if !(8..=512).contains(&self.image_size) || !self.image_size.is_multiple_of(4) {
            return Err(format!(
                "image_size {} must be a multiple of 4 between 8 and 512",
                self.image_size
            ));
        }
        let n = self.response_len();
        if self.response_mean.len() != n || self.response_std.len() != n {
            return Err(format!(
                "response_mean/response_std have {}/{} values, expected {n}",
                self.response_mean.len(),
                self.response_std.len()
            ));
        }
        if !(self.pixel_std > 0.0 && self.pixel_std.is_finite() && self.pixel_mean.is_finite()) {
            return Err("pixel statistics are not finite and positive".into());
        }
        if self.response_std.iter().any(|s| !(*s > 0.0 && s.is_finite()))
            || self.response_mean.iter().any(|m| !m.is_finite())
        {
            return Err("response statistics are not finite and positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(lags: Vec<u32>, response_onset: Option<u32>) -> ModelInfo {
        ModelInfo {
            channels: vec![ChannelInfo { file: "f".into(), electrode: 1, row: 0, col: 0, rf_centre: None }],
            lags,
            response_onset,
            image_size: 16,
            crop_window: CropWindow { x: 0, y: 0, width: 16, height: 16 },
            pixel_mean: 0.5,
            pixel_std: 0.2,
            response_mean: vec![0.0; 3],
            response_std: vec![1.0; 3],
        }
    }

    #[test]
    fn clips_end_at_the_last_driving_frame_and_always_hold_the_own_frame() {
        let i = info(vec![2, 3, 4], Some(2));
        assert_eq!(i.clip_offsets(7), vec![-4, -3, -2, -1, 0, 1, 2]);
        assert_eq!(i.clip_offsets(3), vec![0, 1, 2]);
        assert_eq!(i.clip_offsets(2), vec![0, 1]);
        assert_eq!(i.clip_offsets(1), vec![0]);
    }

    #[test]
    fn clips_are_placed_by_the_onset_not_by_the_first_lag() {
        // Bins 0..4 with the onset at 2: the latest bin answers frames up to t+2, so
        // the clip ends there; bins 0 and 1 answer earlier frames, held further back.
        let i = info(vec![0, 1, 2, 3, 4], Some(2));
        assert_eq!(i.clip_offsets(7), vec![-4, -3, -2, -1, 0, 1, 2]);
        // A window that ends before the onset still holds the sample's own frame.
        assert_eq!(info(vec![0, 1], Some(3)).clip_offsets(3), vec![-2, -1, 0]);
    }

    #[test]
    fn models_without_a_stored_onset_keep_the_first_lag_placement() {
        let i = info(vec![0, 1, 2, 3, 4], None);
        assert_eq!(i.clip_offsets(7), vec![-2, -1, 0, 1, 2, 3, 4]);
        let json = serde_json::to_string(&i).unwrap();
        assert!(!json.contains("response_onset"), "{json}");
        let back: ModelInfo = serde_json::from_str(&json).unwrap();
        assert_eq!(back, i);
    }
}
