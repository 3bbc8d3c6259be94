//! `v1 inspect --coverage` draws every array's receptive fields: the planted ones when the
//! tree has the simulator's ground truth, the STA estimates when it has not.

use std::process::Command;

use v1_sim::{simulate, Preset, SimConfig, WideField};

#[test]
fn coverage_is_drawn_from_the_truth_or_from_the_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let mut cfg = SimConfig::preset(Preset::Wide, 2);
    (cfg.movies, cfg.segments, cfg.frames_per_segment, cfg.single_trial_files) = (1, 3, 60, 4);
    (cfg.repeat_movies, cfg.repeat_segments, cfg.progress) = (1, 1, false);
    cfg.wide = Some(WideField { arrays: [2, 1], ..WideField::default() });
    simulate(&tree, &cfg).unwrap();

    let inspect = |png: &std::path::Path| {
        let run = Command::new(env!("CARGO_BIN_EXE_v1"))
            .args(["inspect", "--data", tree.to_str().unwrap(), "--coverage", png.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        String::from_utf8_lossy(&run.stdout).to_string()
    };
    let planted = dir.path().join("planted.png");
    let out = inspect(&planted);
    assert!(out.contains("RF coverage (planted RFs)"), "{out}");
    let img = image::open(&planted).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (960, 816));

    // Without the ground truth (as on real data): the RF centres the STAs give.
    std::fs::remove_dir_all(tree.join("ground_truth")).unwrap();
    let estimated = dir.path().join("estimated.png");
    let out = inspect(&estimated);
    assert!(out.contains("RF coverage (estimated RF centres)"), "{out}");
    assert!(image::open(&estimated).is_ok());
}
