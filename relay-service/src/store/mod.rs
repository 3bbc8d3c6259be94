//! Where the relay keeps its sessions: the [`Store`] contract the handlers rely on, the
//! types every store shares, and [`SessionStore`], the store chosen by configuration
//! (`--session-store memory|redis`).
//!
//! # Layout
//! - [`memory`]: [`MemoryStore`] (default), everything in this process; one relay on its own.
//! - [`redis`]: [`RedisStore`], buffers, frame ids and the fan-out of new images in Redis,
//!   shared by every relay that uses the same Redis, prefix and secret, so that relays can
//!   run behind a load balancer and a session survives the loss of one of them.
//!
//! Both give the same guarantees to the handlers: a frame id is admitted once per
//! session, the buffer keeps the newest `--buffered-images` images, and a subscriber gets
//! the replay then the live images with no gap and no duplicate. What differs between
//! them and matters to a caller (how a frame in flight elsewhere is waited for, how often
//! housekeeping must run) is asked of the store through [`Store`], so no handler names a
//! backend.
//!
//! [`SessionStore`] is an enum rather than a trait object: there are exactly two
//! backends, the methods are async (a Redis round trip), and the in-memory calls stay
//! direct calls on the per-frame path, with no boxed future per frame.

pub mod memory;
pub mod redis;

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use shared_protocol::SessionId;
use tokio::sync::broadcast;

use crate::config::{Limits, StoreConfig};
pub use memory::MemoryStore;
pub use redis::{ConnectError, RedisStore};

/// A message already serialised as the text frame subscribers receive; cloning it is
/// cheap (reference-counted), so one image is never copied per subscriber.
pub type Text = axum::extract::ws::Utf8Bytes;

/// Frame ids remembered per session for de-duplication. The simulation-service keeps at
/// most this many unacknowledged frames by default, so a re-send after a reconnect
/// always falls inside the window.
pub const DEDUP_WINDOW: usize = 1024;

/// A session the store cannot take, or a store that cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the relay already holds {max} sessions (its --max-sessions limit); try again when idle sessions have expired")]
    Full { max: usize },
    #[error("client {client} already holds {max} live sessions (the relay's --max-sessions-per-client limit); reuse one, or wait until idle ones expire")]
    ClientLimit { client: IpAddr, max: usize },
    /// The shared session store (Redis) did not answer; the relay reconnects by itself.
    #[error("the session store at {store} is unavailable while {doing}: {why}; the relay keeps reconnecting, try again shortly")]
    Unavailable { store: String, doing: &'static str, why: String },
}

impl SessionError {
    /// The protocol's error code for this refusal.
    pub fn code(&self) -> shared_protocol::ErrorCode {
        use shared_protocol::ErrorCode;
        match self {
            SessionError::Full { .. } => ErrorCode::Overloaded,
            SessionError::ClientLimit { .. } => ErrorCode::BadSession,
            SessionError::Unavailable { .. } => ErrorCode::Unavailable,
        }
    }
}

/// What a session's live channel carries to its subscribers on this relay.
#[derive(Debug, Clone)]
pub enum Live {
    /// A new image. `seq` increases with every image of the session (in the Redis store,
    /// across relays), so that a subscriber drops a live image it already had in its
    /// replay.
    Image { seq: u64, json: Text },
    /// The link to the shared store broke: images published meanwhile reach this relay's
    /// subscribers only through a new replay.
    Interrupted,
}

/// Whether a frame is new or a re-send of one already accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Reconstruct it.
    New,
    /// Its image is made (or being made here): acknowledge it.
    Duplicate,
    /// Accepted by a relay (this one or another sharing the store) and not published
    /// yet: ask again shortly. Either it gets published (then it is a duplicate), or the
    /// relay that took it is gone and the frame is handed over (then it is new). Only the
    /// shared store answers this; in one process a frame in flight is simply a duplicate.
    Pending,
}

/// What publishing one image did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Live subscribers it was pushed to.
    pub subscribers: usize,
    /// Whether the buffer was full and its oldest image was dropped.
    pub dropped_oldest: bool,
}

/// A new subscription: the buffered images in frame order, then the live channel.
#[derive(Debug)]
pub struct Subscription {
    pub replay: Vec<Text>,
    pub live: broadcast::Receiver<Live>,
    /// Live images with a `seq` up to this one were part of the replay (or older than
    /// it) and are skipped.
    pub replayed_through: u64,
}

/// How a re-send of a frame in flight ([`Admission::Pending`]) is waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingWait {
    /// How often to ask the store again.
    pub poll: Duration,
    /// How long a frame may stay in flight before the store hands it over to the relay
    /// that asks; a caller still waiting well past it has a store that misbehaves.
    pub lease: Duration,
}

/// What the handlers need of a session store. Every method that may talk to another
/// process is async; a store that cannot answer says so with
/// [`SessionError::Unavailable`], never by panicking.
pub trait Store: Send + Sync {
    /// `"memory"` or `"redis"`, for `/healthz`.
    fn kind(&self) -> &'static str;

