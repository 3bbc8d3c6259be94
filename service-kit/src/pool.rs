//! Runs model inference off the async runtime, a bounded number at a time.
//!
//! `workers` threads of the pool's own run the jobs; at most `queue_depth` more wait for
//! a turn. A frame that finds the queue full is refused at once (the caller answers
//! `overloaded`), so a burst costs an error message instead of unbounded memory and
//! ever-growing latency. Waiting jobs are served first come, first served.
//!
//! Dedicated threads rather than tokio's blocking pool: the blocking pool starts a new
//! thread whenever a job arrives before the last one's thread is back among the idle ones,
//! which on a busy machine happens again and again, and each new thread keeps an allocator
//! heap and inference buffers of its own (a relay under load went from 15 to 21 threads
//! and 85 to 150 MiB resident). A fixed set of threads keeps memory flat.

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// The queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{waiting} frames are already waiting for {workers} workers; the frame was not processed. Send fewer frames per second, or give the service more --workers / --queue-depth")]
pub struct Overloaded {
    pub workers: usize,
    pub waiting: usize,
}

/// A job that did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFailed {
    /// It panicked: a bug, reported to the sender as `internal`.
    #[error("the worker running this frame failed: {0}")]
    Panicked(String),
    /// The pool's threads were gone before it ran: the service is going away, and that is
    /// no verdict on the frame. Callers send nothing back, so the frame stays
    /// unacknowledged and its sender re-sends it to the next instance.
    #[error("the service is shutting down; the frame was not processed")]
    Cancelled,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug, Clone)]
pub struct Pool {
    /// Admission: one permit per job running or waiting.
    admitted: Arc<Semaphore>,
    /// To the worker threads; they end when the last clone of the pool is dropped.
    jobs: mpsc::Sender<Job>,
    workers: usize,
    queue_depth: usize,
}

/// A place in the queue, held from admission until the job finishes.
#[derive(Debug)]
pub struct Ticket {
    admitted: OwnedSemaphorePermit,
    jobs: mpsc::Sender<Job>,
}

impl Pool {
    /// Starts `workers` threads (at least one), named `inference-N`.
    pub fn new(workers: usize, queue_depth: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..workers {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("inference-{i}")).spawn(move || loop {
                // The lock is held only while waiting for the next job, not while it runs.
                let next = match queue.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                match next {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
            if let Err(e) = spawned {
                // Fewer threads than asked still serve every job, more slowly; none at all
                // shows as `Cancelled` on every job.
                tracing::error!("could not start inference worker {i}: {e}");
            }
        }
        Self { admitted: Arc::new(Semaphore::new(workers + queue_depth)), jobs, workers, queue_depth }
    }

    /// Takes a place in the queue, or fails at once when it is full.
    pub fn admit(&self) -> Result<Ticket, Overloaded> {
        match self.admitted.clone().try_acquire_owned() {
            Ok(p) => Ok(Ticket { admitted: p, jobs: self.jobs.clone() }),
            Err(_) => Err(Overloaded { workers: self.workers, waiting: self.queue_depth }),
        }
    }

    /// Jobs running or waiting now.
    pub fn busy(&self) -> usize {
        (self.workers + self.queue_depth).saturating_sub(self.admitted.available_permits())
    }
}

impl Ticket {
    /// Queues `job` for a worker thread and waits for its result. The place in the queue
    /// is given back when the job has run, or is skipped because nobody waits for it any
    /// more (the caller's task was dropped before a worker took it).
    pub async fn run<T, F>(self, job: F) -> Result<T, JobFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Ticket { admitted, jobs } = self;
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            if reply.is_closed() {
                return;
            }
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(job)).map_err(|panic| JobFailed::Panicked(panic_message(&*panic)));
            // The place is free before the caller hears the result.
            drop(admitted);
            let _ = reply.send(outcome);
        });
        jobs.send(job).map_err(|_| JobFailed::Cancelled)?;
        result.await.map_err(|_| JobFailed::Cancelled)?
    }
}

/// The message a panic carried, as the standard library prints it.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    format!("panicked: {}", text.unwrap_or_else(|| "(no message)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_beyond_workers_plus_queue_and_recovers() {
        let pool = Pool::new(1, 1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = pool.admit().unwrap();
        let running = tokio::spawn(first.run(move || release_rx.recv().is_ok()));
        let second = pool.admit().unwrap();
        assert_eq!(pool.admit().unwrap_err(), Overloaded { workers: 1, waiting: 1 });
        assert_eq!(pool.busy(), 2);
        release_tx.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        assert_eq!(second.run(|| 7).await.unwrap(), 7);
        assert_eq!(pool.busy(), 0);
        assert!(pool.admit().is_ok());
    }

    /// However many frames pass and however the machine is loaded, the jobs run on the
    /// same `workers` threads: each thread keeps its allocator heap and buffers, so a
    /// thread per burst would grow resident memory with every new thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_on_at_most_workers_threads() {
        let pool = Pool::new(2, 8);
        let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let mut callers = Vec::new();
        for _ in 0..4 {
            let (pool, threads) = (pool.clone(), threads.clone());
            callers.push(tokio::spawn(async move {
                for _ in 0..300 {
                    let Ok(ticket) = pool.admit() else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    let threads = threads.clone();
                    ticket
                        .run(move || {
                            threads.lock().unwrap().insert(std::thread::current().id());
                            std::hint::black_box((0..2_000u64).sum::<u64>())
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for c in callers {
            c.await.unwrap();
        }
        let n = threads.lock().unwrap().len();
        assert!((1..=2).contains(&n), "jobs ran on {n} threads with 2 workers");
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_its_worker_goes_on() {
        let pool = Pool::new(1, 0);
        let panicked = pool.admit().unwrap().run(|| -> u32 { panic!("a bug") }).await;
        assert_eq!(panicked, Err(JobFailed::Panicked("panicked: a bug".into())));
        assert_eq!(pool.admit().unwrap().run(|| 7).await, Ok(7));
        assert_eq!(pool.busy(), 0);
    }

    /// A job whose caller went away before a worker took it is not run, and its place in
    /// the queue comes back.
    #[tokio::test]
    async fn a_job_nobody_waits_for_is_skipped_and_frees_its_place() {
        let pool = Pool::new(1, 1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn(pool.admit().unwrap().run(move || release_rx.recv().is_ok()));
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let abandoned = tokio::spawn(pool.admit().unwrap().run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)));
        tokio::task::yield_now().await;
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        release_tx.send(()).unwrap();
        assert!(blocker.await.unwrap().unwrap());
        // The skipped job's place is back once the worker has passed it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pool.busy() > 0 {
            assert!(std::time::Instant::now() < deadline, "the abandoned job's place never came back");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "a job nobody waited for was run");
    }
}
