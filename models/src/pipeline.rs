//! A trained model as the rest of the system uses it: load, predict (image -> response, the
//! simulation path) and reconstruct (response -> image, the generation path).
//!
//! A model directory holds `model.json` (the [`ModelInfo`] and the [`ArchConfig`]),
//! `weights.safetensors` (all four networks), and from training `config.toml` and
//! `train_log.jsonl`. Nothing on the reconstruction path sees an image: its only input is
//! the response.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::{ArchConfig, WaveformEncoderKind};
use crate::error::{io_err, ModelError, Result};
use crate::image_decoder::ImageDecoder;
use crate::image_encoder::ImageEncoder;
use crate::info::ModelInfo;
use crate::waveform_decoder::{self, WaveformDecoder};
use crate::waveform_encoder::{self, WaveformEncoder};

/// Largest image side accepted by [`V1Model::prepare_image`].
pub const MAX_IMAGE_SIDE: u32 = 8192;

fn check_image_size(w: u32, h: u32) -> Result<()> {
    if w == 0 || h == 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(ModelError::ImageSize { width: w, height: h, max: MAX_IMAGE_SIDE });
    }
    Ok(())
}

/// The `width` x `height` rectangle at (`x0`, `y0`) of `src`, resized to `n` x `n` with a
/// triangle (linear) filter widened by the scale when shrinking, vertical pass first,
/// rounded to 8 bits: the weights and order of `image::imageops::resize` with
/// `FilterType::Triangle`, so the crops are those it gives (within one grey level).
/// Written out because that general resampler, run on a view of a camera frame, took
/// ~0.3 ms of the simulation-service's ~2 ms per frame (the per-pixel generic conversions
/// and a libm `round` per sample); this loop reads the rectangle in place and takes a
/// fraction of that (figures: docs/benchmarks/history.md, "Live loop").
pub fn resize_rect_triangle(src: &image::GrayImage, x0: u32, y0: u32, width: u32, height: u32, n: usize) -> Vec<u8> {
    let stride = src.width() as usize;
    let px = src.as_raw();
    let (x0, y0, w, h) = (x0 as usize, y0 as usize, width as usize, height as usize);
    if n == 0 || w == 0 || h == 0 {
        return vec![0; n * n];
    }
    // Vertical pass over the rectangle's columns: n rows of `w` values.
    let mut rows = vec![0f32; n * w];
    for (out_row, (start, weights)) in rows.chunks_exact_mut(w).zip(&triangle_taps(h, n)) {
        for (k, wt) in weights.iter().enumerate() {
            let line = &px[(y0 + start + k) * stride + x0..][..w];
            for (acc, v) in out_row.iter_mut().zip(line) {
                *acc += wt * f32::from(*v);
            }
        }
    }
    // Horizontal pass, rounded like the resampler (clamped, nearest).
    let taps = triangle_taps(w, n);
    let mut out = Vec::with_capacity(n * n);
    for row in rows.chunks_exact(w) {
        for (start, weights) in &taps {
            let v: f32 = weights.iter().zip(&row[*start..]).map(|(wt, v)| wt * v).sum();
            out.push((v.clamp(0.0, 255.0) + 0.5) as u8);
        }
    }
    out
}

/// [`resize_rect_triangle`] of the `side` x `side` square at (`x0`, `y0`).
pub fn resize_square_triangle(src: &image::GrayImage, x0: u32, y0: u32, side: u32, n: usize) -> Vec<u8> {
    resize_rect_triangle(src, x0, y0, side, side, n)
}

