//! `/ws/ingest`: where simulation-services send `waveform_latent`s.
//!
//! The upgrade needs `Authorization: Bearer <shared secret>`. Per frame: rate limit,
//! decode and validate, check the payload against the model, de-duplicate by
//! (session, frame_id), take a place in the worker queue, reconstruct on a worker, buffer
//! and push the image to the session's subscribers, and answer the sender with the same
//! `reconstructed_image` (its acknowledgement), or with an `ack` when the upgrade asked
//! for one (`v1-ingest-reply: ack`, as the simulation-service does). With the Redis
//! store, a re-send of a frame that a relay accepted and has not published yet is
//! answered once that is settled (an `ack` when the image arrives, a reconstruction when
//! the frame is handed over after its lease; see [`crate::store::Admission::Pending`]).
//! Frames are processed concurrently; replies go out as they finish. A bad frame gets an `error` naming its session and
//! frame and never disturbs the connection's other frames.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Utf8Bytes, WebSocket};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use shared_protocol::{
    check_payload_len, decode, Ack, ErrorCode, ErrorMessage, IngestReply, Message, Population, ProtocolError, ReconstructedImage,
    WaveformLatent, INGEST_REPLY_HEADER, RELAY_INGEST,
};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::pool::JobFailed;
use crate::store::{Admission, Store};
pub use crate::ws::peek_ids;
use crate::ws::{accept, finish, split, Budget, End, Event, Outbox};
use crate::AppState;

