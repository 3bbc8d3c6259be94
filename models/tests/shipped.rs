//! The default simulated dataset and the shipped weights (`models/default`) trained on it;
//! and the shipped wide-field model (`models/wide`) on scenes it never saw.
//!
//! The dataset is regenerated here from its seed (the simulator is deterministic), once for
//! both tests, so they need no downloaded data; that takes ~10 minutes on 2 cores and
//! ~1.7 GB of disk under the target folder.
//!
//! What they guard: the simulated V1 stays as noisy, slow and messy as the real pvc-1
//! recordings (every calibration target of `neural_data::stats` holds); the reconstruction
//! path's information comes from the response alone (the same decoder fed other stimuli's
//! responses scores clearly worse); and the claims the README makes about the shipped model
//! against its baselines.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use models::eval::{evaluate, good_channels_from_truth, EvalOptions};
use models::{TrainConfig, V1Model};

/// `v1 simulate --preset default` (seed 1): the dataset the shipped weights were trained on.
fn default_dataset() -> &'static Path {
    static DATA: OnceLock<PathBuf> = OnceLock::new();
    DATA.get_or_init(|| {
        let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join("default-dataset");
        let mut sim = v1_sim::SimConfig::preset(v1_sim::Preset::Default, 1);
        sim.progress = false;
        sim.overwrite = true;
        v1_sim::simulate(&data, &sim).unwrap();
        data
    })
}

#[test]
fn the_default_dataset_is_as_noisy_slow_and_messy_as_real_v1() {
    let input = neural_data::build::read_input(default_dataset(), true).unwrap();
    let stats = neural_data::stats::measure(&input, &neural_data::stats::StatsOptions::default()).unwrap();
    let rows = stats.compare();
    for c in &rows {
        eprintln!("{:<46} {:<44} real {:<34} target {:<22} {:?}", c.measure, c.measured, c.real, c.target, c.holds);
    }
    // Every calibration target holds (`v1 inspect` shows them; docs/twin.md has the table).
    let misses: Vec<String> = rows
        .iter()
        .filter(|c| c.holds == Some(false))
        .map(|c| format!("{}: {} (target {})", c.measure, c.measured, c.target))
        .collect();
    assert!(misses.is_empty(), "calibration targets missed: {misses:#?}");
    // Every target was measured (none silently unavailable).
    let measured = rows.iter().filter(|c| c.holds.is_some()).count();
    assert!(measured >= 10, "only {measured} targets could be measured");
    // Rates of the channels with a clear RF stay in the real range too.
    let clear: Vec<f64> = stats.clear_rf().map(|c| c.rate_hz).collect();
    assert!(clear.len() >= 20, "{} channels with a clear RF", clear.len());
}

