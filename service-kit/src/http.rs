//! HTTP pieces both services serve the same way: error bodies in the shape of the
//! protocol's `error` message, the Origin check of WebSocket upgrades and state-changing
//! POSTs, the JSON content-type rule of those POSTs, the CORS layer built from the same
//! allow-list, and the Prometheus `/metrics` response.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use shared_protocol::{ErrorCode, OriginPolicy};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::warn;

use crate::log_limit::{client_text, LogLimiter};

/// Refused origins are logged at most once a second (a flood of them is counted in the
/// services' metrics instead).
static REFUSED_ORIGINS: LogLimiter = LogLimiter::per_second();

/// The content type of the text exposition served at `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A JSON error body in the shape of the protocol's `error` message.
pub fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (status, Json(json!({"type": "error", "code": code, "message": message}))).into_response()
}

/// Checks the Origin of a WebSocket upgrade or a POST: `None` when the page may connect,
/// else the refusal to send (403 `unauthorized` naming the flag to change; `service`
/// names whose `--allowed-origins` it is, e.g. "relay"). A request without `Origin` comes
/// from a program, not a page, and is admitted (it is authenticated otherwise). The
/// caller counts refusals in its metrics; the log line is cut, escaped and rate-limited,
/// since the header is whatever the client sent.
pub fn check_origin(origins: &OriginPolicy, headers: &HeaderMap, service: &str) -> Option<Response> {
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("(not text)"));
    if origins.admits(origin) {
        return None;
    }
    let origin = client_text(origin.unwrap_or_default());
    if let Some(suppressed) = REFUSED_ORIGINS.check() {
        warn!(%origin, suppressed, "refused a request from a page of another origin (at most one such line per second; `suppressed` counts those not logged since the last)");
    }
    Some(error_response(
        StatusCode::FORBIDDEN,
        ErrorCode::Unauthorized,
        &format!("pages from {origin} may not use this service; add the origin to the {service}'s --allowed-origins (V1_ALLOWED_ORIGINS)"),
    ))
}

/// Checks that a POST says `Content-Type: application/json` (parameters such as
/// `charset` allowed): `None` when it does, else a 415 `bad_message` refusal. A browser
/// sends a cross-origin POST with that type only after a CORS preflight, which the
/// allow-list answers, so a foreign page cannot make the request at all; a bodiless or
/// form POST would be a "simple request" that it can.
pub fn require_json(headers: &HeaderMap) -> Option<Response> {
    let given = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)"));
    let is_json = given.is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json")
    });
    if is_json {
        return None;
    }
    let got = given.map_or_else(|| "no Content-Type".to_owned(), |v| format!("Content-Type {}", client_text(v)));
    Some(error_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::BadMessage,
        &format!("this POST needs the header `Content-Type: application/json` (the body may be empty or a JSON object such as {{}}); the request had {got}"),
    ))
}

/// CORS for the plain HTTP endpoints: the same allow-list as the WebSocket upgrades,
/// so a page the service accepts can also read its JSON endpoints and send the
/// `Content-Type: application/json` and `Authorization` headers its POSTs need.
pub fn cors(origins: OriginPolicy, methods: impl Into<tower_http::cors::AllowMethods>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| origins.admits(origin.to_str().ok())))
        .allow_methods(methods)
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
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
        headers.insert(header::ORIGIN, "http://localhost:5173".parse().unwrap());
        assert!(check_origin(&origins, &headers, "relay").is_none());
    }

    #[test]
    fn posts_must_say_json() {
        let mut headers = HeaderMap::new();
        assert_eq!(require_json(&headers).unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        for refused in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp"] {
            headers.insert(header::CONTENT_TYPE, refused.parse().unwrap());
            assert_eq!(require_json(&headers).unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{refused}");
        }
        for accepted in ["application/json", "Application/JSON", "application/json; charset=utf-8"] {
            headers.insert(header::CONTENT_TYPE, accepted.parse().unwrap());
            assert!(require_json(&headers).is_none(), "{accepted}");
        }
    }

    #[test]
    fn health_is_503_while_draining() {
        assert_eq!(health_response(true, json!({})).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health_response(false, json!({})).status(), StatusCode::OK);
        assert_eq!(health_status(true), "draining");
    }
}
