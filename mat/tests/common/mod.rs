//! Helpers shared by the tests that check our files with scipy. The tests of `neural-data`
//! and `v1-sim` include this file too (by path), so that there is one copy; each test
//! binary uses only part of it.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `true` when `python3` can import scipy; otherwise prints why the calling test skips
/// (or panics when the environment variable `V1_REQUIRE_SCIPY` is set, as CI does).
pub fn scipy_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import scipy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("V1_REQUIRE_SCIPY").is_none(),
            "{test}: V1_REQUIRE_SCIPY is set but `python3 -c 'import scipy'` fails; install it with `pip install scipy`"
        );
        // Written past the test harness's output capture, so the skip shows in every log.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: scipy not installed (pip install scipy to run this check)"
        );
    }
    ok
}

/// `tests/scipy_check.py` of the `v1-mat` crate, found from whichever crate's tests run
/// (the crates are siblings in the workspace).
pub fn scipy_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mat/tests/scipy_check.py")
}

/// Runs `scipy_check.py MODE PATH` and returns the JSON it prints.
pub fn run_script(mode: &str, path: &Path) -> Value {
    let out = Command::new("python3")
        .arg(scipy_script())
        .arg(mode)
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "scipy_check.py {mode} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scipy_check.py prints JSON")
}

pub fn as_f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

pub fn shape(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("shape")
        .iter()
        .map(|x| x.as_u64().expect("dim"))
        .collect()
}
