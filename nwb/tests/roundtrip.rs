//! A simulated tree exported to NWB and read back: the recordings equal the pvc-1
//! reader's, value by value, and the dataset builder makes the same training arrays from
//! either; bad inputs get errors that say what is wrong.

mod common;

use std::path::Path;

use common::{export, small_export};
use neural_data::build::{build, BuildConfig};
use v1_nwb::{is_nwb_input, NwbError};

/// An HDF5 file whose root carries NWB's two identifying attributes.
fn nwb_root(path: &Path, version: &str) {
    let f = hdf5::File::create(path).unwrap();
    for (k, v) in [("neurodata_type", "NWBFile"), ("nwb_version", version)] {
        let v: hdf5::types::VarLenUnicode = v.parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>().shape(()).create(k).unwrap().write_scalar(&v).unwrap();
    }
}

#[test]
fn the_nwb_files_give_the_builder_the_same_recordings_and_the_same_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let ex = small_export(dir.path(), 11);
    let tree = &ex.tree;
    assert_eq!(ex.summary.files.len(), tree.recordings.len());
    let spikes: usize = ex.summary.files.iter().map(|f| f.spikes).sum();
    let events: usize = tree
        .recordings
        .iter()
        .flat_map(|r| r.conditions.iter())
        .flat_map(|c| c.repeats.iter())
        .flat_map(|t| t.electrodes.iter())
        .map(|e| e.times.len())
        .sum();
    assert!(events > 1000, "the small tree should have events, got {events}");
    assert_eq!(spikes, events);

    assert!(is_nwb_input(&ex.nwb_dir));
    assert!(!is_nwb_input(&ex.tree_dir));
    let back = v1_nwb::read_input(&ex.nwb_dir).unwrap();
    let mut a = tree.recordings.clone();
    let mut b = back.recordings.clone();
    a.sort_by(|x, y| x.name.cmp(&y.name));
    b.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        // Value by value: electrodes, conditions, every repeat's tzero, timeTag, event
        // times (bit for bit) and snippets.
        assert_eq!(x, y, "recording {} differs after the round trip", x.name);
    }
    // The segments the recordings show, with the same frames.
    for s in &back.segments {
        let orig = tree.segments.iter().find(|t| t.movie == s.movie && t.segment == s.segment).unwrap();
        assert_eq!(s.nframes, orig.nframes);
        let canon = |p: &Path| p.canonicalize().unwrap();
        assert!(s.frame_paths.iter().zip(&orig.frame_paths).all(|(p, q)| canon(p) == canon(q)));
    }

    let cfg = BuildConfig::default();
    let (from_mat, _) = build(tree, &cfg, false).unwrap();
    let (from_nwb, _) = build(&back, &cfg, false).unwrap();
    assert!(from_mat.n > 0);
    assert_eq!(from_mat.n, from_nwb.n);
    assert_eq!(from_mat.index, from_nwb.index);
    assert_eq!(from_mat.split, from_nwb.split);
    assert_eq!(from_mat.meta.channels, from_nwb.meta.channels);
    assert_eq!(from_mat.meta.lags, from_nwb.meta.lags);
    assert_eq!(from_mat.meta.crop_window, from_nwb.meta.crop_window);
    assert_eq!(from_mat.crops, from_nwb.crops);
    assert_eq!(from_mat.full, from_nwb.full);
    assert!(from_mat.responses.iter().sum::<f32>() > 0.0);
    assert_eq!(from_mat.responses, from_nwb.responses);
    assert!(from_mat.n_repeats >= 2, "the repeat file's trials must survive the round trip");
    assert_eq!(from_mat.n_repeats, from_nwb.n_repeats);
    assert_eq!(from_mat.repeat_samples, from_nwb.repeat_samples);
    let same = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
    assert!(same(&from_mat.repeats, &from_nwb.repeats));
}

#[test]
fn an_export_never_overwrites_by_accident_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let ex = small_export(dir.path(), 12);
    let msg = export(&ex.tree, &ex.tree_dir, &ex.nwb_dir, false).unwrap_err().to_string();
    assert!(msg.contains("already exists") && msg.contains("--overwrite"), "{msg}");
    export(&ex.tree, &ex.tree_dir, &ex.nwb_dir, true).unwrap();
    let names: Vec<String> = std::fs::read_dir(&ex.nwb_dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), ex.tree.recordings.len(), "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".nwb")), "{names:?}");
}

