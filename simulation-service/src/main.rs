//! `simulation-service`: flags and environment -> [`SimConfig`], then
//! [`simulation_service::run`].

/// Inference allocates buffers above glibc's 128 KiB mmap threshold for every frame;
/// mimalloc reuses them instead of mapping fresh pages each time (see cli/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shared_protocol::{OriginPolicy, SharedSecret};
use simulation_service::{bind, config, AppState, Limits, SimConfig, BIND_ENV, DEFAULT_BIND, DEFAULT_RELAY_URL};

/// Simulates V1 responses to images and forwards them to the relay-service.
#[derive(Debug, Parser)]
#[command(name = "simulation-service", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = BIND_ENV, default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// Model directory (model.json + weights.safetensors).
    #[arg(long, env = "V1_MODEL", default_value = "models/default")]
    model: PathBuf,
    /// The wide-field population's model directory (model.json + weights.safetensors):
    /// enables `population: "wide"` (a population over the whole 4:3 frame).
    /// An empty value means none (as when the flag is absent).
    #[arg(long, env = "V1_WIDE_MODEL")]
    wide_model: Option<String>,
    /// Where the networks run: cpu, or cuda / cuda:N (a build with the `cuda` feature).
    #[arg(long, env = "V1_DEVICE", default_value = "cpu")]
    device: models::DeviceChoice,
    /// Data root holding the dataset cache; enables the random, dataset and recorded
    /// sources.
    #[arg(long, env = "V1_DATA")]
    data: Option<PathBuf>,
    /// Folder of JPEG/PNG images; enables the folder source.
    #[arg(long, env = "V1_IMAGES")]
    images: Option<PathBuf>,
    /// The relay's ingest WebSocket (`--relay` is accepted too), or a comma-separated list
    /// of relays sharing one Redis: on losing one the service moves to the next.
    #[arg(long, visible_alias = "relay", env = "V1_RELAY_URL", default_value = DEFAULT_RELAY_URL)]
    relay_url: String,
    /// Secret shared with the relay. When unset, it is read from --shared-secret-file.
    #[arg(long, env = "V1_SHARED_SECRET", hide_env_values = true)]
    shared_secret: Option<String>,
    /// The relay's secret file (the relay generates it when started without a secret),
    /// read when --shared-secret is unset.
    #[arg(long, env = "V1_SHARED_SECRET_FILE", default_value = service_kit::secret_file::DEFAULT_PATH)]
    shared_secret_file: PathBuf,
    /// Extra page origins allowed to connect, comma-separated (`*` for any); loopback
    /// origins are always allowed.
    #[arg(long, env = "V1_ALLOWED_ORIGINS", default_value = "")]
    allowed_origins: String,
    /// Inference threads (default: the number of CPU cores).
    #[arg(long, env = "V1_SIM_WORKERS")]
    workers: Option<usize>,
    /// Frames waiting for a worker before new ones are refused as `overloaded`.
    #[arg(long, env = "V1_SIM_QUEUE_DEPTH", default_value_t = Limits::default().queue_depth)]
    queue_depth: usize,
    #[command(flatten)]
    net: service_kit::serve::NetArgs,
    /// Largest WebSocket message in bytes (larger ones close the socket with 1009).
    #[arg(long, env = "V1_SIM_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Largest image data URL in bytes.
    #[arg(long, env = "V1_SIM_MAX_IMAGE_BYTES", default_value_t = Limits::default().max_image_bytes)]
    max_image_bytes: usize,
    /// Largest image width or height in pixels.
    #[arg(long, env = "V1_SIM_MAX_IMAGE_SIDE", default_value_t = Limits::default().max_image_side)]
    max_image_side: u32,
    /// Largest image in pixels (8-bit RGBA; 16-bit images get half), from the header.
    #[arg(long, env = "V1_SIM_MAX_IMAGE_PIXELS", default_value_t = Limits::default().max_image_pixels)]
    max_image_pixels: u64,
    /// Frames of one browser connection running or waiting at once (more are refused as
    /// `overloaded`); connections are served in turn.
    #[arg(long, env = "V1_SIM_FRAMES_PER_CONNECTION", default_value_t = Limits::default().frames_per_connection)]
    frames_per_connection: usize,
    /// Messages per second one browser connection may send.
    #[arg(long, env = "V1_SIM_RATE", default_value_t = Limits::default().messages_per_second)]
    messages_per_second: u32,
    /// Sessions one browser connection may use.
    #[arg(long, env = "V1_SIM_MAX_SESSIONS_PER_CONNECTION", default_value_t = Limits::default().max_sessions_per_connection)]
    max_sessions_per_connection: usize,
    /// Streams one browser connection may run at once.
    #[arg(long, env = "V1_SIM_MAX_STREAMS", default_value_t = Limits::default().max_streams_per_connection)]
    max_streams_per_connection: usize,
    /// Latents kept for re-sending until the relay acknowledges them.
    #[arg(long, env = "V1_SIM_MAX_UNACKED", default_value_t = Limits::default().max_unacked)]
    max_unacked: usize,
    /// Images read from --images at start-up.
    #[arg(long, env = "V1_SIM_MAX_FOLDER_IMAGES", default_value_t = Limits::default().max_folder_images)]
    max_folder_images: usize,
    /// Server camera index (builds with the `webcam` feature).
    #[arg(long, env = "V1_WEBCAM_INDEX", default_value_t = 0)]
    webcam_index: u32,
    /// Seconds shutdown waits for in-flight frames and acknowledgements.
    #[arg(long, env = "V1_SIM_DRAIN_SECS", default_value_t = 10)]
    drain_secs: u64,
    /// Longest wait between reconnection attempts to the relay, in seconds.
    #[arg(long, env = "V1_SIM_MAX_BACKOFF_SECS", default_value_t = 5)]
    max_backoff_secs: u64,

    // --- The relay link's flow control and stall detection. ---
    /// Latents sent to the relay and not yet answered, at most (keep it below the
    /// relay's --workers + --queue-depth).
    #[arg(long, env = "V1_SIM_RELAY_WINDOW", default_value_t = config::DEFAULT_RELAY_WINDOW)]
    relay_window: usize,
    /// Milliseconds without any traffic from the relay after which the link counts as
    /// stalled (/healthz says degraded).
    #[arg(long, env = "V1_SIM_RELAY_STALL_MS", default_value_t = config::DEFAULT_RELAY_STALL.as_millis() as u64)]
    relay_stall_ms: u64,
    /// Seconds without any traffic from the relay after which the connection is dropped
    /// and made again.
    #[arg(long, env = "V1_SIM_RELAY_DEAD_SECS", default_value_t = config::DEFAULT_RELAY_DEAD.as_secs())]
    relay_dead_secs: u64,
}

