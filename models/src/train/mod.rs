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
//!
//! # Layout
//! - [`Phase`]: which networks a phase trains and its schedule from the config.
//! - `checkpoint`: the checkpoint folder (resume, best weights of a phase).
//! - `losses`: both phases' losses and the validation loss.

mod checkpoint;
mod losses;
mod phase;

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use neural_data::cache::{Dataset, Split};
use neural_data::progress::progress_bar;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::data::{model_info, Clips};
use crate::error::{io_err, ModelError, Result};
use crate::parallel::DataParallel;
use crate::pipeline::{write_atomic, V1Model};
use checkpoint::{restore, snapshot, Checkpoint, CheckpointState};
use losses::{all_latents, phase1_terms, phase2_batch, phase2_loss, validation_loss, Inputs};
pub use phase::{Phase, Schedule};

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
    pub phase: Phase,
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
    /// Phases to run (1, 2 or both), by number as the command line takes them.
    pub phases: Vec<u8>,
    /// Threads that take whole samples of each batch (0: the config's `threads`, or all
    /// cores). Used when tensor operations are single-threaded
    /// (`parallel::single_threaded_ops`); otherwise the backend threads each operation.
    pub threads: usize,
    /// Where the networks train: the CPU, or a GPU opened with [`crate::DeviceChoice::open`]
    /// (there each batch runs whole on the device, on one host thread).
    pub device: Device,
}

