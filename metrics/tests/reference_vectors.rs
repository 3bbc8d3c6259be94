//! Checks every value in `tests/vectors/expected.json` (scikit-image 0.26 / numpy 2.4
//! reference values) against the crate's metrics.

use std::path::{Path, PathBuf};

use serde_json::Value;
use v1_metrics::{
    ccnorm, correlation_to_average, electrode_metrics, fev, feve, mse, noise_variance, pixcorr,
    psnr, ssim, total_variance, two_way_identification_pixcorr, GrayImageF32, TrialMatrix,
};

/// Tolerance for every reference value, SSIM included.
const TOL: f64 = 1e-6;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn expected() -> Value {
    let path = vectors_dir().join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

fn load(name: &str) -> GrayImageF32 {
    let path = vectors_dir().join(name);
    let img = image::open(&path)
        .unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display()))
        .to_luma8();
    GrayImageF32::from_luma8(&img).unwrap()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:.12}, expected {want:.12} (difference {:e}, tolerance {tol:e})",
        (got - want).abs()
    );
}

#[test]
fn image_pairs_match_reference() {
    let exp = expected();
    let pairs = exp["image_pairs"].as_array().expect("image_pairs array");
    assert_eq!(pairs.len(), 6, "all six image pairs are checked");
    let mut worst_ssim: f64 = 0.0;
    for pair in pairs {
        let name = pair["name"].as_str().expect("name");
        let t = load(pair["target"].as_str().expect("target"));
        let r = load(pair["reconstruction"].as_str().expect("reconstruction"));
        assert_eq!(t.size(), (64, 64), "{name}");

        assert_close(
            &format!("{name} mse"),
            mse(&t, &r).unwrap(),
            num(pair, "mse"),
            TOL,
        );
        match (psnr(&t, &r).unwrap(), pair["psnr_db"].as_f64()) {
            (Some(got), Some(want)) => assert_close(&format!("{name} psnr"), got, want, TOL),
            (None, None) => {}
            (got, want) => panic!("{name} psnr: got {got:?}, expected {want:?}"),
        }
        let s = ssim(&t, &r).unwrap();
        worst_ssim = worst_ssim.max((s - num(pair, "ssim")).abs());
        assert_close(&format!("{name} ssim"), s, num(pair, "ssim"), TOL);
        assert_close(
            &format!("{name} pixcorr"),
            pixcorr(&t, &r).unwrap(),
            num(pair, "pixcorr"),
            TOL,
        );
    }
    // Only the interior, where scikit-image's border mode plays no part, is averaged
    // (src/image.rs), so SSIM agrees as closely as MSE does. The remaining ~1e-9 comes
    // from storing pixels as f32 (k / 255 rounded to 24 bits) where the reference used
    // float64.
    assert!(worst_ssim < 1e-7, "SSIM deviates by {worst_ssim:e}");
}

#[test]
fn identification_matches_reference() {
    let exp = expected();
    let id = &exp["identification"];
    let mut targets = Vec::new();
    let mut recons = Vec::new();
    for entry in id["images"].as_array().expect("images") {
        let s = entry.as_str().expect("image pair string");
        let (t, r) = s.split_once(", ").expect("'target, recon'");
        targets.push(load(t));
        recons.push(load(r));
    }
    assert_eq!(targets.len(), 8);
    let got = two_way_identification_pixcorr(&targets, &recons).unwrap();
    assert_close(
        "2-way identification",
        got.mean,
        num(id, "two_way_identification_pixel"),
        TOL,
    );
    let want: Vec<f64> = id["per_reconstruction"]
        .as_array()
        .expect("per_reconstruction")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(got.per_reconstruction.len(), want.len());
    for (j, (g, w)) in got.per_reconstruction.iter().zip(&want).enumerate() {
        assert_close(&format!("reconstruction {j}"), *g, *w, TOL);
    }
}

fn response_inputs() -> (TrialMatrix, Vec<f64>, Value) {
    let exp = expected();
    let rm = exp["response_metrics"].clone();
    let rows: Vec<Vec<f64>> = rm["trials_stimulus_by_repeat"]
        .as_array()
        .expect("trials")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|v| v.as_f64().expect("number"))
                .collect()
        })
        .collect();
    let prediction: Vec<f64> = rm["prediction"]
        .as_array()
        .expect("prediction")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    (TrialMatrix::from_rows(&rows).unwrap(), prediction, rm)
}

#[test]
fn response_metrics_match_reference() {
    let (trials, prediction, rm) = response_inputs();
    assert_eq!((trials.n_stimuli(), trials.n_repeats()), (20, 10));
    assert_close(
        "noise",
        noise_variance(&trials).unwrap(),
        num(&rm, "noise_variance"),
        TOL,
    );
    assert_close(
        "total",
        total_variance(&trials).unwrap(),
        num(&rm, "total_variance"),
        TOL,
    );
    assert_close("fev", fev(&trials).unwrap(), num(&rm, "fev"), TOL);
    assert_close(
        "feve",
        feve(&trials, &prediction).unwrap(),
        num(&rm, "feve"),
        TOL,
    );
    let cc = ccnorm(&trials, &prediction)
        .unwrap()
        .expect("signal power is positive");
    assert_close("ccnorm", cc, num(&rm, "ccnorm"), TOL);
    assert_close(
        "correlation to average",
        correlation_to_average(&trials, &prediction).unwrap(),
        num(&rm, "pearson_r_prediction_vs_trial_mean"),
        TOL,
    );

    // The all-in-one helper agrees with the single functions, also from f32 input.
    let m = electrode_metrics(&trials, &prediction).unwrap();
    assert_close("electrode fev", m.fev, num(&rm, "fev"), TOL);
    assert_close("electrode feve", m.feve, num(&rm, "feve"), TOL);
    assert_eq!(
        m.reportable_feve(),
        Some(m.feve),
        "FEV 0.56 passes the 0.15 filter"
    );
    let p32: Vec<f32> = prediction.iter().map(|&v| v as f32).collect();
    let m32 = electrode_metrics(&trials, &p32).unwrap();
    assert_close(
        "f32 ccnorm",
        m32.ccnorm.unwrap_or(f64::NAN),
        num(&rm, "ccnorm"),
        1e-5,
    );
}
