//! The relay's plain HTTP endpoints: `POST /api/sessions`, `/healthz`, `/metrics`, the
//! frontend at `/`, and the checks and error bodies shared with the WebSocket upgrades.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rand::Rng;
use serde_json::json;
use shared_protocol::{ErrorCode, SessionId};
use tower_http::services::{ServeDir, ServeFile};
use tracing::info;

use crate::sessions::SessionError;
use crate::AppState;

pub use service_kit::http::error_response;

/// Refuses a WebSocket upgrade from a page whose origin is not allowed.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let refusal = service_kit::http::check_origin(&state.config.origins, headers, "relay")?;
    state.metrics.error(ErrorCode::Unauthorized);
    Some(refusal)
}

/// `POST /api/sessions`: a new session id (128 random bits, hex) and its token.
pub async fn create_session(State(state): State<AppState>, request: Request) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let bytes: [u8; 16] = rand::rng().random();
    let id = SessionId::new_unchecked(bytes.iter().map(|b| format!("{b:02x}")).collect());
    match state.sessions.issue(id.clone(), client, Instant::now()).await {
        Ok(()) => {
            state.metrics.sessions.set(state.sessions.len() as i64);
            let token = state.config.secret.token_for(&id);
            info!(session = %id, %client, "issued a session");
            (StatusCode::CREATED, Json(json!({"session_id": id, "token": token}))).into_response()
        }
        Err(e) => {
            let (status, code) = match e {
                SessionError::ClientLimit { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
                SessionError::Full { .. } => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded),
                SessionError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            };
            state.metrics.error(code);
            error_response(status, code, &e.to_string())
        }
    }
}

/// `GET /healthz`: 200 while serving, 503 while draining.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let info = state.reconstructor.model().info();
    let draining = state.shutdown.is_cancelled();
    let body = json!({
        "status": service_kit::http::health_status(draining),
        "service": "relay",
        "version": env!("CARGO_PKG_VERSION"),
        "sessions": state.sessions.len(),
        "session_store": state.sessions.kind(),
        "subscribers": state.sessions.subscribers(),
        "in_flight": state.pool.busy(),
        "model": {
            "dir": state.config.model_dir.display().to_string(),
            "lags": info.n_lags(),
            "channels": info.n_channels(),
            "image_size": info.image_size,
        },
        "frontend": state.frontend_built(),
    });
    service_kit::http::health_response(draining, body)
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.sessions.set(state.sessions.len() as i64);
    service_kit::http::metrics_response(state.metrics.encode())
}

const NOT_BUILT: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>V1 relay</title></head>\
<body><h1>V1 relay</h1><p>frontend not built: run <code>make frontend</code> \
(or point --static-dir at a built frontend/dist).</p>\
<p>The relay is running: <a href=\"/healthz\">/healthz</a>, <a href=\"/metrics\">/metrics</a>.</p></body></html>";

/// The frontend: files of `static_dir`, with `index.html` for every path that is not a
/// file (client-side routes), or a page saying how to build it.
pub fn frontend(static_dir: &Path) -> Router {
    let index = static_dir.join("index.html");
    if index.is_file() {
        let files = ServeDir::new(static_dir).fallback(ServeFile::new(index));
        Router::new().fallback_service(files)
    } else {
        Router::new().route("/", get(|| async { Html(NOT_BUILT) })).fallback(|| async {
            (StatusCode::NOT_FOUND, Html(NOT_BUILT))
        })
    }
}