fn main() -> ExitCode {
    // Logging and one numeric thread per frame, before any thread exists.
    service_kit::binary::init();
    let args = Args::parse();
    service_kit::binary::run("simulation-service", start(args))
}

async fn start(args: Args) -> anyhow::Result<()> {
    // --- the shared secret: given, or read from the relay's secret file (never logged) ---
    let secret = match args.shared_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => SharedSecret::new(s)?,
        None => {
            let path = &args.shared_secret_file;
            let secret = service_kit::secret_file::read(path).map_err(|e| {
                anyhow::anyhow!(
                    "V1_SHARED_SECRET is not set, and {e}. The simulation-service needs the relay's secret to check \
                     session tokens and to connect to the relay: a relay started without a secret writes one to its \
                     --shared-secret-file; give this service the same path, or set V1_SHARED_SECRET for both"
                )
            })?;
            tracing::info!(file = %path.display(), "read the shared secret from the relay's secret file");
            secret
        }
    };
    service_kit::secret_file::refuse_public_secret(&secret, args.bind.ip())?;
    let mut origins = OriginPolicy::with_list(&args.allowed_origins)?;
    let ip = args.bind.ip();
    if !ip.is_loopback() && !ip.is_unspecified() {
        origins.allow(&format!("http://{}", args.bind))?;
    }
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = SimConfig {
        bind: args.bind,
        model_dir: args.model,
        wide_model_dir: args.wide_model.filter(|d| !d.is_empty()).map(PathBuf::from),
        device: args.device,
        data_root: args.data,
        image_dir: args.images,
        relay_url: args.relay_url,
        secret,
        origins,
        workers,
        webcam_index: args.webcam_index,
        drain_timeout: Duration::from_secs(args.drain_secs),
        max_backoff: Duration::from_secs(args.max_backoff_secs.max(1)),
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_image_bytes: args.max_image_bytes,
            max_image_side: args.max_image_side,
            max_image_pixels: args.max_image_pixels,
            frames_per_connection: args.frames_per_connection,
            messages_per_second: args.messages_per_second,
            max_sessions_per_connection: args.max_sessions_per_connection,
            max_streams_per_connection: args.max_streams_per_connection,
            queue_depth: args.queue_depth,
            net: (&args.net).into(),
            max_unacked: args.max_unacked,
            max_folder_images: args.max_folder_images,

            relay_window: args.relay_window,
            relay_stall: Duration::from_millis(args.relay_stall_ms),
            relay_dead: Duration::from_secs(args.relay_dead_secs),
        },
    };
    let state = tokio::task::spawn_blocking(move || AppState::load(config)).await??;
    let listener = bind(args.bind, BIND_ENV).await?;
    simulation_service::run(listener, state, service_kit::serve::shutdown_signal()).await?;
    Ok(())
}
