//! Progress of a long command where its bar is not enough: a line a minute on stderr when
//! stderr is not a terminal (logs of `make up`, a container, CI), where indicatif draws
//! nothing; a spinner for commands whose library code has no bar; and, for the commands
//! that prepare a data root, the preparation file a running simulation-service reads to
//! say how far Recorded mode is ([`models::recorded::Preparation`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use models::recorded::Preparation;

/// How often the preparation file is rewritten: well within its staleness limit.
const TICK: Duration = Duration::from_secs(1);
/// How often a line is written where no bar is drawn.
const LINE_EVERY: Duration = Duration::from_secs(60);

/// What a reporter reports on.
pub struct Job {
    /// The command, for the lines (`simulate`, `build`, ...).
    pub command: &'static str,
    /// The step in words, for the lines and the preparation file.
    pub phase: &'static str,
    /// The data root being prepared, whose preparation file this job keeps up to date.
    pub prepares: Option<PathBuf>,
    /// Draw a spinner on a terminal: the library code of this command has no bar.
    pub spinner: bool,
}

/// Reports on a job from its own thread until [`Reporter::finish`].
pub struct Reporter {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
    prepares: Option<PathBuf>,
    phase: &'static str,
}

impl Reporter {
    pub fn start(job: Job) -> Self {
        let (stop, stopped) = mpsc::channel();
        let (prepares, phase) = (job.prepares.clone(), job.phase);
        let thread = std::thread::Builder::new().name("progress".into()).spawn(move || report(&job, &stopped)).ok();
        Self { stop, thread, prepares, phase }
    }

    /// Stops reporting. A data root left ready for the next step (`v1 simulate` before
    /// `v1 build`) keeps its preparation file at 100% until that step takes it over or it
    /// goes stale; otherwise the file is removed.
    pub fn finish(mut self, keep_preparing: bool) {
        self.stop_thread();
        if let Some(root) = self.prepares.take() {
            let done = if keep_preparing { Preparation::new(self.phase, 100).write(&root) } else { Preparation::remove(&root) };
            if let Err(e) = done {
                eprintln!("warning: cannot update the preparation file in {}: {e}", root.display());
            }
        }
    }

    fn stop_thread(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Reporter {
    /// A job that failed (an early return) leaves no preparation file that claims it is
    /// still at work.
    fn drop(&mut self) {
        self.stop_thread();
        if let Some(root) = self.prepares.take() {
            let _ = Preparation::remove(&root);
        }
    }
}

fn report(job: &Job, stopped: &mpsc::Receiver<()>) {
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let spinner = (job.spinner && terminal).then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_style(indicatif::ProgressStyle::with_template("{spinner} v1 {msg}, {elapsed}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
        s.set_message(format!("{}: {}", job.command, job.phase));
        s.enable_steady_tick(Duration::from_millis(200));
        s
    });
    let mut last_line = Instant::now();
    let mut warned = false;
    // Between bars (the work after the last one) the step is as far as the last bar said.
    let mut percent = 0u8;
    loop {
        let detail = match neural_data::progress::latest() {
            Some(bar) => {
                let (pos, len) = (bar.position(), bar.length().unwrap_or(0));
                percent = (pos.min(len) * 100).checked_div(len).unwrap_or(0) as u8;
                let message = bar.message();
                format!("{}{pos}/{len} ({percent}%)", if message.is_empty() { String::new() } else { format!("{message} ") })
            }
            None => String::new(),
        };
        if let Some(root) = &job.prepares {
            if let Err(e) = Preparation::new(job.phase, percent).write(root) {
                if !warned {
                    eprintln!("warning: cannot write the preparation file in {}: {e}", root.display());
                    warned = true;
                }
            }
        }
        if !terminal && last_line.elapsed() >= LINE_EVERY {
            last_line = Instant::now();
            eprintln!("v1 {}: {}{}, {} elapsed", job.command, job.phase, if detail.is_empty() { String::new() } else { format!(": {detail}") }, minutes(started.elapsed()));
        }
        if stopped.recv_timeout(TICK) != Err(mpsc::RecvTimeoutError::Timeout) {
            break;
        }
    }
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
}

/// `7 min 05 s`, `42 s`.
fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_time_reads_in_minutes_and_seconds() {
        assert_eq!(minutes(Duration::from_secs(42)), "42 s");
        assert_eq!(minutes(Duration::from_secs(425)), "7 min 05 s");
    }

    #[test]
    fn a_preparing_job_keeps_its_file_until_it_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let job = Job { command: "build", phase: "building the cache", prepares: Some(root.clone()), spinner: false };
        let reporter = Reporter::start(job);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Preparation::read(&root).is_none() {
            assert!(Instant::now() < deadline, "no preparation file written");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(Preparation::read(&root).unwrap().phase, "building the cache");
        reporter.finish(false);
        assert_eq!(Preparation::read(&root), None, "removed when the job is done");

        let kept = Reporter::start(Job { command: "simulate", phase: "simulating the dataset", prepares: Some(root.clone()), spinner: false });
        while Preparation::read(&root).is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        kept.finish(true);
        assert_eq!(Preparation::read(&root).map(|p| p.percent), Some(100), "left, done, for the next step");

        let failed = Reporter::start(Job { command: "build", phase: "building the cache", prepares: Some(root.clone()), spinner: false });
        drop(failed);
        assert_eq!(Preparation::read(&root), None, "a failed job leaves no claim that it is at work");
    }
}
