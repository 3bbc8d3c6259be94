//! `v1 compare`: several models' live paths on the same pictures, side by side.
//!
//! Each picture is cut to the camera's 4:3 frame and shown at 160x120. Each model sees the
//! part of that frame its crop window's aspect gives (the centre square for the pvc-1
//! array's model, the whole frame for the wide-field one, as the services cut a camera
//! image), predicts its mean response, and reconstructs from that response alone — and
//! from one Poisson sample of it (a simulated single trial). Each reconstruction is drawn
//! where its model looks, over the model's mean grey elsewhere (what it does not see).
//! Writes the grid as a PNG and prints each column's mean full-frame PixCorr.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::imageops::{self, FilterType};
use image::GrayImage;
use models::pipeline::centred_aspect;
use models::V1Model;
use rand_chacha::rand_core::SeedableRng;
use v1_metrics::GrayImageF32;

/// The shown frame: half the 320x240 movie frame.
const FRAME_W: u32 = 160;
const FRAME_H: u32 = 120;

/// Options of `v1 compare`.
pub struct CompareArgs<'a> {
    pub models: &'a [PathBuf],
    pub images: &'a [PathBuf],
    pub out: &'a Path,
    pub scale: u32,
    pub seed: u64,
}

/// One column of the grid: a model's reconstructions (mean or single trial).
struct Column {
    title: String,
    images: Vec<GrayImageF32>,
}

pub fn run(a: &CompareArgs<'_>) -> Result<()> {
    if a.models.is_empty() || a.images.is_empty() {
        bail!("give at least one --model and one image");
    }
    if !(1..=8).contains(&a.scale) {
        bail!("--scale is {} but must be 1 to 8", a.scale);
    }
    // Every picture as the camera's 4:3 frame, at full resolution and as shown.
    let mut frames = Vec::with_capacity(a.images.len());
    for p in a.images {
        let img = image::open(p).with_context(|| format!("{}: cannot read the image", p.display()))?;
        let gray = img.to_luma8();
        let (x0, y0, w, h) = centred_aspect(gray.width(), gray.height(), 4, 3);
        frames.push(imageops::crop_imm(&gray, x0, y0, w, h).to_image());
    }
    let shown: Vec<GrayImageF32> = frames.iter().map(|f| to_f32(&imageops::resize(f, FRAME_W, FRAME_H, FilterType::Triangle))).collect::<Result<_>>()?;
    let mut columns = vec![Column { title: "picture".into(), images: shown.clone() }];
    for dir in a.models {
        let model = V1Model::load(dir).with_context(|| format!("loading the model in {}", dir.display()))?;
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("model").to_owned();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
        let (mut mean, mut single) = (Vec::new(), Vec::new());
        for frame in &frames {
            let crop = model.prepare_gray(frame)?;
            let rates = model.predict(&crop)?;
            let trial = models::waveform_decoder::poisson_counts(&rates, &mut rng);
            mean.push(placed(&model, &model.reconstruct(&rates)?.to_image())?);
            single.push(placed(&model, &model.reconstruct(&trial)?.to_image())?);
        }
        columns.push(Column { title: format!("{name}: mean"), images: mean });
        columns.push(Column { title: format!("{name}: single trial"), images: single });
    }
    println!("{:<28} mean full-frame PixCorr over {} pictures", "column", frames.len());
    for c in &columns[1..] {
        let r: Vec<f64> = c.images.iter().zip(&shown).map(|(rec, t)| v1_metrics::image::pixcorr(t, rec)).collect::<Result<_, _>>()?;
        println!("{:<28} {:.3}", c.title, r.iter().sum::<f64>() / r.len() as f64);
    }
    let rows: Vec<Vec<GrayImageF32>> = (0..frames.len()).map(|i| columns.iter().map(|c| c.images[i].clone()).collect()).collect();
    let titles: Vec<&str> = columns.iter().map(|c| c.title.as_str()).collect();
    let labels: Vec<String> = a.images.iter().map(|p| p.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_owned()).collect();
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    v1_metrics::figures::image_grid(&rows, &titles, &label_refs, a.scale, a.out).with_context(|| format!("writing {}", a.out.display()))?;
    println!("figure written to {}", a.out.display());
    Ok(())
}

/// A reconstruction drawn where its model looks in the shown frame, the model's mean
/// pixel elsewhere.
fn placed(model: &V1Model, recon: &GrayImage) -> Result<GrayImageF32> {
    let win = &model.info().crop_window;
    let (x0, y0, w, h) = centred_aspect(FRAME_W, FRAME_H, win.width, win.height);
    let grey = (model.info().pixel_mean.clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut canvas = GrayImage::from_pixel(FRAME_W, FRAME_H, image::Luma([grey]));
    imageops::replace(&mut canvas, &imageops::resize(recon, w, h, FilterType::Triangle), i64::from(x0), i64::from(y0));
    to_f32(&canvas)
}

fn to_f32(img: &GrayImage) -> Result<GrayImageF32> {
    Ok(GrayImageF32::new(img.width(), img.height(), img.as_raw().iter().map(|v| f32::from(*v) / 255.0).collect())?)
}
