//! `relay-service`: flags and environment -> [`RelayConfig`], then [`relay_service::run`].

/// Inference allocates buffers above glibc's 128 KiB mmap threshold for every frame;
/// mimalloc reuses them instead of mapping fresh pages each time (see cli/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use relay_service::config::{DEFAULT_REDIS_PREFIX, DEFAULT_REDIS_URL};
use relay_service::{bind, AppState, Limits, RedisConfig, RelayConfig, StoreConfig, BIND_ENV, DEFAULT_BIND};
use service_kit::secret_file;
use shared_protocol::{OriginPolicy, SharedSecret};
use tracing::info;

/// Reconstructs images from V1 responses and pushes them to browsers; serves the frontend.
#[derive(Debug, Parser)]
#[command(name = "relay-service", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = BIND_ENV, default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// Model directory (model.json + weights.safetensors).
    #[arg(long, env = "V1_MODEL", default_value = "models/default")]
    model: PathBuf,
    /// The wide-field population's model directory (model.json + weights.safetensors):
    /// enables latents with `population: "wide"`.
    /// An empty value means none (as when the flag is absent).
    #[arg(long, env = "V1_WIDE_MODEL")]
    wide_model: Option<String>,
    /// Where the networks run: cpu, or cuda / cuda:N (a build with the `cuda` feature).
    #[arg(long, env = "V1_DEVICE", default_value = "cpu")]
    device: models::DeviceChoice,
    /// Built frontend served at `/`.
    #[arg(long, env = "V1_STATIC_DIR", default_value = "frontend/dist")]
    static_dir: PathBuf,
    /// Secret shared with the simulation-services (tokens, /ws/ingest). When unset, the
    /// relay reads it from --shared-secret-file, or generates one into that file.
    #[arg(long, env = "V1_SHARED_SECRET", hide_env_values = true)]
    shared_secret: Option<String>,
    /// Where the secret lives when --shared-secret is unset: read if the file exists,
    /// else generated and written there, readable by its owner only (mode 0600). Give
    /// the simulation-service the same path.
    #[arg(long, env = "V1_SHARED_SECRET_FILE", default_value = secret_file::DEFAULT_PATH)]
    shared_secret_file: PathBuf,
    /// Seconds a session token is valid; pages renew theirs at half of it
    /// (POST /api/sessions/{id}/renew).
    #[arg(long, env = "V1_RELAY_TOKEN_TTL_SECS", default_value_t = Limits::default().token_ttl.as_secs())]
    token_ttl_secs: u64,
    /// Extra page origins allowed to open WebSockets, comma-separated (`*` for any);
    /// loopback origins are always allowed.
    #[arg(long, env = "V1_ALLOWED_ORIGINS", default_value = "")]
    allowed_origins: String,
    /// Reconstruction threads (default: the number of CPU cores).
    #[arg(long, env = "V1_RELAY_WORKERS")]
    workers: Option<usize>,
    /// Frames waiting for a worker before new ones are refused as `overloaded`.
    #[arg(long, env = "V1_RELAY_QUEUE_DEPTH", default_value_t = Limits::default().queue_depth)]
    queue_depth: usize,
    #[command(flatten)]
    net: service_kit::serve::NetArgs,
    /// Largest WebSocket message in bytes (larger ones close the socket with 1009).
    #[arg(long, env = "V1_RELAY_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Messages per second one /ws/ingest connection may send.
    #[arg(long, env = "V1_RELAY_INGEST_RATE", default_value_t = Limits::default().ingest_messages_per_second)]
    ingest_rate: u32,
    /// Messages per second one /ws/subscribe connection may send.
    #[arg(long, env = "V1_RELAY_SUBSCRIBE_RATE", default_value_t = Limits::default().subscribe_messages_per_second)]
    subscribe_rate: u32,
    /// Sessions held at once.
    #[arg(long, env = "V1_RELAY_MAX_SESSIONS", default_value_t = Limits::default().max_sessions)]
    max_sessions: usize,
    /// Live sessions issued to one client address.
    #[arg(long, env = "V1_RELAY_MAX_SESSIONS_PER_CLIENT", default_value_t = Limits::default().max_sessions_per_client)]
    max_sessions_per_client: usize,
    /// Subscriptions one /ws/subscribe connection may hold.
    #[arg(long, env = "V1_RELAY_MAX_SUBSCRIPTIONS", default_value_t = Limits::default().max_subscriptions_per_connection)]
    max_subscriptions_per_connection: usize,
    /// Images buffered per session for late subscribers (oldest dropped first).
    #[arg(long, env = "V1_RELAY_BUFFERED_IMAGES", default_value_t = Limits::default().buffered_images)]
    buffered_images: usize,
    /// Seconds without frames or subscribers after which a session is forgotten.
    #[arg(long, env = "V1_RELAY_SESSION_IDLE_SECS", default_value_t = Limits::default().session_idle.as_secs())]
    session_idle_secs: u64,
    /// JPEG quality of reconstructions, 1-100.
    #[arg(long, env = "V1_RELAY_JPEG_QUALITY", default_value_t = 90)]
    jpeg_quality: u8,
    /// Side in pixels of the JPEGs sent to browsers.
    #[arg(long, env = "V1_RELAY_DISPLAY_SIZE", default_value_t = 192)]
    display_size: u32,
    /// Seconds shutdown waits for in-flight frames.
    #[arg(long, env = "V1_RELAY_DRAIN_SECS", default_value_t = 10)]
    drain_secs: u64,
    /// Where sessions live: `memory` (this relay alone) or `redis` (shared by every relay
    /// using the same --redis-url, --redis-prefix and secret).
    #[arg(long, env = "V1_SESSION_STORE", value_enum, default_value_t = StoreKind::Memory)]
    session_store: StoreKind,
    /// The Redis of `--session-store redis`.
    #[arg(long, env = "V1_REDIS_URL", default_value = DEFAULT_REDIS_URL, hide_env_values = true)]
    redis_url: String,
    /// Prefix of the relay's Redis keys and channels.
    #[arg(long, env = "V1_REDIS_PREFIX", default_value = DEFAULT_REDIS_PREFIX)]
    redis_prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    Memory,
    Redis,
}

