//! End-to-end checks of the models crate on a real (small) simulated dataset.

use models::testing::{fixture_config, tiny_fixture};
use models::train::{ResponseSource, TrainOptions};
use models::{ModelError, TrainConfig, V1Model};
use neural_data::cache::Split;

fn fixture() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = tiny_fixture(dir.path()).unwrap();
    (dir, model, data)
}

#[test]
fn both_paths_run_and_check_their_inputs() {
    let (_dir, model_dir, _) = fixture();
    let m = V1Model::load(&model_dir).unwrap();
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 40, |x, y| image::Rgb([x as u8 * 4, y as u8 * 6, 128])));
    let crop = m.prepare_image(&img).unwrap();
    assert_eq!(crop.pixels.len(), m.info().image_size * m.info().image_size);
    let r = m.predict(&crop).unwrap();
    assert_eq!(r.len(), m.info().response_len());
    assert!(r.iter().all(|v| v.is_finite() && *v >= 0.0), "softplus rates are finite and non-negative");
    let out = m.reconstruct(&r).unwrap();
    assert_eq!(out.size, m.info().image_size);
    assert!(out.pixels.iter().all(|v| (0.0..=1.0).contains(v)));

    match m.reconstruct(&[0.023, 0.55, -0.011]) {
        Err(ModelError::ResponseLength { got: 3, expected, .. }) => assert_eq!(expected, m.info().response_len()),
        other => panic!("expected a length error, got {other:?}"),
    }
    let mut bad = r.clone();
    bad[5] = f32::NAN;
    assert!(matches!(m.reconstruct(&bad), Err(ModelError::NonFinite { index: 5, .. })));
    let huge = image::DynamicImage::new_luma8(9000, 2);
    assert!(matches!(m.prepare_image(&huge), Err(ModelError::ImageSize { .. })));

    // A still picture is that picture held for the whole input clip.
    let k = m.clip_frames();
    assert!(k > 1, "the fixture's model reads clips");
    let held: Vec<&models::GrayCrop> = vec![&crop; k];
    // Equal up to rounding: the held picture goes through the first layer once, with its
    // weights summed over the frames.
    let clip_r = m.predict_clip(&held).unwrap();
    assert_eq!(clip_r.len(), r.len());
    let worst = clip_r.iter().zip(&r).map(|(a, b)| (a - b).abs() / b.abs().max(1e-3)).fold(0f32, f32::max);
    assert!(worst < 1e-4, "held picture and repeated clip differ by {worst} (relative)");
    // A clip whose frames differ gives another response; a clip of the wrong length is an error.
    let other = m.prepare_image(&image::DynamicImage::new_luma8(40, 40)).unwrap();
    let mut moving = held.clone();
    moving[0] = &other;
    assert_ne!(m.predict_clip(&moving).unwrap(), r);
    let err = m.predict_clip(&held[1..]).unwrap_err().to_string();
    assert!(err.contains(&format!("clips of {k} frames")), "{err}");
}

#[test]
fn reconstruction_depends_on_the_response_alone() {
    // The reconstruction path's only input is the response: the same response gives the
    // same image whatever frame it came from, and no image enters `reconstruct`.
    let (_dir, model_dir, data) = fixture();
    let m = V1Model::load(&model_dir).unwrap();
    let set = models::recorded::RecordedSet::load(&data, m.info()).unwrap();
    let frames: Vec<_> = set.segments.iter().flat_map(|s| s.frames.iter()).collect();
    assert!(frames.len() > 10);
    let a = m.reconstruct(&frames[0].response).unwrap();
    let b = m.reconstruct(&frames[0].response).unwrap();
    assert_eq!(a, b);
    let c = m.reconstruct(&frames[7].response).unwrap();
    assert_ne!(a, c, "different responses give different images");
}

