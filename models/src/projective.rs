//! Projective fields: what each channel's activity adds to the reconstruction.
//!
//! The projective field (PF) of channel c is `decode(mean + bump_c) - decode(mean)`, where
//! `decode` is the reconstruction path (waveform_encoder -> z -> image_decoder, before the
//! clamp to [0,1]), `mean` the training split's mean response and `bump_c` one standard
//! deviation of channel c's training counts added in every lag bin of c (a unit step in
//! the waveform_encoder's normalised input). Its centre is compared with the channel's
//! receptive-field (RF) centre estimated from the recordings (spike-triggered contrast
//! energy, `neural_data::rf`), both in the pixels of the model's crop.

use candle_core::Tensor;
use neural_data::cache::{CacheMeta, Dataset, Split};
use serde::Serialize;

use crate::error::{ModelError, Result};
use crate::info::ModelInfo;
use crate::pipeline::V1Model;

/// Share of its peak energy above which a pixel counts towards a field's centre.
pub const CENTRE_THRESHOLD: f32 = 0.5;

/// Every channel's projective field.
#[derive(Debug, Clone)]
pub struct ProjectiveFields {
    /// Side of each field (the model's crop), pixels.
    pub size: usize,
    /// Row-major pixel change per channel, in the [0,1] units of the reconstruction.
    pub fields: Vec<Vec<f32>>,
    /// The reconstruction of the mean response.
    pub mean_image: Vec<f32>,
}

/// Computes every channel's projective field through the model's reconstruction path, in
/// one batch.
pub fn projective_fields(model: &V1Model) -> Result<ProjectiveFields> {
    projective_fields_of(model.info(), |rows, n| {
        let counts = Tensor::from_vec(rows, (n, model.info().response_len()), model.device())?;
        Ok(model.reconstruct_tensor_unclamped(&counts)?.flatten_all()?.to_vec1::<f32>()?)
    })
}

/// Every channel's projective field through any decoder of raw responses: `decode` gets
/// `n` lag-major responses, one after another, and returns their `n` images (row-major,
/// the model's crop size), unclamped.
pub fn projective_fields_of(info: &ModelInfo, decode: impl FnOnce(Vec<f32>, usize) -> Result<Vec<f32>>) -> Result<ProjectiveFields> {
    let (n_l, n_c) = (info.n_lags(), info.n_channels());
    let n = n_l * n_c;
    let s = info.image_size;
    let mut rows = Vec::with_capacity((n_c + 1) * n);
    rows.extend_from_slice(&info.response_mean);
    for c in 0..n_c {
        let mut r = info.response_mean.clone();
        for l in 0..n_l {
            r[l * n_c + c] += info.response_std[l * n_c + c];
        }
        rows.extend_from_slice(&r);
    }
    let pixels = decode(rows, n_c + 1)?;
    if pixels.len() != (n_c + 1) * s * s {
        return Err(ModelError::Invalid(format!("a decoder gave {} pixels for {} responses of {s}x{s} images", pixels.len(), n_c + 1)));
    }
    let mean_image = pixels[..s * s].to_vec();
    let fields = (0..n_c)
        .map(|c| {
            let bumped = &pixels[(c + 1) * s * s..(c + 2) * s * s];
            bumped.iter().zip(&mean_image).map(|(b, m)| b - m).collect()
        })
        .collect();
    Ok(ProjectiveFields { size: s, fields, mean_image })
}

/// Centre of a field, in pixels (x, y; pixel centres at +0.5): the energy-weighted
/// centroid of the pixels whose squared value reaches [`CENTRE_THRESHOLD`] of the peak.
/// None for a field without energy.
pub fn field_centre(field: &[f32], size: usize) -> Option<[f32; 2]> {
    let peak = field.iter().map(|v| v * v).fold(0f32, f32::max);
    if peak.is_nan() || peak <= 0.0 || field.len() != size * size {
        return None;
    }
    let (mut sx, mut sy, mut sw) = (0f64, 0f64, 0f64);
    for (i, v) in field.iter().enumerate() {
        let e = v * v;
        if e >= CENTRE_THRESHOLD * peak {
            let w = f64::from(e);
            sx += w * ((i % size) as f64 + 0.5);
            sy += w * ((i / size) as f64 + 0.5);
            sw += w;
        }
    }
    Some([(sx / sw) as f32, (sy / sw) as f32])
}

