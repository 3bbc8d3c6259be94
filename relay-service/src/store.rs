//! [`SessionStore`]: where the relay keeps sessions, chosen by configuration
//! (`--session-store memory|redis`).
//!
//! - [`MemoryStore`] (default): everything in this process; one relay on its own.
//! - [`RedisStore`]: buffers, frame ids and the fan-out of new images in Redis, shared
//!   by every relay that uses the same Redis, prefix and secret, so that relays can
//!   run behind a load balancer and a session survives the loss of one of them.
//!
//! The store is an enum rather than a trait object: there are exactly two backends, the
//! methods are async (a Redis round trip), and the in-memory calls stay direct calls on
//! the per-frame path. Both give the same guarantees to the handlers: a frame id is
//! admitted once per session, the buffer keeps the newest `--buffered-images` images,
//! and a subscriber gets the replay then the live images with no gap and no duplicate.

use std::net::IpAddr;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use shared_protocol::SessionId;

use crate::config::{Limits, StoreConfig};
use crate::redis_store::{ConnectError, RedisStore};
pub use crate::sessions::MemoryStore;
use crate::sessions::{Admission, Published, SessionError, Subscription, Text};

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

    /// `"memory"` or `"redis"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }

    /// The store for logs: its kind, and for Redis the URL (without password) and prefix.
    pub fn describe(&self) -> String {
        match self {
            Self::Memory(_) => "memory (this relay only)".to_owned(),
            Self::Redis(r) => r.describe(),
        }
    }

    /// Registers a session issued to `client` by `POST /api/sessions`.
    pub async fn issue(&self, id: SessionId, client: IpAddr, now: Instant) -> Result<(), SessionError> {
        match self {
            Self::Memory(m) => m.issue(id, client, now),
            Self::Redis(r) => r.issue(id, client, now).await,
        }
    }

    /// Accepts a frame for reconstruction, or recognises a re-send of an accepted one.
    pub async fn admit(&self, id: &SessionId, frame_id: Option<u64>, now: Instant) -> Result<Admission, SessionError> {
        match self {
            Self::Memory(m) => m.admit(id, frame_id, now),
            Self::Redis(r) => r.admit(id, frame_id, now).await,
        }
    }

    /// An admitted frame could not be reconstructed: a re-send of it is tried again.
    pub async fn abandon(&self, id: &SessionId, frame_id: Option<u64>) {
        match self {
            Self::Memory(m) => m.abandon(id, frame_id),
            Self::Redis(r) => r.abandon(id, frame_id).await,
        }
    }

    /// Buffers an image and pushes it to the session's subscribers.
    pub async fn publish(&self, id: &SessionId, frame_id: Option<u64>, json: Text, now: Instant) -> Result<Published, SessionError> {
        match self {
            Self::Memory(m) => Ok(m.publish(id, frame_id, json, now)),
            Self::Redis(r) => r.publish(id, frame_id, json, now).await,
        }
    }

    /// The session's buffered images in frame order, then its new images. A session the
    /// subscription (re)creates on this relay counts against `client`'s per-client limit.
    pub async fn subscribe(&self, id: &SessionId, client: Option<IpAddr>, now: Instant) -> Result<Subscription, SessionError> {
        match self {
            Self::Memory(m) => m.subscribe(id, client, now),
            Self::Redis(r) => r.subscribe(id, client, now).await,
        }
    }

    /// Forgets idle sessions (and, for Redis, keeps the watched ones alive there).
    /// Returns how many this relay forgot.
    pub async fn expire_idle(&self, now: Instant) -> usize {
        match self {
            Self::Memory(m) => m.expire_idle(now),
            Self::Redis(r) => r.expire_idle(now).await,
        }
    }

    /// Sessions this relay holds now.
    pub fn len(&self) -> usize {
        match self {
            Self::Memory(m) => m.len(),
            Self::Redis(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live subscribers on this relay.
    pub fn subscribers(&self) -> usize {
        match self {
            Self::Memory(m) => m.subscribers(),
            Self::Redis(r) => r.subscribers(),
        }
    }
}