#[test]
fn bad_model_directories_and_configs_give_clear_errors() {
    let (dir, model_dir, _) = fixture();
    let missing = dir.path().join("nothing-here");
    let e = V1Model::load(&missing).unwrap_err();
    assert!(matches!(e, ModelError::MissingFile { .. }), "{e}");
    assert!(e.to_string().contains("v1 train"), "the error says what to do: {e}");

    // Weights of another architecture beside this model.json.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(model_dir.join("model.json")).unwrap()).unwrap();
    json["arch"]["waveform_hidden"] = serde_json::json!(7);
    std::fs::write(other.join("model.json"), json.to_string()).unwrap();
    std::fs::copy(model_dir.join("weights.safetensors"), other.join("weights.safetensors")).unwrap();
    let e = V1Model::load(&other).unwrap_err();
    assert!(matches!(e, ModelError::WeightsMismatch { .. }), "{e}");

    // Truncated weights.
    let bytes = std::fs::read(model_dir.join("weights.safetensors")).unwrap();
    std::fs::write(other.join("weights.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::copy(model_dir.join("model.json"), other.join("model.json")).unwrap();
    assert!(V1Model::load(&other).is_err());

    let e = TrainConfig::from_toml("[phase1]\nlerning_rate = 0.1\n").unwrap_err();
    assert!(e.contains("lerning_rate"), "unknown keys are named: {e}");
    assert!(TrainConfig::from_toml("[phase1]\nbatch_size = 0\n").is_err());
    assert!(TrainConfig::from_toml("seed = 3\n[model]\nlatent_channels = 4\n").is_ok());
    // The response window: the default starts two bins before the onset; a config written
    // before `lags_before_onset` existed keeps its window from the onset on.
    let d = TrainConfig::from_toml("").unwrap().data;
    assert_eq!((d.n_lags, d.lags_before_onset), (5, 2));
    let old = TrainConfig::from_toml("[data]\nn_lags = 3\n").unwrap().data;
    assert_eq!((old.n_lags, old.lags_before_onset), (3, 0));
    let e = TrainConfig::from_toml("[data]\nn_lags = 2\nlags_before_onset = 2\n").unwrap_err();
    assert!(e.contains("lags_before_onset"), "{e}");
    // The wide-field preset sees the whole frame and survives its own TOML.
    let wide = TrainConfig::preset(models::TrainPreset::Wide);
    assert_eq!(wide.data.crop, Some([0, 0, 320, 240]));
    assert!(wide.model.gaussian_readout && wide.phase1.readout_init_rf);
    assert_eq!(wide.model.waveform_encoder, models::WaveformEncoderKind::Retinotopic);
    // Models saved before the retinotopic encoder existed read as the MLP.
    assert_eq!(TrainConfig::from_toml("[model]\nwaveform_hidden = 64\n").unwrap().model.waveform_encoder, models::WaveformEncoderKind::Mlp);
    let e = TrainConfig::from_toml("[model]\nwaveform_encoder = \"dense\"\n").unwrap_err();
    assert!(e.contains("mlp") && e.contains("retinotopic"), "{e}");
    assert!(wide.phase2.mean_fraction > 0.0 && wide.validate().is_ok());
    // Configs written before the live path's mean rows existed train as they did.
    assert_eq!(TrainConfig::from_toml("[phase2]\nsynthetic_fraction = 0.5\n").unwrap().phase2.mean_fraction, 0.0);
    // Models saved before the stem's size was a setting read with the 3x3 stem they had;
    // an even or oversized stem is refused by name.
    assert_eq!(TrainConfig::from_toml("[model]\nreadout_features = 24\n").unwrap().model.stem_kernel, 3);
    for bad in ["4", "17"] {
        let e = TrainConfig::from_toml(&format!("[model]\nstem_kernel = {bad}\n")).unwrap_err();
        assert!(e.contains("stem_kernel") && e.contains("odd"), "{e}");
    }
    // Models saved before the Gaussian readout existed read as free masks.
    assert!(!TrainConfig::from_toml("[model]\nreadout_features = 24\n").unwrap().model.gaussian_readout);
    assert_eq!(TrainConfig::from_toml(&wide.to_toml()).unwrap(), wide);
    assert_ne!(wide, TrainConfig::preset(models::TrainPreset::Default));
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let (dir, _, data) = fixture();
    let mut cfg = fixture_config();
    cfg.phase1.max_epochs = 2;
    cfg.phase2.max_epochs = 2;
    let input = neural_data::build::read_input(&data, true).unwrap();
    let (ds, _) = neural_data::build::load_or_build(&input, &cfg.data, false).unwrap();
    let run = |name: &str| {
        let out = dir.path().join(name);
        let opts = TrainOptions { config: &cfg, out: &out, resume: false, progress: false, source: ResponseSource::Recorded, init: None, phases: vec![1, 2], threads: 0, device: candle_core::Device::Cpu };
        models::train::train(&ds, &opts).unwrap().0
    };
    let (a, b) = (run("a"), run("b"));
    let r = ds.response(ds.indices(Split::Test)[0]).to_vec();
    assert!(a.reconstruct(&r).unwrap() == b.reconstruct(&r).unwrap(), "same seed, same weights");
    let img = a.reconstruct(&r).unwrap();
    assert!(a.predict(&img).unwrap() == b.predict(&img).unwrap());
}

#[test]
fn training_learns_and_evaluation_writes_an_honest_report() {
    // More data than the fixture (whose single training segment teaches nothing): 20
    // segments of 3 s, still seconds to simulate and train.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut sim = v1_sim::SimConfig::preset(v1_sim::Preset::Small, 2);
    sim.segments = 10;
    sim.frames_per_segment = 90;
    sim.progress = false;
    v1_sim::simulate(&data, &sim).unwrap();
    let mut cfg = fixture_config();
    cfg.phase1.max_epochs = 20;
    cfg.phase1.patience = 20;
    cfg.phase2.max_epochs = 2;
    let input = neural_data::build::read_input(&data, true).unwrap();
    let (ds, _) = neural_data::build::load_or_build(&input, &cfg.data, false).unwrap();
    let out = dir.path().join("trained");
    let opts = TrainOptions { config: &cfg, out: &out, resume: false, progress: false, source: ResponseSource::Recorded, init: None, phases: vec![1, 2], threads: 0, device: candle_core::Device::Cpu };
    let (model, summary) = models::train::train(&ds, &opts).unwrap();
    assert!(summary.phase1_epochs >= 1 && summary.phase2_epochs >= 1);
    for f in ["model.json", "weights.safetensors", "config.toml", "train_log.jsonl", "train_summary.json"] {
        assert!(out.join(f).exists(), "{f} is written");
    }
    // model.json keeps the builder's onset estimate, by which the input clips are placed
    // (ModelInfo::clip_offsets), so inference places them as training did.
    let saved = V1Model::load(&out).unwrap();
    assert_eq!(saved.info().response_onset, Some(ds.meta.rf.response_onset()));
    assert_eq!(saved.info(), model.info());
    let report_dir = dir.path().join("report");
    let report = models::eval::evaluate(&ds, &model, None, &report_dir, &models::eval::EvalOptions { max_images: 120, ..Default::default() }).unwrap();
    for f in [
        "metrics.json", "report.md", "reconstructions.png", "encoding_scatter.png", "traces.png", "electrode_map.png", "pixcorr.png",
        "full_frame.png", "projective_fields.png", "pf_rf_x.png", "pf_rf_y.png",
    ] {
        assert!(report_dir.join(f).exists(), "{f} is written");
    }
    // Projective fields against RF centres: every channel that has a field (good channels
    // default to all), with both correlations in the JSON and the markdown.
    let pf = report.projective_fields.as_ref().expect("the cache has RF estimates");
    assert!(pf.channels.len() >= 3, "{} channels compared", pf.channels.len());
    assert!(pf.r_x.is_some_and(|r| (-1.0..=1.0).contains(&r)) && pf.r_y.is_some_and(|r| (-1.0..=1.0).contains(&r)), "{:?} {:?}", pf.r_x, pf.r_y);
    let ridge_pf = report.projective_fields_ridge.as_ref().expect("the ridge decoder's fields are compared too");
    assert_eq!(ridge_pf.channels.len(), ridge_pf.channels.iter().filter(|c| c.pf_peak > 0.0).count());
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(md.contains("## Projective fields against receptive fields") && md.contains("r(PF centre, RF centre)") && md.contains("| ridge (response -> pixels) |"), "{md}");
    // Training learns: the phase-1 validation loss (Poisson + image, held-out segments)
    // falls well below its value after the first epoch, and the predictions correlate
    // positively with the simulator's noise-free rates. (How well it learns is measured on
    // the default dataset by `v1 eval`; this run has ~1,000 samples.)
    let log: Vec<serde_json::Value> = std::fs::read_to_string(out.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let p1: Vec<f64> = log.iter().filter(|e| e["phase"] == 1).map(|e| e["val_loss"].as_f64().unwrap()).collect();
    let best = p1.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(best < 0.95 * p1[0], "phase-1 validation loss {:?}", p1);
    let cnn = &report.encoding[0];
    let r_truth = cnn.r_noise_free.expect("simulated data has noise-free rates");
    assert!(r_truth > 0.0, "encoding r against noise-free rates {r_truth:.3}");
    // Every control is in the table, and the shuffled control is scored like the model.
    let names: Vec<&str> = report.reconstruction_crop.iter().map(|m| m.name.as_str()).collect();
    assert!(names.iter().any(|n| n.contains("shuffled")) && names.iter().any(|n| n.contains("ridge")) && names.iter().any(|n| n.contains("mean")), "{names:?}");
    // (That shuffled responses score clearly worse is tested on the shipped model: tests/shipped.rs.)
    // The live path (the model decoding its own predicted response, and a Poisson sample
    // of it) is scored beside them, in the table and the figure's columns.
    let live: Vec<&models::eval::ReconMethod> = report.reconstruction_crop.iter().filter(|m| m.name.starts_with("live path")).collect();
    assert_eq!(live.len(), 2, "{names:?}");
    assert!(live.iter().all(|m| m.pixcorr.is_finite() && m.mse.is_finite()), "{:?}", live.iter().map(|m| m.pixcorr).collect::<Vec<_>>());
    assert!(md.contains("| live path: the model's predicted mean response |"), "{md}");
    assert_eq!(report.split, "test");
    assert_eq!(report.test_samples, ds.indices(neural_data::cache::Split::Test).len());

    // Settings are compared on the validation split: a report of its own, on its samples,
    // without the repeat-based metrics (repeats exist for test segments only).
    let val_dir = dir.path().join("report-validation");
    let val_opts = models::eval::EvalOptions { max_images: 120, split: neural_data::cache::Split::Validation, ..Default::default() };
    let val_report = models::eval::evaluate(&ds, &model, None, &val_dir, &val_opts).unwrap();
    let n_val = ds.indices(neural_data::cache::Split::Validation).len();
    assert!(n_val >= 2, "the fixture has a validation split");
    assert_eq!((val_report.split.as_str(), val_report.test_samples), ("validation", n_val));
    assert_eq!(val_report.repeated_channels, 0);
    assert!(val_report.encoding.iter().all(|e| e.feve.is_none()));
    assert!(std::fs::read_to_string(val_dir.join("report.md")).unwrap().contains("validation split"));
    let train_opts = models::eval::EvalOptions { split: neural_data::cache::Split::Train, ..Default::default() };
    let err = models::eval::evaluate(&ds, &model, None, &dir.path().join("report-train"), &train_opts).unwrap_err().to_string();
    assert!(err.contains("not the training split"), "{err}");
    for m in report.reconstruction_crop.iter().chain(&report.reconstruction_full_frame) {
        assert!(m.mse.is_finite() && m.ssim.is_finite() && m.pixcorr.is_finite(), "{m:?}");
        let id = m.identification.expect("more than one test image");
        assert!((0.0..=1.0).contains(&id));
    }
}

#[test]
fn a_gaussian_readout_starts_at_the_given_receptive_fields_and_survives_saving() {
    let (dir, model_dir, _) = fixture();
    let fixture_model = V1Model::load(&model_dir).unwrap();
    let info = fixture_model.info().clone();
    let arch = models::ArchConfig { gaussian_readout: true, ..fixture_model.arch().clone() };
    let m = V1Model::new(info.clone(), arch, 3, &candle_core::Device::Cpu).unwrap();
    let n = info.n_channels();
    let size = info.image_size as f32;
    // Channel 0 at the crop's top-left quarter, channel 1 at its bottom-right; the rest
    // keep the common start in the middle.
    let mut centres = vec![None; n];
    centres[0] = Some([size * 0.25, size * 0.25]);
    centres[1] = Some([size * 0.75, size * 0.75]);
    m.init_readout_at(&centres).unwrap();
    let masks: Vec<Vec<f32>> = m.networks().waveform_decoder.masks().unwrap().to_vec2().unwrap();
    let grid = info.image_size / 4;
    let peak = |row: &Vec<f32>| {
        let k = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        (k % grid, k / grid)
    };
    let q = grid / 4;
    assert!(peak(&masks[0]).0.abs_diff(q) <= 1 && peak(&masks[0]).1.abs_diff(q) <= 1, "{:?}", peak(&masks[0]));
    assert!(peak(&masks[1]).0.abs_diff(3 * q) <= 1 && peak(&masks[1]).1.abs_diff(3 * q) <= 1, "{:?}", peak(&masks[1]));
    assert_eq!(peak(&masks[2]), peak(&masks[3]), "unplaced channels share the start");
    match m.init_readout_at(&centres[1..]) {
        Err(ModelError::Invalid(msg)) => assert!(msg.contains("readout centres"), "{msg}"),
        other => panic!("expected an error for too few centres, got {other:?}"),
    }
    // Saved and loaded, the model predicts the same.
    let out = dir.path().join("gaussian");
    m.save(&out).unwrap();
    let back = V1Model::load(&out).unwrap();
    assert!(back.arch().gaussian_readout);
    let img = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(40, 40, |x, y| image::Luma([(x * 6 + y * 3) as u8])));
    let crop = m.prepare_image(&img).unwrap();
    assert_eq!(m.predict(&crop).unwrap(), back.predict(&crop).unwrap());
    // Loaded for training, its readout still follows the variables; for inference the
    // masks are fixed, and both predict alike.
    let trainable = V1Model::load_on(&out, &candle_core::Device::Cpu).unwrap();
    assert_eq!(trainable.predict(&crop).unwrap(), back.predict(&crop).unwrap());
    let mu_name = format!("waveform_decoder.{}", models::waveform_decoder::READOUT_MU);
    let mu = |model: &V1Model| model.varmap().data().lock().unwrap().get(&mu_name).unwrap().clone();
    let moved = (mu(&trainable).as_tensor() + 2.0).unwrap();
    mu(&trainable).set(&moved).unwrap();
    mu(&back).set(&moved).unwrap();
    assert_ne!(trainable.predict(&crop).unwrap(), m.predict(&crop).unwrap(), "a trainable readout follows its centres");
    assert_eq!(back.predict(&crop).unwrap(), m.predict(&crop).unwrap(), "an inference readout is fixed at loading");
}

/// A retinotopic waveform encoder starts each placed channel at its receptive field, so
/// that even before training a channel's projective field lies near it; the placements
/// survive saving, and inference (placements evaluated once) reconstructs as training does.
#[test]
fn a_retinotopic_encoder_draws_each_channel_where_it_is_placed() {
    let (dir, model_dir, _) = fixture();
    let fixture_model = V1Model::load(&model_dir).unwrap();
    let info = fixture_model.info().clone();
    let arch = models::ArchConfig { waveform_encoder: models::WaveformEncoderKind::Retinotopic, ..fixture_model.arch().clone() };
    let m = V1Model::new(info.clone(), arch, 5, &candle_core::Device::Cpu).unwrap();
    let (n, size) = (info.n_channels(), info.image_size as f32);
    let targets = [[size * 0.25, size * 0.25], [size * 0.75, size * 0.7], [size * 0.3, size * 0.8]];
    let mut centres = vec![None; n];
    for (c, t) in targets.iter().enumerate() {
        centres[c] = Some(*t);
    }
    m.init_readout_at(&centres).unwrap();
    let pf = models::projective::projective_fields(&m).unwrap();
    // Untrained, the decoder's random convolutions blur and shift a little: each field is
    // nearer its own channel's place than the other channels', and within a quarter of the image.
    for c in 0..targets.len() {
        let [px, py] = models::projective::field_centre(&pf.fields[c], pf.size).expect("a field with energy");
        let dist: Vec<f32> = targets.iter().map(|[tx, ty]| ((px - tx).powi(2) + (py - ty).powi(2)).sqrt()).collect();
        let nearest = (0..targets.len()).min_by(|&a, &b| dist[a].total_cmp(&dist[b])).unwrap();
        assert!(nearest == c && dist[c] < size * 0.25, "channel {c}: projective field centred at ({px:.1}, {py:.1}), places {targets:?}");
    }
    let out = dir.path().join("retinotopic");
    m.save(&out).unwrap();
    let back = V1Model::load(&out).unwrap();
    assert_eq!(back.arch().waveform_encoder, models::WaveformEncoderKind::Retinotopic);
    let response: Vec<f32> = (0..info.response_len()).map(|i| (i % 7) as f32 * 0.5).collect();
    let (a, b) = (m.reconstruct(&response).unwrap(), back.reconstruct(&response).unwrap());
    assert!(a.pixels.iter().zip(&b.pixels).all(|(x, y)| (x - y).abs() < 1e-5), "inference differs from the trained placements");
}

/// Phase 2 alone, started from a model with the MLP waveform encoder and a config that asks
/// for the retinotopic one: the encoding model is kept exactly, the new encoder is trained.
#[test]
fn phase_two_can_start_a_retinotopic_encoder_on_a_trained_encoding_model() {
    let (dir, model_dir, data) = fixture();
    // A model whose info differs from the dataset's beyond channels, lags and size (here a
    // receptive-field centre the dataset does not place) still starts phase 2.
    let json_path = model_dir.join("model.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    json["info"]["channels"][0]["rf_centre"] = serde_json::json!([1.5, 2.5]);
    std::fs::write(&json_path, serde_json::to_string(&json).unwrap()).unwrap();
    let mut cfg = fixture_config();
    cfg.phase2.max_epochs = 1;
    cfg.model.waveform_encoder = models::WaveformEncoderKind::Retinotopic;
    let input = neural_data::build::read_input(&data, true).unwrap();
    let (ds, _) = neural_data::build::load_or_build(&input, &cfg.data, false).unwrap();
    let out = dir.path().join("retinotopic");
    let opts = TrainOptions {
        config: &cfg,
        out: &out,
        resume: false,
        progress: false,
        source: ResponseSource::Recorded,
        init: Some(model_dir.clone()),
        phases: vec![2],
        threads: 0,
        device: candle_core::Device::Cpu,
    };
    let (trained, _) = models::train::train(&ds, &opts).unwrap();
    assert_eq!(trained.arch().waveform_encoder, models::WaveformEncoderKind::Retinotopic);
    let before = V1Model::load(&model_dir).unwrap();
    assert_eq!(before.arch().waveform_encoder, models::WaveformEncoderKind::Mlp);
    let saved = V1Model::load(&out).unwrap();
    assert_eq!(saved.arch().waveform_encoder, models::WaveformEncoderKind::Retinotopic);
    // The encoding model is the one it started from; the reconstruction path is new.
    let img = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(40, 40, |x, y| image::Luma([(x * 5 + y * 2) as u8])));
    let crop = before.prepare_image(&img).unwrap();
    assert_eq!(saved.predict(&crop).unwrap(), before.predict(&crop).unwrap());
    let r = ds.response(ds.indices(Split::Test)[0]).to_vec();
    assert_ne!(saved.reconstruct(&r).unwrap(), before.reconstruct(&r).unwrap());
}
