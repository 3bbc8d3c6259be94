//! Every setting of the relay in one validated struct, [`RelayConfig`], and every limit in
//! [`Limits`]. The binary fills them from flags and environment variables; tests build
//! them directly. Nothing here reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shared_protocol::{OriginPolicy, SharedSecret};

/// The relay's limits. Each one exists to bound memory or work that a client controls.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest WebSocket message, bytes (larger ones close the socket with 1009). A
    /// `waveform_latent` of 65,536 values is about 800 KB of JSON.
    pub max_message_bytes: usize,
    /// Messages per second one `/ws/ingest` connection may send; it carries the frames of
    /// every session of a simulation-service.
    pub ingest_messages_per_second: u32,
    /// Messages per second one `/ws/subscribe` connection may send.
    pub subscribe_messages_per_second: u32,
    /// Sessions the relay holds at once (issued or seen on ingest).
    pub max_sessions: usize,
    /// Sessions `POST /api/sessions` issues to one client address that are still alive.
    pub max_sessions_per_client: usize,
    /// Subscriptions one `/ws/subscribe` connection may hold.
    pub max_subscriptions_per_connection: usize,
    /// Reconstructions kept per session for late subscribers; the oldest is dropped.
    pub buffered_images: usize,
    /// A session with no frames and no subscribers for this long is forgotten.
    pub session_idle: Duration,
    /// Reconstructions waiting for a worker before new frames are refused (`overloaded`).
    pub queue_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
            ingest_messages_per_second: 2000,
            subscribe_messages_per_second: 20,
            max_sessions: 1024,
            max_sessions_per_client: 64,
            max_subscriptions_per_connection: 8,
            buffered_images: 64,
            session_idle: Duration::from_secs(600),
            queue_depth: 64,
        }
    }
}

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Where it listens (used for logs and to admit its own origin; the listener itself
    /// is passed to [`crate::run`]).
    pub bind: SocketAddr,
    /// The model directory (`model.json` + `weights.safetensors`).
    pub model_dir: PathBuf,
    /// The built frontend, served at `/`.
    pub static_dir: PathBuf,
    /// Shared with the simulation-services: session tokens and `/ws/ingest` bearer.
    pub secret: SharedSecret,
    /// Which pages may open WebSockets.
    pub origins: OriginPolicy,
    /// Threads that run reconstructions.
    pub workers: usize,
    /// JPEG quality of reconstructions (1–100).
    pub jpeg_quality: u8,
    /// Side of the JPEG sent to browsers; the model's crop is upscaled to it so that the
    /// page shows it crisp without relying on browser smoothing.
    pub display_size: u32,
    /// How long shutdown waits for in-flight frames and sockets to finish.
    pub drain_timeout: Duration,
    pub limits: Limits,
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is {got}; it must be between {min} and {max}")]
    OutOfRange { name: &'static str, got: u64, min: u64, max: u64 },
}

fn range(name: &'static str, got: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange { name, got, min, max })
    }
}

impl RelayConfig {
    /// Checks every number before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        range("workers", self.workers as u64, 1, 256)?;
        range("jpeg quality", u64::from(self.jpeg_quality), 1, 100)?;
        range("display size", u64::from(self.display_size), 8, 2048)?;
        range("max message bytes", l.max_message_bytes as u64, 1024, 64 * 1024 * 1024)?;
        range("ingest messages per second", u64::from(l.ingest_messages_per_second), 1, 1_000_000)?;
        range("subscribe messages per second", u64::from(l.subscribe_messages_per_second), 1, 1_000_000)?;
        range("max sessions", l.max_sessions as u64, 1, 10_000_000)?;
        range("max sessions per client", l.max_sessions_per_client as u64, 1, 10_000_000)?;
        range("max subscriptions per connection", l.max_subscriptions_per_connection as u64, 1, 1024)?;
        range("buffered images", l.buffered_images as u64, 1, 100_000)?;
        range("session idle seconds", l.session_idle.as_secs(), 1, 365 * 24 * 3600)?;
        range("queue depth", l.queue_depth as u64, 1, 1_000_000)?;
        Ok(())
    }
}
