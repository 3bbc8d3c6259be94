//! Two-phase training.
//!
//! Phase 1 (encoding model + image autoencoder): image_encoder, waveform_decoder and
//! image_decoder learn together: Poisson loss of the predicted response against the
//! recorded counts, plus the pixel loss of image_decoder(z_image) against the crop.
//! Phase 2 (reconstruction): with the image encoder frozen, the waveform encoder learns to
//! produce z_waveform close to z_image (alignment: MSE + cosine), and the image decoder is
//! fine-tuned to decode z_waveform into the crop. A fraction of each batch uses synthetic
//! responses (Poisson samples of the waveform decoder's prediction), so that the
//! reconstruction path also serves the simulation path's responses to arbitrary images.
//!
//! Both phases stop early on the validation split and keep their best weights. After
//! every epoch a checkpoint is written, so `--resume` continues where a run stopped
//! (optimiser moments restart; batch order depends only on the seed and the epoch).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use neural_data::cache::{Dataset, Split};
use neural_data::progress::progress_bar;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::data::{clips_tensor, crops_tensor, model_info, responses_tensor, truth_tensor, Clips};
use crate::error::{io_err, ModelError, Result};
use crate::parallel::DataParallel;
use crate::pipeline::{write_atomic, V1Model};
use crate::waveform_decoder::poisson_loss;

/// Which responses phase 2 learns from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseSource {
    /// Recorded single-trial counts (the real task).
    Recorded,
    /// The simulator's noise-free expected counts (the upper-bound control).
    NoiseFree,
}

/// One line of `train_log.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub phase: u8,
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    /// The learning rate of this epoch (it falls on plateaus, see `lr_decay`).
    #[serde(default)]
    pub learning_rate: f64,
    pub best: bool,
}

/// Checkpoint state beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    phase: u8,
    /// Epochs completed in `phase`.
    epoch: usize,
    best_val: f64,
    bad_epochs: usize,
    done: bool,
    /// The learning rate after the plateau decays so far (absent: the configured one).
    #[serde(default)]
    lr: Option<f64>,
}

/// Result of a training run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub phase1_epochs: usize,
    pub phase2_epochs: usize,
    pub phase1_best_val: f64,
    pub phase2_best_val: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    pub train_samples: usize,
    pub validation_samples: usize,
}

/// Options of one run.
pub struct TrainOptions<'a> {
    pub config: &'a TrainConfig,
    pub out: &'a Path,
    pub resume: bool,
    pub progress: bool,
    pub source: ResponseSource,
    /// Start from the model in this directory instead of fresh weights.
    pub init: Option<PathBuf>,
    /// Phases to run (1, 2 or both).
    pub phases: Vec<u8>,
    /// Threads that take whole samples of each batch (0: the config's `threads`, or all
    /// cores). Used when tensor operations are single-threaded
    /// (`parallel::single_threaded_ops`); otherwise the backend threads each operation.
    pub threads: usize,
}

fn phase_vars(model: &V1Model, phase: u8) -> Vec<Var> {
    if phase == 1 {
        model.vars_of(&["image_encoder", "waveform_decoder", "image_decoder"])
    } else {
        model.vars_of(&["waveform_encoder", "image_decoder"])
    }
}

fn snapshot(vars: &[Var]) -> Result<Vec<Tensor>> {
    Ok(vars.iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<Vec<_>>>()?)
}

fn restore(vars: &[Var], saved: &[Tensor]) -> Result<()> {
    for (v, t) in vars.iter().zip(saved) {
        v.set(t)?;
    }
    Ok(())
}

fn mse(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok((a - b)?.sqr()?.mean_all()?)
}

/// 1 - mean cosine similarity between the rows of a and b (flattened per sample).
/// 1 - the mean over images of the Pearson correlation of their pixels (PixCorr).
fn pixcorr_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let bsz = a.dim(0)?;
    let centre = |t: &Tensor| -> candle_core::Result<Tensor> {
        let t = t.reshape((bsz, ()))?;
        t.broadcast_sub(&t.mean_keepdim(1)?)
    };
    let (a, b) = (centre(a)?, centre(b)?);
    let cov = (&a * &b)?.sum(1)?;
    let norm = ((a.sqr()?.sum(1)? * b.sqr()?.sum(1)?)? + 1e-8)?.sqrt()?;
    Ok((1.0 - cov.div(&norm)?.mean_all()?)?)
}

