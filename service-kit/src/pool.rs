//! Runs model inference off the async runtime, a bounded number at a time, fairly
//! across clients.
//!
//! `workers` threads of the pool's own run the jobs; at most `queue_depth` more wait for
//! a turn. A frame that finds the queue full is refused at once (the caller answers
//! `overloaded`), so a burst costs an error message instead of unbounded memory and
//! ever-growing latency.
//!
//! Fairness: every job belongs to a lane (a key the caller chooses: a browser connection,
//! a session). A lane runs one job at a time, may hold at most `per_lane` places (running
//! and waiting), and the workers take the lanes in turn, so a client that floods the
//! service waits behind its own frames, not in front of everyone else's: another client's
//! frame waits for at most one job per busy lane. Within a lane, jobs run first come,
//! first served.
//!
//! Dedicated threads rather than tokio's blocking pool: the blocking pool starts a new
//! thread whenever a job arrives before the last one's thread is back among the idle ones,
//! which on a busy machine happens again and again, and each new thread keeps an allocator
//! heap and inference buffers of its own. A fixed set of threads keeps memory flat.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Why a job was refused before it could wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overloaded {
    /// Every worker is busy and the queue is full.
    #[error("{waiting} frames are already waiting for {workers} workers; the frame was not processed. Send fewer frames per second, or give the service more --workers / --queue-depth")]
    Full { workers: usize, waiting: usize },
    /// This client's lane holds as many jobs as one client may.
    #[error("{max} frames from this client are already running or waiting; the frame was not processed. Wait for their answers before sending more")]
    Lane { max: usize },
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

/// One client's jobs.
#[derive(Default)]
struct Lane {
    waiting: VecDeque<Job>,
    running: bool,
    /// Places held: running, waiting, or admitted and not yet queued.
    held: usize,
    /// In the turn order now.
    in_turn: bool,
}

#[derive(Default)]
struct State {
    lanes: HashMap<u64, Lane>,
    /// Lanes with a job ready to run, in the order the workers serve them.
    turn: VecDeque<u64>,
    closed: bool,
}

impl State {
    /// Puts `key` in the turn order if it has a job waiting and none running.
    fn schedule(&mut self, key: u64) -> bool {
        let Some(lane) = self.lanes.get_mut(&key) else { return false };
        if lane.running || lane.in_turn || lane.waiting.is_empty() {
            return false;
        }
        lane.in_turn = true;
        self.turn.push_back(key);
        true
    }

    /// Forgets a lane with nothing left in it.
    fn tidy(&mut self, key: u64) {
        if self.lanes.get(&key).is_some_and(|l| l.held == 0 && !l.running && l.waiting.is_empty()) {
            self.lanes.remove(&key);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update finishes before anything can fail, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Closes the queue when the last [`Pool`] handle is dropped: the workers finish what
/// waits, then stop.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

#[derive(Clone)]
pub struct Pool {
    /// Admission: one permit per job running or waiting.
    admitted: Arc<Semaphore>,
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
    workers: usize,
    queue_depth: usize,
    per_lane: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers)
            .field("queue_depth", &self.queue_depth)
            .field("per_lane", &self.per_lane)
            .field("busy", &self.busy())
            .finish()
    }
}

/// A place in the queue, held from admission until the job finishes.
pub struct Ticket {
    admitted: OwnedSemaphorePermit,
    place: Place,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("lane", &self.place.key).finish()
    }
}

/// A lane's place; given back when dropped (after the job ran, or without running it).
/// It keeps the pool open: a job admitted before the last handle went still runs.
struct Place {
    shared: Arc<Shared>,
    key: u64,
    _open: Arc<Closer>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(lane) = state.lanes.get_mut(&self.key) {
            lane.held = lane.held.saturating_sub(1);
        }
        state.tidy(self.key);
    }
}

