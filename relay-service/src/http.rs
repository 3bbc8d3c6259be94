//! The relay's plain HTTP endpoints: `POST /api/sessions`, `/healthz`, `/metrics`, the
//! frontend at `/`, and the checks and error bodies shared with the WebSocket upgrades.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use rand::Rng;
use serde_json::{json, Value};
use service_kit::log_limit::client_text;
use shared_protocol::{unix_now, ErrorCode, IssuedToken, ProtocolError, SessionId};
use tower_http::services::{ServeDir, ServeFile};
use tracing::{info, warn};

use crate::telemetry::Refusal;
use crate::store::{SessionError, Store};
use crate::AppState;

pub use service_kit::http::error_response;

/// The peer address axum records when the router is served with connect info (as
/// [`crate::run`] does); `None` for a router served without it (e.g. called directly).
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The client's IP address, for the per-client session limit.
pub fn client_ip(peer: &Peer) -> Option<IpAddr> {
    peer.as_ref().map(|Extension(ConnectInfo(addr))| addr.ip())
}

/// Refuses a WebSocket upgrade or a POST from a page whose origin is not allowed.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let refusal = service_kit::http::check_origin(&state.config.origins, headers, "relay")?;
    // The line itself is logged (cut and rate-limited) by service-kit.
    let _ = state.metrics.refused(Refusal::Origin);
    state.metrics.error(ErrorCode::Unauthorized);
    Some(refusal)
}

/// Largest body the session endpoints read: they take `{}` or `{"token": …}`.
const MAX_SESSION_BODY: usize = 4096;

/// The checks every state-changing POST passes before anything is issued: an allowed
/// page (or no page), and a JSON content type, which a browser sends cross-origin only
/// after a CORS preflight that the same allow-list answers. Then the body as a JSON
/// object (an empty body counts as `{}`).
/// The refusal is boxed: a `Response` is large, and this is the rare path.
fn check_post(state: &AppState, headers: &HeaderMap, body: &Bytes, path: &str) -> Result<serde_json::Map<String, Value>, Box<Response>> {
    if let Some(refusal) = check_origin(state, headers) {
        return Err(Box::new(refusal));
    }
    if let Some(refusal) = service_kit::http::require_json(headers) {
        let _ = state.metrics.refused(Refusal::ContentType);
        state.metrics.error(ErrorCode::BadMessage);
        return Err(Box::new(refusal));
    }
    let bad = |why: String| {
        state.metrics.error(ErrorCode::BadMessage);
        Box::new(error_response(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, &format!("POST {path}: {why}")))
    };
    if body.len() > MAX_SESSION_BODY {
        return Err(bad(format!("the body has {} bytes; it takes at most {MAX_SESSION_BODY}", body.len())));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(bad("the body must be a JSON object (or empty)".to_owned())),
        Err(e) => Err(bad(format!("the body is not JSON: {e}"))),
    }
}

/// The answer to a new or renewed token: the session, the token, and when it expires
/// (`expires_at` in Unix seconds, and `expires_in` seconds from now, which a page with a
/// wrong clock can still use to schedule its renewal).
fn grant(id: &SessionId, issued: &IssuedToken, now: u64) -> Value {
    json!({
        "session_id": id,
        "token": issued.token,
        "expires_at": issued.expires_at,
        "expires_in": issued.expires_at.saturating_sub(now),
    })
}

