//! Reconstruction metrics on the full frame: each crop reconstruction pasted into the
//! mean training frame at the crop window, against the whole frame.

use v1_metrics::GrayImageF32;

use super::reconstruction::Reconstruction;
use super::{gray, recon_method, ReconMethod, Setup};
use crate::error::Result;

/// The full-frame step's results.
pub(super) struct FullFrame {
    /// The evaluated images' full frames.
    pub targets: Vec<GrayImageF32>,
    /// The model's crop reconstructions pasted into the mean frame.
    pub model_images: Vec<GrayImageF32>,
    /// One row per reconstruction method, in the order of the crop table.
    pub metrics: Vec<ReconMethod>,
}

/// Scores every method of `rec` on the full frame.
pub(super) fn evaluate(cx: &Setup<'_>, rec: &Reconstruction) -> Result<FullFrame> {
    let (ds, s) = (cx.ds, cx.s);
    // Full frame: each crop reconstruction pasted into the mean training frame.
    let [fw, fh] = ds.meta.full_size;
    let (fw, fh) = (fw as usize, fh as usize);
    let mut mean_full = vec![0f32; fw * fh];
    for &i in &cx.train {
        for (m, v) in mean_full.iter_mut().zip(ds.full_frame(i)) {
            *m += *v as f32 / 255.0;
        }
    }
    mean_full.iter_mut().for_each(|v| *v /= cx.train.len().max(1) as f32);
    let sx = fw as f32 / neural_data::pvc1::FRAME_WIDTH as f32;
    let sy = fh as f32 / neural_data::pvc1::FRAME_HEIGHT as f32;
    let cw = ds.meta.crop_window;
    let window = [cw[0] as f32 * sx, cw[1] as f32 * sy, cw[2] as f32 * sx, cw[3] as f32 * sy];
    let targets: Vec<GrayImageF32> = rec
        .eval_idx
        .iter()
        .map(|&i| gray(fw, fh, ds.full_frame(i).iter().map(|v| *v as f32 / 255.0).collect()))
        .collect::<Result<_>>()?;
    let mut metrics = Vec::new();
    let mut model_images = Vec::new();
    for (k, (name, flat)) in rec.methods.iter().enumerate() {
        let imgs: Vec<GrayImageF32> = flat
            .chunks(s * s)
            .map(|c| gray(fw, fh, paste(&mean_full, fw, fh, c, s, window)))
            .collect::<Result<_>>()?;
        metrics.push(recon_method(name, &targets, &imgs)?);
        if k == 0 {
            model_images = imgs;
        }
    }
    Ok(FullFrame { targets, model_images, metrics })
}

/// Pastes a crop reconstruction into a background full frame at the crop window.
fn paste(background: &[f32], fw: usize, fh: usize, recon: &[f32], s: usize, window: [f32; 4]) -> Vec<f32> {
    let mut out = background.to_vec();
    let [wx, wy, ww, wh] = window;
    for y in 0..fh {
        for x in 0..fw {
            let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
            if cx >= wx && cx < wx + ww && cy >= wy && cy < wy + wh {
                // Bilinear sample of the crop.
                let u = ((cx - wx) / ww * s as f32 - 0.5).clamp(0.0, (s - 1) as f32);
                let v = ((cy - wy) / wh * s as f32 - 0.5).clamp(0.0, (s - 1) as f32);
                let (u0, v0) = (u.floor() as usize, v.floor() as usize);
                let (u1, v1) = ((u0 + 1).min(s - 1), (v0 + 1).min(s - 1));
                let (fu, fv) = (u - u0 as f32, v - v0 as f32);
                let p = recon[v0 * s + u0] * (1.0 - fu) * (1.0 - fv)
                    + recon[v0 * s + u1] * fu * (1.0 - fv)
                    + recon[v1 * s + u0] * (1.0 - fu) * fv
                    + recon[v1 * s + u1] * fu * fv;
                out[y * fw + x] = p;
            }
        }
    }
    out
}