/// The largest centred rectangle of a `w` x `h` image with the aspect `aw` : `ah`, as
/// (x0, y0, width, height): the whole image when the aspects agree (a 4:3 camera frame for
/// a model of the whole 4:3 movie frame), the centre square for a square crop window.
pub fn centred_aspect(w: u32, h: u32, aw: u32, ah: u32) -> (u32, u32, u32, u32) {
    let (aw, ah) = (u64::from(aw.max(1)), u64::from(ah.max(1)));
    let (w64, h64) = (u64::from(w), u64::from(h));
    let (cw, ch) = if w64 * ah > h64 * aw {
        // Wider than the aspect: full height.
        (((h64 * aw) / ah).clamp(1, w64), h64)
    } else {
        (w64, ((w64 * ah) / aw).clamp(1, h64))
    };
    let (cw, ch) = (cw as u32, ch as u32);
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// Per output index: the first input index and the normalised triangle weights from it.
fn triangle_taps(len: usize, n: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = len as f32 / n as f32;
    let scale = ratio.max(1.0);
    let support = scale;
    (0..n)
        .map(|i| {
            let centre = (i as f32 + 0.5) * ratio;
            let left = ((centre - support).floor() as i64).clamp(0, len as i64 - 1) as usize;
            let right = ((centre + support).ceil() as i64).clamp(left as i64 + 1, len as i64) as usize;
            let centre = centre - 0.5;
            let mut weights: Vec<f32> =
                (left..right).map(|j| (1.0 - ((j as f32 - centre) / scale).abs()).max(0.0)).collect();
            let sum: f32 = weights.iter().sum();
            if sum > 0.0 {
                weights.iter_mut().for_each(|w| *w /= sum);
            }
            (left, weights)
        })
        .collect()
}

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub format: u32,
    pub info: ModelInfo,
    pub arch: ArchConfig,
}

pub const MODEL_FORMAT: u32 = 1;

/// The four networks.
#[derive(Debug, Clone)]
pub struct Networks {
    pub image_encoder: ImageEncoder,
    pub waveform_decoder: WaveformDecoder,
    pub waveform_encoder: WaveformEncoder,
    pub image_decoder: ImageDecoder,
}

/// A square grayscale image with values in [0,1] (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct GrayCrop {
    pub size: usize,
    pub pixels: Vec<f32>,
}

impl GrayCrop {
    pub fn to_image(&self) -> image::GrayImage {
        // `+ 0.5` then truncation rounds the non-negative values as `round` would, without
        // the libm call `round` compiles to on baseline x86-64.
        let data = self.pixels.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8).collect();
        image::GrayImage::from_raw(self.size as u32, self.size as u32, data).unwrap_or_default()
    }
    pub fn from_u8(size: usize, data: &[u8]) -> Self {
        Self { size, pixels: data.iter().map(|v| *v as f32 / 255.0).collect() }
    }
}

/// A loaded model.
pub struct V1Model {
    info: ModelInfo,
    arch: ArchConfig,
    device: Device,
    varmap: VarMap,
    nets: Networks,
    pixel_mean: Tensor,
    pixel_std: Tensor,
    response_mean: Tensor,
    response_std: Tensor,
}

impl std::fmt::Debug for V1Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Model").field("info", &self.info).field("arch", &self.arch).finish_non_exhaustive()
    }
}

impl V1Model {
    /// A model with freshly initialised weights, deterministic for `seed`.
    pub fn new(info: ModelInfo, arch: ArchConfig, seed: u64, device: &Device) -> Result<Self> {
        info.validate().map_err(ModelError::Invalid)?;
        let varmap = VarMap::new();
        let nets = build_networks(&info, &arch, &varmap, device)?;
        reinitialise(&varmap, seed)?;
        Self::assemble(info, arch, device.clone(), varmap, nets)
    }

    fn assemble(info: ModelInfo, arch: ArchConfig, device: Device, varmap: VarMap, nets: Networks) -> Result<Self> {
        let n = info.response_len();
        Ok(Self {
            pixel_mean: Tensor::new(info.pixel_mean, &device)?,
            pixel_std: Tensor::new(info.pixel_std, &device)?,
            response_mean: Tensor::from_vec(info.response_mean.clone(), (1, n), &device)?,
            response_std: Tensor::from_vec(info.response_std.clone(), (1, n), &device)?,
            info,
            arch,
            device,
            varmap,
            nets,
        })
    }

