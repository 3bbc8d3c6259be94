//! Every figure function writes a PNG that decodes, has the promised size and is not
//! blank; bad input is refused with a structured error.

use std::path::Path;

use v1_metrics::figures::{
    bar_chart, heatmap_10x10, image_grid, image_grid_size, scatter, traces, FigureError,
    CHART_HEIGHT, CHART_WIDTH, HEATMAP_HEIGHT, HEATMAP_WIDTH, MAX_SCALE,
};
use v1_metrics::GrayImageF32;

/// Decodes the PNG at `path`, checks its size, and returns the variance of its luma.
fn check_png(path: &Path, size: (u32, u32)) -> f64 {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{} is not a readable PNG: {e}", path.display()));
    assert_eq!((img.width(), img.height()), size, "{}", path.display());
    let luma = img.to_luma8();
    let n = luma.as_raw().len() as f64;
    let mean = luma.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = luma
        .as_raw()
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(var > 0.0, "{} is blank", path.display());
    var
}

fn gradient(w: u32, h: u32, phase: f32) -> GrayImageF32 {
    let pixels = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| 0.5 + 0.5 * ((x as f32 * 0.4 + y as f32 * 0.2) + phase).sin())
        .collect();
    GrayImageF32::new(w, h, pixels).unwrap()
}

#[test]
fn image_grid_writes_expected_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    let rows: Vec<Vec<GrayImageF32>> = (0..3)
        .map(|r| {
            (0..4)
                .map(|c| gradient(16, 12, (r * 4 + c) as f32))
                .collect()
        })
        .collect();
    let titles = ["target", "reconstruction", "ridge", "shuffled"];
    let labels = ["test 0", "test 1", "test 2"];
    let expected = image_grid_size(&rows, &titles, &labels, 4).unwrap();
    let size = image_grid(&rows, &titles, &labels, 4, &path).unwrap();
    assert_eq!(size, expected);
    check_png(&path, size);

    // Without titles and labels the figure is smaller but still valid.
    let bare = dir.path().join("bare.png");
    let small = image_grid(&rows, &[], &[], 1, &bare).unwrap();
    assert!(small.0 < size.0 && small.1 < size.1);
    check_png(&bare, small);
}

#[test]
fn image_grid_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.png");
    let row = vec![gradient(8, 8, 0.0), gradient(8, 8, 1.0)];
    assert!(matches!(
        image_grid(
            std::slice::from_ref(&row),
            &["only one title"],
            &[],
            2,
            &path
        ),
        Err(FigureError::LengthMismatch {
            expected: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        image_grid(
            &[row.clone(), vec![gradient(8, 8, 0.0)]],
            &[],
            &[],
            2,
            &path
        ),
        Err(FigureError::LengthMismatch { .. })
    ));
    assert!(matches!(
        image_grid(std::slice::from_ref(&row), &[], &[], 0, &path),
        Err(FigureError::InvalidScale { got: 0, .. })
    ));
    assert!(matches!(
        image_grid(&[row], &[], &[], MAX_SCALE + 1, &path),
        Err(FigureError::InvalidScale { .. })
    ));
    assert!(matches!(
        image_grid(&[], &[], &[], 2, &path),
        Err(FigureError::Empty { .. })
    ));
    // 300 px * 32 = 9600 px per side: over the pixel limit, refused before allocating.
    let huge = vec![vec![GrayImageF32::new(300, 300, vec![0.5; 90_000]).unwrap()]];
    assert!(matches!(
        image_grid(&huge, &[], &[], MAX_SCALE, &path),
        Err(FigureError::TooLarge { .. })
    ));
    assert!(!path.exists(), "nothing is written on error");
}

#[test]
fn scatter_writes_chart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scatter.png");
    let x: Vec<f32> = (0..50).map(|i| i as f32 / 10.0).collect();
    let y: Vec<f32> = x.iter().map(|v| v * 0.8 + (v * 7.0).sin() * 0.3).collect();
    let size = scatter(
        &x,
        &y,
        "predicted vs measured",
        "measured",
        "predicted",
        &path,
    )
    .unwrap();
    assert_eq!(size, (CHART_WIDTH, CHART_HEIGHT));
    check_png(&path, size);

    // A single point (constant data) still gets a usable axis.
    let one = dir.path().join("one.png");
    check_png(
        &one,
        scatter(&[1.0], &[1.0], "one", "x", "y", &one).unwrap(),
    );

    assert!(matches!(
        scatter(&x, &y[1..], "t", "x", "y", &path),
        Err(FigureError::LengthMismatch { .. })
    ));
    assert!(matches!(
        scatter(&[1.0, f32::NAN], &[1.0, 2.0], "t", "x", "y", &path),
        Err(FigureError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        scatter(&[], &[], "t", "x", "y", &path),
        Err(FigureError::Empty { .. })
    ));
}

#[test]
fn traces_write_chart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.png");
    let measured: Vec<f32> = (0..120)
        .map(|t| ((t as f32) * 0.2).sin().max(0.0) * 4.0)
        .collect();
    let predicted: Vec<f32> = measured.iter().map(|v| v * 0.9 + 0.2).collect();
    let short: Vec<f32> = vec![1.0; 60];
    let size = traces(
        &[
            ("measured", &measured),
            ("predicted", &predicted),
            ("baseline", &short),
        ],
        "electrode 12",
        &path,
    )
    .unwrap();
    assert_eq!(size, (CHART_WIDTH, CHART_HEIGHT));
    check_png(&path, size);

    assert!(matches!(
        traces(&[], "t", &path),
        Err(FigureError::Empty { .. })
    ));
    assert!(matches!(
        traces(&[("empty", &[])], "t", &path),
        Err(FigureError::Empty { .. })
    ));
    assert!(matches!(
        traces(&[("bad", &[1.0, f32::INFINITY])], "t", &path),
        Err(FigureError::NonFinite { .. })
    ));
}

