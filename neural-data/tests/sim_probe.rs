use neural_data::sim::*;
#[test]
fn probe() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::preset(Preset::Small, 1);
    cfg.progress = false;
    let s = simulate(dir.path(), &cfg).unwrap();
    println!("{s:?}");
    let gt = GroundTruth::load(dir.path()).unwrap();
    println!("footprint {:?} peak lag {}", gt.truth.footprint_px, gt.truth.peak_lag_frames);
    let r = gt.rates(0, 0).unwrap();
    for e in gt.truth.electrodes.iter().filter(|e| e.good).take(8) {
        let v = r.electrode(e.id).unwrap();
        let mean = v.iter().sum::<f32>() / v.len() as f32 * 30.0;
        let max = v.iter().cloned().fold(0f32, f32::max) * 30.0;
        println!("el {} units {} mean {mean:.1} max {max:.1} rf {:?} size {:?}", e.id, e.units.len(), e.rf_center_px, e.rf_size_px);
    }
    let mut sizes = vec![];
    for entry in std::fs::read_dir(dir.path().join("crcns-ringach-data/movie_frames/movie000_000.images")).unwrap() {
        let e = entry.unwrap();
        sizes.push(e.metadata().unwrap().len());
    }
    println!("mean jpeg {}", sizes.iter().sum::<u64>() / sizes.len() as u64);
    for entry in std::fs::read_dir(dir.path().join("crcns-ringach-data/neurodata/ac1")).unwrap() {
        let e = entry.unwrap();
        println!("{:?} {}", e.path(), e.metadata().unwrap().len());
    }
    std::fs::create_dir_all("/tmp/simprobe").unwrap();
    let mut mont = image::RgbImage::new(640, 480);
    for (i, (m, sg, k)) in [(0u16, 0u16, 0usize), (0, 0, 59), (1, 2, 10), (0, 1, 30)].iter().enumerate() {
        let p = dir.path().join(format!("crcns-ringach-data/movie_frames/movie{m:03}_{sg:03}.images/movie{m:03}_{sg:03}_{k:03}.jpeg"));
        let img = image::open(p).unwrap().to_rgb8();
        image::imageops::replace(&mut mont, &img, (i % 2) as i64 * 320, (i / 2) as i64 * 240);
    }
    mont.save("/tmp/simprobe/montage.png").unwrap();
}
#[test]
fn footprints() {
    let p = PopulationParams::default();
    for seed in 0..8 {
        let pop = Population::generate(seed, &p);
        let mut bx = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for u in &pop.units {
            let r = 2.0 * u.sigma_across_px.max(u.sigma_along_px);
            bx[0] = bx[0].min(u.center_px[0] - r);
            bx[1] = bx[1].min(u.center_px[1] - r);
            bx[2] = bx[2].max(u.center_px[0] + r);
            bx[3] = bx[3].max(u.center_px[1] + r);
        }
        let sf: Vec<f64> = pop.units.iter().map(|u| u.sf_cpd).collect();
        let mut s2 = sf.clone(); s2.sort_by(f64::total_cmp);
        println!("seed {seed} box w {:.0} h {:.0} centre ({:.0},{:.0}) sf median {:.2}", bx[2]-bx[0], bx[3]-bx[1], (bx[0]+bx[2])/2.0, (bx[1]+bx[3])/2.0, s2[s2.len()/2]);
    }
}
#[test]
fn jpeg_sizes() {
    use image::codecs::jpeg::JpegEncoder;
    let mut tot = [0usize; 3];
    let mut n = 0;
    for seg in 0..4u16 {
        let frames = neural_data::sim::stimuli::StimulusSource::DeadLeaves.segment(3, 0, seg, seg as usize, 20).unwrap();
        for f in frames.iter().step_by(5) {
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
#[test]
fn default_probe() {
    if std::env::var("SIM_DEFAULT").is_err() { return; }
    let out = std::path::Path::new("/tmp/simdefault");
    let mut cfg = SimConfig::preset(Preset::Default, 1);
    cfg.progress = false;
    cfg.overwrite = true;
    let s = simulate(out, &cfg).unwrap();
    println!("{s:?}");
}
#[test]
fn timing_probe() {
    use std::time::Instant;
    use neural_data::sim::*;
    let p = PopulationParams::default();
    let t = Instant::now();
    let mut pop = Population::generate(1, &p);
    let model = response::Model::new(&pop, 2, 320, 240);
    println!("pop+model {:?}", t.elapsed());
    let t = Instant::now();
    let frames = stimuli::StimulusSource::DeadLeaves.segment(1, 0, 0, 0, 150).unwrap();
    println!("frames {:?}", t.elapsed());
    let t = Instant::now();
    let mut n = 0;
    for f in &frames { let mut b = Vec::new(); image::codecs::jpeg::JpegEncoder::new_with_quality(&mut b, 85).encode_image(f).unwrap(); n += b.len(); }
    println!("jpeg {:?} {}", t.elapsed(), n / 150);
    let t = Instant::now();
    let lum: Vec<Vec<f32>> = frames.iter().map(stimuli::luminance).collect();
    let _ = response::calibrate(&mut pop, &model, &lum);
    println!("calib (150 frames) {:?}", t.elapsed());
    let t = Instant::now();
    let d = model.drive(&lum);
    let rates = response::unit_rates(&pop, &d);
    println!("drive {:?}", t.elapsed());
    let t = Instant::now();
    let ids: Vec<u16> = (1..=20).collect();
    let mut ev = 0;
    for trial in 0..15 { let e = spikes::trial_events(&pop, &rates, &ids, 1, spikes::TrialKey { movie: 0, segment: 0, file: 0, trial }); ev += e.iter().map(|x| x.times.len()).sum::<usize>(); }
    println!("events 15 trials x 20 el {:?} ({ev})", t.elapsed());
}