    /// Loads `model.json` and `weights.safetensors` from `dir` for inference: a Gaussian
    /// readout's masks and a retinotopic encoder's placements are evaluated once here (see
    /// [`WaveformDecoder::frozen`], [`WaveformEncoder::frozen`]). Training
    /// loads with [`Self::load_on`], whose readout follows its variables.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_for_inference(dir, &Device::Cpu)
    }

    /// [`Self::load`] onto `device` (e.g. a GPU opened with [`crate::DeviceChoice::open`]).
    pub fn load_for_inference(dir: &Path, device: &Device) -> Result<Self> {
        let mut m = Self::load_on(dir, device)?;
        m.nets.waveform_decoder = m.nets.waveform_decoder.frozen()?;
        m.nets.waveform_encoder = m.nets.waveform_encoder.frozen()?;
        Ok(m)
    }

    /// Loads a model that can be trained further, on `device`.
    pub fn load_on(dir: &Path, device: &Device) -> Result<Self> {
        let json_path = dir.join("model.json");
        let weights_path = dir.join("weights.safetensors");
        if !dir.is_dir() {
            return Err(ModelError::MissingFile { dir: dir.to_owned(), what: "the directory does not exist".into() });
        }
        for p in [&json_path, &weights_path] {
            if !p.exists() {
                return Err(ModelError::MissingFile {
                    dir: dir.to_owned(),
                    what: format!("{} is missing", p.file_name().and_then(|n| n.to_str()).unwrap_or("?")),
                });
            }
        }
        let text = std::fs::read_to_string(&json_path).map_err(io_err(format!("reading {}", json_path.display())))?;
        let file: ModelFile = serde_json::from_str(&text)
            .map_err(|e| ModelError::BadFile { path: json_path.clone(), message: e.to_string() })?;
        if file.format != MODEL_FORMAT {
            return Err(ModelError::BadFile {
                path: json_path,
                message: format!("format {} but this program reads format {MODEL_FORMAT}", file.format),
            });
        }
        file.info.validate().map_err(|message| ModelError::BadFile { path: json_path.clone(), message })?;
        let mut varmap = VarMap::new();
        let nets = build_networks(&file.info, &file.arch, &varmap, device)?;
        load_weights(&mut varmap, &weights_path)?;
        Self::assemble(file.info, file.arch, device.clone(), varmap, nets)
    }

    /// Writes `model.json` and `weights.safetensors` into `dir` (atomically, each).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let file = ModelFile { format: MODEL_FORMAT, info: self.info.clone(), arch: self.arch.clone() };
        let json = serde_json::to_string_pretty(&file).map_err(|e| ModelError::Invalid(e.to_string()))?;
        write_atomic(&dir.join("model.json"), json.as_bytes())?;
        let weights = dir.join("weights.safetensors");
        let tmp = tmp_path(&weights);
        self.varmap.save(&tmp)?;
        make_readable(&tmp)?;
        std::fs::rename(&tmp, &weights).map_err(io_err(format!("renaming {} into place", tmp.display())))?;
        Ok(())
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }
    pub fn arch(&self) -> &ArchConfig {
        &self.arch
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn networks(&self) -> &Networks {
        &self.nets
    }
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Starts the spatial readout of each channel given a centre (crop pixels) at that
    /// centre, one latent-grid cell wide: a Gaussian readout gets that centre and width, a
    /// free mask a Gaussian of that shape summing to one; a retinotopic waveform encoder
    /// places the channel there too. Channels given None keep their weights. Used before
    /// training to start at the receptive fields the data's STAs place
    /// (`phase1.readout_init_rf`).
    pub fn init_readout_at(&self, centres: &[Option<[f32; 2]>]) -> Result<()> {
        self.place_at(centres, true)
    }

    /// Places a retinotopic waveform encoder's channels at the given centres (crop pixels),
    /// one latent-grid cell wide, leaving the readout as it is (a fresh encoder on a
    /// trained encoding model). Nothing to place for the MLP design.
    pub fn place_encoder_at(&self, centres: &[Option<[f32; 2]>]) -> Result<()> {
        self.place_at(centres, false)
    }

    fn place_at(&self, centres: &[Option<[f32; 2]>], readout: bool) -> Result<()> {
        let c = self.info.n_channels();
        if centres.len() != c {
            return Err(ModelError::Invalid(format!("{} readout centres for {c} channels", centres.len())));
        }
        let grid = latent_grid(&self.info);
        let cell = self.info.image_size as f32 / grid as f32;
        // Grid coordinates: cell k sits at (k mod G, k div G).
        let at: Vec<Option<[f32; 2]>> = centres.iter().map(|c| c.map(|[x, y]| [x / cell - 0.5, y / cell - 0.5])).collect();
        let data = lock_vars(&self.varmap);
        let var = |name: &str| data.get(name).ok_or_else(|| ModelError::Invalid(format!("the model has no {name}")));
        // A Gaussian's centre and width variables, set for the placed channels.
        let place = |mu_name: String, log_sigma_name: String| -> Result<()> {
            let (mu_var, ls_var) = (var(&mu_name)?, var(&log_sigma_name)?);
            let mut mu: Vec<f32> = mu_var.as_tensor().flatten_all()?.to_vec1()?;
            let mut log_sigma: Vec<f32> = ls_var.as_tensor().flatten_all()?.to_vec1()?;
            for (ch, p) in at.iter().enumerate() {
                if let Some([x, y]) = p {
                    mu[2 * ch] = *x;
                    mu[2 * ch + 1] = *y;
                    log_sigma[ch] = 0.0;
                }
            }
            mu_var.set(&Tensor::from_vec(mu, (c, 2), mu_var.device())?)?;
            ls_var.set(&Tensor::from_vec(log_sigma, (c, 1), ls_var.device())?)?;
            Ok(())
        };
        if self.arch.waveform_encoder == WaveformEncoderKind::Retinotopic {
            place(format!("waveform_encoder.{}", waveform_encoder::PLACE_MU), format!("waveform_encoder.{}", waveform_encoder::PLACE_LOG_SIGMA))?;
        }
        if !readout {
            return Ok(());
        }
        if self.arch.gaussian_readout {
            return place(format!("waveform_decoder.{}", waveform_decoder::READOUT_MU), format!("waveform_decoder.{}", waveform_decoder::READOUT_LOG_SIGMA));
        }
        let mask_var = var("waveform_decoder.mask")?;
        let (_, g2) = mask_var.dims2()?;
        if grid * grid != g2 {
            return Err(ModelError::Invalid(format!("readout mask of {g2} cells for a {grid}x{grid} grid")));
        }
        let mut mask: Vec<f32> = mask_var.as_tensor().flatten_all()?.to_vec1()?;
        for (ch, p) in at.iter().enumerate() {
            let Some([gx, gy]) = p else { continue };
            let row = &mut mask[ch * g2..(ch + 1) * g2];
            for (k, v) in row.iter_mut().enumerate() {
                let (dx, dy) = ((k % grid) as f32 - gx, (k / grid) as f32 - gy);
                *v = (-(dx * dx + dy * dy) / 2.0).exp();
            }
            let sum: f32 = row.iter().sum();
            if sum > 0.0 {
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
        mask_var.set(&Tensor::from_vec(mask, (c, g2), mask_var.device())?)?;
        Ok(())
    }

    /// A model with this one's image encoder, waveform decoder and image decoder and a
    /// fresh waveform encoder of the design `kind` (weights drawn from `seed`, placements
    /// at the grid's middle): phase 2 of another design on a trained encoding model.
    pub fn with_fresh_waveform_encoder(&self, kind: WaveformEncoderKind, seed: u64) -> Result<Self> {
        let arch = ArchConfig { waveform_encoder: kind, ..self.arch.clone() };
        let fresh = Self::new(self.info.clone(), arch, seed, &self.device)?;
        {
            let ours = lock_vars(&self.varmap);
            let theirs = lock_vars(&fresh.varmap);
            for (name, var) in theirs.iter().filter(|(name, _)| !name.starts_with("waveform_encoder.")) {
                let from = ours.get(name).ok_or_else(|| ModelError::Invalid(format!("the model has no {name}")))?;
                var.set(from.as_tensor())?;
            }
        }
        Ok(fresh)
    }

    /// Turns any image into what the networks see: grayscale, the largest centred part with
    /// the aspect of the model's crop window (the centre square for a crop at the RF
    /// footprint; the whole frame of a 4:3 camera for a model of the whole movie frame),
    /// resized to `image_size`. (Dataset frames are instead cut by the builder.)
    pub fn prepare_image(&self, img: &image::DynamicImage) -> Result<GrayCrop> {
        check_image_size(img.width(), img.height())?;
        match img {
            image::DynamicImage::ImageLuma8(gray) => self.prepare_gray(gray),
            other => self.prepare_gray(&other.to_luma8()),
        }
    }

    /// [`Self::prepare_image`] for an image already in grayscale: the centred part with the
    /// crop window's aspect, resized to `image_size` with a triangle filter.
    pub fn prepare_gray(&self, gray: &image::GrayImage) -> Result<GrayCrop> {
        let (w, h) = (gray.width(), gray.height());
        check_image_size(w, h)?;
        let win = &self.info.crop_window;
        let (x0, y0, cw, ch) = centred_aspect(w, h, win.width, win.height);
        let s = self.info.image_size;
        let small = resize_rect_triangle(gray, x0, y0, cw, ch, s);
        Ok(GrayCrop::from_u8(s, &small))
    }

    /// Normalised pixels [B, 1, S, S] from crops in [0,1].
    pub fn crops_to_tensor(&self, crops: &[&GrayCrop]) -> Result<Tensor> {
        let s = self.info.image_size;
        let mut data = Vec::with_capacity(crops.len() * s * s);
        for c in crops {
            if c.size != s || c.pixels.len() != s * s {
                return Err(ModelError::Invalid(format!("crop is {}x{} but the model sees {s}x{s}", c.size, c.size)));
            }
            data.extend_from_slice(&c.pixels);
        }
        let x = Tensor::from_vec(data, (crops.len(), 1, s, s), &self.device)?;
        Ok(x.broadcast_sub(&self.pixel_mean)?.broadcast_div(&self.pixel_std)?)
    }

    /// Normalised pixels from pixels in [0,1] already in a [B,1,S,S] tensor.
    pub fn crops_to_tensor_raw(&self, x01: &Tensor) -> Result<Tensor> {
        Ok(x01.broadcast_sub(&self.pixel_mean)?.broadcast_div(&self.pixel_std)?)
    }

    /// Normalised responses [B, L*C] from raw counts.
    pub fn normalise_responses(&self, r: &Tensor) -> Result<Tensor> {
        Ok(r.broadcast_sub(&self.response_mean)?.broadcast_div(&self.response_std)?)
    }

    /// Pixels in [0,1] from normalised decoder output.
    pub fn denormalise_pixels(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_mul(&self.pixel_std)?.broadcast_add(&self.pixel_mean)?)
    }

    /// Simulation path: image_encoder -> z -> waveform_decoder, for a picture held on the
    /// screen for the model's whole input clip. Returns the predicted mean counts,
    /// lag-major (`payload[l * channels + c]`).
    pub fn predict(&self, crop: &GrayCrop) -> Result<Vec<f32>> {
        let x = self.crops_to_tensor(&[crop])?;
        let r = self.predict_tensor(&x)?;
        Ok(r.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Simulation path for a movie clip: `frames` are consecutive frames, oldest first,
    /// exactly `clip_frames` of them, ending `last lag - onset` frames after the frame
    /// the response belongs to (see `ModelInfo::clip_offsets`).
    pub fn predict_clip(&self, frames: &[&GrayCrop]) -> Result<Vec<f32>> {
        let k = self.arch.clip_frames;
        if frames.len() != k {
            return Err(ModelError::Invalid(format!("the model reads clips of {k} frames, got {}", frames.len())));
        }
        let s = self.info.image_size;
        let x = self.crops_to_tensor(frames)?.reshape((1, k, s, s))?;
        let r = self.predict_tensor(&x)?;
        Ok(r.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Frames per input clip of the image encoder.
    pub fn clip_frames(&self) -> usize {
        self.arch.clip_frames
    }

    /// Batched simulation path on normalised pixels: clips [B, clip_frames, S, S], or
    /// single pictures [B, 1, S, S] which are held for the whole clip -> [B, L*C].
    pub fn predict_tensor(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.nets.waveform_decoder.forward(&self.encode_tensor(x)?)?)
    }

    /// image_encoder alone, on normalised pixels (clips, or pictures held for the clip):
    /// the latent z, [B, latent_channels, S/4, S/4].
    pub fn encode_tensor(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.arch.clip_frames;
        Ok(if x.dim(1)? == 1 && k > 1 { self.nets.image_encoder.forward_held(x)? } else { self.nets.image_encoder.forward(x)? })
    }

    /// The latent z of one picture held on the screen, [1, latent_channels, S/4, S/4].
    pub fn encode_crop(&self, crop: &GrayCrop) -> Result<Tensor> {
        self.encode_tensor(&self.crops_to_tensor(&[crop])?)
    }

    /// waveform_decoder alone: the predicted mean counts (lag-major) of one latent z,
    /// [1, latent_channels, S/4, S/4], whatever image it came from (or none).
    pub fn decode_latent(&self, z: &Tensor) -> Result<Vec<f32>> {
        Ok(self.nets.waveform_decoder.forward(z)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Checks a response's length and values.
    pub fn check_response(&self, response: &[f32]) -> Result<()> {
        let expected = self.info.response_len();
        if response.len() != expected {
            return Err(ModelError::ResponseLength {
                got: response.len(),
                expected,
                lags: self.info.n_lags(),
                channels: self.info.n_channels(),
            });
        }
        if let Some((index, value)) = response.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::NonFinite { index, value: *value });
        }
        Ok(())
    }

    /// Reconstruction path: waveform_encoder -> z -> image_decoder. The response is the only
    /// input.
    pub fn reconstruct(&self, response: &[f32]) -> Result<GrayCrop> {
        self.check_response(response)?;
        let r = Tensor::from_vec(response.to_vec(), (1, response.len()), &self.device)?;
        let img = self.reconstruct_tensor(&r)?;
        Ok(GrayCrop { size: self.info.image_size, pixels: img.flatten_all()?.to_vec1::<f32>()? })
    }

    /// Batched reconstruction: raw counts [B, L*C] -> pixels in [0,1], [B,1,S,S].
    pub fn reconstruct_tensor(&self, counts: &Tensor) -> Result<Tensor> {
        Ok(self.reconstruct_tensor_unclamped(counts)?.clamp(0f32, 1f32)?)
    }

    /// The same before the clamp to [0,1] (for differences of reconstructions).
    pub fn reconstruct_tensor_unclamped(&self, counts: &Tensor) -> Result<Tensor> {
        let r = self.normalise_responses(counts)?;
        let z = self.nets.waveform_encoder.forward(&r)?;
        let x = self.nets.image_decoder.forward(&z)?;
        self.denormalise_pixels(&x)
    }

    /// The variables of the named networks (`image_encoder`, `waveform_decoder`,
    /// `waveform_encoder`, `image_decoder`), sorted by name, for an optimiser.
    pub fn vars_of(&self, networks: &[&str]) -> Vec<Var> {
        let data = lock_vars(&self.varmap);
        let mut named: Vec<(&String, &Var)> =
            data.iter().filter(|(k, _)| networks.iter().any(|n| k.starts_with(&format!("{n}.")))).collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        named.into_iter().map(|(_, v)| v.clone()).collect()
    }
}

/// Side of the latent grid z (and of the readout masks): a quarter of the image's.
fn latent_grid(info: &ModelInfo) -> usize {
    info.image_size / 4
}

fn build_networks(info: &ModelInfo, arch: &ArchConfig, varmap: &VarMap, device: &Device) -> Result<Networks> {
    let vb = VarBuilder::from_varmap(varmap, DType::F32, device);
    let grid = latent_grid(info);
    Ok(Networks {
        image_encoder: ImageEncoder::new(arch, info.pixel_mean, info.pixel_std, vb.pp("image_encoder"))?,
        waveform_decoder: WaveformDecoder::new(arch, grid, info.n_lags(), info.n_channels(), vb.pp("waveform_decoder"))?,
        waveform_encoder: WaveformEncoder::new(arch, grid, info.n_lags(), info.n_channels(), vb.pp("waveform_encoder"))?,
        image_decoder: ImageDecoder::new(arch, vb.pp("image_decoder"))?,
    })
}

/// Re-draws every variable from a seeded generator so that training is reproducible
/// (the backend's own initialisers draw from an unseeded generator). Weights get a
/// uniform Kaiming-style range 1/sqrt(fan_in); biases start at zero; readout masks start
/// small and positive; Gaussian readouts keep their fixed start (the grid's middle).
fn reinitialise(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = lock_vars(varmap);
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let numel: usize = dims.iter().product();
        let placed = [waveform_decoder::READOUT_MU, waveform_decoder::READOUT_LOG_SIGMA, waveform_encoder::PLACE_MU, waveform_encoder::PLACE_LOG_SIGMA];
        if placed.iter().any(|p| name.ends_with(p)) {
            // Fixed starting values, set where the readout or the placement is built.
            continue;
        }
        let values: Vec<f32> = if name.ends_with(".bias") {
            vec![0.0; numel]
        } else if name.ends_with(".mask") {
            let g2 = dims.get(1).copied().unwrap_or(1) as f32;
            (0..numel).map(|_| rng.random::<f32>() / g2).collect()
        } else {
            let fan_in: usize = if name.ends_with(".feature_weights") {
                dims.last().copied().unwrap_or(1)
            } else if name.ends_with(".lag_weights") {
                // [C, L, F]: each channel's features read its own L lags.
                dims.get(1).copied().unwrap_or(1)
            } else {
                dims.iter().skip(1).product::<usize>().max(1)
            };
            let bound = (1.0 / fan_in as f32).sqrt() * 3f32.sqrt();
            (0..numel).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound).collect()
        };
        let t = Tensor::from_vec(values, dims.as_slice(), var.device())?;
        var.set(&t)?;
    }
    Ok(())
}

/// The variables of a map by name. A variable is always in a usable state, so a lock
/// poisoned by a panic elsewhere is still good.
fn lock_vars(varmap: &VarMap) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Var>> {
    varmap.data().lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn load_weights(varmap: &mut VarMap, path: &Path) -> Result<()> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| ModelError::BadFile { path: path.to_owned(), message: e.to_string() })?;
    let data = lock_vars(varmap);
    for (name, var) in data.iter() {
        let t = tensors.get(name).ok_or_else(|| ModelError::WeightsMismatch {
            path: path.to_owned(),
            message: format!("tensor `{name}` is missing"),
        })?;
        if t.dims() != var.dims() {
            return Err(ModelError::WeightsMismatch {
                path: path.to_owned(),
                message: format!("tensor `{name}` has shape {:?}, expected {:?}", t.dims(), var.dims()),
            });
        }
        var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
    }
    if let Some(extra) = tensors.keys().find(|k| !data.contains_key(*k)) {
        return Err(ModelError::WeightsMismatch { path: path.to_owned(), message: format!("unexpected tensor `{extra}`") });
    }
    Ok(())
}

fn tmp_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".tmp-{}", std::process::id()));
    PathBuf::from(s)
}

