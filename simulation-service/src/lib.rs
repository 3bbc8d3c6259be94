//! The simulation-service: turns images into synthetic V1 responses (image_encoder -> z
//! -> waveform_decoder), answers the browser with each `response`, and forwards it as a
//! `waveform_latent` to the relay-service over one persistent connection. Besides client
//! images it serves random dataset frames, an image folder, a server camera (feature
//! `webcam`), dreams (activity without an image), responses painted in the browser
//! (`imagined`) and recorded mode: recorded responses of held-out test segments replayed at
//! 30 Hz with their true frames. `docs/protocol.md` describes every endpoint.
//!
//! # Layout
//! - [`config`]: [`SimConfig`] and [`Limits`], validated before start.
//! - [`browser`]: `/ws`, stimuli and streams of one browser connection.
//! - [`frames`]: one frame from input to `response` + `waveform_latent`; frame ids.
//! - [`simulate`]: the per-frame hot path (image limits, decoding, the model).
//! - [`trial`]: single trials, Poisson draws of the predicted means per session.
//! - [`pool`]: bounded inference queue (full queue -> `overloaded`), from `service-kit`.
//! - [`streams`]: frames produced at a steady rate (recorded, dataset, folder, webcam).
//! - [`sources`]: dataset segments (read at start-up, or picked up when a preparation
//!   beside the service finishes), image folder (read at start-up), camera.
//! - [`relay_link`]: the connection to the relay: backoff, acknowledgement, re-sending,
//!   flow control (a window of unanswered latents, retries after refusals), stall
//!   detection and the link's health.
//! - [`http`]: `/api/info`, `/healthz`, `/metrics`.
//! - [`fields`]: `/api/projective-fields`, each channel's projective field.
//! - [`telemetry`]: the Prometheus registry (`/metrics`).
//! - [`ws`]: socket plumbing (writer task, reader, rate limiter), from `service-kit`.
//! - [`error`]: start-up and per-frame errors.
//!
//! [`app`] builds the router; [`run`] serves it until a shutdown future resolves, then
//! drains: no new connections, frames already taken finish and reach the relay, and the
//! relay link stays up until the relay has acknowledged them (or the drain timeout).

pub mod browser;
pub mod config;
pub mod error;
pub mod fields;
pub mod frames;
pub mod http;
pub mod relay_link;
pub mod simulate;
pub mod sources;
pub mod streams;
pub mod telemetry;
pub mod trial;
#[cfg(feature = "webcam")]
pub mod webcam;

pub use service_kit::{pool, ws};

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use models::V1Model;
use service_kit::serve::Drain;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use config::{ConfigError, Limits, SimConfig};
pub use error::{FrameError, StartError};
pub use service_kit::serve::{bind, BindError};

/// Default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8081";
/// Environment variable for the bind address.
pub const BIND_ENV: &str = "V1_SIM_BIND";
/// Default relay ingest URL (the relay's default address).
pub const DEFAULT_RELAY_URL: &str = "ws://127.0.0.1:8080/ws/ingest";

/// Everything the handlers share.
pub struct Shared {
    pub config: SimConfig,
    /// The model with the image limits; shared by the workers. The pvc-1 array's
    /// population: what every message without `population` is simulated with.
    pub simulator: simulate::Simulator,
    /// The wide-field population's model, when the service was given one
    /// (`--wide-model`).
    pub wide: Option<simulate::Simulator>,
    /// Each session's generator of single trials.
    pub trials: trial::Trials,
    pub sources: sources::Sources,
    pub pool: pool::Pool,
    /// Sends latents to the relay.
    pub relay: relay_link::RelayLink,
    /// The link's task, taken by [`run`].
    link_task: Mutex<Option<relay_link::LinkTask>>,
    /// Which browser connection uses which session (relay errors go back to it).
    pub viewers: Arc<frames::Viewers>,
    pub frame_ids: frames::FrameIds,
    pub metrics: Arc<telemetry::Metrics>,
    /// Cancelled when shutdown begins: sockets stop reading and drain.
    pub shutdown: CancellationToken,
    /// Every WebSocket connection, so that shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Numbers browser connections for logs and the viewer table.
    pub next_connection: AtomicU64,
    /// The body of `/api/projective-fields`, made on its first request.
    pub projective_fields: std::sync::OnceLock<serde_json::Value>,
    /// The same for the wide-field population (`?population=wide`).
    pub wide_projective_fields: std::sync::OnceLock<serde_json::Value>,
}

/// What a client asking for the wide-field population is told by a service without it.
pub const NO_WIDE_MODEL: &str =
    "this service runs without the wide-field model; start it with --wide-model DIR (V1_WIDE_MODEL)";

impl Shared {
    /// The model of `population`; the wide-field one only when the service has it.
    pub fn simulator_for(&self, population: shared_protocol::Population) -> Result<&simulate::Simulator, FrameError> {
        match population {
            shared_protocol::Population::Pvc1 => Ok(&self.simulator),
            shared_protocol::Population::Wide => self.wide.as_ref().ok_or_else(|| FrameError::Unavailable(NO_WIDE_MODEL.to_owned())),
        }
    }

    /// The populations this service simulates.
    pub fn populations(&self) -> Vec<shared_protocol::Population> {
        shared_protocol::Population::ALL.into_iter().filter(|p| self.simulator_for(*p).is_ok()).collect()
    }
}

