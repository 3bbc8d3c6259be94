//! The dataset builder reads what the simulator wrote, and recovers the planted latency
//! and receptive-field positions; the cache round-trips; broken trees are reported. It
//! lives in the simulator crate because that sits above the builder (`neural-data`).

use neural_data::build::{build, read_input};
use neural_data::cache::{Dataset, Split};
use neural_data::BuildConfig;
use v1_sim::{simulate, Preset, SimConfig};

/// Enough data for the STA estimates (the small preset has too little), still seconds.
fn medium(out: &std::path::Path) {
    let mut cfg = SimConfig::preset(Preset::Small, 3);
    cfg.movies = 4;
    cfg.segments = 12;
    cfg.frames_per_segment = 150;
    cfg.single_trial_files = 5;
    cfg.repeat_segments = 2;
    cfg.progress = false;
    simulate(out, &cfg).unwrap();
}

#[test]
fn builder_recovers_planted_latency_and_receptive_fields() {
    let dir = tempfile::tempdir().unwrap();
    medium(dir.path());
    let input = read_input(dir.path(), true).unwrap();
    assert!(input.warnings.is_empty(), "{:?}", input.warnings);
    let (ds, decoded) = build(&input, &BuildConfig::default(), false).unwrap();
    assert_eq!(decoded, 4 * 12 * 150);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ground_truth/truth.json")).unwrap()).unwrap();
    let planted = truth["latency_frames"].as_u64().unwrap() as u32;
    // Units start responding 12–40 ms after the planted latency (their own delays), so the
    // onset shows in the planted latency's bin or the next one.
    let onset = ds.meta.rf.onset_latency.unwrap_or_else(|| panic!("no onset found in {:?}", ds.meta.rf.onset_curve));
    assert!(onset == planted || onset == planted + 1, "onset {onset}, planted latency {planted}, curve {:?}", ds.meta.rf.onset_curve);
    assert_eq!(ds.meta.truth_latency_frames, Some(planted));
    // The default window: two bins before the onset, the onset bin and two after it.
    let first = onset.saturating_sub(2);
    assert_eq!(ds.meta.lags, (first..first + 5).collect::<Vec<u32>>());

    // RF centres of the 20 channels with the clearest STAs against the planted centres of
    // their electrodes. (Which channels pass the reliability threshold depends on how much
    // data there is; this test uses a fifth of the default dataset.)
    let electrodes = truth["electrodes"].as_array().unwrap();
    let cell = ds.meta.rf_cell_px as f64;
    let mut order: Vec<usize> = (0..ds.meta.channels.len()).collect();
    order.sort_by(|&a, &b| ds.meta.rf.channels[b].snr.total_cmp(&ds.meta.rf.channels[a].snr));
    let mut errors = Vec::new();
    let mut without_units = 0;
    for &c in order.iter().take(20) {
        let ch = &ds.meta.channels[c];
        let rf = &ds.meta.rf.channels[c];
        let e = electrodes.iter().find(|e| e["id"].as_u64() == Some(ch.electrode as u64)).unwrap();
        if !e["good"].as_bool().unwrap() {
            without_units += 1;
            continue;
        }
        let p = e["rf_center_px"].as_array().unwrap();
        let dx = rf.center[0] as f64 * cell - p[0].as_f64().unwrap();
        let dy = rf.center[1] as f64 * cell - p[1].as_f64().unwrap();
        errors.push((dx * dx + dy * dy).sqrt());
    }
    assert!(without_units <= 2, "{without_units} of the 20 clearest STAs are on electrodes without units");
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    // With the real files' low event rates (5–10/s on clear-RF channels), 4 minutes of
    // movie give STAs that place RFs to within about half an RF size.
    assert!(median < 10.0, "median RF centre error {median:.1} px (RF sizes are ~10–30 px): {errors:?}");

    // The crop covers the planted footprint's centre.
    let fp = truth["footprint_px"].as_array().unwrap();
    let (fx, fy) = (fp[0].as_f64().unwrap() + fp[2].as_f64().unwrap() / 2.0, fp[1].as_f64().unwrap() + fp[3].as_f64().unwrap() / 2.0);
    let [x, y, w, h] = ds.meta.crop_window;
    assert!(fx > x as f64 && fx < (x + w) as f64 && fy > y as f64 && fy < (y + h) as f64, "crop {:?} vs footprint centre ({fx:.0}, {fy:.0})", ds.meta.crop_window);

    // Splits by whole segment; the repeated segments are the test split, with repeats.
    let test_segments: std::collections::BTreeSet<(u16, u16)> =
        ds.indices(Split::Test).iter().map(|&i| (ds.index[i][0], ds.index[i][1])).collect();
    assert_eq!(test_segments, [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().collect());
    for s in [Split::Train, Split::Validation] {
        for i in ds.indices(s) {
            assert!(!test_segments.contains(&(ds.index[i][0], ds.index[i][1])));
        }
    }
    assert_eq!(ds.n_repeats, 10);
    assert!(!ds.repeat_samples.is_empty());
    assert!(ds.truth.is_some(), "noise-free rates attached");

    // Repeats count what the single trials count (spikes only, by default): their mean over
    // repeats matches the single-trial count of the same sample and channel, summed over
    // the lags. Counting the repeats' noise crossings too makes it ~1.7 times larger.
    let c = ds.n_channels();
    let (mut rep_sum, mut single_sum) = (0f64, 0f64);
    for (j, &s) in ds.repeat_samples.iter().enumerate() {
        let single = ds.response(s as usize); // [lags][channels]
        for ch in 0..c {
            let per_rep: Vec<f32> = (0..ds.n_repeats).map(|r| ds.repeat_response(r, j)[ch]).filter(|v| !v.is_nan()).collect();
            if per_rep.is_empty() {
                continue;
            }
            rep_sum += per_rep.iter().map(|&v| v as f64).sum::<f64>() / per_rep.len() as f64;
            single_sum += single.iter().skip(ch).step_by(c).map(|&v| v as f64).sum::<f64>();
        }
    }
    let ratio = rep_sum / single_sum;
    assert!(single_sum > 0.0 && (0.85..1.18).contains(&ratio), "repeat / single-trial count {ratio:.3}");

    // Clips: each offset finds the same segment's neighbouring frame; at a segment's first
    // sample the missing earlier frame is the nearest one (the picture held).
    let offsets = [-2, -1, 0, 1];
    let table = ds.clip_table(&offsets);
    assert_eq!(table.len(), ds.n * offsets.len());
    let (mut inside, mut held) = (0, 0);
    for i in 0..ds.n {
        let [m, sg, f] = ds.index[i];
        for (k, &o) in offsets.iter().enumerate() {
            let [m2, s2, f2] = ds.index[table[i * offsets.len() + k] as usize];
            assert_eq!((m2, s2), (m, sg), "clip of sample {i} leaves its segment");
            if f2 as i32 == f as i32 + o {
                inside += 1;
            } else {
                // Held: the frame is closer to the sample's own, on the same side.
                let d = f2 as i32 - f as i32;
                assert!(d.abs() < o.abs() && d * o >= 0, "sample {i} offset {o}: got frame {f2} for frame {f}");
                held += 1;
            }
        }
    }
    assert!(inside > 10 * held && held > 0, "{inside} exact, {held} held");

    // Cache round trip.
    let path = dir.path().join("cache.safetensors");
    ds.save(&path).unwrap();
    let back = Dataset::load(&path).unwrap();
    assert_eq!(back.meta, ds.meta);
    assert_eq!(back.crops, ds.crops);
    assert_eq!(back.responses, ds.responses);
    assert_eq!(back.index, ds.index);
    assert_eq!(back.split, ds.split);
    assert_eq!(back.truth, ds.truth);
    assert_eq!(back.repeats.len(), ds.repeats.len());
    // A truncated cache is an error that says what to do.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let e = Dataset::load(&path).unwrap_err().to_string();
    assert!(e.contains("v1 build"), "{e}");
}

#[test]
fn broken_segments_are_skipped_with_a_warning_or_rejected_in_strict_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::preset(Preset::Small, 5);
    cfg.progress = false;
    simulate(dir.path(), &cfg).unwrap();
    let frames = dir.path().join("crcns-ringach-data/movie_frames");
    // A corrupt JPEG in one segment, a missing `nframes` in another.
    std::fs::write(frames.join("movie001_002.images/movie001_002_010.jpeg"), b"not a jpeg").unwrap();
    std::fs::remove_file(frames.join("movie000_002.images/nframes")).unwrap();
    let strict = read_input(dir.path(), true);
    assert!(strict.is_err(), "strict mode rejects a folder without nframes");
    let input = read_input(dir.path(), false).unwrap();
    assert!(input.warnings.iter().any(|w| w.contains("movie000_002")), "{:?}", input.warnings);
    let bc = BuildConfig { crop: Some([136, 76, 112, 112]), lags: Some(vec![2, 3, 4]), ..BuildConfig::default() };
    let err = build(&input, &bc, false).unwrap_err().to_string();
    assert!(err.contains("movie001_002_010.jpeg"), "a corrupt frame is named: {err}");
    // Nothing was written by the failed build.
    assert!(!dir.path().join("cache").exists());
}
