//! Every setting of the simulation-service in one validated struct, [`SimConfig`], and
//! every limit in [`Limits`]. The binary fills them from flags and environment
//! variables; tests build them directly. Nothing here reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shared_protocol::validate::{DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_IMAGE_SIDE};
use service_kit::config::{range, OutOfRange};
use service_kit::serve::NetLimits;
use shared_protocol::{OriginPolicy, SharedSecret};

/// The service's limits. Each one bounds memory or work that a client controls.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest WebSocket message, bytes (larger ones close the socket with 1009). Must
    /// leave room for an image data URL of `max_image_bytes` plus the JSON around it.
    pub max_message_bytes: usize,
    /// Largest image data URL, bytes.
    pub max_image_bytes: usize,
    /// Largest image width or height, pixels, read from the header before decoding.
    pub max_image_side: u32,
    /// Largest image in pixels (8-bit RGBA; images that decode wider get fewer), read
    /// from the header before decoding.
    pub max_image_pixels: u64,
    /// Frames of one browser connection running or waiting for a worker; the workers
    /// take connections in turn, one frame each.
    pub frames_per_connection: usize,
    /// Messages per second one browser connection may send.
    pub messages_per_second: u32,
    /// Distinct sessions one browser connection may use.
    pub max_sessions_per_connection: usize,
    /// Streams one browser connection may run at once.
    pub max_streams_per_connection: usize,
    /// Frames waiting for a worker before new ones are refused (`overloaded`).
    pub queue_depth: usize,
    /// Connections, header-read and idle timeouts (see [`NetLimits`]).
    pub net: NetLimits,
    /// `waveform_latent`s kept for re-sending until the relay acknowledges them; beyond
    /// this the oldest is dropped (and counted as lost).
    pub max_unacked: usize,
    /// Images read from the image folder at start-up.
    pub max_folder_images: usize,

    // --- The relay link's flow control and stall detection (see `relay_link`). ---
    /// `waveform_latent`s sent to the relay and not yet answered, at most; the rest wait
    /// in order. Well below what one relay admits (its workers + queue depth), so that a
    /// backlog sent after a reconnect is not refused as `overloaded`.
    pub relay_window: usize,
    /// No traffic from the relay (pongs, replies) for this long marks the link stalled:
    /// `/healthz` says degraded.
    pub relay_stall: Duration,
    /// No traffic from the relay (or a latent unanswered) for this long drops the
    /// connection and reconnects, re-sending what is unacknowledged.
    pub relay_dead: Duration,
}

/// Defaults of the relay link's settings in [`Limits`].
pub const DEFAULT_RELAY_WINDOW: usize = 32;
pub const DEFAULT_RELAY_STALL: Duration = Duration::from_secs(3);
pub const DEFAULT_RELAY_DEAD: Duration = Duration::from_secs(30);

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_IMAGE_BYTES + 64 * 1024,
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
            max_image_side: DEFAULT_MAX_IMAGE_SIDE,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            frames_per_connection: 16,
            messages_per_second: 60,
            max_sessions_per_connection: 8,
            max_streams_per_connection: 4,
            queue_depth: 64,
            net: NetLimits::default(),
            max_unacked: 1024,
            max_folder_images: 2000,

            relay_window: DEFAULT_RELAY_WINDOW,
            relay_stall: DEFAULT_RELAY_STALL,
            relay_dead: DEFAULT_RELAY_DEAD,
        }
    }
}

/// How the simulation-service runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where it listens (for logs and its own origin).
    pub bind: SocketAddr,
    /// The model directory (`model.json` + `weights.safetensors`): the pvc-1 array's
    /// population, what a message without `population` (or with `"pvc1"`) is simulated with.
    pub model_dir: PathBuf,
    /// The wide-field population's model directory, for messages with `population:
    /// "wide"`; without it such messages are refused (`unavailable`).
    pub wide_model_dir: Option<PathBuf>,
    /// Where the networks run (`--device`): the CPU, or a GPU in a build with the `cuda`
    /// feature.
    pub device: models::DeviceChoice,
    /// Data root with the dataset cache, for the `random`, `dataset` and `recorded`
    /// sources; without it those sources answer `unavailable`.
    pub data_root: Option<PathBuf>,
    /// A folder of images, for the `folder` (and `random`) sources.
    pub image_dir: Option<PathBuf>,
    /// The relay's `/ws/ingest` URL, or several separated by commas: relay instances that
    /// share a Redis session store, used in turn when one is lost (see [`relay_urls`]).
    pub relay_url: String,
    /// Shared with the relay: checks session tokens, authenticates to `/ws/ingest`.
    pub secret: SharedSecret,
    /// Which pages may open WebSockets and read `/api/info`.
    pub origins: OriginPolicy,
    /// Threads that run inference.
    pub workers: usize,
    /// Server camera index (builds with the `webcam` feature).
    pub webcam_index: u32,
    /// How long shutdown waits for in-flight frames and unacknowledged latents.
    pub drain_timeout: Duration,
    /// Longest wait between reconnection attempts to the relay.
    pub max_backoff: Duration,
    pub limits: Limits,
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
    #[error("the message size limit ({message} bytes) must exceed the image size limit ({image} bytes) so that an image fits in a message")]
    ImageExceedsMessage { message: usize, image: usize },
    #[error("the relay dead timeout ({dead_ms} ms, --relay-dead-secs) must be longer than the stall timeout ({stall_ms} ms, --relay-stall-ms): a link is stalled before it is dropped")]
    RelayDeadBeforeStall { dead_ms: u64, stall_ms: u64 },
    #[error("relay URL {url:?} is not a ws:// URL (for example ws://127.0.0.1:8080/ws/ingest); this build has no TLS, put a TLS proxy in front for wss://")]
    RelayUrl { url: String },
}