/// A channel's estimated receptive field as the crop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RfInCrop {
    /// RF centre in crop pixels (x, y); outside `0..size` when the RF lies outside the crop.
    pub centre: [f32; 2],
    /// Peak of the channel's STA over its median absolute value.
    pub snr: f32,
}

/// Every channel's RF centre from a dataset cache's meta, mapped from frame pixels into
/// the pixels of the model's crop (`crop_window` resized to `image_size`).
pub fn rf_centres_in_crop(meta: &CacheMeta) -> Vec<RfInCrop> {
    let [wx, wy, ww, wh] = meta.crop_window.map(|v| v as f32);
    let s = meta.image_size as f32;
    let cell = meta.rf_cell_px as f32;
    meta.rf
        .channels
        .iter()
        .map(|ch| {
            // Grid units times the cell size, as the dataset builder places its crop window
            // (on the default simulated dataset these land 1.1 crop px from the planted RF
            // centres on average, with no offset beyond 0.4 px in x or y).
            let fx = ch.center[0] * cell;
            let fy = ch.center[1] * cell;
            RfInCrop { centre: [(fx - wx) * s / ww.max(1.0), (fy - wy) * s / wh.max(1.0)], snr: ch.snr }
        })
        .collect()
}

/// Each listed channel's receptive field as the crop sees it: the spike-triggered average of
/// local contrast energy (`neural_data::rf::energy_map`, per pixel) over at most
/// `max_samples` evenly spaced training samples, weighted by the channel's lag-summed count
/// minus its mean. Row-major maps of the crop's size, for the figure.
pub fn energy_sta(ds: &Dataset, channels: &[usize], max_samples: usize) -> Vec<Vec<f32>> {
    let s = ds.meta.image_size;
    let (n_l, n_c) = (ds.meta.lags.len(), ds.meta.channels.len());
    let train = ds.indices(Split::Train);
    let step = train.len().div_ceil(max_samples.max(1)).max(1);
    let picked: Vec<usize> = train.into_iter().step_by(step).collect();
    let counts = |i: usize| -> Vec<f32> {
        let r = ds.response(i);
        channels.iter().map(|&c| (0..n_l).map(|l| r[l * n_c + c]).sum()).collect()
    };
    let n = picked.len().max(1) as f32;
    let mut mean = vec![0f32; channels.len()];
    for &i in &picked {
        counts(i).iter().zip(mean.iter_mut()).for_each(|(v, m)| *m += v / n);
    }
    let mut maps = vec![vec![0f32; s * s]; channels.len()];
    for &i in &picked {
        let pixels: Vec<f32> = ds.crop(i).iter().map(|&v| f32::from(v) / 255.0).collect();
        let (energy, _, _) = neural_data::rf::energy_map(&pixels, s, s, 1);
        for ((map, v), m) in maps.iter_mut().zip(counts(i)).zip(&mean) {
            let w = (v - m) / n;
            map.iter_mut().zip(&energy).for_each(|(a, e)| *a += w * e);
        }
    }
    maps
}

/// One channel's fields, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelFields {
    pub channel: usize,
    pub electrode: u16,
    /// PF centre, crop pixels.
    pub pf_centre: [f32; 2],
    /// RF centre, crop pixels.
    pub rf_centre: [f32; 2],
    pub rf_snr: f32,
    /// Largest absolute pixel change of the PF.
    pub pf_peak: f32,
}

/// PF centres against RF centres across the good channels.
#[derive(Debug, Clone, Serialize)]
pub struct PfRfComparison {
    /// How the PFs were made and their centres found.
    pub method: String,
    /// Good channels compared (those with a PF and an RF estimate).
    pub channels: Vec<ChannelFields>,
    /// Pearson r of PF centre x against RF centre x across them.
    pub r_x: Option<f64>,
    pub r_y: Option<f64>,
    /// Mean distance between the two centres, crop pixels.
    pub mean_distance_px: Option<f64>,
    /// The same distance for PF centres paired with the RF centres of other channels
    /// (all pairs): what no relation between the two gives.
    pub mean_distance_shuffled_px: Option<f64>,
}