service_kit::state_handle! {
    /// Cheap-to-clone handle to [`Shared`].
    pub struct AppState(Shared);
}

impl AppState {
    /// Validates the configuration and wraps a loaded model and its sources (no
    /// wide-field population).
    pub fn new(config: SimConfig, model: V1Model, sources: sources::Sources) -> Result<Self, StartError> {
        Self::with_wide(config, model, None, sources)
    }

    /// [`Self::new`] with the wide-field population's model, when given.
    pub fn with_wide(config: SimConfig, model: V1Model, wide: Option<V1Model>, sources: sources::Sources) -> Result<Self, StartError> {
        config.validate()?;
        let model = Arc::new(model);
        #[cfg(feature = "webcam")]
        let sources = {
            let mut sources = sources;
            sources.webcam = Some(Arc::new(webcam::Webcam::new(config.webcam_index, model.clone())));
            sources
        };
        let l = &config.limits;
        let image_limits = shared_protocol::image_limits::ImageLimits { max_side: l.max_image_side, max_pixels: l.max_image_pixels };
        let simulator = simulate::Simulator::new(model, l.max_image_bytes, image_limits);
        let wide = wide.map(|m| simulate::Simulator::new(Arc::new(m), l.max_image_bytes, image_limits));
        let pool = pool::Pool::with_lane_limit(config.workers, l.queue_depth, l.frames_per_connection);
        let (relay, link_task) = relay_link::RelayLink::new();
        Ok(Self(Arc::new(Shared {
            simulator,
            wide,
            trials: trial::Trials::default(),
            sources,
            pool,
            relay,
            link_task: Mutex::new(Some(link_task)),
            viewers: Arc::new(frames::Viewers::default()),
            frame_ids: frames::FrameIds::default(),
            metrics: Arc::new(telemetry::Metrics::new()),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            next_connection: AtomicU64::new(1),
            projective_fields: std::sync::OnceLock::new(),
            wide_projective_fields: std::sync::OnceLock::new(),
            config,
        })))
    }

    /// Loads the model and the configured sources (dataset, image folder), then
    /// [`Self::new`]. Blocking: reads files.
    pub fn load(config: SimConfig) -> Result<Self, StartError> {
        config.validate()?;
        let device = config.device.open().map_err(|error| StartError::Device { choice: config.device, error })?;
        let model = V1Model::load_for_inference(&config.model_dir, &device)
            .map_err(|source| StartError::Model { dir: config.model_dir.clone(), source })?;
        let wide = match &config.wide_model_dir {
            Some(dir) => Some(V1Model::load_for_inference(dir, &device).map_err(|error| StartError::WideModel { dir: dir.clone(), error })?),
            None => None,
        };
        let l = &config.limits;
        let sources = sources::Sources::load(
            &model,
            config.data_root.as_deref(),
            config.image_dir.as_deref(),
            l.max_folder_images,
            l.max_image_side,
        )?;
        Self::with_wide(config, model, wide, sources)
    }
}

/// The simulation-service's routes.
pub fn app(state: AppState) -> Router {
    // The page is served by the relay, so reading /api/info is a cross-origin request.
    let cors = service_kit::http::cors(state.config.origins.clone(), [axum::http::Method::GET]);
    Router::new()
        .route("/api/info", get(http::info))
        .route("/api/projective-fields", get(fields::handler))
        .route("/healthz", get(http::healthz))
        .layer(cors)
        .route("/ws", get(browser::upgrade))
        .route("/metrics", get(http::metrics))
        .with_state(state)
}

/// Serves until `shutdown` resolves (or [`Shared::shutdown`] is cancelled), then drains.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let sources: Vec<&str> = state.sources.stream_sources().into_iter().map(|s| s.as_source().as_str()).collect();
    let populations: Vec<&str> = state.populations().into_iter().map(|p| p.as_str()).collect();
    info!(%addr, relay = %state.config.relay_url, ?sources, ?populations, "simulation-service listening");
    let link_drain = CancellationToken::new();
    let link = {
        let task = match state.link_task.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        task.map(|task| {
            let config = relay_link::LinkConfig {
                url: state.config.relay_url.clone(),
                secret: state.config.secret.clone(),
                max_unacked: state.config.limits.max_unacked,
                max_backoff: state.config.max_backoff,
                drain_timeout: state.config.drain_timeout,
                window: state.config.limits.relay_window,
                stall_after: state.config.limits.relay_stall,
                dead_after: state.config.limits.relay_dead,
            };
            let errors: Arc<dyn relay_link::ErrorSink> = state.viewers.clone();
            tokio::spawn(task.run(config, state.metrics.clone(), errors, link_drain.clone()))
        })
    };
    // Recorded mode's dataset may still be in the making: picked up when it appears.
    tokio::spawn(sources::watch_recorded(state.clone()));
    let drain = Drain { token: state.shutdown.clone(), tasks: state.tasks.clone(), timeout: state.config.drain_timeout };
    let net = state.config.limits.net;
    service_kit::serve::serve(listener, app(state.clone()), shutdown, &drain, &net, "simulation-service", "browser connections")
        .await?;
    link_drain.cancel();
    if let Some(link) = link {
        // The link has its own drain timeout; this bound only guards against a bug.
        let bound = state.config.drain_timeout * 2 + std::time::Duration::from_secs(1);
        if tokio::time::timeout(bound, link).await.is_err() {
            warn!("the relay link did not stop in time");
        }
    }
    info!("simulation-service stopped");
    Ok(())
}
