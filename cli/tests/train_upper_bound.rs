//! `v1 train --upper-bound-only` trains the noise-free upper-bound decoder of a model that
//! is already trained, and leaves that model's own weights as they are.

use std::process::Command;

fn v1(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v1")).args(args).output().unwrap()
}

#[test]
fn the_upper_bound_alone_is_trained_beside_an_untouched_model() {
    let dir = tempfile::tempdir().unwrap();
    let (model_dir, data) = models::testing::tiny_fixture(dir.path()).unwrap();
    let (model_arg, data_arg) = (model_dir.to_str().unwrap(), data.to_str().unwrap());
    let config = model_dir.join("config.toml");
    let weights = std::fs::read(model_dir.join("weights.safetensors")).unwrap();

    let run = v1(&["train", "--data", data_arg, "--out", model_arg, "--config", config.to_str().unwrap(), "--upper-bound-only"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(model_dir.join("upper_bound/model.json").is_file(), "the upper bound is written beside the model");
    assert_eq!(std::fs::read(model_dir.join("weights.safetensors")).unwrap(), weights, "the model's own weights are left as they were");
    models::V1Model::load(&model_dir.join("upper_bound")).expect("the upper bound loads");

    // Without a model in --out there is nothing to bound: a clear error, nothing written.
    let empty = dir.path().join("empty");
    let run = v1(&["train", "--data", data_arg, "--out", empty.to_str().unwrap(), "--upper-bound-only"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("holds none") && stderr.contains("train it first"), "{stderr}");
    assert!(!empty.exists(), "nothing is written for a refused run");
}
