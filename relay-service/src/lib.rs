//! The relay-service: receives `waveform_latent`s from simulation-services, reconstructs
//! an image from each (waveform_encoder -> z -> image_decoder), keeps a bounded buffer of
//! images per session, and pushes them to the browsers subscribed to that session. It
//! also issues sessions and serves the built frontend. The wire format is
//! `shared-protocol`; `docs/protocol.md` describes every endpoint.
//!
//! # Layout
//! - [`config`]: [`RelayConfig`] and [`Limits`], validated before start.
//! - [`ingest`]: `/ws/ingest`, the per-frame hot path (authenticated by the shared secret).
//! - [`reconstruct`]: response -> JPEG data URL, on a worker thread.
//! - [`pool`]: bounded inference queue (full queue -> `overloaded`), from `service-kit`.
//! - [`store`]: the session stores behind one contract ([`store::Store`]): in memory
//!   (per-session buffer, de-duplication and fan-out; idle expiry), or in Redis, shared
//!   by several relays (scale-out); [`store::SessionStore`] is the one configured
//!   (`--session-store`).
//! - [`subscribe`]: `/ws/subscribe` for browsers (token per session).
//! - [`http`]: `POST /api/sessions` and `POST /api/sessions/{id}/renew` (tokens with an
//!   expiry), `/healthz`, `/metrics`, the frontend.
//! - [`telemetry`]: the Prometheus registry (`/metrics`).
//! - [`ws`]: socket plumbing (writer task, reader, rate limiter), from `service-kit`.
//! - [`error`]: start-up errors.
//!
//! [`app`] builds the router; [`run`] serves it on a listener until a shutdown future
//! resolves, then drains: no new connections, frames already accepted are
//! reconstructed, buffered and answered, sockets are closed with 1001.

pub mod config;
pub mod error;
pub mod http;
pub mod ingest;
pub mod reconstruct;
pub mod store;
pub mod subscribe;
pub mod telemetry;

pub use service_kit::{pool, ws};

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;
use models::V1Model;
use store::Store;
use service_kit::serve::Drain;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use config::{ConfigError, Limits, RedisConfig, RelayConfig, StoreConfig};
pub use error::StartError;
pub use service_kit::serve::{bind, BindError};

/// Default address: loopback only, so nothing is exposed unless asked.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Environment variable for the bind address.
pub const BIND_ENV: &str = "V1_RELAY_BIND";

/// Everything the handlers share.
pub struct Shared {
    pub config: RelayConfig,
    /// The model and image encoding, shared by the workers: the pvc-1 array's
    /// population, which reconstructs every latent without `population`.
    pub reconstructor: reconstruct::Reconstructor,
    /// The wide-field population's, when the relay was given its model (`--wide-model`).
    pub wide: Option<reconstruct::Reconstructor>,
    pub pool: pool::Pool,
    pub sessions: store::SessionStore,
    pub metrics: telemetry::Metrics,
    /// Cancelled when shutdown begins: sockets stop reading and drain.
    pub shutdown: CancellationToken,
    /// Every WebSocket connection and background task, so that shutdown can wait for
    /// them (upgraded connections are not tracked by the HTTP server).
    pub tasks: TaskTracker,
}

service_kit::state_handle! {
    /// Cheap-to-clone handle to [`Shared`].
    pub struct AppState(Shared);
}

/// What a sender of a wide-field latent is told by a relay without that model.
pub const NO_WIDE_MODEL: &str =
    "this service runs without the wide-field model; start it with --wide-model DIR (V1_WIDE_MODEL)";

impl Shared {
    /// The reconstructor of `population`; the wide-field one only when the relay has it.
    pub fn reconstructor_for(&self, population: shared_protocol::Population) -> Option<&reconstruct::Reconstructor> {
        match population {
            shared_protocol::Population::Pvc1 => Some(&self.reconstructor),
            shared_protocol::Population::Wide => self.wide.as_ref(),
        }
    }
}

impl AppState {
    /// Validates the configuration and wraps a loaded model; sessions in memory.
    pub fn new(config: RelayConfig, model: V1Model) -> Result<Self, StartError> {
        Self::with_wide(config, model, None)
    }

    /// [`Self::new`] with the wide-field population's model, when given.
    pub fn with_wide(config: RelayConfig, model: V1Model, wide: Option<V1Model>) -> Result<Self, StartError> {
        config.validate()?;
        let sessions = store::SessionStore::memory(&config.limits);
        Ok(Self::assemble(config, model, wide, sessions, telemetry::Metrics::new()))
    }

    /// Like [`Self::new`], with the session store `store` names (connecting to Redis
    /// when it names Redis; an unreachable Redis is a start-up error).
    pub async fn with_store(config: RelayConfig, model: V1Model, store: &StoreConfig) -> Result<Self, StartError> {
        Self::with_store_and_wide(config, model, None, store).await
    }

    /// [`Self::with_store`] with the wide-field population's model, when given.
    pub async fn with_store_and_wide(config: RelayConfig, model: V1Model, wide: Option<V1Model>, store: &StoreConfig) -> Result<Self, StartError> {
        config.validate()?;
        store.validate()?;
        let metrics = telemetry::Metrics::new();
        let sessions = store::SessionStore::open(store, &config.limits, metrics.frames_out.clone()).await?;
        Ok(Self::assemble(config, model, wide, sessions, metrics))
    }

