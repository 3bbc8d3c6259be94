//! How much of the simulated response to a movie does one frame explain?
//!
//! For frames t of a few dead-leaves segments, compares the noise-free count of every
//! good electrode in bin t + lag with its response to frame t held still on the screen
//! (the steady state). V1 integrates over ~100-150 ms, so a model that sees one frame per
//! sample is capped near these correlations; this is why the image encoder reads a clip.
//!
//!     cargo run --release -p v1-sim --example single_frame_ceiling [-- CROP_PX]
//!
//! With CROP_PX the held frame's RF crop is first resized to CROP_PX pixels and back (the
//! resolution the networks see), to measure what the resize loses.
use v1_sim::{population::Population, response, stimuli, Preset, SimConfig};

/// Pearson r by the metrics crate's definition (a constant series gives 0).
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    v1_metrics::pearson_r(a, b).expect("equally long, finite, non-empty series")
}

/// The frame with the default crop window (the footprint of seed 1) resized to `size`
/// pixels and back; `size` 0 leaves it as it is.
fn degrade(f: &[f32], size: u32) -> Vec<f32> {
    if size == 0 { return f.to_vec(); }
    let (x0, y0, w) = (124usize, 62usize, 156usize);
    let mut crop = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::new(w as u32, w as u32);
    for y in 0..w { for x in 0..w { crop.put_pixel(x as u32, y as u32, image::Luma([f[(y0 + y) * 320 + x0 + x]])); } }
    let small = image::imageops::resize(&crop, size, size, image::imageops::FilterType::Triangle);
    let back = image::imageops::resize(&small, w as u32, w as u32, image::imageops::FilterType::CatmullRom);
    let mut out = f.to_vec();
    for y in 0..w { for x in 0..w { out[(y0 + y) * 320 + x0 + x] = back.get_pixel(x as u32, y as u32).0[0]; } }
    out
}

fn main() {
    let size: u32 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 0,
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            eprintln!("CROP_PX must be a whole number of pixels: {e}");
            std::process::exit(2);
        }
    };
    let cfg = SimConfig::preset(Preset::Default, 1);
    let mut pop = Population::generate(cfg.seed, &cfg.population);
    let model = response::Model::new(&pop, 2, 320, 240);
    let calib: Vec<Vec<Vec<f32>>> = stimuli::calibration_scenes(cfg.seed, cfg.population.calibration_scenes, cfg.population.calibration_scene_frames)
        .iter().map(|s| s.iter().map(stimuli::luminance).collect()).collect();
    response::calibrate(&mut pop, &model, &calib);
    let good: Vec<usize> = pop.electrodes.iter().enumerate().filter(|(_, e)| e.good && !e.units.is_empty()).map(|(i, _)| i).collect();
    let src = stimuli::StimulusSource::DeadLeaves;
    let nf = 90;
    let reps = 8usize;
    // [lag][electrode] -> (actual, static)
    let lags = [2usize, 3, 4, 5];
    let mut acc: Vec<Vec<(Vec<f64>, Vec<f64>)>> = vec![vec![(vec![], vec![]); good.len()]; lags.len()];
    let mut auto: Vec<(Vec<f64>, Vec<f64>)> = vec![(vec![], vec![]); good.len()];
    for seg in 0..6u16 {
        let frames: Vec<Vec<f32>> = match src.segment(cfg.seed, 0, seg, seg as usize, nf) {
            Ok(f) => f.iter().map(stimuli::luminance).collect(),
            Err(e) => {
                eprintln!("cannot draw segment {seg}: {e}");
                std::process::exit(1);
            }
        };
        let rates = response::unit_rates(&pop, &model.drive(&frames));
        let counts = response::electrode_counts(&pop, &rates, 30.0);
        for t in (15..nf - 6).step_by(3) {
            let stat_movie: Vec<Vec<f32>> = vec![degrade(&frames[t], size); reps];
            let sr = response::unit_rates(&pop, &model.drive(&stat_movie));
            let sc = response::electrode_counts(&pop, &sr, 30.0);
            for (li, &l) in lags.iter().enumerate() {
                for (gi, &e) in good.iter().enumerate() {
                    acc[li][gi].0.push(counts[(t + l) * 100 + e] as f64);
                    // static response at its steady state (last bin)
                    acc[li][gi].1.push(sc[(reps - 1) * 100 + e] as f64);
                }
            }
            for (gi, &e) in good.iter().enumerate() {
                auto[gi].0.push(counts[(t + 3) * 100 + e] as f64);
                auto[gi].1.push(counts[(t + 4) * 100 + e] as f64);
            }
        }
    }
    for (li, l) in lags.iter().enumerate() {
        let rs: Vec<f64> = acc[li].iter().map(|(a, b)| pearson(a, b)).collect();
        println!("lag {l}: mean r(actual, static) = {:.3}", rs.iter().sum::<f64>() / rs.len() as f64);
    }
    let ra: Vec<f64> = auto.iter().map(|(a, b)| pearson(a, b)).collect();
    println!("r(actual t+3, actual t+4) = {:.3}", ra.iter().sum::<f64>() / ra.len() as f64);
}
