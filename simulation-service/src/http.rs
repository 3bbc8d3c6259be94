//! The simulation-service's plain HTTP endpoints: `/api/info` (what the model reads and
//! writes, which sources exist and how far Recorded mode's dataset is, the limits), `/healthz` and `/metrics`, plus the checks
//! and error bodies shared with the WebSocket upgrade.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use shared_protocol::validate::{MAX_FPS, MAX_IMAGINED_COUNT, MIN_FPS};
use shared_protocol::ErrorCode;

use crate::AppState;

pub use service_kit::http::error_response;

/// Refuses a WebSocket upgrade from a page whose origin is not allowed.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let refusal = service_kit::http::check_origin(&state.config.origins, headers, "service")?;
    state.metrics.error(ErrorCode::Unauthorized);
    Some(refusal)
}

/// `GET /api/info`.
pub async fn info(State(state): State<AppState>) -> Response {
    let model = state.simulator.model().info();
    let streams: Vec<&str> = state.sources.stream_sources().into_iter().map(|s| s.as_source().as_str()).collect();
    // `random` falls back to a procedural pattern without a dataset or an image folder.
    let stimulus_sources = ["client", "random"];
    let segments: Vec<serde_json::Value> = state
        .sources
        .recorded_set()
        .map(|set| {
            set.segments
                .iter()
                .map(|s| json!({"movie": s.movie, "segment": s.segment, "frames": s.frames.len()}))
                .collect()
        })
        .unwrap_or_default();
    let folder_images = state.sources.folder.as_deref().map_or(0, Vec::len);
    let l = &state.config.limits;
    let populations: Vec<&str> = state.populations().into_iter().map(|p| p.as_str()).collect();
    // The wide-field population's model under its own key; the fields above stay the
    // pvc-1 array's, as they were before there were two.
    let wide = match &state.wide {
        Some(wide) => {
            let w = wide.model().info();
            json!({
                "available": true,
                "channels": w.channels,
                "lags": w.n_lags(),
                "lag_frames": w.lags,
                "shape": [w.n_lags(), w.n_channels()],
                "response_len": w.response_len(),
                "image_size": w.image_size,
                "response_mean": w.response_mean,
                "crop_window": w.crop_window,
                "sources": ["dream"],
                "stimulus_sources": ["client"],
            })
        }
        None => json!({"available": false, "reason": crate::NO_WIDE_MODEL}),
    };
    let body = json!({
        "service": "simulation",
        "channels": model.channels,
        "lags": model.n_lags(),
        "lag_frames": model.lags,
        "shape": [model.n_lags(), model.n_channels()],
        "response_len": model.response_len(),
        "image_size": model.image_size,
        "response_mean": model.response_mean,
        "max_imagined_count": MAX_IMAGINED_COUNT,
        "crop_window": model.crop_window,
        "bin_seconds": 1.0 / 30.0,
        "sources": streams,
        "stimulus_sources": stimulus_sources,
        "recorded_segments": segments,
        "recorded": state.sources.recorded_status(),
        "folder_images": folder_images,
        "populations": populations,
        "wide": wide,
        "relay_connected": state.relay.is_connected(),
        "limits": {
            "max_message_bytes": l.max_message_bytes,
            "max_image_bytes": l.max_image_bytes,
            "max_image_side": l.max_image_side,
            "max_image_pixels": l.max_image_pixels,
            "frames_per_connection": l.frames_per_connection,
            "messages_per_second": l.messages_per_second,
            "max_sessions_per_connection": l.max_sessions_per_connection,
            "max_streams_per_connection": l.max_streams_per_connection,
            "min_fps": MIN_FPS,
            "max_fps": MAX_FPS,
        },
    });
    Json(body).into_response()
}

/// `GET /healthz`: 200 while serving, 503 while draining. `status` is `"ok"`, or
/// `"degraded"` while the relay link is not connected and answering (frames are kept
/// for the relay meanwhile, so the service itself still works); `relay` says the link's
/// state and why.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let draining = state.shutdown.is_cancelled();
    let link = state.relay.health();
    let healthy = link.is_healthy();
    let status = match service_kit::http::health_status(draining) {
        "ok" if !healthy => "degraded",
        other => other,
    };
    let mut relay = json!({
        "state": link.state.as_str(),
        "url": link.url,
        "since_secs": (link.since.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "unacked": link.unacked,
    });
    if let Some(cause) = link.cause.filter(|_| !healthy) {
        relay["cause"] = cause.into();
    }
    let body = json!({
        "status": status,
        "service": "simulation",
        "version": env!("CARGO_PKG_VERSION"),
        "relay_connected": healthy,
        "relay": relay,
        "relay_url": state.config.relay_url,
        "in_flight": state.pool.busy(),
        "sources": state.sources.stream_sources().into_iter().map(|s| s.as_source().as_str()).collect::<Vec<_>>(),
        "recorded": state.sources.recorded_status(),
        "model": state.config.model_dir.display().to_string(),
        "wide_model": state.config.wide_model_dir.as_ref().map(|d| d.display().to_string()),
    });
    service_kit::http::health_response(draining, body)
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    service_kit::http::metrics_response(state.metrics.encode())
}
