//! Step 5 of the build: the response latency from the onset transient and the receptive
//! fields from contrast-energy STAs on the training split ([`crate::rf`]); the lags (from
//! the onset on) and the crop window follow unless the config fixes them.

use crate::cache::Split;
use crate::error::DataError;
use crate::pvc1::{FRAME_HEIGHT, FRAME_WIDTH};
use crate::rf::{self, RfEstimate, StaAccumulator};

use super::decode::Decoded;
use super::select::Splits;
use super::{BuildConfig, SegmentSource};

/// Side of the STA grid cell in frame pixels.
pub(super) const RF_CELL_PX: u32 = 8;

/// What step 5 decides.
pub(super) struct Window {
    pub(super) rf: RfEstimate,
    /// Response lags of every sample (frames after the frame onset).
    pub(super) lags: Vec<u32>,
    /// Crop window [x, y, width, height] in frame pixels.
    pub(super) crop_window: [u32; 4],
}

pub(super) fn window(
    cfg: &BuildConfig,
    segments: &[&SegmentSource],
    splits: &Splits,
    decoded: &Decoded,
) -> Result<Window, DataError> {
    let (dw, dh, n_ch) = (decoded.width, decoded.height, decoded.n_ch);
    let cell = (RF_CELL_PX as usize / decoded.scale).max(1);
    let max_lag = cfg.max_latency_frames as usize;
    let (gw, gh) = (dw / cell, dh / cell);
    let mut acc = StaAccumulator::new(n_ch, gw * gh, max_lag);
    for (k, seg) in segments.iter().enumerate() {
        if splits.of(seg.movie, seg.segment) != Split::Train {
            continue;
        }
        let maps: Vec<Vec<f32>> = decoded.frames[k]
            .frames
            .iter()
            .map(|f| {
                let px: Vec<f32> = f.iter().map(|&v| v as f32 / 255.0).collect();
                rf::energy_map(&px, dw, dh, cell).0
            })
            .collect();
        acc.add_segment(&maps, &decoded.counts[k], seg.nframes, cfg.drop_onset_frames);
    }
    let mut est = rf::estimate(&acc.finish(), n_ch, gw, gh, max_lag);
    let onset_curve = onset_curve(segments, splits, decoded, max_lag);
    est.onset_latency = rf::onset_latency(&onset_curve);
    est.onset_curve = onset_curve.iter().map(|v| *v as f32).collect();
    let lags: Vec<u32> = match &cfg.lags {
        Some(l) => l.clone(),
        None => {
            // The positive lobe of V1's temporal kernel follows the response onset; the
            // window starts `lags_before_onset` bins earlier (bins that answer the previous
            // frames).
            let first = est.response_onset().saturating_sub(cfg.lags_before_onset);
            (first..first + cfg.n_lags as u32).collect()
        }
    };
    let crop_window = match cfg.crop {
        Some(c) => c,
        None => {
            let fp = est.footprint.ok_or_else(|| DataError::Empty {
                stage: "estimating receptive fields",
                detail: "no channel has a reliable spike-triggered average; set data.crop = [x, y, w, h] in the config".into(),
            })?;
            square_window(fp, RF_CELL_PX as f32, cfg.crop_margin_px)
        }
    };
    Ok(Window { rf: est, lags, crop_window })
}

/// The population count per bin after the segment onset, averaged over the training
/// segments. Each segment starts after a blank screen, so the population rate stays at its
/// spontaneous level until the response latency, then jumps.
fn onset_curve(segments: &[&SegmentSource], splits: &Splits, decoded: &Decoded, max_lag: usize) -> Vec<f64> {
    let n_ch = decoded.n_ch;
    let onset_bins = (max_lag + 4).min(segments.iter().map(|s| s.nframes).min().unwrap_or(0));
    let mut onset_curve = vec![0f64; onset_bins];
    let mut n_onsets = 0f64;
    for (k, seg) in segments.iter().enumerate() {
        if splits.of(seg.movie, seg.segment) != Split::Train {
            continue;
        }
        n_onsets += 1.0;
        for (b, v) in onset_curve.iter_mut().enumerate() {
            *v += decoded.counts[k][b * n_ch..(b + 1) * n_ch].iter().map(|&x| x as f64).sum::<f64>();
        }
    }
    onset_curve.iter_mut().for_each(|v| *v /= n_onsets.max(1.0));
    onset_curve
}

/// A square crop window around a footprint given in grid cells, with a margin, inside the frame.
fn square_window(fp: [f32; 4], cell_px: f32, margin: u32) -> [u32; 4] {
    let x0 = fp[0] * cell_px;
    let y0 = fp[1] * cell_px;
    let x1 = fp[2] * cell_px;
    let y1 = fp[3] * cell_px;
    let side = ((x1 - x0).max(y1 - y0) + 2.0 * margin as f32).max(32.0).min(FRAME_HEIGHT as f32);
    let side = (side / 4.0).ceil() as u32 * 4;
    let cx = 0.5 * (x0 + x1);
    let cy = 0.5 * (y0 + y1);
    let x = (cx - side as f32 / 2.0).round().clamp(0.0, (FRAME_WIDTH - side) as f32) as u32;
    let y = (cy - side as f32 / 2.0).round().clamp(0.0, (FRAME_HEIGHT - side) as f32) as u32;
    // Even coordinates so the de-interlaced grid maps exactly.
    [x & !1, y & !1, side, side]
}
