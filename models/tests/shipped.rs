//! The shipped weights (`models/default`) against their controls, on held-out data of the
//! dataset they were trained for. The default simulated dataset is regenerated here from
//! its seed (the simulator is deterministic), so the test needs no downloaded data; it
//! takes 10–15 minutes on 2 cores (most of it simulating 72,000 frames) and ~1.5 GB of
//! temporary disk.
//!
//! What it guards: the reconstruction path's information comes from the response alone
//! (the same decoder fed other stimuli's responses scores clearly worse), and the claims
//! the README makes about the shipped model against its baselines.

use std::path::Path;

use models::eval::{evaluate, good_channels_from_truth, EvalOptions};
use models::{TrainConfig, V1Model};

#[test]
fn the_shipped_model_beats_its_controls_on_held_out_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("default");
    let model = V1Model::load(&root).expect("the shipped model loads");
    let upper = V1Model::load(&root.join("upper_bound")).expect("the shipped upper-bound decoder loads");
    let cfg = TrainConfig::from_file(&root.join("config.toml")).expect("the shipped config parses");

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // `v1 simulate --preset default` (seed 1): the dataset the shipped weights were trained on.
    let mut sim = neural_data::sim::SimConfig::preset(neural_data::sim::Preset::Default, 1);
    sim.progress = false;
    neural_data::sim::simulate(&data, &sim).unwrap();
    let input = neural_data::build::read_input(&data, true).unwrap();
    let (ds, _) = neural_data::build::load_or_build(&input, &cfg.data, false).unwrap();
    assert!(models::data::matches(model.info(), &ds), "the regenerated dataset fits the shipped model");

    let opts = EvalOptions { good_channels: good_channels_from_truth(&data, model.info()), ..Default::default() };
    let report = evaluate(&ds, &model, Some(&upper), &dir.path().join("report"), &opts).unwrap();
    let row = |needle: &str| {
        report.reconstruction_crop.iter().find(|m| m.name.contains(needle)).unwrap_or_else(|| panic!("no {needle} row"))
    };
    let (m, shuffled, ridge, mean) = (&report.reconstruction_crop[0], row("shuffled"), row("ridge (response"), row("mean"));
    eprintln!("model {m:?}\nshuffled {shuffled:?}\nridge {ridge:?}\nmean {mean:?}");

    // The response carries the information: shuffled across stimuli, it is lost.
    assert!(m.pixcorr > shuffled.pixcorr + 0.05, "PixCorr: model {:.3}, shuffled {:.3}", m.pixcorr, shuffled.pixcorr);
    let (id_m, id_s) = (m.identification.unwrap(), shuffled.identification.unwrap());
    assert!(id_m > id_s + 0.05, "2-way identification: model {id_m:.3}, shuffled {id_s:.3}");
    assert!((id_s - 0.5).abs() < 0.05, "shuffled responses identify at chance, got {id_s:.3}");
    // Reconstruction above the linear decoder and the mean image, on both metrics.
    assert!(m.pixcorr > ridge.pixcorr && m.pixcorr > mean.pixcorr, "PixCorr: model {:.4}, ridge {:.4}, mean {:.4}", m.pixcorr, ridge.pixcorr, mean.pixcorr);
    assert!(m.ssim > ridge.ssim && m.ssim > mean.ssim, "SSIM: model {:.4}, ridge {:.4}, mean {:.4}", m.ssim, ridge.ssim, mean.ssim);
    // Encoding far above the linear encoder, against the simulator's noise-free rates.
    let (cnn, lin) = (&report.encoding[0], &report.encoding[1]);
    let (r_cnn, r_lin) = (cnn.r_noise_free.unwrap(), lin.r_noise_free.unwrap());
    assert!(r_cnn > 0.8 && r_cnn > r_lin + 0.3, "encoding r vs noise-free rates: CNN {r_cnn:.3}, ridge {r_lin:.3}");
}