/// 1 - the mean SSIM of images in [0, 1] ([B, 1, S, S]): Wang et al. (2004) with the
/// report's window (Gaussian sigma 1.5, 11x11, valid part only), K1 0.01, K2 0.03 and
/// population (co)variances, as `v1_metrics::ssim` computes it.
fn ssim_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    use v1_metrics::image::{ssim_kernel, SSIM_K1, SSIM_K2, SSIM_WINDOW};
    let k1 = ssim_kernel();
    let k2: Vec<f32> = (0..SSIM_WINDOW * SSIM_WINDOW).map(|i| (k1[i / SSIM_WINDOW] * k1[i % SSIM_WINDOW]) as f32).collect();
    let dev = a.device();
    let window = crate::conv::Conv2d::new(
        Tensor::from_vec(k2, (1, 1, SSIM_WINDOW, SSIM_WINDOW), dev)?,
        Tensor::zeros(1, candle_core::DType::F32, dev)?,
        1,
        0,
    )?;
    use candle_core::Module;
    let mu = |t: &Tensor| window.forward(t);
    let (ma, mb) = (mu(a)?, mu(b)?);
    let (ma2, mb2, mab) = (ma.sqr()?, mb.sqr()?, (&ma * &mb)?);
    let va = (mu(&a.sqr()?)? - &ma2)?;
    let vb = (mu(&b.sqr()?)? - &mb2)?;
    let cov = (mu(&(a * b)?)? - &mab)?;
    let (c1, c2) = (SSIM_K1 * SSIM_K1, SSIM_K2 * SSIM_K2);
    let num = (((mab * 2.0)? + c1)? * ((cov * 2.0)? + c2)?)?;
    let den = (((ma2 + mb2)? + c1)? * ((va + vb)? + c2)?)?;
    Ok((1.0 - num.div(&den)?.mean_all()?)?)
}

fn cosine_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let bsz = a.dim(0)?;
    let a = a.reshape((bsz, ()))?;
    let b = b.reshape((bsz, ()))?;
    let dot = (&a * &b)?.sum(1)?;
    let na = a.sqr()?.sum(1)?.sqrt()?;
    let nb = b.sqr()?.sum(1)?.sqrt()?;
    let cos = dot.div(&((na * nb)? + 1e-8)?)?;
    Ok((1.0 - cos.mean_all()?)?)
}

