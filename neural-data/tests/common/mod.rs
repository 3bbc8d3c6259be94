//! Helpers shared by the tests that check our files with scipy.

use std::io::Write;
use std::process::Command;

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