/// The lane of a key (a session id, a connection number).
pub fn lane_of(key: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl Pool {
    /// Starts `workers` threads (at least one), named `inference-N`; one lane may hold
    /// every place.
    pub fn new(workers: usize, queue_depth: usize) -> Self {
        Self::with_lane_limit(workers, queue_depth, usize::MAX)
    }

    /// Like [`Self::new`], with at most `per_lane` places (running and waiting) per lane.
    pub fn with_lane_limit(workers: usize, queue_depth: usize, per_lane: usize) -> Self {
        let workers = workers.max(1);
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), ready: Condvar::new() });
        for i in 0..workers {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new().name(format!("inference-{i}")).spawn(move || work(&shared));
            if let Err(e) = spawned {
                // Fewer threads than asked still serve every job, more slowly; none at all
                // shows as `Cancelled` on every job once the pool closes.
                tracing::error!("could not start inference worker {i}: {e}");
            }
        }
        Self {
            admitted: Arc::new(Semaphore::new(workers + queue_depth)),
            _closer: Arc::new(Closer(shared.clone())),
            shared,
            workers,
            queue_depth,
            per_lane: per_lane.max(1),
        }
    }

    /// Takes a place in `lane`'s queue (see [`lane_of`]), or fails at once when the lane
    /// or the queue is full.
    pub fn admit(&self, lane: u64) -> Result<Ticket, Overloaded> {
        let mut state = self.shared.lock();
        if state.lanes.get(&lane).is_some_and(|l| l.held >= self.per_lane) {
            return Err(Overloaded::Lane { max: self.per_lane });
        }
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            return Err(Overloaded::Full { workers: self.workers, waiting: self.queue_depth });
        };
        state.lanes.entry(lane).or_default().held += 1;
        drop(state);
        Ok(Ticket { admitted, place: Place { shared: self.shared.clone(), key: lane, _open: self._closer.clone() } })
    }

    /// Jobs running or waiting now.
    pub fn busy(&self) -> usize {
        (self.workers + self.queue_depth).saturating_sub(self.admitted.available_permits())
    }
}

/// A worker thread: takes the next lane in turn, runs its oldest job, puts the lane back
/// in turn if more wait; stops once the pool is closed and nothing waits.
fn work(shared: &Shared) {
    loop {
        let (key, job) = {
            let mut state = shared.lock();
            loop {
                if let Some(key) = state.turn.pop_front() {
                    let Some(lane) = state.lanes.get_mut(&key) else { continue };
                    lane.in_turn = false;
                    let Some(job) = lane.waiting.pop_front() else { continue };
                    lane.running = true;
                    break (key, job);
                }
                if state.closed {
                    return;
                }
                state = shared.ready.wait(state).unwrap_or_else(|p| p.into_inner());
            }
        };
        job();
        let mut state = shared.lock();
        if let Some(lane) = state.lanes.get_mut(&key) {
            lane.running = false;
        }
        if state.schedule(key) {
            shared.ready.notify_one();
        }
        state.tidy(key);
    }
}

