//! Writes one figure of each kind into a folder, from the crate's reference images and
//! synthetic responses, to look at how report figures render:
//!
//! ```text
//! cargo run -p v1-metrics --release --example report_figures -- /tmp/v1-figures
//! ```

use std::error::Error;
use std::path::{Path, PathBuf};

use v1_metrics::figures::{bar_chart, heatmap_10x10, image_grid, scatter, traces};
use v1_metrics::{evaluate_reconstructions, GrayImageF32};

fn load(name: &str) -> Result<GrayImageF32, Box<dyn Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    Ok(GrayImageF32::from_luma8(&image::open(&path)?.to_luma8())?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: report_figures OUTPUT_FOLDER")?,
    );
    std::fs::create_dir_all(&out)?;

    let n = 4;
    let targets: Vec<GrayImageF32> = (0..n)
        .map(|i| load(&format!("ident_{i}_target.png")))
        .collect::<Result<_, _>>()?;
    let recons: Vec<GrayImageF32> = (0..n)
        .map(|i| load(&format!("ident_{i}_recon.png")))
        .collect::<Result<_, _>>()?;
    let blurred = load("blurred_recon.png")?;
    let rows: Vec<Vec<GrayImageF32>> = (0..n)
        .map(|i| {
            vec![
                targets[i].clone(),
                recons[i].clone(),
                recons[(i + 1) % n].clone(),
                blurred.clone(),
            ]
        })
        .collect();
    let labels: Vec<String> = (0..n).map(|i| format!("test {i}")).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let size = image_grid(
        &rows,
        &["target", "reconstruction", "shuffled", "ridge"],
        &labels,
        3,
        &out.join("grid.png"),
    )?;
    println!("grid.png {size:?}");

    let batch = evaluate_reconstructions(&targets, &recons)?;
    let shuffled: Vec<GrayImageF32> = (0..n).map(|i| recons[(i + 1) % n].clone()).collect();
    let control = evaluate_reconstructions(&targets, &shuffled)?;
    let negatives: Vec<GrayImageF32> = targets
        .iter()
        .map(|t| {
            GrayImageF32::new(
                t.width(),
                t.height(),
                t.pixels().iter().map(|v| 1.0 - v).collect(),
            )
        })
        .collect::<Result<_, _>>()?;
    let inverted = evaluate_reconstructions(&targets, &negatives)?;
    let size = bar_chart(
        &[
            "PixCorr, decoder",
            "PixCorr, shuffled responses",
            "SSIM, decoder",
            "SSIM, shuffled responses",
            "SSIM, inverted targets",
        ],
        &[
            batch.mean_pixcorr as f32,
            control.mean_pixcorr as f32,
            batch.mean_ssim as f32,
            control.mean_ssim as f32,
            inverted.mean_ssim as f32,
        ],
        "Reconstruction metrics (example data)",
        &out.join("bars.png"),
    )?;
    println!("bars.png {size:?}");

    let measured: Vec<f32> = (0..60)
        .map(|i| ((i as f32 * 0.61).sin() + 1.2) * 3.0)
        .collect();
    let predicted: Vec<f32> = measured
        .iter()
        .enumerate()
        .map(|(i, m)| 0.8 * m + 0.7 + (i as f32 * 1.7).cos() * 0.8)
        .collect();
    let size = scatter(
        &measured,
        &predicted,
        "Predicted vs measured mean response per electrode",
        "measured (spikes / bin)",
        "predicted (spikes / bin)",
        &out.join("scatter.png"),
    )?;
    println!("scatter.png {size:?}");

    let t_measured: Vec<f32> = (0..150)
        .map(|t| (((t as f32) * 0.13).sin() * 2.0 + ((t as f32) * 0.41).sin()).max(0.0) * 2.0)
        .collect();
    let t_predicted: Vec<f32> = t_measured
        .iter()
        .enumerate()
        .map(|(t, v)| 0.85 * v + 0.3 + ((t as f32) * 0.9).sin() * 0.4)
        .collect();
    let size = traces(
        &[
            ("measured (trial average)", &t_measured),
            ("predicted", &t_predicted),
        ],
        "Electrode 17, test segment 3",
        &out.join("traces.png"),
    )?;
    println!("traces.png {size:?}");

    let mut values = [None; 100];
    for (i, v) in values.iter_mut().enumerate() {
        let (r, c) = ((i / 10) as f32, (i % 10) as f32);
        if !(i == 0 || i == 9 || i == 90 || i == 99 || i % 13 == 5) {
            *v = Some(0.6 - ((r - 4.0).powi(2) + (c - 5.0).powi(2)).sqrt() * 0.08);
        }
    }
    let size = heatmap_10x10(
        &values,
        "Pearson r per electrode (example)",
        &out.join("heatmap.png"),
    )?;
    println!("heatmap.png {size:?}");
    Ok(())
}
