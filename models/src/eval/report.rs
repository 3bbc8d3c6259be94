//! The human report (`report.md`) and the files the evaluation writes at its end.

use std::fmt::Write as _;
use std::path::Path;

use neural_data::cache::Dataset;

use super::projective_fields::RF_MAP_SAMPLES;
use super::{EvalReport, MAX_R2_FLOOR};
use crate::error::{ModelError, Result};
use crate::pipeline::write_atomic;
use crate::projective::{PfRfComparison, FIGURE_MAX_CHANNELS};

/// Writes `metrics.json` (the report as data) and `report.md` (for people).
pub(super) fn write(report: &EvalReport, ds: &Dataset, out: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(|e| ModelError::Invalid(e.to_string()))?;
    write_atomic(&out.join("metrics.json"), json.as_bytes())?;
    write_atomic(&out.join("report.md"), markdown(report, ds).as_bytes())
}

/// The projective-field section of the report.
pub fn projective_markdown(p: &PfRfComparison, ridge: Option<&PfRfComparison>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n## Projective fields against receptive fields\n");
    let _ = writeln!(
        s,
        "{} good channels. {}.\n\n| decoder | r(PF centre, RF centre) x | y | mean PF-RF distance (crop px) | paired with other channels' RFs |\n|---|---|---|---|---|",
        p.channels.len(),
        p.method
    );
    for (name, c) in std::iter::once(("model (waveform_encoder + image_decoder)", p)).chain(ridge.map(|r| ("ridge (response -> pixels)", r))) {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} |",
            opt(c.r_x),
            opt(c.r_y),
            opt(c.mean_distance_px),
            opt(c.mean_distance_shuffled_px)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Below, for each channel (electrodes named at the left of each row, in order; at most {FIGURE_MAX_CHANNELS}, evenly spaced over the good ones), its PF through the model (the change its activity makes to the reconstruction; mid-grey: none, white: brighter, black: darker) beside its RF as the training data show it (spike-triggered average of local contrast energy over up to {RF_MAP_SAMPLES} training crops; brighter: more contrast there drives the channel), both marked with the RF centre (white cross) and the PF centre (black square).\n\n![projective fields](projective_fields.png)\n\n![PF vs RF centre, x](pf_rf_x.png) ![PF vs RF centre, y](pf_rf_y.png)");
    s
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into())
}