impl Ticket {
    /// Queues `job` in its lane and waits for its result. The place in the queue is given
    /// back when the job has run, or is skipped because nobody waits for it any more (the
    /// caller's task was dropped before a worker took it).
    pub async fn run<T, F>(self, job: F) -> Result<T, JobFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Ticket { admitted, place } = self;
        let shared = place.shared.clone();
        let key = place.key;
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            if reply.is_closed() {
                return;
            }
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(job)).map_err(|panic| JobFailed::Panicked(panic_message(&*panic)));
            // The places are free before the caller hears the result.
            drop(admitted);
            drop(place);
            let _ = reply.send(outcome);
        });
        {
            let mut state = shared.lock();
            if state.closed {
                return Err(JobFailed::Cancelled);
            }
            state.lanes.entry(key).or_default().waiting.push_back(job);
            if state.schedule(key) {
                shared.ready.notify_one();
            }
        }
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
        let first = pool.admit(0).unwrap();
        let running = tokio::spawn(first.run(move || release_rx.recv().is_ok()));
        let second = pool.admit(0).unwrap();
        assert_eq!(pool.admit(0).unwrap_err(), Overloaded::Full { workers: 1, waiting: 1 });
        assert_eq!(pool.busy(), 2);
        release_tx.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        assert_eq!(second.run(|| 7).await.unwrap(), 7);
        assert_eq!(pool.busy(), 0);
        assert!(pool.admit(0).is_ok());
    }

    /// However many frames pass and however the machine is loaded, the jobs run on the
    /// same `workers` threads: each thread keeps its allocator heap and buffers, so a
    /// thread per burst would grow resident memory with every new thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_on_at_most_workers_threads() {
        let pool = Pool::new(2, 8);
        let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let mut callers = Vec::new();
        for c in 0..4u64 {
            let (pool, threads) = (pool.clone(), threads.clone());
            callers.push(tokio::spawn(async move {
                for _ in 0..300 {
                    let Ok(ticket) = pool.admit(lane_of(c)) else {
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
        let panicked = pool.admit(0).unwrap().run(|| -> u32 { panic!("a bug") }).await;
        assert_eq!(panicked, Err(JobFailed::Panicked("panicked: a bug".into())));
        assert_eq!(pool.admit(0).unwrap().run(|| 7).await, Ok(7));
        assert_eq!(pool.busy(), 0);
    }

    /// A job whose caller went away before a worker took it is not run, and its place in
    /// the queue comes back.
    #[tokio::test]
    async fn a_job_nobody_waits_for_is_skipped_and_frees_its_place() {
        let pool = Pool::new(1, 1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn(pool.admit(0).unwrap().run(move || release_rx.recv().is_ok()));
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let abandoned = tokio::spawn(pool.admit(0).unwrap().run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)));
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

    /// A lane that floods the pool is served in turn with the others: a job of another
    /// lane runs after at most one more of the flooder's, however many it queued first.
    #[tokio::test]
    async fn lanes_are_served_in_turn_so_a_flood_does_not_delay_others() {
        let pool = Pool::new(1, 64);
        let order = Arc::new(Mutex::new(Vec::new()));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        // Holds the only worker until the queue is set up.
        let blocker = tokio::spawn(pool.admit(lane_of("flood")).unwrap().run(move || release_rx.recv().is_ok()));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut jobs = Vec::new();
        for i in 0..20 {
            let order = order.clone();
            let ticket = pool.admit(lane_of("flood")).unwrap();
            jobs.push(tokio::spawn(ticket.run(move || order.lock().unwrap().push(format!("flood{i}")))));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        for i in 0..3 {
            let order = order.clone();
            let ticket = pool.admit(lane_of("calm")).unwrap();
            jobs.push(tokio::spawn(ticket.run(move || order.lock().unwrap().push(format!("calm{i}")))));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        release_tx.send(()).unwrap();
        assert!(blocker.await.unwrap().unwrap());
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        let order = order.lock().unwrap().clone();
        let position = |name: &str| order.iter().position(|o| o == name).unwrap();
        // The flooding lane just had its turn (the blocker), so the calm one goes first;
        // then the lanes alternate.
        assert_eq!(&order[..6], ["calm0", "flood0", "calm1", "flood1", "calm2", "flood2"], "{order:?}");
        assert!(position("calm2") < position("flood3"));
        assert_eq!(order.len(), 23);
        assert_eq!(pool.busy(), 0);
    }

    /// One lane holds at most `per_lane` places; others are still admitted, and the places
    /// come back as jobs finish.
    #[tokio::test]
    async fn a_lane_holds_at_most_its_share() {
        let pool = Pool::with_lane_limit(1, 16, 2);
        let a = pool.admit(1).unwrap();
        let b = pool.admit(1).unwrap();
        assert_eq!(pool.admit(1).unwrap_err(), Overloaded::Lane { max: 2 });
        assert!(pool.admit(1).unwrap_err().to_string().contains("Wait for their answers"));
        let other = pool.admit(2).unwrap();
        assert_eq!(a.run(|| 1).await, Ok(1));
        let c = pool.admit(1).unwrap();
        drop(b);
        assert_eq!(c.run(|| 3).await, Ok(3));
        assert_eq!(other.run(|| 2).await, Ok(2));
        assert_eq!(pool.busy(), 0);
        // The worker forgets a lane just after its last job answered.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !pool.shared.lock().lanes.is_empty() {
            assert!(std::time::Instant::now() < deadline, "finished lanes are never forgotten");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Jobs queued when the last handle goes still run; none is lost or left hanging.
    #[tokio::test]
    async fn dropping_the_pool_finishes_what_waits() {
        let pool = Pool::new(1, 4);
        let tickets: Vec<Ticket> = (0..3).map(|i| pool.admit(i).unwrap()).collect();
        drop(pool);
        for (i, t) in tickets.into_iter().enumerate() {
            assert_eq!(t.run(move || i).await, Ok(i));
        }
    }
}
