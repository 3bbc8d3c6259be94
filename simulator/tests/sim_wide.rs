//! A wide-field dataset: one pvc-1 `neurodata/ac{k}/` folder per array, the ground truth
//! per array, and the training-data build reading every array's channels with their own
//! noise-free rates.

use std::collections::BTreeSet;

use neural_data::build::{build, read_input};
use neural_data::pvc1;
use v1_sim::{simulate, GroundTruth, Preset, SimConfig, SimError, WideField};

fn tiny_wide(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::preset(Preset::Wide, seed);
    cfg.movies = 2;
    cfg.segments = 3;
    cfg.frames_per_segment = 40;
    cfg.single_trial_files = 4;
    cfg.repeat_movies = 1;
    cfg.repeat_segments = 2;
    cfg.progress = false;
    cfg.wide = Some(WideField { arrays: [2, 2], ..WideField::default() });
    cfg
}

#[test]
fn every_array_is_its_own_pvc1_folder_with_its_own_ground_truth() {
    let out = tempfile::tempdir().unwrap();
    let cfg = tiny_wide(3);
    let summary = simulate(out.path(), &cfg).unwrap();
    assert_eq!(summary.recordings, 4 * 5, "4 single-trial files and a repeat file per array");

    // The pvc-1 layout, one sub-folder per array, read by the project's pvc-1 reader.
    assert!(out.path().join(pvc1::DATA_DIR_NAME).join("neurodata/ac4").is_dir());
    let input = read_input(out.path(), true).unwrap();
    let subdirs: BTreeSet<String> = input.recordings.iter().map(|r| r.subdir.clone()).collect();
    assert_eq!(subdirs, ["ac1", "ac2", "ac3", "ac4"].map(String::from).into_iter().collect());
    for r in &input.recordings {
        assert!(r.name.starts_with(&format!("{}_u", r.subdir)), "{} in {}", r.name, r.subdir);
        assert!(r.electrodes.iter().all(|&e| (1..=100).contains(&e)));
    }
    let repeat_files: Vec<_> = input.recordings.iter().filter(|r| r.conditions.iter().any(|c| c.repeats.len() > 1)).collect();
    assert_eq!(repeat_files.len(), 4);
    assert!(repeat_files.iter().all(|r| r.electrodes.len() == 100), "the wide preset repeats every electrode");

    // One array's truth cannot be mistaken for the whole population's.
    match GroundTruth::load(out.path()) {
        Err(SimError::Truth { message, .. }) => assert!(message.contains("load_arrays"), "{message}"),
        other => panic!("expected a clear refusal, got {other:?}"),
    }
    let (arrays, layout) = GroundTruth::load_arrays(out.path()).unwrap();
    let layout = layout.expect("arrays.json");
    assert_eq!(arrays.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["ac1", "ac2", "ac3", "ac4"]);
    assert_eq!(layout.arrays.iter().map(|a| a.grid).collect::<Vec<_>>(), [[0, 0], [1, 0], [0, 1], [1, 1]]);
    for (subdir, truth) in &arrays {
        assert!(truth.truth.files.iter().all(|f| &f.subdir == subdir));
        assert_eq!(truth.segments().count(), 6);
    }
    // Arrays sit in their own quadrant of the frame (gaze at the centre).
    for (entry, (_, truth)) in layout.arrays.iter().zip(&arrays) {
        let [col, row] = entry.grid;
        for e in truth.truth.electrodes.iter().filter(|e| e.good) {
            let [x, y] = e.map_position_px;
            assert_eq!((x >= 160.0) as usize, col, "electrode {} at x {x}", e.id);
            assert_eq!((y >= 120.0) as usize, row, "electrode {} at y {y}", e.id);
        }
    }
    assert!(layout.coverage > 0.3 && layout.coverage < 1.0, "{}", layout.coverage);

    // The training build: channels of every array, each with its own array's noise-free rates.
    let mut bcfg = neural_data::BuildConfig { drop_onset_frames: 5, n_lags: 2, lags_before_onset: 0, ..Default::default() };
    bcfg.max_latency_frames = 4;
    let (ds, _) = build(&input, &bcfg, false).unwrap();
    let n_ch = ds.meta.channels.len();
    assert_eq!(n_ch, 400);
    let truth = ds.truth.as_ref().expect("noise-free rates of the simulated arrays");
    let lags = &ds.meta.lags;
    let mut checked = 0;
    for (ci, ch) in ds.meta.channels.iter().enumerate() {
        let (_, gt) = arrays.iter().find(|(s, _)| *s == ch.subdir).unwrap();
        for (si, &[movie, segment, t]) in ds.index.iter().enumerate().step_by(17) {
            let want = gt.rates(movie, segment).unwrap().get(t as usize + lags[0] as usize, ch.electrode).unwrap();
            assert_eq!(truth[(si * lags.len()) * n_ch + ci], want, "channel {ci} ({}/{}) sample {si}", ch.subdir, ch.electrode);
            checked += 1;
        }
    }
    assert!(checked > 400);
}

#[test]
fn bad_wide_settings_are_refused_by_name_before_anything_is_written() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = tiny_wide(1);
    cfg.wide = Some(WideField { arrays: [9, 1], ..WideField::default() });
    match simulate(out.path(), &cfg) {
        Err(SimError::Config { field, message }) => {
            assert_eq!(field, "wide.arrays");
            assert!(message.contains("1..=8"), "{message}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}
