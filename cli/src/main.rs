//! `v1`: the command-line face of the system. Every subcommand parses its flags into a
//! validated configuration and calls the libraries; nothing here computes anything itself.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

mod bench;
mod compare;
mod inspect;
mod nwb;
mod report;

use report::{Job, Reporter};

/// Training allocates and frees tensors of megabytes several times per layer and step.
/// glibc's malloc serves large blocks with mmap and returns them to the kernel on every
/// free, so each operation page-faults fresh zeroed memory and a training step spends
/// much of its time in the kernel. mimalloc keeps freed memory for reuse. The profile
/// and the before and after are in docs/benchmarks/history.md (Training step).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc still hands freed memory back to the kernel after a short delay, and each
/// training step then faults it in again as fresh zeroed pages. Keeping it mapped saves
/// that work on every step (profile and figures: docs/benchmarks/history.md, Training
/// step). `v1` runs batch jobs whose memory peaks early and is released at exit, so
/// nothing is lost by holding it; the services keep the default and give memory back,
/// since they run for long and their load comes and goes.
#[allow(unsafe_code)]
fn keep_freed_memory_mapped() {
    /// `mi_option_purge_delay` in mimalloc.h (index 15 in both v2 and v3); -1 = never purge.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mi_option_set only stores an integer option (atomically); it touches no
    // memory of ours and is valid at any time, here before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

#[derive(Parser)]
#[command(name = "v1", version, about = "Model macaque V1: predict responses to images, reconstruct images from responses")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Small,
    Default,
    /// The whole frame of the wide-field dataset (`v1 simulate --preset wide`): the
    /// shipped `models/wide` (docs/evaluation.md#the-wide-field-population).
    Wide,
}

/// What `v1 simulate` writes.
#[derive(Clone, Copy, ValueEnum)]
enum SimPresetArg {
    /// A small dataset for tests (seconds).
    Small,
    /// One 10x10 array like pvc-1's.
    Default,
    /// Sixteen arrays whose receptive fields tile the whole frame (wide field).
    Wide,
}

/// The split `v1 eval` scores.
#[derive(Clone, Copy, ValueEnum)]
enum EvalSplit {
    /// The held-out test split: the report.
    Test,
    /// The validation split: for comparing settings while the test split stays untouched.
    Validation,
}