/// Compares PF and RF centres over the channels `good` marks (all when None).
pub fn compare(info: &ModelInfo, pf: &ProjectiveFields, rfs: &[RfInCrop], good: Option<&[bool]>) -> Result<PfRfComparison> {
    if rfs.len() != info.n_channels() {
        return Err(ModelError::Invalid(format!(
            "the dataset estimates {} receptive fields but the model has {} channels",
            rfs.len(),
            info.n_channels()
        )));
    }
    let channels: Vec<ChannelFields> = (0..info.n_channels())
        .filter(|&c| good.is_none_or(|g| g.get(c).copied().unwrap_or(false)))
        .filter_map(|c| {
            let field = &pf.fields[c];
            Some(ChannelFields {
                channel: c,
                electrode: info.channels[c].electrode,
                pf_centre: field_centre(field, pf.size)?,
                rf_centre: rfs[c].centre,
                rf_snr: rfs[c].snr,
                pf_peak: field.iter().fold(0f32, |m, v| m.max(v.abs())),
            })
        })
        .collect();
    let coord = |k: usize, pick: fn(&ChannelFields) -> [f32; 2]| -> Vec<f64> { channels.iter().map(|c| f64::from(pick(c)[k])).collect() };
    let r = |k: usize| defined_r(&coord(k, |c| c.pf_centre), &coord(k, |c| c.rf_centre));
    let dist = |a: [f32; 2], b: [f32; 2]| f64::from(((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt());
    let n = channels.len();
    let mean_distance_px = (n > 0).then(|| channels.iter().map(|c| dist(c.pf_centre, c.rf_centre)).sum::<f64>() / n as f64);
    let mean_distance_shuffled_px = (n > 1).then(|| {
        let mut sum = 0.0;
        for a in &channels {
            for b in &channels {
                if a.channel != b.channel {
                    sum += dist(a.pf_centre, b.rf_centre);
                }
            }
        }
        sum / (n * (n - 1)) as f64
    });
    Ok(PfRfComparison {
        method: format!(
            "PF = reconstruction of (mean training response + one standard deviation of the channel in each lag bin) minus reconstruction of the mean, before clamping; PF centre = energy-weighted centroid of the pixels with squared change >= {CENTRE_THRESHOLD} x the peak; RF centre = centre of mass of the spike-triggered contrast energy at the population's best lag (dataset cache), mapped into the crop"
        ),
        r_x: r(0),
        r_y: r(1),
        mean_distance_px,
        mean_distance_shuffled_px,
        channels,
    })
}

/// Pearson r (the metrics crate's), where it says something about centres: None for
/// fewer than 3 points or a constant side, which the metrics crate would score 0.
fn defined_r(a: &[f64], b: &[f64]) -> Option<f64> {
    let constant = |v: &[f64]| v.iter().all(|x| *x == v[0]);
    if a.len() < 3 || constant(a) || constant(b) {
        return None;
    }
    v1_metrics::pearson_r(a, b).ok()
}

/// Channels per row of the figure (each a PF and an RF image).
const FIGURE_CHANNELS_PER_ROW: usize = 4;

/// Most channels the projective-field figure draws: a population of 800 good channels
/// would make a 200-row, ~19 MB image nobody reads; the scatter plots keep every channel.
pub const FIGURE_MAX_CHANNELS: usize = 64;

/// Positions (into the compared channels, in order) of the channels the figure draws:
/// all of them up to [`FIGURE_MAX_CHANNELS`], else that many evenly spaced.
pub fn figure_channels(n: usize) -> Vec<usize> {
    if n <= FIGURE_MAX_CHANNELS {
        return (0..n).collect();
    }
    (0..FIGURE_MAX_CHANNELS).map(|k| k * n / FIGURE_MAX_CHANNELS).collect()
}

/// Writes `projective_fields.png`: for each compared channel the figure draws
/// ([`figure_channels`]) its PF (mid-grey = no change) next to its estimated RF
/// (`rf_maps`, one per drawn channel, in that order: the contrast-energy STA over the
/// crop, mid-grey = none), both with the
/// RF centre as a white cross and the PF centre as a black square; and `pf_rf_x.png`,
/// `pf_rf_y.png` (PF centre against RF centre, one point per channel).
pub fn write_figures(pf: &ProjectiveFields, cmp: &PfRfComparison, rf_maps: &[Vec<f32>], out: &std::path::Path) -> Result<()> {
    use v1_metrics::figures;
    let fig_err = |e: figures::FigureError| ModelError::Invalid(format!("writing a projective-field figure: {e}"));
    let gray = |px: Vec<f32>, s: usize| v1_metrics::GrayImageF32::new(s as u32, s as u32, px).map_err(|e| ModelError::Invalid(e.to_string()));
    let shown = figure_channels(cmp.channels.len());
    if cmp.channels.is_empty() || rf_maps.len() != shown.len() {
        return Ok(());
    }
    let s = pf.size;
    let marked = |field: &[f32], ch: &ChannelFields| {
        let mut px = field_to_unit(field);
        mark(&mut px, s, ch.rf_centre, 1.0, true);
        mark(&mut px, s, ch.pf_centre, 0.0, false);
        px
    };
    let mut rows: Vec<Vec<v1_metrics::GrayImageF32>> = Vec::new();
    let mut labels = Vec::new();
    let pairs: Vec<(&ChannelFields, &Vec<f32>)> = shown.iter().map(|&k| &cmp.channels[k]).zip(rf_maps).collect();
    for chunk in pairs.chunks(FIGURE_CHANNELS_PER_ROW) {
        let mut row = Vec::with_capacity(2 * FIGURE_CHANNELS_PER_ROW);
        for (ch, rf) in chunk {
            row.push(gray(marked(&pf.fields[ch.channel], ch), s)?);
            row.push(gray(marked(rf, ch), s)?);
        }
        while row.len() < 2 * FIGURE_CHANNELS_PER_ROW {
            row.push(gray(vec![1.0; s * s], s)?);
        }
        let names: Vec<String> = chunk.iter().map(|(ch, _)| format!("e{}", ch.electrode)).collect();
        labels.push(names.join(" "));
        rows.push(row);
    }
    let titles: Vec<&str> = (0..FIGURE_CHANNELS_PER_ROW).flat_map(|_| ["PF", "RF"]).collect();
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    figures::image_grid(&rows, &titles, &label_refs, 2, &out.join("projective_fields.png")).map_err(fig_err)?;
    for (k, axis) in ["x", "y"].iter().enumerate() {
        let rf: Vec<f32> = cmp.channels.iter().map(|c| c.rf_centre[k]).collect();
        let pfc: Vec<f32> = cmp.channels.iter().map(|c| c.pf_centre[k]).collect();
        figures::scatter(
            &rf,
            &pfc,
            &format!("Projective vs receptive field centre, {axis} (crop px)"),
            &format!("RF centre {axis}"),
            &format!("PF centre {axis}"),
            &out.join(format!("pf_rf_{axis}.png")),
        )
        .map_err(fig_err)?;
    }
    Ok(())
}

/// Draws a cross (or a hollow 3x3 square) of `value` at `at` when it lies in the image.
fn mark(px: &mut [f32], s: usize, at: [f32; 2], value: f32, cross: bool) {
    let (cx, cy) = (at[0].floor() as i64, at[1].floor() as i64);
    let offsets: &[(i64, i64)] = if cross {
        &[(0, 0), (-1, 0), (-2, 0), (1, 0), (2, 0), (0, -1), (0, -2), (0, 1), (0, 2)]
    } else {
        &[(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)]
    };
    for (dx, dy) in offsets {
        let (x, y) = (cx + dx, cy + dy);
        if (0..s as i64).contains(&x) && (0..s as i64).contains(&y) {
            px[y as usize * s + x as usize] = value;
        }
    }
}

/// A field as a displayable image in [0,1]: 0.5 is no change, 0 and 1 the largest
/// absolute change of the field (decrease, increase).
pub fn field_to_unit(field: &[f32]) -> Vec<f32> {
    let peak = field.iter().fold(0f32, |m, v| m.max(v.abs()));
    if peak <= 0.0 {
        return vec![0.5; field.len()];
    }
    field.iter().map(|v| 0.5 + 0.5 * v / peak).collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_figure_draws_every_channel_up_to_its_cap_then_evenly_spaced_ones() {
        assert_eq!(figure_channels(3), vec![0, 1, 2]);
        assert_eq!(figure_channels(FIGURE_MAX_CHANNELS).len(), FIGURE_MAX_CHANNELS);
        let picked = figure_channels(800);
        assert_eq!(picked.len(), FIGURE_MAX_CHANNELS);
        assert_eq!((picked[0], picked[1], *picked.last().unwrap()), (0, 12, 787));
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
    }
    use super::*;

    #[test]
    fn the_centre_of_a_blob_is_its_middle_whatever_its_sign() {
        let s = 16;
        let blob = |cx: f32, cy: f32, sign: f32| -> Vec<f32> {
            (0..s * s)
                .map(|i| {
                    let (x, y) = ((i % s) as f32 + 0.5, (i / s) as f32 + 0.5);
                    sign * (-((x - cx).powi(2) + (y - cy).powi(2)) / 4.0).exp()
                })
                .collect()
        };
        let c = field_centre(&blob(4.5, 10.5, 1.0), s).unwrap();
        assert!((c[0] - 4.5).abs() < 0.05 && (c[1] - 10.5).abs() < 0.05, "{c:?}");
        let c = field_centre(&blob(12.0, 3.0, -1.0), s).unwrap();
        assert!((c[0] - 12.0).abs() < 0.3 && (c[1] - 3.0).abs() < 0.3, "{c:?}");
        assert_eq!(field_centre(&vec![0.0; s * s], s), None);
        assert_eq!(field_centre(&[1.0; 3], s), None);
    }

    #[test]
    fn defined_r_is_one_for_a_line_and_undefined_when_constant() {
        assert!((defined_r(&[1.0, 2.0, 3.0, 4.0], &[3.0, 5.0, 7.0, 9.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((defined_r(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(defined_r(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(defined_r(&[1.0, 2.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn a_field_is_the_reconstruction_of_a_bump_over_the_mean_minus_that_of_the_mean() {
        let dir = tempfile::tempdir().unwrap();
        let (model_dir, data_root) = crate::testing::tiny_fixture(dir.path()).unwrap();
        let model = V1Model::load(&model_dir).unwrap();
        let info = model.info();
        let pf = projective_fields(&model).unwrap();
        assert_eq!(pf.fields.len(), info.n_channels());
        let s = info.image_size;
        let unclamped = |r: Vec<f32>| -> Vec<f32> {
            let t = Tensor::from_vec(r, (1, info.response_len()), model.device()).unwrap();
            model.reconstruct_tensor_unclamped(&t).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let c = info.n_channels() / 2;
        let mut bumped = info.response_mean.clone();
        for l in 0..info.n_lags() {
            bumped[l * info.n_channels() + c] += info.response_std[l * info.n_channels() + c];
        }
        let (hi, lo) = (unclamped(bumped), unclamped(info.response_mean.clone()));
        for i in 0..s * s {
            assert!((pf.fields[c][i] - (hi[i] - lo[i])).abs() < 1e-4, "pixel {i}");
        }
        assert!(pf.fields[c].iter().any(|v| v.abs() > 0.0), "a bump changes the reconstruction");
        // RF centres come from the cache the model was built from, one per channel.
        let cache = crate::recorded::find_cache(&data_root, info).unwrap();
        let meta = neural_data::cache::Dataset::read_meta(&cache).unwrap();
        let rfs = rf_centres_in_crop(&meta);
        let cmp = compare(info, &pf, &rfs, None).unwrap();
        assert_eq!(cmp.channels.len(), pf.fields.iter().filter(|f| field_centre(f, s).is_some()).count());
        let wrong = compare(info, &pf, &rfs[1..], None).unwrap_err();
        assert!(wrong.to_string().contains("receptive fields"), "{wrong}");
    }

    #[test]
    fn fields_display_around_mid_grey() {
        assert_eq!(field_to_unit(&[0.0, 0.2, -0.4]), vec![0.5, 0.75, 0.0]);
        assert_eq!(field_to_unit(&[0.0, 0.0]), vec![0.5, 0.5]);
    }
}