fn main() -> ExitCode {
    // Logging and one numeric thread per frame, before any thread exists.
    service_kit::binary::init();
    let args = Args::parse();
    service_kit::binary::run("relay-service", start(args))
}

async fn start(args: Args) -> anyhow::Result<()> {
    // --- the shared secret: given, or read from / generated into a file (the value is
    // never logged: whoever holds it can mint tokens and inject frames) ---
    let secret = match args.shared_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => SharedSecret::new(s)?,
        None => {
            let path = &args.shared_secret_file;
            let (secret, origin) = secret_file::read_or_create(path)?;
            match origin {
                secret_file::Origin::Read => info!(file = %path.display(), "read the shared secret from its file"),
                secret_file::Origin::Created => info!(
                    file = %path.display(),
                    "V1_SHARED_SECRET is not set: generated a secret into this file (mode 0600); start the \
                     simulation-service with --shared-secret-file pointing at it (or V1_SHARED_SECRET_FILE)"
                ),
            }
            secret
        }
    };
    secret_file::refuse_public_secret(&secret, args.bind.ip())?;
    let mut origins = OriginPolicy::with_list(&args.allowed_origins)?;
    // The relay's own origin, when it listens on a specific non-loopback address.
    let ip = args.bind.ip();
    if !ip.is_loopback() && !ip.is_unspecified() {
        origins.allow(&format!("http://{}", args.bind))?;
    }
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = RelayConfig {
        bind: args.bind,
        model_dir: args.model,
        wide_model_dir: args.wide_model.filter(|d| !d.is_empty()).map(PathBuf::from),
        device: args.device,
        static_dir: args.static_dir,
        secret,
        origins,
        workers,
        jpeg_quality: args.jpeg_quality,
        display_size: args.display_size,
        drain_timeout: Duration::from_secs(args.drain_secs),
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            ingest_messages_per_second: args.ingest_rate,
            subscribe_messages_per_second: args.subscribe_rate,
            max_sessions: args.max_sessions,
            max_sessions_per_client: args.max_sessions_per_client,
            max_subscriptions_per_connection: args.max_subscriptions_per_connection,
            buffered_images: args.buffered_images,
            session_idle: Duration::from_secs(args.session_idle_secs),
            queue_depth: args.queue_depth,
            net: (&args.net).into(),
            token_ttl: Duration::from_secs(args.token_ttl_secs),
        },
    };
    let store = match args.session_store {
        StoreKind::Memory => StoreConfig::Memory,
        StoreKind::Redis => StoreConfig::Redis(RedisConfig { url: args.redis_url, prefix: args.redis_prefix }),
    };
    let state = AppState::load_with_store(config, &store).await?;
    let listener = bind(args.bind, BIND_ENV).await?;
    relay_service::run(listener, state, service_kit::serve::shutdown_signal()).await?;
    Ok(())
}
