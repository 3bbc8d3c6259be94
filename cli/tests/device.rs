//! `--device`: every command that runs the networks refuses a device it cannot open before
//! doing any work, and says what to do instead.

use std::process::Command;

fn v1(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_v1")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_device_that_cannot_be_opened_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let (model_dir, data_dir) = models::testing::tiny_fixture(dir.path()).unwrap();
    let (model, data) = (model_dir.to_str().unwrap(), data_dir.to_str().unwrap());
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    // GPU 97: absent on any machine this runs on, with or without the `cuda` feature.
    for args in [
        vec!["train", "--data", data, "--out", out, "--preset", "small", "--device", "cuda:97"],
        vec!["eval", "--data", data, "--model", model, "--out", out, "--device", "cuda:97"],
        vec!["bench", "infer", "--model", model, "--iterations", "1", "--device", "cuda:97"],
    ] {
        let (ok, stderr) = v1(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains("cuda") && stderr.contains("--device cpu"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!std::path::Path::new(out).join("model.json").exists(), "nothing was trained");

    let (ok, stderr) = v1(&["bench", "infer", "--model", model, "--device", "tpu"]);
    assert!(!ok);
    assert!(stderr.contains("`tpu` is not a device; use cpu, cuda (the first GPU) or cuda:N"), "{stderr}");

    // The default and an explicit `cpu` run.
    let (ok, stderr) = v1(&["bench", "infer", "--model", model, "--iterations", "2", "--device", "cpu"]);
    assert!(ok, "{stderr}");
}