/// Trains a model on `ds` and writes it to `opts.out`.
pub fn train(ds: &Dataset, opts: &TrainOptions<'_>) -> Result<(V1Model, TrainSummary)> {
    let cfg = opts.config;
    cfg.validate().map_err(ModelError::Invalid)?;
    if opts.source == ResponseSource::NoiseFree && ds.truth.is_none() {
        return Err(ModelError::Invalid("the noise-free control needs a simulated dataset with ground truth".into()));
    }
    let device = Device::Cpu;
    let start = std::time::Instant::now();
    std::fs::create_dir_all(opts.out).map_err(io_err(format!("creating {}", opts.out.display())))?;
    let ckpt_dir = opts.out.join("checkpoint");
    let info = model_info(ds);
    let mut model = match &opts.init {
        Some(dir) => {
            let m = V1Model::load_on(dir, &device)?;
            if m.info().channels != info.channels || m.info().lags != info.lags || m.info().image_size != info.image_size {
                return Err(ModelError::Invalid(format!("the model in {} does not fit this dataset", dir.display())));
            }
            m
        }
        None => V1Model::new(info, cfg.model.clone(), cfg.seed, &device)?,
    };
    let mut state = CheckpointState { phase: 1, epoch: 0, best_val: f64::INFINITY, bad_epochs: 0, done: false, lr: None };
    if opts.resume && ckpt_dir.join("state.json").exists() {
        model = V1Model::load_on(&ckpt_dir, &device)?;
        let text = std::fs::read_to_string(ckpt_dir.join("state.json")).map_err(io_err("reading checkpoint state"))?;
        state = serde_json::from_str(&text).map_err(|e| ModelError::BadFile { path: ckpt_dir.join("state.json"), message: e.to_string() })?;
        tracing::info!("resuming at phase {} after epoch {}", state.phase, state.epoch);
    } else if !opts.resume {
        let _ = std::fs::remove_file(opts.out.join("train_log.jsonl"));
    }
    write_atomic(&opts.out.join("config.toml"), cfg.to_toml().as_bytes())?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(opts.out.join("train_log.jsonl"))
        .map_err(io_err("opening train_log.jsonl"))?;

    // Whole samples per thread when the process made tensor operations single-threaded
    // (`parallel::single_threaded_ops`, as `v1 train` does); otherwise the backend's own
    // threading inside each operation.
    let dp = if candle_core::utils::get_num_threads() == 1 {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        DataParallel::new(if opts.threads > 0 {
            opts.threads
        } else if cfg.threads > 0 {
            cfg.threads
        } else {
            cores
        })?
    } else {
        DataParallel::new(1)?
    };
    let clips = Clips::new(ds, model.info(), model.clip_frames());
    let train_idx = ds.indices(Split::Train);
    let val_idx = ds.indices(Split::Validation);
    let val_idx = if val_idx.is_empty() { train_idx.iter().copied().step_by(10).collect() } else { val_idx };
    let mut images_seen = 0usize;
    let mut compute_secs = 0f64;
    let mut epochs_run = [0usize; 2];
    let mut best = [f64::NAN; 2];

    for phase in [1u8, 2u8] {
        if !opts.phases.contains(&phase) {
            continue;
        }
        if state.phase > phase || (state.phase == phase && state.done) {
            epochs_run[(phase - 1) as usize] = if state.phase == phase { state.epoch } else { 0 };
            continue;
        }
        if state.phase < phase {
            state = CheckpointState { phase, epoch: 0, best_val: f64::INFINITY, bad_epochs: 0, done: false, lr: None };
        }
        let (max_epochs, batch, lr, wd, patience, lr_decay, lr_patience) = if phase == 1 {
            let p = &cfg.phase1;
            (p.max_epochs, p.batch_size, p.learning_rate, p.weight_decay, p.patience, p.lr_decay, p.lr_patience)
        } else {
            let p = &cfg.phase2;
            (p.max_epochs, p.batch_size, p.learning_rate, p.weight_decay, p.patience, p.lr_decay, p.lr_patience)
        };
        let lr = state.lr.unwrap_or(lr);
        let vars = phase_vars(&model, phase);
        // Phase 2 keeps the image encoder frozen: its latents are computed once.
        let z_all = if phase == 2 { Some(all_latents(&model, ds, &clips, &device, &dp)?) } else { None };
        let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr, weight_decay: wd, ..Default::default() })?;
        let mut best_weights = snapshot(&vars)?;
        if state.best_val.is_finite() && ckpt_dir.join("best.safetensors").exists() {
            let saved = candle_core::safetensors::load(ckpt_dir.join("best.safetensors"), &device)?;
            let names = phase_var_names(&model, phase);
            best_weights = names
                .iter()
                .map(|n| saved.get(n).cloned().ok_or_else(|| ModelError::Invalid(format!("checkpoint lacks {n}"))))
                .collect::<Result<Vec<_>>>()?;
        }
        while state.epoch < max_epochs && !state.done {
            let epoch = state.epoch;
            let epoch_lr = opt.learning_rate();
            let t0 = std::time::Instant::now();
            let mut order = train_idx.clone();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ ((phase as u64) << 40) ^ epoch as u64);
            order.shuffle(&mut rng);
            let bar = progress_bar(opts.progress, order.len() as u64, "{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}", &format!("phase {phase} epoch {}", epoch + 1));
            let (mut loss_sum, mut loss_n) = (0f64, 0f64);
            for chunk in order.chunks(batch) {
                let (grads, l) = if phase == 1 {
                    dp.backward(chunk.len(), &vars, |r, share, first| {
                        let (data, reg) = phase1_terms(&model, ds, &clips, &chunk[r], cfg, &device)?;
                        let l = (data * share)?;
                        Ok(if first { (l + reg)? } else { l })
                    })?
                } else {
                    // The random draws (synthetic responses, input noise) are made for the
                    // whole batch in order, so they do not depend on the thread count.
                    let b = phase2_batch(&model, ds, &clips, chunk, cfg, &device, opts.source, &mut rng, z_all.as_ref())?;
                    dp.backward(chunk.len(), &vars, |r, share, _| Ok((phase2_loss(&model, &b, r, cfg)? * share)?))?
                };
                if !l.is_finite() {
                    return Err(ModelError::Invalid(format!(
                        "phase {phase} loss became {l} in epoch {}; lower the learning rate in the config",
                        epoch + 1
                    )));
                }
                opt.step(&grads)?;
                loss_sum += l * chunk.len() as f64;
                loss_n += chunk.len() as f64;
                bar.inc(chunk.len() as u64);
                bar.set_message(format!("phase {phase} epoch {} loss {:.4}", epoch + 1, loss_sum / loss_n));
            }
            bar.finish_and_clear();
            let secs = t0.elapsed().as_secs_f64();
            images_seen += order.len();
            compute_secs += secs;
            let val = validation_loss(&model, ds, &clips, &val_idx, cfg, &device, phase, opts.source, &dp)?;
            let improved = val < state.best_val;
            if improved {
                state.best_val = val;
                state.bad_epochs = 0;
                best_weights = snapshot(&vars)?;
            } else {
                state.bad_epochs += 1;
                if lr_decay < 1.0 && state.bad_epochs.is_multiple_of(lr_patience.max(1)) {
                    let next = opt.learning_rate() * lr_decay;
                    opt.set_learning_rate(next);
                    state.lr = Some(next);
                }
            }
            state.epoch += 1;
            if state.bad_epochs >= patience {
                state.done = true;
            }
            let entry = EpochLog {
                phase,
                epoch: state.epoch,
                train_loss: loss_sum / loss_n.max(1.0),
                val_loss: val,
                seconds: secs,
                images_per_second: order.len() as f64 / secs.max(1e-9),
                learning_rate: epoch_lr,
                best: improved,
            };
            let line = serde_json::to_string(&entry).unwrap_or_default();
            writeln!(log, "{line}").map_err(io_err("writing train_log.jsonl"))?;
            if opts.progress {
                eprintln!(
                    "phase {phase} epoch {:>3}: train {:.4}  val {:.4}{}  ({:.0} img/s)",
                    state.epoch,
                    entry.train_loss,
                    val,
                    if improved { " *" } else { "" },
                    entry.images_per_second
                );
            }
            // Checkpoint: current weights, best weights of this phase, state.
            model.save(&ckpt_dir)?;
            save_best(&model, phase, &best_weights, &ckpt_dir)?;
            write_atomic(&ckpt_dir.join("state.json"), serde_json::to_string(&state).unwrap_or_default().as_bytes())?;
        }
        restore(&vars, &best_weights)?;
        epochs_run[(phase - 1) as usize] = state.epoch;
        best[(phase - 1) as usize] = state.best_val;
        state.done = true;
        model.save(&ckpt_dir)?;
        write_atomic(&ckpt_dir.join("state.json"), serde_json::to_string(&state).unwrap_or_default().as_bytes())?;
    }
    model.save(opts.out)?;
    let _ = std::fs::remove_dir_all(&ckpt_dir);
    let summary = TrainSummary {
        phase1_epochs: epochs_run[0],
        phase2_epochs: epochs_run[1],
        phase1_best_val: best[0],
        phase2_best_val: best[1],
        seconds: start.elapsed().as_secs_f64(),
        images_per_second: images_seen as f64 / compute_secs.max(1e-9),
        train_samples: train_idx.len(),
        validation_samples: val_idx.len(),
    };
    write_atomic(
        &opts.out.join("train_summary.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default().as_bytes(),
    )?;
    Ok((model, summary))
}