#[test]
fn the_shipped_model_carries_the_response_information_on_held_out_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("default");
    let model = V1Model::load(&root).expect("the shipped model loads");
    let upper = V1Model::load(&root.join("upper_bound")).expect("the shipped upper-bound decoder loads");
    let cfg = TrainConfig::from_file(&root.join("config.toml")).expect("the shipped config parses");

    let dir = tempfile::tempdir().unwrap();
    let data = default_dataset();
    let input = neural_data::build::read_input(data, true).unwrap();
    let (ds, _) = neural_data::build::load_or_build(&input, &cfg.data, false).unwrap();
    assert!(models::data::matches(model.info(), &ds), "the regenerated dataset fits the shipped model");

    let opts = EvalOptions { good_channels: good_channels_from_truth(data, model.info()), ..Default::default() };
    let report = evaluate(&ds, &model, Some(&upper), &dir.path().join("report"), &opts).unwrap();
    let row = |needle: &str| {
        report.reconstruction_crop.iter().find(|m| m.name.contains(needle)).unwrap_or_else(|| panic!("no {needle} row"))
    };
    let (m, shuffled, ridge, mean) = (&report.reconstruction_crop[0], row("shuffled"), row("ridge (response"), row("mean training image"));
    eprintln!("model {m:?}\nshuffled {shuffled:?}\nridge {ridge:?}\nmean {mean:?}");

    // The response carries the information: shuffled across stimuli, it is lost. On a V1
    // as unreliable as the real one (max R² median 0.36, ~6 events/s) single trials of ~50
    // electrodes carry little: the margins are small but far outside chance (600 images;
    // shuffled PixCorr 0.003, identification 0.49).
    assert!(m.pixcorr > shuffled.pixcorr + 0.01, "PixCorr: model {:.3}, shuffled {:.3}", m.pixcorr, shuffled.pixcorr);
    let (id_m, id_s) = (m.identification.unwrap(), shuffled.identification.unwrap());
    assert!(id_m > id_s + 0.03, "2-way identification: model {id_m:.3}, shuffled {id_s:.3}");
    assert!((id_s - 0.5).abs() < 0.05, "shuffled responses identify at chance, got {id_s:.3}");
    // Above the mean image on SSIM and identification, and above the linear decoder in
    // identification (test split: 0.578 against 0.555). (On this V1 the model is *below*
    // the linear decoder on PixCorr and level with the mean image; the README says so; the
    // #18 targets of 1.15x ridge's PixCorr and ridge's identification + 0.03 are not met.)
    assert!(m.ssim > mean.ssim && id_m > 0.5 + 0.02, "model SSIM {:.4} / identification {id_m:.3}, mean image SSIM {:.4}", m.ssim, mean.ssim);
    eprintln!("ridge: PixCorr {:.4}, SSIM {:.4}, identification {:?}; mean image PixCorr {:.4}", ridge.pixcorr, ridge.ssim, ridge.identification, mean.pixcorr);
    assert!(id_m > ridge.identification.unwrap(), "identification: model {id_m:.3}, ridge {:?}", ridge.identification);
    // The projective fields lie at the good channels' receptive fields (the retinotopic
    // waveform encoder places each channel at its STA receptive field; training must keep
    // every channel's contribution local and in place): r >= 0.8 in x and in y.
    let pf = report.projective_fields.as_ref().expect("projective fields against receptive fields");
    let (rx, ry) = (pf.r_x.unwrap(), pf.r_y.unwrap());
    assert!(pf.channels.len() >= 40 && rx >= 0.8 && ry >= 0.8, "PF vs RF centres over {} channels: r {rx:.3} / {ry:.3}", pf.channels.len());
    // Encoding far above the linear encoder: against the noise-free rates, and normalised
    // by each repeated channel's ceiling.
    let (cnn, lin) = (&report.encoding[0], &report.encoding[1]);
    let (r_cnn, r_lin) = (cnn.r_noise_free.unwrap(), lin.r_noise_free.unwrap());
    assert!(r_cnn > 0.5 && r_cnn > r_lin + 0.3, "encoding r vs noise-free rates: CNN {r_cnn:.3}, ridge {r_lin:.3}");
    let (n_cnn, n_lin) = (cnn.normalised_correlation.unwrap(), lin.normalised_correlation.unwrap());
    assert!(n_cnn > 0.5 && n_cnn > n_lin + 0.3, "normalised correlation: CNN {n_cnn:.3}, ridge {n_lin:.3}");
}

/// The shipped wide-field model (`models/wide`) through the live path — image -> predicted
/// mean response -> reconstruction, as the demo runs it — on dead-leaves scenes drawn from
/// a seed no dataset of the project uses, each a single frame held on the screen. The
/// reconstruction path sees only the predicted response; shuffling the responses across
/// scenes must lose what it recovers.
#[test]
fn the_shipped_wide_model_reconstructs_scenes_it_never_saw_through_the_live_path() {
    use v1_metrics::image::{pixcorr, GrayImageF32};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("wide");
    let model = V1Model::load(&root).expect("the shipped wide-field model loads");
    let info = model.info();
    assert_eq!((info.crop_window.width, info.crop_window.height), (320, 240), "it sees the whole frame");
    assert!(info.n_channels() >= 1000, "{} channels", info.n_channels());
    let scenes = v1_sim::stimuli::calibration_scenes(90_210, 40, 1);
    let gray = |c: &models::GrayCrop| GrayImageF32::new(c.size as u32, c.size as u32, c.pixels.clone()).unwrap();
    let (mut targets, mut responses) = (Vec::new(), Vec::new());
    for scene in &scenes {
        let crop = model.prepare_image(&image::DynamicImage::ImageRgb8(scene[0].clone())).unwrap();
        responses.push(model.predict(&crop).unwrap());
        targets.push(gray(&crop));
    }
    let recon: Vec<GrayImageF32> = responses.iter().map(|r| gray(&model.reconstruct(r).unwrap())).collect();
    // The next scene's response for each scene: the shuffled control.
    let shuffled: Vec<GrayImageF32> = (0..scenes.len()).map(|i| recon[(i + 1) % scenes.len()].clone()).collect();
    let mean_pixcorr = |rs: &[GrayImageF32]| targets.iter().zip(rs).map(|(t, r)| pixcorr(t, r).unwrap()).sum::<f64>() / rs.len() as f64;
    let (own, other) = (mean_pixcorr(&recon), mean_pixcorr(&shuffled));
    let ident = v1_metrics::two_way_identification_pixcorr(&targets, &recon).unwrap().mean;
    eprintln!("wide live path on {} unseen scenes: PixCorr {own:.3} (shuffled {other:.3}), 2-way identification {ident:.3}", scenes.len());
    // Measured on the shipped weights: docs/evaluation.md gives the figures; the bounds sit
    // below them so that only a real loss of the live path fails here.
    assert!(own > 0.2 && own > other + 0.15, "live-path PixCorr {own:.3}, shuffled {other:.3}");
    assert!(ident > 0.85, "live-path 2-way identification {ident:.3}");
}
