//! `v1 reconstruct` reads an edited response (the `imagined` message the page sends, or
//! any JSON with a `payload`) exactly as it reads a predicted one.

use std::path::Path;
use std::process::Command;

fn v1(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v1")).args(args).output().unwrap()
}

fn write_imagined(path: &Path, payload: &[f32]) {
    let message = serde_json::json!({"type": "imagined", "session_id": "s1", "token": "t", "frame_id": 3, "payload": payload});
    std::fs::write(path, message.to_string()).unwrap();
}

#[test]
fn an_edited_response_is_reconstructed_like_a_predicted_one_and_a_wrong_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model_dir, _) = models::testing::tiny_fixture(dir.path()).unwrap();
    let model = models::V1Model::load(&model_dir).unwrap();
    let info = model.info();
    let model_arg = model_dir.to_str().unwrap();

    let mean = info.response_mean.clone();
    let mut raised = mean.clone();
    for l in 0..info.n_lags() {
        raised[l * info.n_channels()] += 10.0;
    }
    let (mean_file, raised_file) = (dir.path().join("mean.json"), dir.path().join("raised.json"));
    write_imagined(&mean_file, &mean);
    write_imagined(&raised_file, &raised);
    let mut images = Vec::new();
    for (input, name) in [(&mean_file, "mean.png"), (&raised_file, "raised.png")] {
        let out = dir.path().join(name);
        let run = v1(&["reconstruct", "--model", model_arg, input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scale", "1"]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        images.push(image::open(&out).unwrap().to_luma8());
    }
    // The files carry what the network makes of each response: the same as the library's.
    let expected = model.reconstruct(&raised).unwrap().to_image();
    let diff = images[1].pixels().zip(expected.pixels()).map(|(a, b)| (i32::from(a[0]) - i32::from(b[0])).abs()).max();
    assert!(diff.is_some_and(|d| d <= 1), "the file differs from the library's reconstruction by up to {diff:?} grey levels");
    assert_ne!(images[0], images[1], "raising a channel changes the reconstruction");

    let short = dir.path().join("short.json");
    write_imagined(&short, &mean[1..]);
    let run = v1(&["reconstruct", "--model", model_arg, short.to_str().unwrap(), "--out", dir.path().join("x.png").to_str().unwrap()]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(&format!("{} values", mean.len() - 1)) && stderr.contains(&format!("{}", mean.len())), "{stderr}");
}
