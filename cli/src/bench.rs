//! `v1 bench`: throughput and latency figures, printed as JSON (and summarised on stderr).
//! Benchmarks, not tests: they measure and report, they do not pass or fail on speed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Simulator and cache-builder throughput (frames/s), both presets, and the projected
    /// time for the full real pvc-1 size (120 segments x 900 frames).
    Data {
        /// Scratch folder (default: a temporary folder, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Skip the default preset (minutes).
        #[arg(long)]
        small_only: bool,
    },
    /// Images/s of a phase-1 training step of the default architecture at several batch
    /// sizes, and of the thread counts given (each measured in a fresh process).
    Train {
        #[arg(long, value_delimiter = ',', default_value = "32,64,128")]
        batch: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// Timed steps per batch size (after 2 warm-up steps).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Channels of the synthetic population (default model: 100).
        #[arg(long, default_value_t = 100)]
        channels: usize,
        /// Convolution implementation: `fast` (im2col + GEMM, what training uses),
        /// `stock` (the backend's own conv2d, for comparison) or `both`.
        #[arg(long, default_value = "both")]
        conv: ConvArg,
        /// How the fast convolution's runs use several threads: `samples` (each thread
        /// takes whole samples of the batch, what training uses), `ops` (the backend's
        /// own threading inside each operation) or `both`. The stock runs always use `ops`:
        /// they are the backend as it comes.
        #[arg(long, default_value = "samples")]
        split: SplitArg,
        /// Where the step runs: cpu, or cuda / cuda:N (a build with the `cuda` feature; one
        /// host thread drives the GPU, so `--threads` is ignored there).
        #[arg(long, default_value = "cpu")]
        device: models::DeviceChoice,
    },
    /// Single-image latency (p50/p99) of the simulation and reconstruction paths.
    Infer {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 500)]
        iterations: usize,
        /// Where the networks run: cpu, or cuda / cuda:N (a build with the `cuda` feature).
        #[arg(long, default_value = "cpu")]
        device: models::DeviceChoice,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvArg {
    Fast,
    Stock,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    Samples,
    Ops,
    Both,
}

impl SplitArg {
    fn name(self) -> &'static str {
        match self {
            SplitArg::Samples => "samples",
            SplitArg::Ops => "ops",
            SplitArg::Both => "both",
        }
    }
}

