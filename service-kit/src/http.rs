//! HTTP pieces both services serve the same way: error bodies in the shape of the
//! protocol's `error` message, the Origin check of WebSocket upgrades, the CORS layer
//! built from the same allow-list, and the Prometheus `/metrics` response.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use shared_protocol::{ErrorCode, OriginPolicy};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::warn;

/// The content type of the text exposition served at `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A JSON error body in the shape of the protocol's `error` message.
pub fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (status, Json(json!({"type": "error", "code": code, "message": message}))).into_response()
}

/// Checks the Origin of a WebSocket upgrade: `None` when the page may connect, else the
/// refusal to send (403 `unauthorized` naming the flag to change; `service` names whose
/// `--allowed-origins` it is, e.g. "relay"). The caller counts refusals in its metrics.
pub fn check_origin(origins: &OriginPolicy, headers: &HeaderMap, service: &str) -> Option<Response> {
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("(not text)"));
    if origins.admits(origin) {
        return None;
    }
    let origin = origin.unwrap_or_default();
    warn!(origin, "refused a WebSocket from a page of another origin");
    Some(error_response(
        StatusCode::FORBIDDEN,
        ErrorCode::Unauthorized,
        &format!("pages from {origin} may not connect; add the origin to the {service}'s --allowed-origins (V1_ALLOWED_ORIGINS)"),
    ))
}

/// CORS for the plain HTTP endpoints: the same allow-list as the WebSocket upgrades,
/// so a page the service accepts can also read its JSON endpoints.
pub fn cors(origins: OriginPolicy, methods: impl Into<tower_http::cors::AllowMethods>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| origins.admits(origin.to_str().ok())))
        .allow_methods(methods)
}

/// `GET /metrics`: the Prometheus (OpenMetrics) text `encoded`.
pub fn metrics_response(encoded: String) -> Response {
    ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], encoded).into_response()
}

/// `GET /healthz`: `body` (which says `status`), 200 while serving and 503 while
/// draining, so that a load balancer stops sending new work during shutdown.
pub fn health_response(draining: bool, body: serde_json::Value) -> Response {
    let status = if draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (status, Json(body)).into_response()
}

/// The `status` field of `/healthz`.
pub fn health_status(draining: bool) -> &'static str {
    if draining {
        "draining"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_check_refuses_foreign_pages_with_403() {
        let origins = OriginPolicy::default();
        let mut headers = HeaderMap::new();
        assert!(check_origin(&origins, &headers, "relay").is_none());
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        let refusal = check_origin(&origins, &headers, "relay").unwrap();
        assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn health_is_503_while_draining() {
        assert_eq!(health_response(true, json!({})).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health_response(false, json!({})).status(), StatusCode::OK);
        assert_eq!(health_status(true), "draining");
    }
}