#[test]
fn bad_inputs_get_errors_that_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    // Not HDF5 at all.
    let junk = dir.path().join("junk.nwb");
    std::fs::write(&junk, b"this is not an HDF5 file").unwrap();
    let e = v1_nwb::read_input(&junk).unwrap_err();
    assert!(matches!(e, NwbError::NotNwb { .. }), "{e}");
    assert!(e.to_string().contains("junk.nwb") && e.to_string().contains("HDF5"), "{e}");

    // HDF5 but not NWB; NWB of another major version; NWB without its tables.
    let plain = dir.path().join("plain.nwb");
    hdf5::File::create(&plain).unwrap().create_group("x").unwrap();
    let e = v1_nwb::read_input(&plain).unwrap_err();
    assert!(matches!(e, NwbError::NotNwb { .. }) && e.to_string().contains("NWBFile"), "{e}");

    let old = dir.path().join("old.nwb");
    nwb_root(&old, "1.0.6");
    let e = v1_nwb::read_input(&old).unwrap_err();
    assert!(matches!(e, NwbError::Version { .. }) && e.to_string().contains("1.0.6"), "{e}");

    let bare = dir.path().join("bare.nwb");
    nwb_root(&bare, "2.11.0");
    let e = v1_nwb::read_input(&bare).unwrap_err();
    assert!(matches!(e, NwbError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("missing") && e.to_string().contains("v1 export nwb"), "{e}");

    // A folder with no NWB files, and a path that does not exist.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = v1_nwb::read_input(&empty).unwrap_err();
    assert!(e.to_string().contains("no .nwb files"), "{e}");
    let e = v1_nwb::read_input(&dir.path().join("nowhere")).unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
}

#[test]
fn each_array_of_a_wide_field_tree_gets_its_own_ground_truth() {
    use v1_sim::{simulate, GroundTruth, Preset, SimConfig, WideField};
    let dir = tempfile::tempdir().unwrap();
    let (tree_dir, nwb_dir) = (dir.path().join("tree"), dir.path().join("nwb"));
    let mut cfg = SimConfig::preset(Preset::Wide, 4);
    (cfg.movies, cfg.segments, cfg.frames_per_segment, cfg.single_trial_files) = (1, 2, 20, 4);
    (cfg.repeat_movies, cfg.repeat_segments, cfg.progress) = (1, 1, false);
    cfg.wide = Some(WideField { arrays: [2, 1], ..WideField::default() });
    simulate(&tree_dir, &cfg).unwrap();
    let tree = neural_data::build::read_input(&tree_dir, true).unwrap();
    let (arrays, layout) = GroundTruth::load_arrays(&tree_dir).unwrap();
    assert!(layout.is_some());
    let truth_of = |subdir: &str| arrays.iter().find(|(s, _)| s == subdir).map(|(_, t)| t);
    let summary = v1_nwb::export_tree_with(&tree, truth_of, &nwb_dir, &v1_nwb::ExportOptions { overwrite: false, progress: false }).unwrap();
    assert_eq!(summary.files.len(), 2 * 5);
    let mut checked = 0;
    for (rec, f) in tree.recordings.iter().zip(&summary.files) {
        assert!(f.ground_truth, "{} has no ground truth", rec.name);
        let file = hdf5::File::open(&f.path).unwrap();
        let x: Vec<f64> = file.dataset("processing/simulated_ground_truth/receptive_fields/rf_center_x_px").unwrap().read_raw().unwrap();
        let own = &truth_of(&rec.subdir).unwrap().truth;
        for (&id, &got) in rec.electrodes.iter().zip(&x) {
            match own.electrodes[id as usize - 1].rf_center_px {
                Some([want, _]) => {
                    assert_eq!(got, want, "{} electrode {id}", rec.name);
                    // The other array's RFs lie in the other half of the frame.
                    assert_eq!(got >= 160.0, rec.subdir == "ac2", "{} electrode {id} at x {got}", rec.name);
                    checked += 1;
                }
                None => assert!(got.is_nan()),
            }
        }
    }
    assert!(checked > 50, "{checked}");
}