/// Upgrades an authenticated simulation-service. Authentication comes first, so that a
/// plain HTTP request learns what is missing before it learns it is not a WebSocket.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(refusal) = crate::http::check_origin(&state, &headers) {
        return refusal;
    }
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !state.config.secret.verify_bearer(auth) {
        state.metrics.error(ErrorCode::Unauthorized);
        if let Some(suppressed) = state.metrics.refused(crate::telemetry::Refusal::Bearer) {
            warn!(suppressed, "refused /ws/ingest: missing or wrong bearer secret");
        }
        return crate::http::error_response(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "/ws/ingest needs `Authorization: Bearer <V1_SHARED_SECRET>`; give the simulation-service the relay's secret",
        );
    }
    if state.shutdown.is_cancelled() {
        return crate::http::error_response(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "the relay is shutting down");
    }
    // A value that is not text is read lossily, so its refusal names the header like any other.
    let asked = headers.get(INGEST_REPLY_HEADER).map(|v| IngestReply::parse(&String::from_utf8_lossy(v.as_bytes())));
    let reply = match asked.unwrap_or(Ok(IngestReply::Image)) {
        Ok(reply) => reply,
        Err(why) => {
            state.metrics.error(ErrorCode::BadMessage);
            return crate::http::error_response(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, &why);
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let limit = state.config.limits.max_message_bytes;
    let tasks = state.tasks.clone();
    accept(ws, limit, state.config.max_outgoing_bytes(), &tasks, move |socket| serve(socket, state, reply))
}

/// Serves one ingest connection until the peer leaves or the relay shuts down; then
/// finishes the frames already accepted, sends their replies and closes.
pub async fn serve(socket: WebSocket, state: AppState, reply: IngestReply) {
    state.metrics.connection("ingest");
    state.metrics.ingest_connections.inc();
    info!(reply = reply.as_str(), "simulation-service connected to /ws/ingest");
    let rate = state.config.limits.ingest_messages_per_second;
    let budget = Budget { rate, idle_timeout: state.config.limits.net.idle_timeout };
    let (mut reader, outbox, writer) = split(socket, budget, state.shutdown.clone());
    let frames = Frames { tasks: TaskTracker::new(), slots: Arc::new(Semaphore::new(reply_slots(&state))), reply };
    let close = loop {
        match reader.next().await {
            Ok(Event::Text { text, received }) => handle_text(&state, &outbox, &frames, text, received).await,
            Ok(Event::RateLimited { text }) => {
                let message = format!("more than {rate} messages per second on this connection; the frame was dropped");
                send_error(&state, &outbox, error(ErrorCode::RateLimited, message, peek_ids(&text))).await;
            }
            Ok(Event::Binary) => send_error(&state, &outbox, ProtocolError::Binary.to_error_message(None, None)).await,
            Err(end) => {
                match &end {
                    End::Oversize(_) => state.metrics.error(ErrorCode::TooLarge),
                    End::Failed(e) => debug!("ingest read error: {e}"),
                    _ => {}
                }
                if let Some(why) = end.describe() {
                    if let Some(suppressed) = crate::ws::CLOSE_LOG.check() {
                        warn!(suppressed, "closing /ws/ingest: {why}");
                    }
                }
                break end.close_frame("relay shutting down", "message over the relay's size limit");
            }
        }
    };
    // Frames already accepted are reconstructed and buffered even if the sender is gone.
    frames.tasks.close();
    frames.tasks.wait().await;
    finish(outbox, writer, close).await;
    state.metrics.ingest_connections.dec();
    info!("simulation-service left /ws/ingest");
}

/// The frames of one connection: their tasks, and a bound on how many may be unanswered
/// at once. The worker queue bounds the work; this also bounds the replies waiting for a
/// sender that does not read them.
#[derive(Clone)]
struct Frames {
    tasks: TaskTracker,
    slots: Arc<Semaphore>,
    /// What the sender asked to get back for each reconstructed frame.
    reply: IngestReply,
}

async fn handle_text(state: &AppState, outbox: &Outbox, frames: &Frames, text: Utf8Bytes, received: Instant) {
    let latent = match decode(text.as_str(), &RELAY_INGEST) {
        Ok(Message::WaveformLatent(l)) => l,
        Ok(other) => {
            // decode() only lets waveform_latent through at this endpoint.
            let e = ErrorMessage {
                code: ErrorCode::UnknownType,
                message: format!("{} is not accepted on /ws/ingest", other.message_type()),
                session_id: other.session_id().cloned(),
                frame_id: other.frame_id(),
            };
            send_error(state, outbox, e).await;
            return;
        }
        Err(e) => {
            let ids = peek_ids(&text);
            send_error(state, outbox, e.to_error_message(ids.0, ids.1)).await;
            return;
        }
    };
    let population = latent.population.unwrap_or_default();
    let Some(reconstructor) = state.reconstructor_for(population) else {
        // Final (`bad_message`, not `unavailable`): this relay will never have the model, so
        // a sender must not send the latent again.
        let ids = (Some(latent.session_id), latent.frame_id);
        let message = format!("waveform_latent: population \"{population}\": {}", crate::NO_WIDE_MODEL);
        send_error(state, outbox, error(ErrorCode::BadMessage, message, ids)).await;
        return;
    };
    let info = reconstructor.model().info();
    if let Err(e) = check_payload_len(latent.payload.len(), info.n_lags(), info.n_channels()) {
        let mut message = e.to_error_message(Some(latent.session_id), latent.frame_id);
        if population == Population::Wide {
            message.message = format!("population \"wide\": {}", message.message);
        }
        send_error(state, outbox, message).await;
        return;
    }
    let admission = match state.sessions.admit(&latent.session_id, latent.frame_id, received).await {
        Ok(a) => a,
        Err(e) => {
            send_error(state, outbox, error(e.code(), e.to_string(), (Some(latent.session_id), latent.frame_id))).await;
            return;
        }
    };
    match admission {
        Admission::New => reconstruct(state, outbox, frames, latent, received).await,
        Admission::Duplicate => acknowledge(state, outbox, latent).await,
        Admission::Pending => {
            let (state, outbox, waiting) = (state.clone(), outbox.clone(), frames.clone());
            frames.tasks.spawn(async move { settle_pending(&state, &outbox, &waiting, latent, received).await });
        }
    }
}

/// A re-send of a frame already reconstructed: acknowledged, not reconstructed again.
async fn acknowledge(state: &AppState, outbox: &Outbox, latent: WaveformLatent) {
    state.metrics.duplicates.inc();
    if let Some(frame_id) = latent.frame_id {
        outbox.send(&Message::Ack(Ack { session_id: latent.session_id, frame_id })).await;
    }
}

/// A re-send of a frame in flight (maybe on a relay that is gone): asks again until its
/// image is published (ack) or it is handed over (reconstruct). The store hands it over
/// after its lease, so this ends; the bound only guards against a store that misbehaves.
async fn settle_pending(state: &AppState, outbox: &Outbox, frames: &Frames, latent: WaveformLatent, received: Instant) {
    let wait = state.sessions.pending_wait();
    let give_up = Instant::now() + wait.lease * 3;
    loop {
        tokio::time::sleep(wait.poll).await;
        match state.sessions.admit(&latent.session_id, latent.frame_id, Instant::now()).await {
            Ok(Admission::Pending) if Instant::now() < give_up => continue,
            Ok(Admission::Pending) => {
                let message = "this frame is still being reconstructed by another relay; send it again later".to_owned();
                let ids = (Some(latent.session_id), latent.frame_id);
                return send_error(state, outbox, error(ErrorCode::Unavailable, message, ids)).await;
            }
            Ok(Admission::Duplicate) => return acknowledge(state, outbox, latent).await,
            Ok(Admission::New) => return reconstruct(state, outbox, frames, latent, received).await,
            Err(e) => {
                let ids = (Some(latent.session_id), latent.frame_id);
                return send_error(state, outbox, error(e.code(), e.to_string(), ids)).await;
            }
        }
    }
}

/// Queues an admitted frame for a worker; its reply (or error) goes out when it is done.
async fn reconstruct(state: &AppState, outbox: &Outbox, frames: &Frames, latent: WaveformLatent, received: Instant) {
    let Ok(slot) = frames.slots.clone().try_acquire_owned() else {
        state.sessions.abandon(&latent.session_id, latent.frame_id).await;
        let message = format!(
            "this connection has {} frames waiting for their replies; read the replies, or send fewer frames",
            reply_slots(state)
        );
        send_error(state, outbox, error(ErrorCode::Overloaded, message, (Some(latent.session_id), latent.frame_id))).await;
        return;
    };
    let ticket = match state.pool.admit(crate::pool::lane_of(&latent.session_id)) {
        Ok(t) => t,
        Err(e) => {
            state.sessions.abandon(&latent.session_id, latent.frame_id).await;
            send_error(state, outbox, error(ErrorCode::Overloaded, e.to_string(), (Some(latent.session_id), latent.frame_id)))
                .await;
            return;
        }
    };
    state.metrics.frames_in.inc();
    state.metrics.in_flight.inc();
    let state = state.clone();
    let outbox = outbox.clone();
    let reply_mode = frames.reply;
    frames.tasks.spawn(async move {
        let _slot = slot;
        let WaveformLatent { session_id, payload, frame_id, sent_at_ms, population, .. } = latent;
        // Checked when the frame was admitted: the relay has this population's model.
        let reconstructor = state.reconstructor_for(population.unwrap_or_default()).unwrap_or(&state.reconstructor).clone();
        let result = ticket
            .run(move || {
                let started = Instant::now();
                let image = reconstructor.reconstruct(&payload);
                (image, started.elapsed())
            })
            .await;
        state.metrics.in_flight.dec();
        let image = match result {
            Ok((Ok(url), compute)) => {
                state.metrics.reconstruct_seconds.observe(compute.as_secs_f64());
                url
            }
            Ok((Err(e), _)) => return fail(&state, &outbox, session_id, frame_id, e.to_string()).await,
            Err(JobFailed::Cancelled) => {
                // The relay is going down: no reply, so the sender re-sends the frame.
                state.sessions.abandon(&session_id, frame_id).await;
                return;
            }
            Err(e) => return fail(&state, &outbox, session_id, frame_id, e.to_string()).await,
        };
        let latency = received.elapsed();
        let reply = Message::ReconstructedImage(ReconstructedImage {
            session_id: session_id.clone(),
            image_base64: image,
            frame_id,
            sent_at_ms,
            latency_ms: Some(round_ms(latency.as_secs_f64() * 1000.0)),
            population,
        });
        let text: Utf8Bytes = reply.to_json().into();
        let published = match state.sessions.publish(&session_id, frame_id, text.clone(), Instant::now()).await {
            Ok(p) => p,
            Err(e) => {
                // Not buffered, so not acknowledged: the sender is told, and a re-send is
                // reconstructed again.
                warn!(session = %session_id, ?frame_id, "image not stored: {e}");
                state.sessions.abandon(&session_id, frame_id).await;
                send_error(&state, &outbox, error(e.code(), e.to_string(), (Some(session_id), frame_id))).await;
                return;
            }
        };
        state.metrics.frames_out.inc_by(published.subscribers as u64);
        if published.dropped_oldest {
            state.metrics.buffer_drops.inc();
        }
        state.metrics.frame_latency.observe(latency.as_secs_f64());
        match (reply_mode, frame_id) {
            (IngestReply::Ack, Some(frame_id)) => {
                outbox.send(&Message::Ack(Ack { session_id, frame_id })).await;
            }
            _ => {
                outbox.text(text).await;
            }
        }
    });
}

async fn fail(state: &AppState, outbox: &Outbox, session_id: shared_protocol::SessionId, frame_id: Option<u64>, why: String) {
    warn!(session = %session_id, ?frame_id, "reconstruction failed: {why}");
    state.sessions.abandon(&session_id, frame_id).await;
    send_error(state, outbox, error(ErrorCode::Internal, why, (Some(session_id), frame_id))).await;
}

fn error(code: ErrorCode, message: String, ids: (Option<shared_protocol::SessionId>, Option<u64>)) -> ErrorMessage {
    ErrorMessage { code, message, session_id: ids.0, frame_id: ids.1 }
}

async fn send_error(state: &AppState, outbox: &Outbox, e: ErrorMessage) {
    state.metrics.error(e.code);
    debug!(code = %e.code, "ingest error: {}", e.message);
    outbox.error(e).await;
}

/// Three decimals are plenty for a latency in ms and keep the JSON short.
fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Frames one connection may have unanswered (see [`crate::ws::reply_slots`]).
fn reply_slots(state: &AppState) -> usize {
    crate::ws::reply_slots(state.config.workers, state.config.limits.queue_depth)
}
