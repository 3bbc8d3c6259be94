//! Start-up of the service binaries: logging, the inference thread setting, the async
//! runtime and the exit code.

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Sets up what every service binary needs before anything else runs: one numeric
/// thread per frame (unless `RAYON_NUM_THREADS` says otherwise) and `tracing` logs to
/// stderr filtered by `RUST_LOG` (default `info`).
///
/// One frame is a batch of one: threads inside a single tensor operation cost more than
/// they save, and frames already run in parallel on the workers. On 2 cores this took
/// p99 at 8 sessions x 30 fps from 115 ms to 32 ms. Call this first, before any thread
/// exists (the numeric backend reads the variable at every operation).
pub fn init() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Runs `start` on a multi-threaded runtime; an error is printed as `name: error` and
/// becomes a failing exit code.
pub fn run(name: &str, start: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(start) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