/// The human report.
pub fn markdown(r: &EvalReport, ds: &Dataset) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Evaluation report\n");
    let _ = writeln!(
        s,
        "{}: {} samples (whole movie segments: {:?}). {} channels ({} good), lags {:?} frames, crop window {:?} (x, y, w, h in 320x240 frame pixels) resized to {}x{} px.\n",
        if r.split == "test" { "Held-out test split".to_string() } else { format!("The {} split (for choosing settings; the test split is not used)", r.split) },
        r.test_samples,
        ds.meta.segments.get(r.split.as_str()).map(|v| v.len()).unwrap_or(0),
        r.channels,
        r.good_channels,
        r.lags,
        r.crop_window,
        r.image_size,
        r.image_size
    );
    let _ = writeln!(s, "Protocol: splits by whole (movie, segment); normalisation from the training split; first {} frames of each segment dropped. Encoding metrics per channel on the count summed over the lag bins, averaged over good channels; FEVE over channels with FEV > 0.15 ({} of {} repeated channels). Reconstruction metrics on {} evenly spaced images of the split, grayscale in [0,1]; SSIM after Wang et al. 2004 (Gaussian sigma 1.5, K1 0.01, K2 0.03); 2-way identification by pixel correlation (chance 0.5).\n", ds.meta.config.drop_onset_frames, r.reliable_channels, r.repeated_channels, r.evaluated_images);
    let _ = writeln!(s, "## Encoding (image -> response)\n");
    let _ = writeln!(s, "| method | r (single trial) | r (noise-free) | corr. to average | FEVE (FEV > 0.15) | FEVE (max R² > {MAX_R2_FLOOR}) | FEVE, session gain | normalised r | CCnorm |\n|---|---|---|---|---|---|---|---|---|");
    for e in &r.encoding {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {} | {} | {} | {} | {} | {} | {} |",
            e.name,
            e.r_single_trial,
            opt(e.r_noise_free),
            opt(e.correlation_to_average),
            opt(e.feve),
            opt(e.feve_max_r2_above_floor),
            opt(e.feve_session_gain),
            opt(e.normalised_correlation),
            opt(e.ccnorm)
        );
    }
    if !r.repeated_max_r2.is_empty() {
        let mut sorted = r.repeated_max_r2.clone();
        sorted.sort_by(f64::total_cmp);
        let list: Vec<String> = sorted.iter().map(|v| format!("{v:.2}")).collect();
        let _ = writeln!(
            s,
            "\nCeilings: max R² (Sahani & Linden 2003) of the {} repeated channels on the lag-summed counts, sorted: {}; {} above {MAX_R2_FLOOR}. Normalised r = r(prediction, trial average) / sqrt(max(max R², {MAX_R2_FLOOR})), as pvc-1 analyses report it; it and the second and third FEVE columns average the channels above {MAX_R2_FLOOR}. \"Session gain\": the repeat file is a recording of its own, with its own gain per electrode; that column scores each channel's prediction after a gain and offset fitted by least squares on the other half of the repeated segments (alternate segments, 2-fold), never on the segments it is scored on.",
            sorted.len(),
            list.join(", "),
            r.channels_above_max_r2_floor
        );
    }
    for (title, rows) in [("RF-footprint crop (primary)", &r.reconstruction_crop), ("full frame (crop pasted into the mean frame)", &r.reconstruction_full_frame)] {
        let _ = writeln!(s, "\n## Reconstruction (response -> image): {title}\n");
        let _ = writeln!(s, "| method | MSE | PSNR (dB) | SSIM | PixCorr | 2-way ident. |\n|---|---|---|---|---|---|");
        for m in rows.iter() {
            let _ = writeln!(s, "| {} | {:.4} | {} | {:.3} | {:.3} | {} |", m.name, m.mse, opt(m.psnr_db), m.ssim, m.pixcorr, opt(m.identification));
        }
    }
    if !r.reconstruction_crop_repeat_averaged.is_empty() {
        let _ = writeln!(s, "\n## Reconstruction from repeat-averaged responses: RF-footprint crop\n");
        let _ = writeln!(
            s,
            "The same decoders fed the {} repeated channels' counts averaged over the repeats of the repeat file (lag by lag), the other channels as recorded once. The repeat file is a session of its own: its gain per electrode differs from the single-trial files the decoders were trained on.\n",
            r.repeat_averaged_channels
        );
        let _ = writeln!(s, "| method | MSE | PSNR (dB) | SSIM | PixCorr | 2-way ident. |\n|---|---|---|---|---|---|");
        for m in &r.reconstruction_crop_repeat_averaged {
            let _ = writeln!(s, "| {} | {:.4} | {} | {:.3} | {:.3} | {} |", m.name, m.mse, opt(m.psnr_db), m.ssim, m.pixcorr, opt(m.identification));
        }
    }
    if let Some(f) = r.pixcorr_fraction_of_upper_bound {
        let _ = writeln!(s, "\nModel PixCorr is {:.0}% of the noise-free upper bound's.", 100.0 * f);
    }
    let pix = |name: &str| r.reconstruction_crop.iter().find(|m| m.name == name).map(|m| m.pixcorr);
    if let (Some(a), Some(b)) = (pix("ridge (response -> pixels)"), pix("ridge on noise-free rates")) {
        let _ = writeln!(
            s,
            "The linear decoder on single trials reaches {:.0}% of the same decoder on the noise-free rates: the share the response noise leaves to any decoder of that kind.",
            100.0 * a / b
        );
    }
    let _ = writeln!(s, "\n## Figures\n\n![reconstructions](reconstructions.png)\n\n![PixCorr](pixcorr.png)\n\n![full frame](full_frame.png)\n\n![encoding scatter](encoding_scatter.png)\n\n![traces](traces.png)\n\n![electrode map](electrode_map.png)");
    if let Some(p) = &r.projective_fields {
        s.push_str(&projective_markdown(p, r.projective_fields_ridge.as_ref()));
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}
