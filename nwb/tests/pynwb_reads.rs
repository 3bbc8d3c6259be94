//! The exported files as the field reads them: pynwb opens every file of a small simulated
//! tree and its spike times, electrodes, trials and frame references equal the `.mat`
//! files read independently with scipy; nwbinspector reports nothing critical
//! (`tests/pynwb_check.py`).
//!
//! Runs with the Python of `.venv-nwb/` at the workspace root (made by
//! `scripts/install-deps.sh`: pinned pynwb, nwbinspector and scipy) or of `V1_NWB_PYTHON`.
//! Skips, saying why, when neither has them, unless `V1_REQUIRE_PYNWB` is set (CI sets it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("V1_NWB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-nwb/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import pynwb, nwbinspector, scipy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("V1_REQUIRE_PYNWB").is_none(),
        "V1_REQUIRE_PYNWB is set but {} cannot import pynwb, nwbinspector and scipy; run scripts/install-deps.sh",
        candidate.display()
    );
    let _ = writeln!(
        std::io::stderr(),
        "pynwb_reads: skipped: no Python with pynwb at {} (scripts/install-deps.sh makes it)",
        candidate.display()
    );
    None
}

#[test]
fn pynwb_reads_the_exported_files_as_the_mat_files_say_and_nwbinspector_finds_no_error() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let common::Exported { tree_dir, nwb_dir, tree, summary } = common::small_export(dir.path(), 21);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pynwb_check.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&tree_dir)
        .arg(&nwb_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pynwb_check.py failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = report["files"].as_u64().unwrap() as usize;
    assert_eq!(files, tree.recordings.len());
    assert_eq!(
        report["ground_truth_files"].as_u64().unwrap() as usize,
        files
    );
    let spikes: usize = summary.files.iter().map(|f| f.spikes).sum();
    assert!(spikes > 1000);
    assert_eq!(report["spikes"].as_u64().unwrap() as usize, spikes);
    assert!(report["frame_refs"].as_u64().unwrap() > 0);
}