    /// The store for logs: its kind, and where it lives.
    fn describe(&self) -> String;

    /// How to wait for a frame that [`Store::admit`] answered [`Admission::Pending`].
    fn pending_wait(&self) -> PendingWait;

    /// The longest time between two [`Store::expire_idle`] rounds. A store shared with
    /// other relays also keeps its links and its watched sessions alive in those rounds,
    /// so it asks for them more often than the idle limit alone would.
    fn housekeeping_interval(&self) -> Duration;

    /// Registers a session issued to `client` by `POST /api/sessions`.
    fn issue(&self, id: SessionId, client: IpAddr, now: Instant) -> impl Future<Output = Result<(), SessionError>> + Send;

    /// Accepts a frame for reconstruction, or recognises a re-send of an accepted one.
    fn admit(&self, id: &SessionId, frame_id: Option<u64>, now: Instant) -> impl Future<Output = Result<Admission, SessionError>> + Send;

    /// An admitted frame could not be reconstructed: a re-send of it is tried again.
    fn abandon(&self, id: &SessionId, frame_id: Option<u64>) -> impl Future<Output = ()> + Send;

    /// Buffers an image and pushes it to the session's subscribers.
    fn publish(&self, id: &SessionId, frame_id: Option<u64>, json: Text, now: Instant) -> impl Future<Output = Result<Published, SessionError>> + Send;

    /// The session's buffered images in frame order, then its new images. A session the
    /// subscription (re)creates on this relay counts against `client`'s per-client limit.
    fn subscribe(&self, id: &SessionId, client: Option<IpAddr>, now: Instant) -> impl Future<Output = Result<Subscription, SessionError>> + Send;

    /// Forgets idle sessions (and keeps what the store shares with others alive).
    /// Returns how many this relay forgot.
    fn expire_idle(&self, now: Instant) -> impl Future<Output = usize> + Send;

    /// Sessions this relay holds now.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live subscribers on this relay.
    fn subscribers(&self) -> usize;
}

/// The relay's sessions, in memory or in Redis.
#[derive(Debug)]
pub enum SessionStore {
    Memory(MemoryStore),
    Redis(Box<RedisStore>),
}

impl SessionStore {
    /// The in-memory store with the relay's limits.
    pub fn memory(limits: &Limits) -> Self {
        Self::Memory(MemoryStore::new(
            limits.max_sessions,
            limits.max_sessions_per_client,
            limits.buffered_images,
            limits.session_idle,
        ))
    }

    /// The store `config` names; connects to Redis when it names Redis. `frames_out`
    /// counts images pushed to this relay's subscribers by the Redis fan-out.
    pub async fn open(config: &StoreConfig, limits: &Limits, frames_out: Counter) -> Result<Self, ConnectError> {
        match config {
            StoreConfig::Memory => Ok(Self::memory(limits)),
            StoreConfig::Redis(r) => Ok(Self::Redis(Box::new(RedisStore::connect(r, limits, frames_out).await?))),
        }
    }
}

/// Calls the same [`Store`] method on whichever backend the store holds.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            SessionStore::Memory($s) => $call,
            SessionStore::Redis(boxed) => {
                let $s: &RedisStore = boxed;
                $call
            }
        }
    };
}

impl Store for SessionStore {
    fn kind(&self) -> &'static str {
        dispatch!(self, s => Store::kind(s))
    }

    fn describe(&self) -> String {
        dispatch!(self, s => Store::describe(s))
    }

    fn pending_wait(&self) -> PendingWait {
        dispatch!(self, s => Store::pending_wait(s))
    }

    fn housekeeping_interval(&self) -> Duration {
        dispatch!(self, s => Store::housekeeping_interval(s))
    }

    async fn issue(&self, id: SessionId, client: IpAddr, now: Instant) -> Result<(), SessionError> {
        dispatch!(self, s => Store::issue(s, id, client, now).await)
    }

    async fn admit(&self, id: &SessionId, frame_id: Option<u64>, now: Instant) -> Result<Admission, SessionError> {
        dispatch!(self, s => Store::admit(s, id, frame_id, now).await)
    }

    async fn abandon(&self, id: &SessionId, frame_id: Option<u64>) {
        dispatch!(self, s => Store::abandon(s, id, frame_id).await)
    }

    async fn publish(&self, id: &SessionId, frame_id: Option<u64>, json: Text, now: Instant) -> Result<Published, SessionError> {
        dispatch!(self, s => Store::publish(s, id, frame_id, json, now).await)
    }

    async fn subscribe(&self, id: &SessionId, client: Option<IpAddr>, now: Instant) -> Result<Subscription, SessionError> {
        dispatch!(self, s => Store::subscribe(s, id, client, now).await)
    }

    async fn expire_idle(&self, now: Instant) -> usize {
        dispatch!(self, s => Store::expire_idle(s, now).await)
    }

    fn len(&self) -> usize {
        dispatch!(self, s => Store::len(s))
    }

    fn subscribers(&self) -> usize {
        dispatch!(self, s => Store::subscribers(s))
    }
}