/// `POST /api/sessions`: a new session id (128 random bits, hex) and its token.
/// Needs `Content-Type: application/json` and an allowed origin (see [`check_post`]);
/// the body is empty or `{}`.
pub async fn create_session(State(state): State<AppState>, peer: Peer, headers: HeaderMap, body: Bytes) -> Response {
    let fields = match check_post(&state, &headers, &body, "/api/sessions") {
        Ok(f) => f,
        Err(refusal) => return *refusal,
    };
    if let Some(name) = fields.keys().next() {
        state.metrics.error(ErrorCode::BadMessage);
        let message = format!("POST /api/sessions takes no fields (send {{}} or nothing); got {:?}", client_text(name));
        return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, &message);
    }
    // Without a peer address (a router served without connect info) every request counts
    // as one unspecified client, which the per-client limit still bounds.
    let client = client_ip(&peer).unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let bytes: [u8; 16] = rand::rng().random();
    let id = SessionId::new_unchecked(bytes.iter().map(|b| format!("{b:02x}")).collect());
    match state.sessions.issue(id.clone(), client, Instant::now()).await {
        Ok(()) => {
            state.metrics.sessions.set(state.sessions.len() as i64);
            let now = unix_now();
            let issued = state.config.secret.issue_token(&id, now, state.config.limits.token_ttl);
            info!(session = %id, %client, expires_at = issued.expires_at, "issued a session");
            (StatusCode::CREATED, Json(grant(&id, &issued, now))).into_response()
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

/// `POST /api/sessions/{id}/renew`: a fresh token for a session whose current token is
/// still valid, given as `{"token": "…"}` or `Authorization: Bearer <token>`. The old
/// token keeps working until its own expiry (tokens are stateless). Same origin and
/// content-type rules as [`create_session`]. Renewal needs no session state, so it works
/// on any relay sharing the secret and after a restart.
pub async fn renew_session(State(state): State<AppState>, UrlPath(raw_id): UrlPath<String>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = match check_post(&state, &headers, &body, "/api/sessions/{id}/renew") {
        Ok(f) => f,
        Err(refusal) => return *refusal,
    };
    let id = match SessionId::parse(&raw_id) {
        Ok(id) => id,
        Err(e) => {
            state.metrics.error(ErrorCode::BadSession);
            return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadSession, &format!("POST /api/sessions/{{id}}/renew: {e}"));
        }
    };
    let from_body = match fields.get("token") {
        None => None,
        Some(Value::String(t)) => Some(t.as_str()),
        Some(_) => {
            state.metrics.error(ErrorCode::BadMessage);
            return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, "\"token\" must be the session's current token, a string");
        }
    };
    if let Some(name) = fields.keys().find(|k| k.as_str() != "token") {
        state.metrics.error(ErrorCode::BadMessage);
        let message = format!("POST /api/sessions/{{id}}/renew takes only \"token\"; got {:?}", client_text(name));
        return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, &message);
    }
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = from_body.or(from_header) else {
        state.metrics.error(ErrorCode::Unauthorized);
        let message = format!("no token for session {id}: send the current one as {{\"token\": \"…\"}} or Authorization: Bearer <token>");
        return error_response(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, &message);
    };
    let now = unix_now();
    if let Err(e) = state.config.secret.verify_token_at(&id, token, now) {
        refused_token(&state, &e, &id, "renewal");
        return error_response(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, &e.to_string());
    }
    let issued = state.config.secret.issue_token(&id, now, state.config.limits.token_ttl);
    (StatusCode::OK, Json(grant(&id, &issued, now))).into_response()
}

/// Counts a refused session token and logs it (cut, at most one line per second per
/// kind, with the number held back).
pub fn refused_token(state: &AppState, e: &ProtocolError, session: &SessionId, what: &str) {
    state.metrics.error(ErrorCode::Unauthorized);
    let (reason, why) = match e {
        ProtocolError::TokenExpired { .. } => (Refusal::ExpiredToken, "expired token"),
        _ => (Refusal::Token, "wrong token"),
    };
    if let Some(suppressed) = state.metrics.refused(reason) {
        warn!(session = %client_text(session.as_str()), suppressed, "{what} refused: {why} (at most one such line per second; `suppressed` counts those not logged since the last)");
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
        "wide_model": state.wide.as_ref().map(|w| {
            let info = w.model().info();
            json!({
                "dir": state.config.wide_model_dir.as_ref().map(|d| d.display().to_string()),
                "lags": info.n_lags(),
                "channels": info.n_channels(),
                "image_size": info.image_size,
            })
        }),
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