#[test]
fn bar_chart_writes_chart_with_negative_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.png");
    let labels = [
        "decoder",
        "decoder (shuffled responses)",
        "ridge",
        "mean image",
    ];
    let size = bar_chart(
        &labels,
        &[0.42, 0.03, 0.31, -0.05],
        "SSIM on the RF crop",
        &path,
    )
    .unwrap();
    assert_eq!(size, (CHART_WIDTH, CHART_HEIGHT));
    check_png(&path, size);

    let neg = dir.path().join("neg.png");
    check_png(
        &neg,
        bar_chart(&["a", "b"], &[-1.0, -2.0], "all negative", &neg).unwrap(),
    );
    let zero = dir.path().join("zero.png");
    check_png(&zero, bar_chart(&["a"], &[0.0], "zero", &zero).unwrap());

    assert!(matches!(
        bar_chart(&labels, &[1.0], "t", &path),
        Err(FigureError::LengthMismatch {
            expected: 4,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        bar_chart(&[], &[], "t", &path),
        Err(FigureError::Empty { .. })
    ));
}

#[test]
fn heatmap_writes_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heat.png");
    let mut values = [None; 100];
    for (i, v) in values.iter_mut().enumerate() {
        if i % 7 != 3 {
            *v = Some((i as f32 * 0.37).sin() * 0.5);
        }
    }
    let size = heatmap_10x10(&values, "Pearson r per electrode", &path).unwrap();
    assert_eq!(size, (HEATMAP_WIDTH, HEATMAP_HEIGHT));
    check_png(&path, size);

    let empty = dir.path().join("empty.png");
    check_png(
        &empty,
        heatmap_10x10(&[None; 100], "no data", &empty).unwrap(),
    );
    let constant = dir.path().join("constant.png");
    check_png(
        &constant,
        heatmap_10x10(&[Some(2.0); 100], "constant", &constant).unwrap(),
    );

    values[5] = Some(f32::NAN);
    assert!(matches!(
        heatmap_10x10(&values, "t", &path),
        Err(FigureError::NonFinite { index: 5, .. })
    ));
}

#[test]
fn unwritable_path_is_a_write_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-folder").join("x.png");
    assert!(matches!(
        bar_chart(&["a"], &[1.0], "t", &path),
        Err(FigureError::Write { .. })
    ));
}
