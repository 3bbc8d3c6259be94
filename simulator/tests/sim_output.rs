//! What `simulate` promises about its output folder: the same bytes for the same seed,
//! no silent overwrite, no half-written dataset, photographs as a stimulus source, and
//! clear errors for bad configurations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use neural_data::pvc1;
use v1_sim::{simulate, GroundTruth, Preset, SimConfig, SimError};

fn quick(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::preset(Preset::Small, seed);
    cfg.frames_per_segment = 30;
    cfg.progress = false;
    cfg
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut cfg = quick(11);
    cfg.threads = 2;
    simulate(a.path(), &cfg).unwrap();
    cfg.threads = 1;
    simulate(b.path(), &cfg).unwrap();
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{} differs between runs of the same seed", k.display());
    }

    simulate(c.path(), &quick(12)).unwrap();
    let fc = files(c.path());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fc.keys().collect::<Vec<_>>(), "the layout does not depend on the seed");
    let differ = |pred: &dyn Fn(&Path) -> bool| fa.iter().filter(|(k, _)| pred(k)).filter(|(k, v)| fc[*k] != **v).count();
    let n_mat = fa.keys().filter(|k| k.extension().is_some_and(|e| e == "mat")).count();
    assert_eq!(differ(&|p| p.extension().is_some_and(|e| e == "mat")), n_mat, "every recording depends on the seed");
    assert!(differ(&|p| p.extension().is_some_and(|e| e == "jpeg")) > 100, "frames depend on the seed");
    assert!(differ(&|p| p.ends_with("rates.safetensors")) == 1 && differ(&|p| p.ends_with("truth.json")) == 1);
}

#[test]
fn refuses_to_overwrite_and_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = quick(3);
    simulate(dir.path(), &cfg).unwrap();
    match simulate(dir.path(), &cfg) {
        Err(SimError::AlreadyExists { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let mut again = quick(4);
    again.overwrite = true;
    simulate(dir.path(), &again).unwrap();
    assert_eq!(GroundTruth::load(dir.path()).unwrap().truth.seed, 4);
    let hidden: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(hidden.is_empty(), "staging left behind: {hidden:?}");

    // A tree without our completion marker (e.g. a downloaded pvc-1) is never touched.
    let foreign = tempfile::tempdir().unwrap();
    let data = foreign.path().join("crcns-ringach-data");
    std::fs::create_dir_all(data.join("neurodata")).unwrap();
    std::fs::write(data.join("neurodata/keep.txt"), b"precious").unwrap();
    match simulate(foreign.path(), &quick(3)) {
        Err(SimError::ForeignData { path }) => assert_eq!(path, data),
        other => panic!("expected ForeignData, got {other:?}"),
    }
    assert_eq!(std::fs::read(data.join("neurodata/keep.txt")).unwrap(), b"precious");
    match GroundTruth::load(foreign.path()) {
        Err(SimError::Incomplete { .. }) => {}
        other => panic!("expected Incomplete, got {other:?}"),
    }

    // A failing run (unusable images folder) leaves no staging folder either.
    let failing = tempfile::tempdir().unwrap();
    let mut bad = quick(3);
    bad.images_dir = Some(failing.path().join("no-such-folder"));
    assert!(matches!(simulate(failing.path(), &bad), Err(SimError::ImagesDir { .. })));
    assert_eq!(std::fs::read_dir(failing.path()).unwrap().count(), 0);
}

fn photo(path: &Path, base: [u8; 3]) {
    let img = RgbImage::from_fn(640, 400, |x, y| {
        let g = ((x / 40 + y / 40) % 2) as u8 * 60;
        Rgb([base[0].saturating_add(g), base[1].saturating_add(g), base[2].saturating_add(g)])
    });
    img.save(path).unwrap();
}

#[test]
fn photographs_as_stimuli() {
    let photos = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = quick(5);
    cfg.movies = 1;
    cfg.segments = 2;
    cfg.frames_per_segment = 6;
    cfg.repeats = 0;
    cfg.images_dir = Some(photos.path().to_path_buf());
    match simulate(out.path(), &cfg) {
        Err(SimError::NoImages { candidates: 0, .. }) => {}
        other => panic!("expected NoImages for an empty folder, got {other:?}"),
    }
    std::fs::write(photos.path().join("broken.jpg"), b"not a jpeg").unwrap();
    match simulate(out.path(), &cfg) {
        Err(SimError::NoImages { candidates: 1, detail, .. }) => assert!(detail.contains("broken.jpg"), "{detail}"),
        other => panic!("expected NoImages naming the unreadable file, got {other:?}"),
    }
    photo(&photos.path().join("a.png"), [150, 20, 20]);
    photo(&photos.path().join("b.png"), [20, 20, 150]);
    simulate(out.path(), &cfg).unwrap();
    let tree = pvc1::read_tree(out.path()).unwrap();
    let mut reds = 0;
    for s in 0..2 {
        let img = tree.segment(0, s).unwrap().load_frame(3).unwrap();
        let (r, b) = img.pixels().fold((0u64, 0u64), |(r, b), p| (r + p[0] as u64, b + p[2] as u64));
        assert!(r.max(b) > 2 * r.min(b), "segment {s} is not one of the photos");
        reds += (r > b) as usize;
    }
    assert_eq!(reds, 1, "each segment pans over its own photo");
    assert_eq!(GroundTruth::load(out.path()).unwrap().truth.stimulus, "photos");
}

#[test]
fn bad_configs_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let field_of = |cfg: SimConfig| match simulate(dir.path(), &cfg) {
        Err(SimError::Config { field, .. }) => field,
        other => panic!("expected a config error, got {other:?}"),
    };
    let mut c = quick(1);
    c.single_trial_files = 3;
    assert_eq!(field_of(c), "single_trial_files");
    let mut c = quick(1);
    c.repeat_segments = 9;
    assert_eq!(field_of(c), "repeat_segments");
    let mut c = quick(1);
    c.frames_per_segment = 0;
    assert_eq!(field_of(c), "frames_per_segment");
    let mut c = quick(1);
    c.population.c50 = [0.3, 0.1];
    assert_eq!(field_of(c), "population.c50");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing is written for a bad config");
}