/// Trains a model on `ds` and writes it to `opts.out`.
pub fn train(ds: &Dataset, opts: &TrainOptions<'_>) -> Result<(V1Model, TrainSummary)> {
    let cfg = opts.config;
    cfg.validate().map_err(ModelError::Invalid)?;
    if opts.source == ResponseSource::NoiseFree && ds.truth.is_none() {
        return Err(ModelError::Invalid("the noise-free control needs a simulated dataset with ground truth".into()));
    }
    let phases = requested_phases(&opts.phases)?;
    let device = opts.device.clone();
    let start = std::time::Instant::now();
    std::fs::create_dir_all(opts.out).map_err(io_err(format!("creating {}", opts.out.display())))?;
    let checkpoint = Checkpoint::new(opts.out);
    let (model, mut state) = starting_point(ds, opts, &checkpoint, &device)?;
    write_atomic(&opts.out.join("config.toml"), cfg.to_toml().as_bytes())?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(opts.out.join("train_log.jsonl"))
        .map_err(io_err("opening train_log.jsonl"))?;
    let dp = data_parallel(opts)?;
    let clips = Clips::new(ds, model.info(), model.clip_frames());
    let train_idx = ds.indices(Split::Train);
    let val_idx = ds.indices(Split::Validation);
    let val_idx = if val_idx.is_empty() { train_idx.iter().copied().step_by(10).collect() } else { val_idx };
    let inputs = Inputs { model: &model, ds, clips: &clips, cfg, device: &device, source: opts.source };
    let mut run = Run { x: inputs, opts, dp, train_idx, val_idx, checkpoint, log, images_seen: 0, compute_secs: 0.0 };
    let mut epochs_run = [0usize; 2];
    let mut best = [f64::NAN; 2];

    for phase in phases {
        if state.phase > phase || (state.phase == phase && state.done) {
            epochs_run[phase.index()] = if state.phase == phase { state.epoch } else { 0 };
            continue;
        }
        if state.phase < phase {
            state = CheckpointState::start(phase);
        }
        run.phase(phase, &mut state)?;
        epochs_run[phase.index()] = state.epoch;
        best[phase.index()] = state.best_val;
    }
    model.save(opts.out)?;
    run.checkpoint.remove();
    let summary = TrainSummary {
        phase1_epochs: epochs_run[0],
        phase2_epochs: epochs_run[1],
        phase1_best_val: best[0],
        phase2_best_val: best[1],
        seconds: start.elapsed().as_secs_f64(),
        images_per_second: run.images_seen as f64 / run.compute_secs.max(1e-9),
        train_samples: run.train_idx.len(),
        validation_samples: run.val_idx.len(),
    };
    write_atomic(
        &opts.out.join("train_summary.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default().as_bytes(),
    )?;
    Ok((model, summary))
}

/// The phases `numbers` asks for, in the order they run.
fn requested_phases(numbers: &[u8]) -> Result<Vec<Phase>> {
    for &n in numbers {
        Phase::try_from(n).map_err(|e| ModelError::Invalid(format!("phases to train: {e}; ask for 1, 2 or both")))?;
    }
    Ok(Phase::ALL.into_iter().filter(|p| numbers.contains(&p.number())).collect())
}

/// The model and state training starts from: the checkpoint when resuming from one,
/// otherwise `opts.init` or fresh weights before phase 1 (and a fresh log).
fn starting_point(ds: &Dataset, opts: &TrainOptions<'_>, checkpoint: &Checkpoint, device: &Device) -> Result<(V1Model, CheckpointState)> {
    let info = model_info(ds);
    let model = match &opts.init {
        Some(dir) => {
            let m = V1Model::load_on(dir, device)?;
            // Same channels (by file and electrode), lags and image size; what the model's
            // info says beyond that (e.g. receptive-field centres, which older models lack)
            // stays the model's.
            if !crate::data::matches(m.info(), ds) {
                return Err(ModelError::Invalid(format!("the model in {} does not fit this dataset", dir.display())));
            }
            let kind = opts.config.model.waveform_encoder;
            if m.arch().waveform_encoder == kind {
                m
            } else {
                // The config asks for the other waveform encoder design: the trained networks
                // stay, the waveform encoder starts afresh (placed at the STA receptive fields).
                let fresh = m.with_fresh_waveform_encoder(kind, opts.config.seed)?;
                let centres = crate::data::reliable_rf_centres(ds);
                fresh.place_encoder_at(&centres)?;
                tracing::info!(
                    "a fresh {kind:?} waveform encoder on the networks of {} ({} of {} channels placed at their STA receptive fields)",
                    dir.display(),
                    centres.iter().filter(|c| c.is_some()).count(),
                    centres.len()
                );
                fresh
            }
        }
        None => {
            let m = V1Model::new(info, opts.config.model.clone(), opts.config.seed, device)?;
            if opts.config.phase1.readout_init_rf {
                let centres = crate::data::reliable_rf_centres(ds);
                let placed = centres.iter().filter(|c| c.is_some()).count();
                tracing::info!("readout masks of {placed} of {} channels start at their STA receptive fields", centres.len());
                m.init_readout_at(&centres)?;
            }
            m
        }
    };
    if opts.resume {
        if let Some((model, state)) = checkpoint.load(device)? {
            tracing::info!("resuming at phase {} after epoch {}", state.phase, state.epoch);
            return Ok((model, state));
        }
    } else {
        let _ = std::fs::remove_file(opts.out.join("train_log.jsonl"));
    }
    Ok((model, CheckpointState::start(Phase::Encoding)))
}

/// Whole samples per thread when the process made tensor operations single-threaded
/// (`parallel::single_threaded_ops`, as `v1 train` does); otherwise the backend's own
/// threading inside each operation. On a GPU the device does the parallel work.
fn data_parallel(opts: &TrainOptions<'_>) -> Result<DataParallel> {
    if candle_core::utils::get_num_threads() != 1 || !opts.device.is_cpu() {
        return DataParallel::new(1);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    DataParallel::new(if opts.threads > 0 {
        opts.threads
    } else if opts.config.threads > 0 {
        opts.config.threads
    } else {
        cores
    })
}

/// What one run shares across its phases and epochs.
struct Run<'a> {
    /// The model being trained (its variables change in place), the data and settings.
    x: Inputs<'a>,
    opts: &'a TrainOptions<'a>,
    dp: DataParallel,
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
    checkpoint: Checkpoint,
    /// `train_log.jsonl`, one line per epoch.
    log: std::fs::File,
    /// Training images and seconds over all epochs, for the summary's throughput.
    images_seen: usize,
    compute_secs: f64,
}

/// The training side of one epoch.
struct EpochStats {
    train_loss: f64,
    seconds: f64,
    images: usize,
}

impl Run<'_> {
    /// Runs `phase` from `state` until it stops early or reaches its last epoch, then
    /// leaves the phase's best weights in the model and marks the state done.
    fn phase(&mut self, phase: Phase, state: &mut CheckpointState) -> Result<()> {
        let sched = phase.schedule(self.opts.config);
        let lr = state.lr.unwrap_or(sched.learning_rate);
        let model = self.x.model;
        let vars = phase.vars(model);
        // Phase 2 keeps the image encoder frozen: its latents are computed once.
        let z_all = match phase {
            Phase::Reconstruction => Some(all_latents(&self.x, &self.dp)?),
            Phase::Encoding => None,
        };
        let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr, weight_decay: sched.weight_decay, ..Default::default() })?;
        let mut best_weights = snapshot(&vars)?;
        if let Some(saved) = self.checkpoint.best_weights(model, phase, state, self.x.device)? {
            best_weights = saved;
        }
        while state.epoch < sched.max_epochs && !state.done {
            let epoch_lr = opt.learning_rate();
            let stats = self.epoch(phase, &sched, state.epoch, &vars, &mut opt, z_all.as_ref())?;
            let val = validation_loss(&self.x, &self.val_idx, phase, &self.dp)?;
            let improved = val < state.best_val;
            if improved {
                state.best_val = val;
                state.bad_epochs = 0;
                best_weights = snapshot(&vars)?;
            } else {
                state.bad_epochs += 1;
                if sched.lr_decay < 1.0 && state.bad_epochs.is_multiple_of(sched.lr_patience.max(1)) {
                    let next = opt.learning_rate() * sched.lr_decay;
                    opt.set_learning_rate(next);
                    state.lr = Some(next);
                }
            }
            state.epoch += 1;
            if state.bad_epochs >= sched.patience {
                state.done = true;
            }
            let entry = EpochLog {
                phase,
                epoch: state.epoch,
                train_loss: stats.train_loss,
                val_loss: val,
                seconds: stats.seconds,
                images_per_second: stats.images as f64 / stats.seconds.max(1e-9),
                learning_rate: epoch_lr,
                best: improved,
            };
            self.log_epoch(&entry)?;
            self.checkpoint.save_epoch(model, phase, &best_weights, state)?;
        }
        restore(&vars, &best_weights)?;
        state.done = true;
        self.checkpoint.save_phase_end(model, state)
    }

    /// One pass over the training split in the epoch's own shuffled order.
    fn epoch(&mut self, phase: Phase, sched: &Schedule, epoch: usize, vars: &[Var], opt: &mut AdamW, z_all: Option<&Tensor>) -> Result<EpochStats> {
        let (x, cfg) = (self.x, self.opts.config);
        let t0 = std::time::Instant::now();
        let mut order = self.train_idx.clone();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ (u64::from(phase.number()) << 40) ^ epoch as u64);
        order.shuffle(&mut rng);
        let bar = progress_bar(self.opts.progress, order.len() as u64, "{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}", &format!("phase {phase} epoch {}", epoch + 1));
        let (mut loss_sum, mut loss_n) = (0f64, 0f64);
        for chunk in order.chunks(sched.batch_size) {
            let (grads, l) = match phase {
                Phase::Encoding => self.dp.backward(chunk.len(), vars, |r, share, first| {
                    let (data, reg) = phase1_terms(&x, &chunk[r])?;
                    let l = (data * share)?;
                    Ok(if first { (l + reg)? } else { l })
                })?,
                Phase::Reconstruction => {
                    // The random draws (synthetic responses, input noise) are made for the
                    // whole batch in order, so they do not depend on the thread count.
                    let b = phase2_batch(&x, chunk, &mut rng, z_all)?;
                    self.dp.backward(chunk.len(), vars, |r, share, _| Ok((phase2_loss(x.model, &b, r, cfg)? * share)?))?
                }
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
        let seconds = t0.elapsed().as_secs_f64();
        self.images_seen += order.len();
        self.compute_secs += seconds;
        Ok(EpochStats { train_loss: loss_sum / loss_n.max(1.0), seconds, images: order.len() })
    }

    /// Appends the epoch to `train_log.jsonl` and, with progress on, prints it.
    fn log_epoch(&mut self, entry: &EpochLog) -> Result<()> {
        let line = serde_json::to_string(entry).unwrap_or_default();
        writeln!(self.log, "{line}").map_err(io_err("writing train_log.jsonl"))?;
        if self.opts.progress {
            eprintln!(
                "phase {} epoch {:>3}: train {:.4}  val {:.4}{}  ({:.0} img/s)",
                entry.phase,
                entry.epoch,
                entry.train_loss,
                entry.val_loss,
                if entry.best { " *" } else { "" },
                entry.images_per_second
            );
        }
        Ok(())
    }
}
