#[test]
fn measure() {
    let Ok(preset) = std::env::var("SIM_MEASURE") else { return };
    let out = std::path::Path::new("/tmp/simmeasure");
    let p = if preset == "default" { neural_data::sim::Preset::Default } else { neural_data::sim::Preset::Small };
    let mut cfg = neural_data::sim::SimConfig::preset(p, 1);
    cfg.progress = false;
    cfg.overwrite = true;
    let s = neural_data::sim::simulate(out, &cfg).unwrap();
    println!("{s:?}");
}
#[test]
fn jpeg_sizes() {
    if std::env::var("SIM_JPEG").is_err() { return; }
    use image::codecs::jpeg::JpegEncoder;
    let (mut tot, mut n) = (0usize, 0usize);
    for seg in 0..12u16 {
        let frames = neural_data::sim::stimuli::StimulusSource::DeadLeaves.segment(1, seg % 4, seg, seg as usize, 30).unwrap();
        for f in frames.iter().step_by(6) {
            let mut buf = Vec::new();
            JpegEncoder::new_with_quality(&mut buf, 85).encode_image(f).unwrap();
            tot += buf.len();
            n += 1;
        }
    }
    println!("jpeg q85 mean {}", tot / n);
}
