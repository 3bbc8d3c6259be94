//! Every setting of the relay in one validated struct, [`RelayConfig`], and every limit in
//! [`Limits`]; where sessions live in [`StoreConfig`] (kept apart so that a relay built
//! from a `RelayConfig` alone is the single-instance relay with its in-memory store).
//! The binary fills them from flags and environment variables; tests build them
//! directly. Nothing here reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use service_kit::config::{range, OutOfRange};
use service_kit::serve::NetLimits;
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
    /// Connections, header-read and idle timeouts (see [`NetLimits`]).
    pub net: NetLimits,

    // --- session tokens ---
    /// Lifetime of the tokens the relay issues and renews (`--token-ttl-secs`): how long
    /// a leaked token stays usable. Pages renew theirs at half of it.
    pub token_ttl: Duration,
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
            net: NetLimits::default(),
            token_ttl: shared_protocol::DEFAULT_TOKEN_TTL,
        }
    }
}

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Where it listens (used for logs and to admit its own origin; the listener itself
    /// is passed to [`crate::run`]).
    pub bind: SocketAddr,
    /// The model directory (`model.json` + `weights.safetensors`): the pvc-1 array's
    /// population, which reconstructs every latent without `population` (or with `"pvc1"`).
    pub model_dir: PathBuf,
    /// The wide-field population's model directory, for latents with `population:
    /// "wide"`; without it they are refused (`unavailable`).
    pub wide_model_dir: Option<PathBuf>,
    /// Where the networks run (`--device`): the CPU, or a GPU in a build with the `cuda`
    /// feature.
    pub device: models::DeviceChoice,
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

/// Where the relay keeps its sessions (buffers, frame ids, subscribers' fan-out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreConfig {
    /// In this process: one relay on its own (the default).
    #[default]
    Memory,
    /// In Redis, shared by every relay given the same URL, prefix and secret.
    Redis(RedisConfig),
}

/// Default Redis URL of `--redis-url`.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";
/// Default key prefix of `--redis-prefix`.
pub const DEFAULT_REDIS_PREFIX: &str = "v1:";

/// The Redis that relays share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` (`redis+unix:///path` for a socket).
    pub url: String,
    /// Prefix of every key and channel, so that several systems can share one Redis.
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { url: DEFAULT_REDIS_URL.to_owned(), prefix: DEFAULT_REDIS_PREFIX.to_owned() }
    }
}

impl StoreConfig {
    /// Checks the URL's scheme and the prefix before connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let StoreConfig::Redis(r) = self else { return Ok(()) };
        let scheme_ok = ["redis://", "redis+unix://", "unix://"].iter().any(|s| r.url.starts_with(s));
        if !scheme_ok {
            return Err(ConfigError::RedisUrl { url: redact(&r.url) });
        }
        let prefix_ok = (1..=64).contains(&r.prefix.len()) && r.prefix.chars().all(|c| c.is_ascii_graphic());
        if !prefix_ok {
            return Err(ConfigError::RedisPrefix { prefix: r.prefix.clone() });
        }
        Ok(())
    }
}

/// `redis://user:secret@host` -> `redis://user:***@host`, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
    #[error("--redis-url {url:?} is not a Redis URL; use redis://host:port/ (for example redis://127.0.0.1:6379/) or redis+unix:///path/to/socket; this build has no TLS (rediss://)")]
    RedisUrl { url: String },
    #[error("--redis-prefix {prefix:?} must be 1 to 64 printable ASCII characters without spaces (for example v1:)")]
    RedisPrefix { prefix: String },
}

impl RelayConfig {
    /// The largest message the relay sends: a `reconstructed_image` whose JPEG is at most
    /// about three bytes a pixel, base64-encoded, with its JSON; it bounds each socket's
    /// write buffer.
    pub fn max_outgoing_bytes(&self) -> usize {
        let side = self.display_size as usize;
        side * side * 3 * 4 / 3 + 4 * 1024
    }

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
        for (name, got, min, max) in l.net.ranges() {
            range(name, got, min, max)?;
        }
        // At least 10 s so that a page can renew at half of it; at most 30 days.
        range("token ttl seconds", l.token_ttl.as_secs(), 10, 30 * 24 * 3600)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_settings_are_checked() {
        assert_eq!(StoreConfig::default(), StoreConfig::Memory);
        assert!(StoreConfig::Memory.validate().is_ok());
        assert!(StoreConfig::Redis(RedisConfig::default()).validate().is_ok());
        let bad_url = StoreConfig::Redis(RedisConfig { url: "http://:pw@127.0.0.1:6379".into(), prefix: "v1:".into() });
        let e = bad_url.validate().unwrap_err();
        assert_eq!(e, ConfigError::RedisUrl { url: "http://:***@127.0.0.1:6379".into() });
        assert!(e.to_string().contains("redis://"), "{e}");
        for prefix in ["", "has space:", &"x".repeat(65)] {
            let c = StoreConfig::Redis(RedisConfig { url: DEFAULT_REDIS_URL.into(), prefix: prefix.to_owned() });
            assert!(matches!(c.validate(), Err(ConfigError::RedisPrefix { .. })), "{prefix:?}");
        }
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact("redis://:hunter2@redis:6379/0"), "redis://:***@redis:6379/0");
        assert_eq!(redact("redis://user:hunter2@redis"), "redis://user:***@redis");
        assert_eq!(redact("not a url"), "not a url");
    }
}
