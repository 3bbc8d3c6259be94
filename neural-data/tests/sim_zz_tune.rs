use neural_data::sim::population::Population;
use neural_data::sim::response::{self, Model};
use neural_data::sim::stimuli::{self, StimulusSource};
use neural_data::sim::PopulationParams;

fn snr(params: &PopulationParams, label: &str) {
    let mut pop = Population::generate(3, params);
    let model = Model::new(&pop, 2, 320, 240);
    let calib: Vec<Vec<Vec<f32>>> = stimuli::calibration_scenes(3, params.calibration_scenes, params.calibration_scene_frames)
        .iter().map(|s| s.iter().map(stimuli::luminance).collect()).collect();
    response::calibrate(&mut pop, &model, &calib);
    let mut per_el: Vec<(f64, f64, f64)> = vec![(0.0, 0.0, 0.0); 100];
    let mut lam_all: Vec<Vec<f64>> = vec![Vec::new(); 100];
    for seg in 0..4u16 {
        let frames = StimulusSource::DeadLeaves.segment(3, 0, seg, seg as usize, 150).unwrap();
        let lum: Vec<Vec<f32>> = frames.iter().map(stimuli::luminance).collect();
        let rates = response::unit_rates(&pop, &model.drive(&lum));
        let counts = response::electrode_counts(&pop, &rates, 30.0);
        for t in 15..150 { for e in 0..100 { lam_all[e].push(counts[t * 100 + e] as f64); } }
    }
    let mut snrs = Vec::new();
    let mut drv = Vec::new();
    for e in pop.good_electrodes() {
        let v = &lam_all[e.id as usize - 1];
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
        let spont: f64 = e.units.iter().map(|&u| pop.units[u].spontaneous_hz).sum::<f64>() / 30.0;
        snrs.push(var / (m * 1.15 + e.noise_crossing_hz / 30.0));
        drv.push((m - spont) * 30.0);
    }
    snrs.sort_by(f64::total_cmp); drv.sort_by(f64::total_cmp);
    let _ = &mut per_el;
    println!("{label}: single-bin signal/noise var median {:.3} q25 {:.3} q75 {:.3}; driven MUA median {:.1} sp/s", snrs[snrs.len()/2], snrs[snrs.len()/4], snrs[snrs.len()*3/4], drv[drv.len()/2]);
}

#[test]
fn tune() {
    if std::env::var("SIM_TUNE").is_err() { return; }
    let base = PopulationParams::default();
    snr(&base, "base");
    let mut p = base.clone(); p.calibration_level = 0.9; snr(&p, "level 0.9");
    let mut p = base.clone(); p.softplus_threshold = 0.0; snr(&p, "theta 0");
    let mut p = base.clone(); p.kernel_rebound = [0.15, 0.35]; snr(&p, "rebound 0.15-0.35");
    let mut p = base.clone(); p.calibration_level = 0.9; p.softplus_threshold = 0.0; p.kernel_rebound = [0.15, 0.35]; snr(&p, "all three");
}

#[test]
fn sta_check() {
    if std::env::var("SIM_STA").is_err() { return; }
    use neural_data::build::{build, read_input};
    use neural_data::sim::{simulate, Preset, SimConfig};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::preset(Preset::Small, 3);
    cfg.movies = 2; cfg.segments = 12; cfg.frames_per_segment = 150; cfg.single_trial_files = 5; cfg.repeat_segments = 2; cfg.progress = false;
    simulate(dir.path(), &cfg).unwrap();
    let input = read_input(dir.path(), true).unwrap();
    let (ds, _) = build(&input, &neural_data::BuildConfig::default(), false).unwrap();
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ground_truth/truth.json")).unwrap()).unwrap();
    let electrodes = truth["electrodes"].as_array().unwrap();
    let cell = ds.meta.rf_cell_px as f64;
    println!("onset latency {:?} lags {:?} curve {:?}", ds.meta.rf.onset_latency, ds.meta.lags, ds.meta.rf.onset_curve);
    let mut good = vec![]; let mut bad = vec![];
    let mut errs = vec![];
    for (c, ch) in ds.meta.channels.iter().enumerate() {
        let rf = &ds.meta.rf.channels[c];
        let e = electrodes.iter().find(|e| e["id"].as_u64() == Some(ch.electrode as u64)).unwrap();
        if e["good"].as_bool().unwrap() {
            good.push(rf.snr);
            let p = e["rf_center_px"].as_array().unwrap();
            let dx = rf.center[0] as f64 * cell - p[0].as_f64().unwrap();
            let dy = rf.center[1] as f64 * cell - p[1].as_f64().unwrap();
            if rf.snr > 8.5 { errs.push((dx*dx+dy*dy).sqrt()); }
        } else { bad.push(rf.snr); }
    }
    good.sort_by(f32::total_cmp); bad.sort_by(f32::total_cmp); errs.sort_by(f64::total_cmp);
    println!("good snr {:?}", good);
    println!("bad snr {:?}", bad);
    println!("rf errors of reliable good {:?}", errs);
}
#[test]
fn jpeg_sizes() {
    if std::env::var("SIM_JPEG").is_err() { return; }
    use image::codecs::jpeg::JpegEncoder;
    let mut tot = [0usize; 3]; let mut n = 0;
    for seg in 0..12u16 {
        let frames = neural_data::sim::stimuli::StimulusSource::DeadLeaves.segment(1, seg % 4, seg, seg as usize, 30).unwrap();
        for f in frames.iter().step_by(6) {
            for (i, q) in [85u8, 80, 75].iter().enumerate() {
                let mut buf = Vec::new();
                JpegEncoder::new_with_quality(&mut buf, *q).encode_image(f).unwrap();
                tot[i] += buf.len();
            }
            n += 1;
        }
    }
    println!("jpeg q85 {} q80 {} q75 {}", tot[0] / n, tot[1] / n, tot[2] / n);
}