fn phase_var_names(model: &V1Model, phase: u8) -> Vec<String> {
    let nets: &[&str] = if phase == 1 { &["image_encoder", "waveform_decoder", "image_decoder"] } else { &["waveform_encoder", "image_decoder"] };
    let data = match model.varmap().data().lock() {
        Ok(d) => d,
        Err(p) => p.into_inner(),
    };
    let mut names: Vec<String> = data.keys().filter(|k| nets.iter().any(|n| k.starts_with(&format!("{n}.")))).cloned().collect();
    names.sort();
    names
}

fn save_best(model: &V1Model, phase: u8, best: &[Tensor], dir: &Path) -> Result<()> {
    let names = phase_var_names(model, phase);
    let map: HashMap<String, Tensor> = names.into_iter().zip(best.iter().cloned()).collect();
    let path = dir.join("best.safetensors");
    let tmp: PathBuf = dir.join("best.safetensors.tmp");
    candle_core::safetensors::save(&map, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(io_err("renaming best.safetensors"))?;
    Ok(())
}

/// Phase 1's loss as (per-sample mean part, batch-independent regulariser).
fn phase1_terms(model: &V1Model, ds: &Dataset, clips: &Clips, idx: &[usize], cfg: &TrainConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let clip = model.crops_to_tensor_raw(&clips_tensor(ds, clips, idx, device)?)?;
    // The image loss's target: the sample's own frame, already in the clip.
    let x = clip.narrow(1, clips.own, 1)?.contiguous()?;
    let counts = responses_tensor(ds, idx, device)?;
    let nets = model.networks();
    let z = nets.image_encoder.forward(&clip)?;
    let rate = nets.waveform_decoder.forward(&z)?;
    let recon = nets.image_decoder.forward(&z)?;
    let l_pois = poisson_loss(&rate, &counts)?;
    let l_img = mse(&recon, &x)?;
    let l1 = nets.waveform_decoder.mask_l1()?;
    Ok(((l_pois + (l_img * cfg.phase1.image_loss_weight)?)?, (l1 * cfg.phase1.readout_l1)?))
}

fn phase1_loss(model: &V1Model, ds: &Dataset, clips: &Clips, idx: &[usize], cfg: &TrainConfig, device: &Device) -> Result<Tensor> {
    let (data, reg) = phase1_terms(model, ds, clips, idx, cfg, device)?;
    Ok((data + reg)?)
}

/// A phase-2 batch with its random draws made: image targets, frozen image latents and
/// the (partly synthetic, noisy) normalised responses the waveform encoder reads.
struct Phase2Batch {
    x: Tensor,
    z_img: Tensor,
    r: Tensor,
}

#[allow(clippy::too_many_arguments)]
fn phase2_batch(
    model: &V1Model,
    ds: &Dataset,
    clips: &Clips,
    idx: &[usize],
    cfg: &TrainConfig,
    device: &Device,
    source: ResponseSource,
    rng: &mut rand_chacha::ChaCha8Rng,
    z_all: Option<&Tensor>,
) -> Result<Phase2Batch> {
    let p = &cfg.phase2;
    let nets = model.networks();
    let x01 = crops_tensor(ds, idx, device)?;
    // The image loss's target: the sample's own frame.
    let x = model.crops_to_tensor_raw(&x01)?;
    let z_img = match z_all {
        Some(z) => {
            let ids = Tensor::from_vec(idx.iter().map(|&i| i as u32).collect::<Vec<u32>>(), idx.len(), device)?;
            z.index_select(&ids, 0)?
        }
        None => {
            let clip = model.crops_to_tensor_raw(&clips_tensor(ds, clips, idx, device)?)?;
            nets.image_encoder.forward(&clip)?.detach()
        }
    };
    let mut counts = match source {
        ResponseSource::Recorded => responses_tensor(ds, idx, device)?,
        ResponseSource::NoiseFree => truth_tensor(ds, idx, device)?
            .ok_or_else(|| ModelError::Invalid("dataset has no ground truth".into()))?,
    };
    if source == ResponseSource::Recorded && p.synthetic_fraction > 0.0 {
        // Replace a fraction of the batch by Poisson samples of the predicted rates.
        let n_syn = ((idx.len() as f64) * p.synthetic_fraction).round() as usize;
        if n_syn > 0 {
            let rate = nets.waveform_decoder.forward(&z_img.narrow(0, 0, n_syn)?)?.detach();
            let rates: Vec<f32> = rate.flatten_all()?.to_vec1()?;
            let sampled: Vec<f32> = rates
                .iter()
                .map(|&r| match Poisson::new(r.max(1e-6) as f64) {
                    Ok(d) => d.sample(rng) as f32,
                    Err(_) => 0.0,
                })
                .collect();
            let syn = Tensor::from_vec(sampled, rate.shape(), device)?;
            let rest = counts.narrow(0, n_syn, idx.len() - n_syn)?;
            counts = Tensor::cat(&[&syn, &rest], 0)?;
        }
    }
    let mut r = model.normalise_responses(&counts)?;
    if p.input_noise > 0.0 {
        // Drawn from the seeded generator (the backend's own is unseeded).
        let normal = rand_distr::Normal::new(0.0f32, p.input_noise as f32)
            .map_err(|e| ModelError::Invalid(format!("phase2.input_noise: {e}")))?;
        let noise: Vec<f32> = (0..r.elem_count()).map(|_| normal.sample(rng)).collect();
        r = (&r + Tensor::from_vec(noise, r.shape(), device)?)?;
    }
    Ok(Phase2Batch { x, z_img, r })
}

/// Phase 2's loss on `rows` of a prepared batch: alignment of z_waveform to z_image and
/// the pixel loss of reconstructions from z_waveform, per-sample means.
fn phase2_loss(model: &V1Model, b: &Phase2Batch, rows: std::ops::Range<usize>, cfg: &TrainConfig) -> Result<Tensor> {
    let p = &cfg.phase2;
    let nets = model.networks();
    let pick = |t: &Tensor| t.narrow(0, rows.start, rows.len());
    let (x, z_img) = (pick(&b.x)?, pick(&b.z_img)?);
    let z_w = nets.waveform_encoder.forward(&pick(&b.r)?)?;
    let recon = nets.image_decoder.forward(&z_w)?;
    let l_align = (mse(&z_w, &z_img)? * p.align_mse_weight)?;
    let l_cos = (cosine_loss(&z_w, &z_img)? * p.align_cosine_weight)?;
    let l_img = (mse(&recon, &x)? * p.image_loss_weight)?;
    let loss = ((l_align + l_cos)? + l_img)?;
    image_terms(loss, &model.denormalise_pixels(&recon)?, &model.denormalise_pixels(&x)?, cfg)
}

/// Adds phase 2's PixCorr and SSIM terms (when weighted), for reconstructions and
/// targets in [0, 1] pixels: in training and in the validation loss alike.
fn image_terms(mut loss: Tensor, recon01: &Tensor, x01: &Tensor, cfg: &TrainConfig) -> Result<Tensor> {
    let p = &cfg.phase2;
    if p.pixcorr_weight > 0.0 {
        loss = (loss + (pixcorr_loss(recon01, x01)? * p.pixcorr_weight)?)?;
    }
    if p.ssim_weight > 0.0 {
        loss = (loss + (ssim_loss(recon01, x01)? * p.ssim_weight)?)?;
    }
    Ok(loss)
}

/// Phase 1: Poisson + image loss on validation. Phase 2: pixel MSE of reconstructions
/// from recorded (or noise-free) validation responses — the quantity that matters — plus
/// the PixCorr term when phase 2 trains with one.
#[allow(clippy::too_many_arguments)]
fn validation_loss(
    model: &V1Model,
    ds: &Dataset,
    clips: &Clips,
    idx: &[usize],
    cfg: &TrainConfig,
    device: &Device,
    phase: u8,
    source: ResponseSource,
    dp: &DataParallel,
) -> Result<f64> {
    let parts = dp.map(&chunk_ranges(idx.len(), EVAL_CHUNK), |r| {
        let chunk = &idx[r];
        let l = if phase == 1 {
            phase1_loss(model, ds, clips, chunk, cfg, device)?
        } else {
            let x01 = crops_tensor(ds, chunk, device)?;
            let counts = match source {
                ResponseSource::Recorded => responses_tensor(ds, chunk, device)?,
                ResponseSource::NoiseFree => truth_tensor(ds, chunk, device)?
                    .ok_or_else(|| ModelError::Invalid("dataset has no ground truth".into()))?,
            };
            let recon = model.reconstruct_tensor(&counts)?;
            image_terms(mse(&recon, &x01)?, &recon, &x01, cfg)?
        };
        Ok(l.to_scalar::<f32>()? as f64 * chunk.len() as f64)
    })?;
    Ok(parts.iter().sum::<f64>() / (idx.len() as f64).max(1.0))
}

/// Samples per forward pass where no gradient is needed (validation, latents).
const EVAL_CHUNK: usize = 64;

/// `0..n` in consecutive ranges of `size` (the last may be shorter).
fn chunk_ranges(n: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}

/// Latents z_image of every sample (the frozen image encoder of phase 2), [N, Cz, G, G].
fn all_latents(model: &V1Model, ds: &Dataset, clips: &Clips, device: &Device, dp: &DataParallel) -> Result<Tensor> {
    let all: Vec<usize> = (0..ds.n).collect();
    let parts = dp.map(&chunk_ranges(ds.n, EVAL_CHUNK), |r| {
        let x = model.crops_to_tensor_raw(&clips_tensor(ds, clips, &all[r], device)?)?;
        Ok(model.networks().image_encoder.forward(&x)?.detach())
    })?;
    Ok(Tensor::cat(&parts, 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(t: Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn pixcorr_loss_is_zero_for_a_match_two_for_a_negative_and_ignores_contrast() {
        let dev = Device::Cpu;
        let a = Tensor::randn(0f32, 1f32, (3, 1, 6, 6), &dev).unwrap();
        assert!(scalar(pixcorr_loss(&a, &a).unwrap()).abs() < 1e-5);
        // Brightness and contrast do not matter to a correlation.
        let b = a.affine(2.5, 0.7).unwrap();
        assert!(scalar(pixcorr_loss(&b, &a).unwrap()).abs() < 1e-5);
        assert!((scalar(pixcorr_loss(&a.neg().unwrap(), &a).unwrap()) - 2.0).abs() < 1e-5);
        let c = Tensor::randn(0f32, 1f32, (3, 1, 6, 6), &dev).unwrap();
        let l = scalar(pixcorr_loss(&c, &a).unwrap());
        assert!(l > 0.0 && l < 2.0, "unrelated images: {l}");
    }

    #[test]
    fn ssim_loss_matches_the_report_metric() {
        use v1_metrics::image::{ssim, GrayImageF32};
        let dev = Device::Cpu;
        let a: Vec<f32> = (0..2 * 24 * 24).map(|i| ((i * 37 % 101) as f32 / 100.0).clamp(0.0, 1.0)).collect();
        let b: Vec<f32> = a.iter().enumerate().map(|(i, v)| (0.6 * v + 0.2 + 0.1 * ((i % 7) as f32 / 7.0)).clamp(0.0, 1.0)).collect();
        let ta = Tensor::from_vec(a.clone(), (2, 1, 24, 24), &dev).unwrap();
        let tb = Tensor::from_vec(b.clone(), (2, 1, 24, 24), &dev).unwrap();
        let ours = 1.0 - scalar(ssim_loss(&ta, &tb).unwrap()) as f64;
        let mut expected = 0.0;
        for k in 0..2 {
            let img = |v: &[f32]| GrayImageF32::new(24, 24, v[k * 576..(k + 1) * 576].to_vec()).unwrap();
            expected += ssim(&img(&b), &img(&a)).unwrap() / 2.0;
        }
        assert!((ours - expected).abs() < 1e-4, "loss gives SSIM {ours}, the metric {expected}");
    }

    #[test]
    fn a_negative_loss_weight_is_refused_with_its_name() {
        let mut cfg = TrainConfig::default();
        cfg.phase2.pixcorr_weight = -1.0;
        let err = cfg.validate().unwrap_err();
        assert!(err.contains("phase2.pixcorr_weight"), "{err}");
    }
}
