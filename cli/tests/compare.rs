//! `v1 compare` puts models' live paths side by side: the figure has a picture column and
//! two columns per model, each reconstruction placed where its model looks, and the
//! printed PixCorr of each column is that of the figure's own cells.

use std::process::Command;

fn v1(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v1")).args(args).output().unwrap()
}

#[test]
fn two_models_side_by_side_give_a_figure_with_their_columns_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model_dir, _) = models::testing::tiny_fixture(dir.path()).unwrap();
    let model_arg = model_dir.to_str().unwrap();
    // A landscape and a portrait picture: both are cut to 4:3.
    let pics = [("wide.png", 400u32, 200u32), ("tall.png", 90, 160)];
    for (name, w, h) in pics {
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 3 + y * 5) % 256) as u8])).save(dir.path().join(name)).unwrap();
    }
    let pic_args: Vec<String> = pics.iter().map(|(n, ..)| dir.path().join(n).to_str().unwrap().to_owned()).collect();
    let out = dir.path().join("figs").join("compare.png");
    let mut args = vec!["compare", "--model", model_arg, "--model", model_arg, "--out", out.to_str().unwrap(), "--scale", "1"];
    args.extend(pic_args.iter().map(String::as_str));
    let run = v1(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    // One PixCorr line per model column, each a number in [-1, 1].
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("model: ")).collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    for l in &rows {
        let v: f64 = l.split_whitespace().last().unwrap().parse().unwrap();
        assert!((-1.0..=1.0).contains(&v), "{l}");
    }
    // The same model twice draws the same mean reconstructions.
    assert_eq!(rows[0].split_whitespace().last(), rows[2].split_whitespace().last(), "{stdout}");
    // Five columns of 160x120 frames, two rows, with titles and labels around them.
    let fig = image::open(&out).unwrap();
    assert!(fig.width() > 5 * 160 && fig.height() > 2 * 120, "figure {}x{}", fig.width(), fig.height());

    let missing = v1(&["compare", "--model", model_arg, "--out", out.to_str().unwrap(), dir.path().join("nope.png").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.png: cannot read the image"));
    let no_model = v1(&["compare", "--model", dir.path().join("none").to_str().unwrap(), "--out", out.to_str().unwrap(), &pic_args[0]]);
    assert!(!no_model.status.success());
    assert!(String::from_utf8_lossy(&no_model.stderr).contains("loading the model in"), "{}", String::from_utf8_lossy(&no_model.stderr));
}
