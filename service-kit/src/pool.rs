//! Runs model inference off the async runtime, a bounded number at a time.
//!
//! `workers` jobs run at once on tokio's blocking threads; at most `queue_depth` more
//! wait for a turn. A frame that finds the queue full is refused at once (the caller
//! answers `overloaded`), so a burst costs an error message instead of unbounded memory
//! and ever-growing latency. Waiting jobs are served first come, first served.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// The runtime shut down and dropped it before it ran: the service is going away, and
    /// that is no verdict on the frame. Callers send nothing back, so the frame stays
    /// unacknowledged and its sender re-sends it to the next instance.
    #[error("the service is shutting down; the frame was not processed")]
    Cancelled,
}

impl From<tokio::task::JoinError> for JobFailed {
    fn from(e: tokio::task::JoinError) -> Self {
        if e.is_cancelled() {
            Self::Cancelled
        } else {
            Self::Panicked(e.to_string())
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pool {
    /// Admission: one permit per job running or waiting.
    admitted: Arc<Semaphore>,
    /// Execution: one permit per job running.
    running: Arc<Semaphore>,
    workers: usize,
    queue_depth: usize,
}

/// A place in the queue, held from admission until the job finishes.
#[derive(Debug)]
pub struct Ticket {
    _admitted: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

impl Pool {
    pub fn new(workers: usize, queue_depth: usize) -> Self {
        let workers = workers.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(workers + queue_depth)),
            running: Arc::new(Semaphore::new(workers)),
            workers,
            queue_depth,
        }
    }

    /// Takes a place in the queue, or fails at once when it is full.
    pub fn admit(&self) -> Result<Ticket, Overloaded> {
        match self.admitted.clone().try_acquire_owned() {
            Ok(p) => Ok(Ticket { _admitted: p, running: self.running.clone() }),
            Err(_) => Err(Overloaded { workers: self.workers, waiting: self.queue_depth }),
        }
    }

    /// Jobs running or waiting now.
    pub fn busy(&self) -> usize {
        (self.workers + self.queue_depth).saturating_sub(self.admitted.available_permits())
    }
}

impl Ticket {
    /// Waits for a worker, then runs `job` on a blocking thread.
    pub async fn run<T, F>(self, job: F) -> Result<T, JobFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // The semaphore is never closed; were it, no job could run any more.
        let running = self.running.clone().acquire_owned().await.map_err(|_| JobFailed::Cancelled)?;
        let result = tokio::task::spawn_blocking(move || {
            let _running = running;
            job()
        })
        .await;
        drop(self);
        result.map_err(JobFailed::from)
    }
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

    #[tokio::test]
    async fn a_cancelled_job_is_told_apart_from_a_panicked_one() {
        let cancelled = tokio::spawn(std::future::pending::<()>());
        cancelled.abort();
        assert_eq!(JobFailed::from(cancelled.await.unwrap_err()), JobFailed::Cancelled);
        let panicked = Pool::new(1, 0).admit().unwrap().run(|| panic!("a bug")).await;
        assert!(matches!(&panicked, Err(JobFailed::Panicked(m)) if m.contains("panicked")), "{panicked:?}");
    }
}
