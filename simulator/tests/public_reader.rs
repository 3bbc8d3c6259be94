//! The simulated tree read by a public-style pvc-1 loader: scipy's `loadmat` at its
//! default options, fields indexed by position as well as by name, integer-typed counts
//! and ids, frame folders named from `values`, and the event times of every electrode
//! equal to what `neural-data`'s reader returns (`tests/public_reader.py`).
//!
//! Skips without scipy (printing why) unless `V1_REQUIRE_SCIPY` is set, like
//! `v1-mat`'s `mat_scipy.rs`.

#[path = "../../mat/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use neural_data::pvc1::{self, ConditionKind, Recording};
use serde_json::{json, Value};
use v1_sim::{simulate, Preset, SimConfig};

use common::scipy_available;

/// What the crate's reader returned for one recording, in the form the script compares.
fn expected(rec: &Recording) -> Value {
    let conditions: Vec<Value> = rec
        .conditions
        .iter()
        .map(|c| {
            let (symbols, values) = match &c.kind {
                ConditionKind::Movie { movie, segment } => (
                    vec!["movie_id".to_string(), "segment_id".to_string()],
                    vec![f64::from(*movie), f64::from(*segment)],
                ),
                ConditionKind::Other { symbols, values } => (symbols.clone(), values.clone()),
            };
            let repeats: Vec<Value> = c
                .repeats
                .iter()
                .map(|t| {
                    json!({
                        "tzero": t.tzero,
                        "time_tag": t.time_tag,
                        "times": t.electrodes.iter().map(|e| e.times.clone()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "symbols": symbols,
                "values": values,
                "condition": c.condition,
                "repeats": repeats,
            })
        })
        .collect();
    json!({ "electrodes": rec.electrodes, "conditions": conditions })
}

#[test]
fn a_public_pvc1_reader_reads_the_simulated_tree() {
    if !scipy_available("a_public_pvc1_reader_reads_the_simulated_tree") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::preset(Preset::Small, 11);
    cfg.progress = false;
    simulate(dir.path(), &cfg).expect("simulate Small");
    let tree_dir = pvc1::resolve_data_dir(dir.path()).unwrap();
    let tree = pvc1::read_tree(&tree_dir).expect("the crate reads its own tree");

    let mut by_file = serde_json::Map::new();
    for rec in &tree.recordings {
        let rel = format!("neurodata/{}/{}.mat", rec.subdir, rec.name);
        by_file.insert(rel, expected(rec));
    }
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, serde_json::to_vec(&by_file).unwrap()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/public_reader.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&tree_dir)
        .arg(&expected_path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "public_reader.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");

    // The script must have walked everything, not passed over an empty tree.
    let count = |k: &str| summary[k].as_u64().unwrap_or(0);
    let movie_conditions: usize = tree
        .recordings
        .iter()
        .map(|r| r.movie_conditions().count())
        .sum();
    let repeats: usize = tree
        .recordings
        .iter()
        .flat_map(|r| r.movie_conditions())
        .map(|(_, _, c)| c.repeats.len())
        .sum();
    let events: usize = tree
        .recordings
        .iter()
        .flat_map(|r| r.movie_conditions())
        .flat_map(|(_, _, c)| &c.repeats)
        .flat_map(|t| &t.electrodes)
        .map(|e| e.times.len())
        .sum();
    assert_eq!(count("files"), tree.recordings.len() as u64, "{summary}");
    assert_eq!(
        count("movie_conditions"),
        movie_conditions as u64,
        "{summary}"
    );
    assert!(
        count("skipped_conditions") >= 1,
        "no rseed condition was skipped: {summary}"
    );
    assert_eq!(count("repeats"), repeats as u64, "{summary}");
    assert_eq!(count("events"), events as u64, "{summary}");
    assert!(events > 1000, "{summary}");
    assert!(count("float_time_lists") > 0, "{summary}");
    assert_eq!(
        summary["frame_folders"].as_array().map(Vec::len),
        Some(tree.segments.len()),
        "{summary}"
    );
}