impl ConvArg {
    fn name(self) -> &'static str {
        match self {
            ConvArg::Fast => "fast",
            ConvArg::Stock => "stock",
            ConvArg::Both => "both",
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Data { dir, small_only } => bench_data(dir, small_only),
        BenchCommand::Train { batch, threads, steps, channels, conv, split, device } => {
            if std::env::var_os("V1_BENCH_CHILD").is_some() {
                models::conv::use_stock_backend(conv == ConvArg::Stock);
                // The child runs one configuration: `threads` holds its thread count.
                let t = threads.first().copied().unwrap_or(1).max(1);
                if split == SplitArg::Samples {
                    models::parallel::single_threaded_ops();
                }
                let per_sample = split == SplitArg::Samples && device.is_cpu();
                let dp = models::parallel::DataParallel::new(if per_sample { t } else { 1 })?;
                return bench_train_here(&batch, steps, channels, &dp, &device.open()?);
            }
            // On a GPU the convolution is always the backend's and threads do not apply:
            // one run.
            let (conv, threads) = if device.is_cpu() { (conv, threads) } else { (ConvArg::Fast, vec![1]) };
            let exe = std::env::current_exe().context("locating the v1 binary")?;
            let mut configs: Vec<(ConvArg, SplitArg)> = Vec::new();
            if matches!(conv, ConvArg::Stock | ConvArg::Both) {
                configs.push((ConvArg::Stock, SplitArg::Ops));
            }
            if matches!(conv, ConvArg::Fast | ConvArg::Both) {
                match split {
                    SplitArg::Both => configs.extend([(ConvArg::Fast, SplitArg::Ops), (ConvArg::Fast, SplitArg::Samples)]),
                    s => configs.push((ConvArg::Fast, s)),
                }
            }
            let mut results = Vec::new();
            for &(c, sp) in &configs {
                for &t in &threads {
                    let out = std::process::Command::new(&exe)
                        .args(["bench", "train", "--steps", &steps.to_string(), "--channels", &channels.to_string(), "--conv", c.name()])
                        .args(["--split", sp.name(), "--threads", &t.to_string(), "--device", &device.to_string(), "--batch"])
                        .arg(batch.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(","))
                        .env("V1_BENCH_CHILD", "1")
                        .env("RAYON_NUM_THREADS", t.to_string())
                        .env_remove("CANDLE_NUM_THREADS")
                        .output()
                        .context("running the benchmark child process")?;
                    if !out.status.success() {
                        anyhow::bail!(
                            "benchmark with {t} threads ({} conv, split {}) failed: {}",
                            c.name(),
                            sp.name(),
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("parsing the child's JSON")?;
                    eprintln!("conv {} split {} threads {t}: {}", c.name(), sp.name(), v);
                    results.push(json!({"conv": c.name(), "split": sp.name(), "threads": t, "results": v}));
                }
            }
            println!("{}", serde_json::to_string_pretty(&json!({
                "benchmark": "train_step_phase1",
                "device": device.to_string(),
                "architecture": models::ArchConfig::default(),
                "image_size": 48,
                "channels": channels,
                "lags": 3,
                "runs": results,
            }))?);
            Ok(())
        }
        BenchCommand::Infer { model, iterations, device } => bench_infer(&model, iterations, &device.open()?),
    }
}

fn bench_train_here(batches: &[usize], steps: usize, channels: usize, dp: &models::parallel::DataParallel, device: &Device) -> Result<()> {
    let device = device.clone();
    let lags = 3;
    let info = models::ModelInfo {
        channels: (0..channels)
            .map(|c| models::ChannelInfo { file: "bench".into(), electrode: (c % 100 + 1) as u16, row: (c % 100 / 10) as u8, col: (c % 10) as u8, rf_centre: None })
            .collect(),
        lags: (1..=lags as u32).collect(),
        response_onset: Some(1),
        image_size: 48,
        crop_window: models::CropWindow { x: 0, y: 0, width: 96, height: 96 },
        pixel_mean: 0.5,
        pixel_std: 0.2,
        response_mean: vec![1.0; lags * channels],
        response_std: vec![1.0; lags * channels],
    };
    let arch = models::ArchConfig::default();
    let k = arch.clip_frames;
    let model = models::V1Model::new(info, arch, 1, &device)?;
    let vars = model.vars_of(&["image_encoder", "waveform_decoder", "image_decoder"]);
    let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr: 1e-3, ..Default::default() })?;
    let nets = model.networks();
    let mut out = Vec::new();
    for &b in batches {
        // A clip per sample in, its last frame as the image target (as in phase 1).
        let clip = Tensor::randn(0f32, 1f32, (b, k, 48, 48), &device)?;
        let x = clip.narrow(1, k - 1, 1)?.contiguous()?;
        let counts = Tensor::rand(0f32, 3f32, (b, lags * channels), &device)?.floor()?;
        let mut step = || -> Result<()> {
            let (grads, _) = dp.backward(b, &vars, |r, share, _| {
                let rows = |t: &Tensor| t.narrow(0, r.start, r.len());
                let z = nets.image_encoder.forward(&rows(&clip)?)?;
                let rate = nets.waveform_decoder.forward(&z)?;
                let recon = nets.image_decoder.forward(&z)?;
                let loss = (models::waveform_decoder::poisson_loss(&rate, &rows(&counts)?)? + (recon - rows(&x)?)?.sqr()?.mean_all()?)?;
                Ok(loss.affine(share, 0.0)?)
            })?;
            opt.step(&grads)?;
            Ok(())
        };
        step()?;
        step()?;
        device.synchronize()?;
        let t0 = Instant::now();
        for _ in 0..steps {
            step()?;
        }
        // A GPU runs the steps asynchronously: wait for the last before stopping the clock.
        device.synchronize()?;
        let secs = t0.elapsed().as_secs_f64();
        out.push(json!({"batch": b, "images_per_second": (b * steps) as f64 / secs, "ms_per_step": secs * 1000.0 / steps as f64}));
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

fn bench_infer(model_dir: &std::path::Path, iterations: usize, device: &Device) -> Result<()> {
    let m = models::V1Model::load_for_inference(model_dir, device)?;
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])));
    let crop = m.prepare_image(&img)?;
    // The networks alone, on tensors already prepared: a still picture (held for the
    // clip, as the services use it) and a real clip of distinct frames.
    let held = m.crops_to_tensor(&[&crop])?;
    let k = m.clip_frames();
    let clip = Tensor::randn(0f32, 1f32, (1, k, m.info().image_size, m.info().image_size), device)?;
    let _ = m.predict_tensor(&held)?;
    let _ = m.predict_tensor(&clip)?;
    let (mut sim, mut rec, mut net_held, mut net_clip) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        let c = m.prepare_image(&img)?;
        let r = m.predict(&c)?;
        sim.push(ms(t));
        let t = Instant::now();
        let _ = m.reconstruct(&r)?;
        rec.push(ms(t));
        let t = Instant::now();
        let _ = m.predict_tensor(&held)?.to_vec2::<f32>()?;
        net_held.push(ms(t));
        let t = Instant::now();
        let _ = m.predict_tensor(&clip)?.to_vec2::<f32>()?;
        net_clip.push(ms(t));
    }
    for v in [&mut sim, &mut rec, &mut net_held, &mut net_clip] {
        v.sort_by(f64::total_cmp);
    }
    let stats = |v: &[f64], includes: &str| json!({"p50": percentile(v, 0.5), "p99": percentile(v, 0.99), "includes": includes});
    let v = json!({
        "benchmark": "single_image_latency_ms",
        "iterations": iterations,
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()),
        "device": format!("{device:?}"),
        "simulation_path": stats(&sim, "grayscale + crop + resize of a 320x240 image held for the clip, image_encoder, waveform_decoder"),
        "simulation_networks_held": stats(&net_held, "image_encoder (a still picture held for the clip), waveform_decoder"),
        "simulation_networks_clip": stats(&net_clip, "image_encoder on a clip of distinct frames, waveform_decoder"),
        "reconstruction_path": stats(&rec, "waveform_encoder, image_decoder"),
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn bench_data(dir: Option<PathBuf>, small_only: bool) -> Result<()> {
    let tmp;
    let base = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().context("creating a temporary folder")?;
            tmp.path().to_owned()
        }
    };
    let mut results = Vec::new();
    let presets: &[(&str, v1_sim::Preset)] = if small_only {
        &[("small", v1_sim::Preset::Small)]
    } else {
        &[("small", v1_sim::Preset::Small), ("default", v1_sim::Preset::Default)]
    };
    for (name, preset) in presets {
        let out = base.join(name);
        let mut cfg = v1_sim::SimConfig::preset(*preset, 1);
        cfg.overwrite = true;
        let s = v1_sim::simulate(&out, &cfg)?;
        let input = neural_data::build::read_input(&out, true)?;
        let t0 = Instant::now();
        let (ds, decoded) = neural_data::build::build(&input, &neural_data::BuildConfig::default(), false)?;
        let build_secs = t0.elapsed().as_secs_f64();
        let build_fps = decoded as f64 / build_secs;
        let sim_fps = s.frames as f64 / s.seconds.max(1e-9);
        let full = 120.0 * 900.0;
        let r = json!({
            "preset": name,
            "frames": s.frames,
            "simulate_seconds": s.seconds,
            "simulate_frames_per_second": sim_fps,
            "dataset_bytes": s.bytes,
            "cache_build_seconds": build_secs,
            "cache_build_frames_per_second": build_fps,
            "samples": ds.n,
            "projected_full_size_simulate_minutes": full / sim_fps / 60.0,
            "projected_full_size_cache_build_minutes": full / build_fps / 60.0,
        });
        eprintln!("{name}: {r}");
        results.push(r);
    }
    println!("{}", serde_json::to_string_pretty(&json!({"benchmark": "data", "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), "results": results}))?);
    Ok(())
}