#[derive(Subcommand)]
enum Command {
    /// Write a simulated V1 dataset in the CRCNS pvc-1 layout (with ground truth beside it).
    Simulate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "default")]
        preset: SimPresetArg,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Make the movies from the photographs in this folder instead of procedural scenes.
        #[arg(long)]
        images: Option<PathBuf>,
        /// Frames per segment (default: the preset's).
        #[arg(long)]
        frames: Option<usize>,
        /// Replace an existing simulated dataset in --out.
        #[arg(long)]
        overwrite: bool,
    },
    /// Summarise a pvc-1 tree: files, conditions, electrodes, repeats, rates, latency, RFs.
    Inspect {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
        /// Also draw every array's receptive fields over a movie frame into this PNG.
        #[arg(long)]
        coverage: Option<PathBuf>,
    },
    /// Build (or reuse) the training cache of a dataset.
    Build {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "default")]
        preset: PresetArg,
        /// Fail on any broken segment or file instead of skipping it with a warning.
        #[arg(long)]
        strict: bool,
    },
    /// Train the four networks in two phases.
    Train {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "default")]
        preset: PresetArg,
        /// Continue from the checkpoint in --out.
        #[arg(long)]
        resume: bool,
        /// Skip training the noise-free upper-bound decoder (simulated data only).
        #[arg(long)]
        no_upper_bound: bool,
        /// Train only the noise-free upper-bound decoder of the model already in --out
        /// (e.g. after choosing its phase-2 settings on the validation split).
        #[arg(long, conflicts_with_all = ["no_upper_bound", "resume", "init"])]
        upper_bound_only: bool,
        /// Start from the weights of this model instead of fresh ones (e.g. to re-run phase 2;
        /// when the config's `[model] waveform_encoder` names the other design, that encoder
        /// starts afresh, placed at the channels' STA receptive fields).
        #[arg(long)]
        init: Option<PathBuf>,
        /// Phases to run.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        phases: Vec<u8>,
        /// Where the networks run: cpu, or cuda / cuda:N (a build with the `cuda` feature).
        #[arg(long, default_value = "cpu")]
        device: models::DeviceChoice,
    },
    /// Evaluate a model on the held-out test split (or, to choose settings, the validation
    /// split); writes metrics.json, report.md and figures.
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 600)]
        max_images: usize,
        /// The split to score: test (the report) or validation (to choose settings).
        #[arg(long, value_enum, default_value = "test")]
        split: EvalSplit,
        /// Where the networks run: cpu, or cuda / cuda:N (a build with the `cuda` feature).
        #[arg(long, default_value = "cpu")]
        device: models::DeviceChoice,
    },
    /// Simulation path: predict the V1 response to images.
    Predict {
        #[arg(long)]
        model: PathBuf,
        images: Vec<PathBuf>,
        /// Write the responses as JSON here instead of printing them.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Reconstruction path: reconstruct the image from a response (JSON array, or an object
    /// with a `payload` array, or the output of `v1 predict`).
    Reconstruct {
        #[arg(long)]
        model: PathBuf,
        response: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Upscale the output image by this factor.
        #[arg(long, default_value_t = 4)]
        scale: u32,
    },
    /// Several models' live paths on the same pictures, side by side (e.g. the pvc-1
    /// array's and the wide field's): each picture cut to the camera's 4:3 frame, each
    /// model's reconstruction from its predicted mean response and from a Poisson sample
    /// of it, drawn where the model looks. Writes a PNG grid; prints each column's
    /// full-frame PixCorr.
    Compare {
        /// Model directories, in column order (repeat the flag or separate by commas).
        #[arg(long = "model", value_delimiter = ',', required = true)]
        models: Vec<PathBuf>,
        /// Pictures (any format the image crate reads).
        images: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Upscale the figure's images by this factor (1 to 8).
        #[arg(long, default_value_t = 2)]
        scale: u32,
        /// Seed of the single trials' Poisson draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a dataset in another format.
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
    /// Benchmarks (printed as JSON).
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Every recording of a pvc-1 tree (real or simulated) as an NWB 2.x file,
    /// `sub-<subdir>_ses-<recording>.nwb`, with the ground truth of a simulated tree.
    /// `v1 build/train/eval/inspect --data OUT` read the folder back.
    Nwb {
        /// The pvc-1 tree (the folder holding crcns-ringach-data/).
        #[arg(long)]
        data: PathBuf,
        /// Folder for the .nwb files (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace .nwb files that already exist in --out.
        #[arg(long)]
        overwrite: bool,
    },
}

fn train_config(config: Option<&Path>, preset: PresetArg) -> Result<models::TrainConfig> {
    Ok(match config {
        Some(p) => models::TrainConfig::from_file(p)?,
        None => models::TrainConfig::preset(match preset {
            PresetArg::Small => models::TrainPreset::Small,
            PresetArg::Default => models::TrainPreset::Default,
            PresetArg::Wide => models::TrainPreset::Wide,
        }),
    })
}

fn load_dataset(data: &Path, cfg: &neural_data::BuildConfig, strict: bool) -> Result<neural_data::cache::Dataset> {
    Ok(load_or_build_dataset(data, cfg, strict)?.0)
}

/// The dataset, and the build's summary (with its timing) when the cache was built now.
fn load_or_build_dataset(
    data: &Path,
    cfg: &neural_data::BuildConfig,
    strict: bool,
) -> Result<(neural_data::cache::Dataset, Option<neural_data::build::BuildSummary>)> {
    let input = nwb::read_tree(data, strict)?;
    let (ds, summary) = neural_data::build::load_or_build(&input, cfg, true)?;
    if let Some(s) = &summary {
        eprintln!(
            "built cache: {} samples ({} train / {} validation / {} test), {} channels, lags {:?}, crop {:?}, {:.0} frames/s",
            s.samples, s.train, s.validation, s.test, s.channels, s.lags, s.crop_window, s.frames_per_second
        );
    }
    for w in &ds.meta.warnings {
        eprintln!("warning: {w}");
    }
    Ok((ds, summary))
}

/// Training threads: `RAYON_NUM_THREADS` when set, else the config's `threads`, else all
/// cores. Training gives each thread whole samples, so the tensor operations themselves
/// are made single-threaded here, before any of them runs.
fn training_threads(configured: usize) -> usize {
    let from_env = std::env::var("RAYON_NUM_THREADS").ok().and_then(|s| s.parse::<usize>().ok()).filter(|n| *n > 0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let n = from_env.unwrap_or(if configured > 0 { configured } else { cores });
    models::parallel::single_threaded_ops();
    n
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Simulate { out, preset, seed, images, frames, overwrite } => {
            let mut cfg = v1_sim::SimConfig::preset(
                match preset {
                    SimPresetArg::Small => v1_sim::Preset::Small,
                    SimPresetArg::Default => v1_sim::Preset::Default,
                    SimPresetArg::Wide => v1_sim::Preset::Wide,
                },
                seed,
            );
            cfg.images_dir = images;
            cfg.overwrite = overwrite;
            if let Some(f) = frames {
                cfg.frames_per_segment = f;
            }
            let reporter = Reporter::start(Job { command: "simulate", phase: "simulating the dataset", prepares: Some(out.clone()), spinner: false });
            let s = v1_sim::simulate(&out, &cfg)?;
            // `v1 build` comes next where a service waits for the data root.
            reporter.finish(true);
            println!(
                "simulated {} segments, {} frames, {} recordings, {} events, {:.1} MB in {:.1} s ({:.0} frames/s) -> {}",
                s.segments,
                s.frames,
                s.recordings,
                s.events,
                s.bytes as f64 / 1e6,
                s.seconds,
                s.frames as f64 / s.seconds.max(1e-9),
                out.display()
            );
        }
        Command::Inspect { data, json, coverage } => inspect::run(&data, json, coverage.as_deref())?,
        Command::Build { data, config, preset, strict } => {
            let cfg = train_config(config.as_deref(), preset)?;
            let reporter = Reporter::start(Job { command: "build", phase: "building the cache", prepares: Some(data.clone()), spinner: false });
            let (ds, built) = load_or_build_dataset(&data, &cfg.data, strict)?;
            reporter.finish(false);
            match built {
                Some(summary) => println!("{}", serde_json::to_string_pretty(&summary)?),
                None => {
                    // Loaded from the cache: nothing was built, so there is no timing to report.
                    let mut v = serde_json::to_value(ds.summary(0.0, 0))?;
                    if let Some(o) = v.as_object_mut() {
                        o.remove("seconds");
                        o.remove("frames_per_second");
                        o.insert("cached".into(), serde_json::Value::Bool(true));
                    }
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
            }
        }
        Command::Train { data, out, config, preset, resume, no_upper_bound, upper_bound_only, init, phases, device } => {
            if phases.is_empty() || phases.iter().any(|p| *p != 1 && *p != 2) {
                bail!("--phases takes 1, 2 or 1,2");
            }
            if upper_bound_only && !out.join("model.json").exists() {
                bail!("--upper-bound-only trains the upper bound of the model in --out, but {} holds none; train it first (v1 train --out {})", out.display(), out.display());
            }
            let cfg = train_config(config.as_deref(), preset)?;
            let threads = training_threads(cfg.threads);
            let device = device.open()?;
            let reporter = Reporter::start(Job { command: "train", phase: "training", prepares: None, spinner: false });
            let ds = load_dataset(&data, &cfg.data, false)?;
            let opts = models::train::TrainOptions {
                config: &cfg,
                out: &out,
                resume,
                progress: true,
                source: models::train::ResponseSource::Recorded,
                init,
                phases,
                threads,
                device: device.clone(),
            };
            if upper_bound_only {
                if ds.truth.is_none() {
                    bail!("--upper-bound-only needs a simulated dataset: {} has no ground truth (ground_truth/ beside the tree)", data.display());
                }
            } else {
                let (_, summary) = models::train::train(&ds, &opts)?;
                println!("trained: {}", serde_json::to_string(&summary)?);
            }
            if ds.truth.is_some() && !no_upper_bound {
                eprintln!("training the noise-free upper-bound decoder (same architecture, phase 2 on noise-free rates)");
                let ub_dir = out.join("upper_bound");
                let opts = models::train::TrainOptions {
                    config: &cfg,
                    out: &ub_dir,
                    resume: false,
                    progress: true,
                    source: models::train::ResponseSource::NoiseFree,
                    init: Some(out.clone()),
                    phases: vec![2],
                    threads,
                    device: device.clone(),
                };
                let (_, ub) = models::train::train(&ds, &opts)?;
                println!("upper bound: {}", serde_json::to_string(&ub)?);
            }
            reporter.finish(false);
            println!("model written to {}", out.display());
        }
        Command::Eval { data, model, out, max_images, split, device } => {
            let device = device.open()?;
            let m = models::V1Model::load_for_inference(&model, &device)?;
            let ub_dir = model.join("upper_bound");
            let upper = if ub_dir.join("model.json").exists() { Some(models::V1Model::load_for_inference(&ub_dir, &device)?) } else { None };
            let cfg_path = model.join("config.toml");
            let cfg = if cfg_path.exists() { models::TrainConfig::from_file(&cfg_path)? } else { models::TrainConfig::default() };
            let ds = load_dataset(&data, &cfg.data, false)?;
            if !models::data::matches(m.info(), &ds) {
                bail!("the model in {} was trained with other channels, lags or crop size than this dataset gives", model.display());
            }
            let opts = models::eval::EvalOptions {
                max_images,
                good_channels: models::eval::good_channels_from_truth(&data, m.info()),
                split: match split {
                    EvalSplit::Test => neural_data::cache::Split::Test,
                    EvalSplit::Validation => neural_data::cache::Split::Validation,
                },
                ..Default::default()
            };
            let reporter = Reporter::start(Job { command: "eval", phase: "evaluating", prepares: None, spinner: true });
            let report = models::eval::evaluate(&ds, &m, upper.as_ref(), &out, &opts)?;
            reporter.finish(false);
            println!("{}", models::eval::markdown(&report, &ds));
            println!("report written to {}", out.join("report.md").display());
        }
        Command::Compare { models, images, out, scale, seed } => {
            compare::run(&compare::CompareArgs { models: &models, images: &images, out: &out, scale, seed })?;
        }
        Command::Predict { model, images, out } => {
            if images.is_empty() {
                bail!("give at least one image file");
            }
            let m = models::V1Model::load(&model)?;
            let mut results = Vec::new();
            for p in &images {
                let img = image::open(p).with_context(|| format!("{}: cannot read the image", p.display()))?;
                let crop = m.prepare_image(&img)?;
                let r = m.predict(&crop)?;
                results.push(serde_json::json!({
                    "image": p.display().to_string(),
                    "shape": [m.info().n_lags(), m.info().n_channels()],
                    "payload": r,
                }));
            }
            let text = serde_json::to_string_pretty(&if results.len() == 1 { results.remove(0) } else { serde_json::Value::Array(results) })?;
            match out {
                Some(o) => std::fs::write(&o, text).with_context(|| format!("writing {}", o.display()))?,
                None => println!("{text}"),
            }
        }
        Command::Reconstruct { model, response, out, scale } => {
            let m = models::V1Model::load(&model)?;
            let text = std::fs::read_to_string(&response).with_context(|| format!("reading {}", response.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", response.display()))?;
            let arr = match &v {
                serde_json::Value::Array(a) => a,
                serde_json::Value::Object(o) => match o.get("payload") {
                    Some(serde_json::Value::Array(a)) => a,
                    _ => bail!("{}: an object must have a `payload` array", response.display()),
                },
                _ => bail!("{}: expected a JSON array of numbers or an object with `payload`", response.display()),
            };
            let values: Vec<f32> = arr
                .iter()
                .enumerate()
                .map(|(i, x)| x.as_f64().map(|f| f as f32).with_context(|| format!("{}: value {i} is not a number", response.display())))
                .collect::<Result<_>>()?;
            let img = m.reconstruct(&values)?.to_image();
            let s = img.width() * scale.clamp(1, 32);
            let big = image::imageops::resize(&img, s, s, image::imageops::FilterType::Triangle);
            big.save(&out).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
        }
        Command::Export { what: ExportCommand::Nwb { data, out, overwrite } } => {
            let reporter = Reporter::start(Job { command: "export nwb", phase: "exporting NWB", prepares: None, spinner: false });
            nwb::export(&data, &out, overwrite)?;
            reporter.finish(false);
        }
        Command::Bench { what } => bench::run(what)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    keep_freed_memory_mapped();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