/// Model files are meant to be shared (services often run as another user, e.g. in a
/// container): readable by everyone, like files written with the default umask.
fn make_readable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(io_err(format!("setting permissions of {}", path.display())))?;
    }
    Ok(())
}

/// Writes a file atomically: a temporary file in the same folder, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).map_err(io_err(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("renaming {} into place", tmp.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The written-out crop resize gives what the general resampler gives on the same square.
    #[test]
    fn centre_square_resize_matches_the_triangle_resampler() {
        let frame = image::GrayImage::from_fn(320, 240, |x, y| image::Luma([((x * 7 + y * 13) % 256) as u8 ^ ((x * y) % 29) as u8]));
        for (side, n, x0) in [(240u32, 48usize, 40u32), (240, 96, 40), (60, 48, 3), (30, 48, 0), (7, 7, 100)] {
            let square = image::imageops::crop_imm(&frame, x0, 0, side, side).to_image();
            let reference = image::imageops::resize(&square, n as u32, n as u32, image::imageops::FilterType::Triangle);
            let ours = resize_square_triangle(&frame, x0, 0, side, n);
            let worst = ours.iter().zip(reference.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 1, "{side} -> {n}: largest difference {worst} grey levels");
        }
        // A rectangle squeezed to a square, as the resampler squeezes it.
        for (w, h, n) in [(320u32, 240u32, 64usize), (160, 120, 96), (33, 70, 16)] {
            let rect = image::imageops::crop_imm(&frame, 0, 0, w, h).to_image();
            let reference = image::imageops::resize(&rect, n as u32, n as u32, image::imageops::FilterType::Triangle);
            let ours = resize_rect_triangle(&frame, 0, 0, w, h, n);
            let worst = ours.iter().zip(reference.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 1, "{w}x{h} -> {n}: largest difference {worst} grey levels");
        }
        // A flat image stays flat.
        let flat = image::GrayImage::from_pixel(90, 50, image::Luma([201]));
        assert!(resize_square_triangle(&flat, 20, 0, 50, 48).iter().all(|v| *v == 201));
    }

    #[test]
    fn the_centred_part_has_the_crop_windows_aspect() {
        // A square window: the centre square of a landscape or portrait image.
        assert_eq!(centred_aspect(320, 240, 112, 112), (40, 0, 240, 240));
        assert_eq!(centred_aspect(240, 320, 112, 112), (0, 40, 240, 240));
        // The whole 4:3 frame: a 4:3 camera image whole, a wider one trimmed at the sides,
        // a square one at the top and bottom.
        assert_eq!(centred_aspect(640, 480, 320, 240), (0, 0, 640, 480));
        assert_eq!(centred_aspect(1920, 1080, 320, 240), (240, 0, 1440, 1080));
        assert_eq!(centred_aspect(300, 300, 320, 240), (0, 37, 300, 225));
        // Degenerate sizes stay inside the image.
        assert_eq!(centred_aspect(1, 1, 320, 240), (0, 0, 1, 1));
    }
}