    fn assemble(config: RelayConfig, model: V1Model, wide: Option<V1Model>, sessions: store::SessionStore, metrics: telemetry::Metrics) -> Self {
        let pool = pool::Pool::new(config.workers, config.limits.queue_depth);
        let reconstructor = reconstruct::Reconstructor::new(Arc::new(model), config.display_size, config.jpeg_quality);
        let wide = wide.map(|m| reconstruct::Reconstructor::new(Arc::new(m), config.display_size, config.jpeg_quality));
        Self(Arc::new(Shared {
            reconstructor,
            wide,
            pool,
            sessions,
            metrics,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            config,
        }))
    }

    /// Loads the model named by the configuration, then [`Self::new`].
    pub fn load(config: RelayConfig) -> Result<Self, StartError> {
        config.validate()?;
        let device = open_device(&config)?;
        let model = V1Model::load_for_inference(&config.model_dir, &device)
            .map_err(|source| StartError::Model { dir: config.model_dir.clone(), source })?;
        let wide = load_wide(&config, &device)?;
        Self::with_wide(config, model, wide)
    }

    /// Loads the model named by the configuration, then [`Self::with_store`].
    pub async fn load_with_store(config: RelayConfig, store: &StoreConfig) -> Result<Self, StartError> {
        config.validate()?;
        store.validate()?;
        let device = open_device(&config)?;
        let dir = config.model_dir.clone();
        let model_device = device.clone();
        let model = tokio::task::spawn_blocking(move || V1Model::load_for_inference(&dir, &model_device))
            .await
            .map_err(|e| StartError::Internal(format!("loading the model stopped: {e}")))?
            .map_err(|source| StartError::Model { dir: config.model_dir.clone(), source })?;
        let wide_config = config.clone();
        let wide = tokio::task::spawn_blocking(move || load_wide(&wide_config, &device))
            .await
            .map_err(|e| StartError::Internal(format!("loading the wide-field model stopped: {e}")))??;
        Self::with_store_and_wide(config, model, wide, store).await
    }

    /// Whether `static_dir` holds a built frontend.
    pub fn frontend_built(&self) -> bool {
        self.config.static_dir.join("index.html").is_file()
    }
}

/// The device the configuration names, opened.
fn open_device(config: &RelayConfig) -> Result<models::Device, StartError> {
    config.device.open().map_err(|error| StartError::Device { choice: config.device, error })
}

/// The wide-field model the configuration names, if it names one (blocking: reads files).
fn load_wide(config: &RelayConfig, device: &models::Device) -> Result<Option<V1Model>, StartError> {
    match &config.wide_model_dir {
        Some(dir) => V1Model::load_for_inference(dir, device).map(Some).map_err(|error| StartError::WideModel { dir: dir.clone(), error }),
        None => Ok(None),
    }
}

/// The relay's routes.
pub fn app(state: AppState) -> Router {
    let cors = service_kit::http::cors(state.config.origins.clone(), [axum::http::Method::GET, axum::http::Method::POST]);
    let api = Router::new()
        .route("/api/sessions", post(http::create_session))
        .route("/api/sessions/{id}/renew", post(http::renew_session))
        .route("/healthz", get(http::healthz))
        .layer(cors);
    Router::new()
        .merge(api)
        .route("/ws/ingest", get(ingest::upgrade))
        .route("/ws/subscribe", get(subscribe::upgrade))
        .route("/metrics", get(http::metrics))
        .with_state(state.clone())
        .merge(http::frontend(&state.config.static_dir))
}

/// Serves until `shutdown` resolves (or [`Shared::shutdown`] is cancelled), then drains.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    info!(
        %addr,
        model = %state.config.model_dir.display(),
        wide_model = ?state.config.wide_model_dir,
        frontend = state.frontend_built(),
        sessions = %state.sessions.describe(),
        "relay listening"
    );
    if !state.frontend_built() {
        warn!(dir = %state.config.static_dir.display(), "frontend not built: `/` shows how to build it (make frontend)");
    }
    state.tasks.spawn(expire_sessions(state.clone()));
    let drain = Drain { token: state.shutdown.clone(), tasks: state.tasks.clone(), timeout: state.config.drain_timeout };
    let net = state.config.limits.net;
    service_kit::serve::serve(listener, app(state.clone()), shutdown, &drain, &net, "relay", "connections").await?;
    info!("relay stopped");
    Ok(())
}

/// Forgets idle sessions now and then, until shutdown.
async fn expire_sessions(state: AppState) {
    let longest = state.sessions.housekeeping_interval();
    let period = (state.config.limits.session_idle / 4).clamp(Duration::from_millis(100), longest);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {
                let expired = state.sessions.expire_idle(Instant::now()).await;
                if expired > 0 {
                    info!(expired, "forgot idle sessions");
                }
                state.metrics.sessions.set(state.sessions.len() as i64);
            }
        }
    }
}