impl SimConfig {
    /// Checks every setting before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        range("workers", self.workers as u64, 1, 256)?;
        range("max image bytes", l.max_image_bytes as u64, 1024, 64 * 1024 * 1024)?;
        range("max message bytes", l.max_message_bytes as u64, 1024, 128 * 1024 * 1024)?;
        if l.max_message_bytes <= l.max_image_bytes {
            return Err(ConfigError::ImageExceedsMessage { message: l.max_message_bytes, image: l.max_image_bytes });
        }
        range("max image side", u64::from(l.max_image_side), 1, 16384)?;
        range("max image pixels", l.max_image_pixels, 1, 256 * 1024 * 1024)?;
        range("frames per connection", l.frames_per_connection as u64, 1, 1_000_000)?;
        range("messages per second", u64::from(l.messages_per_second), 1, 1_000_000)?;
        range("max sessions per connection", l.max_sessions_per_connection as u64, 1, 1024)?;
        range("max streams per connection", l.max_streams_per_connection as u64, 1, 64)?;
        range("queue depth", l.queue_depth as u64, 1, 1_000_000)?;
        for (name, got, min, max) in l.net.ranges() {
            range(name, got, min, max)?;
        }
        range("max unacknowledged latents", l.max_unacked as u64, 1, 1_000_000)?;
        range("max folder images", l.max_folder_images as u64, 1, 1_000_000)?;

        // The relay link (see `relay_link`).
        range("relay window (--relay-window)", l.relay_window as u64, 1, 4096)?;
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (stall_ms, dead_ms) = (millis(l.relay_stall), millis(l.relay_dead));
        range("relay stall timeout in ms (--relay-stall-ms)", stall_ms, 100, 600_000)?;
        range("relay dead timeout in ms (--relay-dead-secs x 1000)", dead_ms, 200, 3_600_000)?;
        if dead_ms <= stall_ms {
            return Err(ConfigError::RelayDeadBeforeStall { dead_ms, stall_ms });
        }
        for url in relay_urls(&self.relay_url) {
            if !url.starts_with("ws://") || url.len() <= "ws://".len() {
                return Err(ConfigError::RelayUrl { url: url.to_owned() });
            }
        }
        Ok(())
    }
}

/// The relay URLs of a `--relay-url` value: one URL (a relay, or a load balancer in
/// front of several), or a comma-separated list of relays, spaces around commas ignored.
pub fn relay_urls(value: &str) -> Vec<&str> {
    value.split(',').map(str::trim).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid configuration with `relay_url` and `limits`.
    fn test_config(relay_url: &str, limits: Limits) -> SimConfig {
        SimConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            model_dir: PathBuf::new(),
            wide_model_dir: None,
            device: models::DeviceChoice::Cpu,
            data_root: None,
            image_dir: None,
            relay_url: relay_url.to_owned(),
            secret: SharedSecret::new("0123456789abcdef0123456789abcdef").unwrap(),
            origins: OriginPolicy::default(),
            workers: 1,
            webcam_index: 0,
            drain_timeout: Duration::from_secs(1),
            max_backoff: Duration::from_secs(1),
            limits,
        }
    }

    #[test]
    fn relay_url_lists_are_split_and_every_entry_must_be_a_ws_url() {
        assert_eq!(relay_urls("ws://a:8080/ws/ingest"), vec!["ws://a:8080/ws/ingest"]);
        assert_eq!(relay_urls("ws://a/ws/ingest, ws://b/ws/ingest"), vec!["ws://a/ws/ingest", "ws://b/ws/ingest"]);
        let config = |url: &str| test_config(url, Limits::default());
        assert!(config("ws://a:8080/ws/ingest,ws://b:8080/ws/ingest").validate().is_ok());
        assert_eq!(
            config("ws://a:8080/ws/ingest,http://b:8080").validate(),
            Err(ConfigError::RelayUrl { url: "http://b:8080".into() })
        );
        assert_eq!(config("ws://a:8080/ws/ingest,,ws://b").validate(), Err(ConfigError::RelayUrl { url: String::new() }));
    }

    #[test]
    fn relay_link_settings_are_checked() {
        let config = |tweak: &dyn Fn(&mut Limits)| {
            let mut limits = Limits::default();
            tweak(&mut limits);
            test_config("ws://a:8080/ws/ingest", limits)
            .validate()
        };
        assert_eq!(config(&|_| {}), Ok(()));
        let window = config(&|l| l.relay_window = 0).unwrap_err();
        assert!(window.to_string().contains("--relay-window"), "{window}");
        let stall = config(&|l| l.relay_stall = Duration::from_millis(10)).unwrap_err();
        assert!(stall.to_string().contains("--relay-stall-ms"), "{stall}");
        assert_eq!(
            config(&|l| {
                l.relay_stall = Duration::from_secs(5);
                l.relay_dead = Duration::from_secs(5);
            }),
            Err(ConfigError::RelayDeadBeforeStall { dead_ms: 5000, stall_ms: 5000 })
        );
    }
}
