//! Calibration run: simulates a reduced default dataset (movies 0–1 x segments 0–11 of the
//! default's 600 frames, the default's file mix and repeat file) with parameter overrides,
//! then prints the twin statistics beside real pvc-1 and the repeat Fano factor.
//!
//! ```text
//! cargo run --release -p v1-sim --example calibrate -- OUT_DIR ['{"gain_log_sd": 0.4}']
//! ```
//! The overrides are a JSON object of `PopulationParams` fields. The reduced dataset's
//! statistics track the default dataset's (the stimulus measures read 24 segments of either).

use std::path::PathBuf;

use neural_data::build::read_input;
use neural_data::pvc1::{self, ConditionKind, FRAME_RATE_HZ};
use neural_data::stats::{measure, StatsOptions};
use v1_sim::{simulate, GroundTruth, Preset, SimConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: calibrate OUT_DIR [JSON overrides]")?);
    let overrides: serde_json::Value = match args.next() {
        Some(s) => serde_json::from_str(&s)?,
        None => serde_json::json!({}),
    };
    let mut cfg = SimConfig::preset(Preset::Default, 1);
    cfg.preset = "calibration".into();
    cfg.movies = 2;
    cfg.segments = 12;
    cfg.overwrite = true;
    cfg.progress = false;
    let mut params = serde_json::to_value(&cfg.population)?;
    if let (Some(p), Some(o)) = (params.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            p.insert(k.clone(), v.clone());
        }
    }
    cfg.population = serde_json::from_value(params)?;
    // MEASURE_ONLY=1 measures an existing tree (e.g. the full default dataset) instead.
    if std::env::var_os("MEASURE_ONLY").is_none() {
        let t0 = std::time::Instant::now();
        simulate(&out, &cfg)?;
        eprintln!("simulated in {:.0} s", t0.elapsed().as_secs_f64());
    }

    let input = read_input(&out, false)?;
    let stats = measure(&input, &StatsOptions::default())?;
    let mut r2 = stats.max_r2.clone();
    r2.sort_by(f64::total_cmp);
    println!("max R² sorted: {}", r2.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" "));
    for c in stats.compare() {
        let mark = match c.holds {
            Some(true) => "ok",
            Some(false) => "MISS",
            None => "",
        };
        println!("{:<48} {:<40} {:<14} {mark}", c.measure, c.measured, c.target);
    }

    // Fano factor of multi-unit counts in 1/3 s windows over the repeats (good electrodes,
    // windows after the first 0.5 s with a mean of at least 2 events).
    let truth = GroundTruth::load(&out)?;
    let tree = pvc1::read_tree(&out)?;
    let rep = tree.recordings.iter().find(|r| r.conditions.iter().any(|c| c.repeats.len() > 1)).ok_or("no repeat file")?;
    let mut ff = Vec::new();
    for c in rep.conditions.iter().filter(|c| matches!(c.kind, ConditionKind::Movie { .. })) {
        for (i, id) in rep.electrodes.iter().enumerate() {
            if !truth.truth.electrodes[*id as usize - 1].good {
                continue;
            }
            for w in 1..cfg.frames_per_segment / 10 {
                let (lo, hi) = ((w * 10) as f64 / FRAME_RATE_HZ, ((w + 1) * 10) as f64 / FRAME_RATE_HZ);
                let counts: Vec<f64> = c.repeats.iter().map(|tr| tr.electrodes[i].times.iter().filter(|&&x| x >= lo && x < hi).count() as f64).collect();
                let n = counts.len() as f64;
                let m = counts.iter().sum::<f64>() / n;
                if m >= 2.0 {
                    ff.push(counts.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / m);
                }
            }
        }
    }
    let mean = ff.iter().sum::<f64>() / ff.len().max(1) as f64;
    println!("{:<48} {:<40} {:<14}", "repeat Fano (1/3 s, good electrodes), mean", format!("{mean:.2} over {} windows", ff.len()), "1.3–2.5");
    Ok(())
}
