//! The report's PNG figures: reconstruction grids (crop and full frame), the encoding
//! scatter, traces of the best channel, the electrode map and the PixCorr bars.

use std::path::Path;

use v1_metrics::figures as draw;
use v1_metrics::GrayImageF32;

use super::encoding::Encoding;
use super::full_frame::FullFrame;
use super::reconstruction::Reconstruction;
use super::{gray, sum_over_lags, Setup};
use crate::error::{ModelError, Result};

/// Short names of the reconstruction methods, in the order of the crop table.
const SHORT_NAMES: [&str; 8] = ["model", "ridge", "shuffled", "mean", "live, mean", "live, sample", "ridge, noise-free", "upper bound"];

/// Writes every figure of the report into `out`.
pub(super) fn write(cx: &Setup<'_>, enc: &Encoding, rec: &Reconstruction, full: &FullFrame, out: &Path) -> Result<()> {
    reconstruction_grids(cx, rec, full, out)?;
    encoding_figures(cx, enc, out)?;
    let bar_labels: Vec<&str> = SHORT_NAMES.iter().take(rec.methods.len()).copied().collect();
    let bar_vals: Vec<f32> = rec.crop.iter().map(|r| r.pixcorr as f32).collect();
    draw::bar_chart(&bar_labels, &bar_vals, "Reconstruction PixCorr (RF crop)", &out.join("pixcorr.png")).map_err(fig_err)?;
    Ok(())
}

/// `reconstructions.png` (targets and every method, 8 evenly spaced images) and
/// `full_frame.png` (the model's crop pasted into the full frame, 4 images).
fn reconstruction_grids(cx: &Setup<'_>, rec: &Reconstruction, full: &FullFrame, out: &Path) -> Result<()> {
    let (ds, s) = (cx.ds, cx.s);
    let n_eval = rec.eval_idx.len();
    let rows_n = 8.min(n_eval);
    let pick: Vec<usize> = (0..rows_n).map(|k| k * n_eval / rows_n).collect();
    let mut grid_rows = Vec::new();
    let mut labels = Vec::new();
    for &k in &pick {
        let mut row = vec![rec.targets[k].clone()];
        for (_, flat) in &rec.methods {
            row.push(gray(s, s, flat[k * s * s..(k + 1) * s * s].to_vec())?);
        }
        grid_rows.push(row);
        let [m, sg, f] = ds.index[rec.eval_idx[k]];
        labels.push(format!("m{m} s{sg} f{f}"));
    }
    let mut titles = vec!["target"];
    titles.extend(SHORT_NAMES.iter().take(rec.methods.len()));
    let label_refs: Vec<&str> = labels.iter().map(|s| s.as_str()).collect();
    draw::image_grid(&grid_rows, &titles, &label_refs, 3, &out.join("reconstructions.png")).map_err(fig_err)?;
    let full_rows: Vec<Vec<GrayImageF32>> = pick.iter().take(4).map(|&k| vec![full.targets[k].clone(), full.model_images[k].clone()]).collect();
    draw::image_grid(&full_rows, &["full frame", "model (crop pasted)"], &label_refs[..full_rows.len()], 3, &out.join("full_frame.png")).map_err(fig_err)?;
    Ok(())
}

/// `encoding_scatter.png` (CNN against ridge per good channel), `traces.png` (the best
/// channel over the first test segment) and `electrode_map.png` (r per array position).
fn encoding_figures(cx: &Setup<'_>, enc: &Encoding, out: &Path) -> Result<()> {
    let (info, good_idx, n_l, n_c) = (cx.info, &cx.good_idx, cx.n_l, cx.n_c);
    let (cnn, ridge) = (&enc.methods[0], &enc.methods[1]);
    let (xs, ys, what) = match (&ridge.per_channel_r_noise_free, &cnn.per_channel_r_noise_free) {
        (Some(a), Some(b)) => (a, b, "r vs noise-free rates"),
        _ => (&ridge.per_channel_r, &cnn.per_channel_r, "r vs single trials"),
    };
    let gx: Vec<f32> = good_idx.iter().map(|&c| xs[c] as f32).collect();
    let gy: Vec<f32> = good_idx.iter().map(|&c| ys[c] as f32).collect();
    draw::scatter(&gx, &gy, &format!("Encoding per channel ({what})"), "ridge r", "CNN r", &out.join("encoding_scatter.png")).map_err(fig_err)?;
    // Traces of the best channel over the first test segment.
    let best_c = good_idx.iter().copied().max_by(|&a, &b| cnn.per_channel_r[a].total_cmp(&cnn.per_channel_r[b])).unwrap_or(0);
    let n = cx.test.len();
    let len = 150.min(n);
    let p_sum = sum_over_lags(&enc.pred, n, n_l, n_c);
    let tr_rec: Vec<f32> = enc.rec_sum[best_c][..len].iter().map(|v| *v as f32).collect();
    let tr_pred: Vec<f32> = p_sum[best_c][..len].iter().map(|v| *v as f32).collect();
    let mut series: Vec<(&str, &[f32])> = vec![("recorded (single trial)", &tr_rec), ("CNN prediction", &tr_pred)];
    let tr_truth: Vec<f32> = enc.truth_sum.as_ref().map(|t| t[best_c][..len].iter().map(|v| *v as f32).collect()).unwrap_or_default();
    if !tr_truth.is_empty() {
        series.push(("noise-free rate", &tr_truth));
    }
    let ch = &info.channels[best_c];
    draw::traces(&series, &format!("Channel {} e{}: counts per {}-bin window", ch.file, ch.electrode, n_l), &out.join("traces.png")).map_err(fig_err)?;
    let mut map = [None; 100];
    let mut map_n = [0u32; 100];
    let rvals = cnn.per_channel_r_noise_free.as_ref().unwrap_or(&cnn.per_channel_r);
    for (c, chn) in info.channels.iter().enumerate() {
        let k = (chn.row as usize) * 10 + chn.col as usize;
        if k < 100 {
            map[k] = Some(map[k].unwrap_or(0.0) + rvals[c] as f32);
            map_n[k] += 1;
        }
    }
    for k in 0..100 {
        if let Some(v) = map[k] {
            map[k] = Some(v / map_n[k] as f32);
        }
    }
    draw::heatmap_10x10(&map, "Encoding r per electrode (array position)", &out.join("electrode_map.png")).map_err(fig_err)?;
    Ok(())
}

fn fig_err(e: draw::FigureError) -> ModelError {
    ModelError::Invalid(format!("figure: {e}"))
}
