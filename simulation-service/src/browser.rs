//! `/ws`: browsers send `stimulus`, `imagined`, `start_stream` and `stop_stream`; the service answers
//! each frame with a `response` and forwards its `waveform_latent` to the relay. A
//! connection opened as `/ws?delivered=true` is also told `delivered` once the relay has
//! acknowledged a frame (see the delivery guarantee in docs/protocol.md).
//!
//! Each stimulus needs its session's token. Frames run concurrently on the worker pool
//! (a full queue answers `overloaded`); streams run as tasks of the connection and stop
//! with `stop_stream`, a new `start_stream` for the same session, or the connection's
//! end. Every error names its session and frame and leaves the connection, its other
//! sessions and its streams running.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::WebSocket;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use shared_protocol::validate::DEFAULT_FPS;
use shared_protocol::{
    check_payload_len, decode, ErrorCode, ErrorMessage, Imagined, Message, Population, ProtocolError, SessionId, Source, StartStream,
    Stimulus, StreamSource, Trial, SIMULATION,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::frames::{process, FrameMeta, Input};
use crate::ws::{accept, finish, peek_ids, split, Budget, End, Event, Outbox};
use crate::AppState;

pub async fn upgrade(State(state): State<AppState>, headers: HeaderMap, uri: Uri, ws: WebSocketUpgrade) -> Response {
    if let Some(refusal) = crate::http::check_origin(&state, &headers) {
        return refusal;
    }
    let wants_delivered = match wants_delivered(uri.query()) {
        Ok(w) => w,
        Err(message) => return crate::http::error_response(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, &message),
    };
    if state.shutdown.is_cancelled() {
        return crate::http::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the simulation-service is shutting down",
        );
    }
    let limit = state.config.limits.max_message_bytes;
    let tasks = state.tasks.clone();
    let outgoing = std::iter::once(&state.simulator)
        .chain(state.wide.as_ref())
        .map(|s| max_outgoing_bytes(s.model().info()))
        .max()
        .unwrap_or_default();
    accept(ws, limit, outgoing, &tasks, move |socket| serve(socket, state, wants_delivered))
}

/// `delivered=true` (or `1`) in the upgrade's query asks for `delivered` messages; off by
/// default, so clients that do not re-send frames are not sent notices they ignore.
fn wants_delivered(query: Option<&str>) -> Result<bool, String> {
    let mut wants = false;
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (key, value) {
            ("delivered", "true" | "1") => wants = true,
            ("delivered", "false" | "0") => wants = false,
            ("delivered", other) => {
                return Err(format!("delivered={other:.40} in the /ws URL; use delivered=true or delivered=false"))
            }
            _ => {}
        }
    }
    Ok(wants)
}

/// One browser connection's state.
struct Connection {
    id: u64,
    outbox: Outbox,
    /// Sessions this connection has used (bounded).
    sessions: HashSet<SessionId>,
    /// Running streams by session.
    streams: HashMap<SessionId, CancellationToken>,
    /// Frame and stream tasks, awaited before the connection closes.
    tasks: TaskTracker,
    /// Frames taken and not yet answered. The worker queue bounds the work; this also
    /// bounds the responses waiting for a browser that does not read them.
    slots: Arc<Semaphore>,
    /// Send `delivered` for this connection's frames.
    wants_delivered: bool,
}

pub async fn serve(socket: WebSocket, state: AppState, wants_delivered: bool) {
    let id = state.next_connection.fetch_add(1, Ordering::Relaxed);
    state.metrics.connections.inc();
    debug!(connection = id, "browser connected");
    let rate = state.config.limits.messages_per_second;
    let budget = Budget { rate, idle_timeout: state.config.limits.net.idle_timeout };
    let (mut reader, outbox, writer) = split(socket, budget, state.shutdown.clone());
    let slots = Arc::new(Semaphore::new(reply_slots(&state)));
    let mut conn = Connection {
        id,
        outbox,
        sessions: HashSet::new(),
        streams: HashMap::new(),
        tasks: TaskTracker::new(),
        slots,
        wants_delivered,
    };
    let close = loop {
        match reader.next().await {
            Err(end) => {
                match &end {
                    End::Oversize(_) => state.metrics.error(ErrorCode::TooLarge),
                    End::Failed(e) => debug!(connection = id, "read error: {e}"),
                    _ => {}
                }
                if let Some(why) = end.describe() {
                    if let Some(suppressed) = crate::ws::CLOSE_LOG.check() {
                        info!(connection = id, suppressed, "closing a browser connection: {why}");
                    }
                }
                break end.close_frame("simulation-service shutting down", "message over the size limit (--max-message-bytes)");
            }
            Ok(Event::Binary) => send_error(&state, &conn.outbox, ProtocolError::Binary.to_error_message(None, None)).await,
            Ok(Event::RateLimited { text }) => {
                let message = format!("more than {rate} messages per second on this connection; the message was dropped");
                let (session_id, frame_id) = peek_ids(text.as_str());
                let e = ErrorMessage { code: ErrorCode::RateLimited, message, session_id, frame_id };
                send_error(&state, &conn.outbox, e).await;
            }
            Ok(Event::Text { text, .. }) => {
                match decode(text.as_str(), &SIMULATION) {
                    Ok(Message::Stimulus(s)) => stimulus(&state, &mut conn, s).await,
                    Ok(Message::Imagined(m)) => imagined(&state, &mut conn, m).await,
                    Ok(Message::StartStream(s)) => start_stream(&state, &mut conn, s).await,
                    Ok(Message::StopStream(s)) => {
                        if let Some(stop) = conn.streams.remove(&s.session_id) {
                            stop.cancel();
                        }
                    }
                    Ok(other) => {
                        let e = ErrorMessage {
                            code: ErrorCode::UnknownType,
                            message: format!("{} is not accepted on /ws", other.message_type()),
                            session_id: other.session_id().cloned(),
                            frame_id: other.frame_id(),
                        };
                        send_error(&state, &conn.outbox, e).await;
                    }
                    Err(e) => {
                        let (session_id, frame_id) = peek_ids(text.as_str());
                        send_error(&state, &conn.outbox, e.to_error_message(session_id, frame_id)).await;
                    }
                }
            }
        }
    };
    for (_, stop) in conn.streams.drain() {
        stop.cancel();
    }
    // Frames already taken are finished: their latents reach the relay even when the
    // browser has gone.
    conn.tasks.close();
    conn.tasks.wait().await;
    state.trials.forget(&conn.sessions);
    let sessions = state.viewers.forget_connection(conn.id);
    state.metrics.sessions.set(sessions as i64);
    finish(conn.outbox, writer, close).await;
    state.metrics.connections.dec();
    debug!(connection = id, "browser left");
}

/// Checks the token and the connection's session limit.
async fn admit_session(state: &AppState, conn: &mut Connection, session: &SessionId, token: &str, frame_id: Option<u64>) -> bool {
    if let Err(e) = state.config.secret.verify_token(session, token) {
        send_error(state, &conn.outbox, e.to_error_message(Some(session.clone()), frame_id)).await;
        return false;
    }
    if !conn.sessions.contains(session) {
        let max = state.config.limits.max_sessions_per_connection;
        if conn.sessions.len() >= max {
            let message = format!(
                "this connection already uses {max} sessions (the service's --max-sessions-per-connection); open another connection"
            );
            let e = ErrorMessage { code: ErrorCode::BadSession, message, session_id: Some(session.clone()), frame_id };
            send_error(state, &conn.outbox, e).await;
            return false;
        }
        conn.sessions.insert(session.clone());
        let held = state.viewers.register(session, conn.id, &conn.outbox, conn.wants_delivered);
        state.metrics.sessions.set(held as i64);
    }
    true
}

/// Whether the service simulates `population`; if not, the client is told (naming the
/// session and frame) and nothing is simulated or forwarded.
async fn check_population(state: &AppState, conn: &Connection, population: Population, session_id: &SessionId, frame_id: Option<u64>) -> bool {
    match state.simulator_for(population) {
        Ok(_) => true,
        Err(e) => {
            let error = ErrorMessage { code: e.code(), message: e.to_string(), session_id: Some(session_id.clone()), frame_id };
            send_error(state, &conn.outbox, error).await;
            false
        }
    }
}

/// Why the wide-field population cannot take frames the service picks itself: its
/// dataset, image folder and camera frames are cut for the pvc-1 array's crop window, and
/// recorded responses are the pvc-1 array's.
fn wide_source_refusal(source: &str) -> String {
    format!(
        "population \"wide\" simulates images sent by the browser (camera, upload) and the dream stream; source {source:?} serves \
         frames cut for the pvc-1 array (send the image itself, or use population \"pvc1\")"
    )
}

async fn stimulus(state: &AppState, conn: &mut Connection, s: Stimulus) {
    let Stimulus { session_id, token, frame_id, image, source, population, trial } = s;
    if !admit_session(state, conn, &session_id, &token, frame_id).await {
        return;
    }
    let frame_id = frame_id.unwrap_or_else(|| state.frame_ids.next());
    if !check_population(state, conn, population.unwrap_or_default(), &session_id, Some(frame_id)).await {
        return;
    }
    if population == Some(Population::Wide) && image.is_none() {
        let message = wide_source_refusal(source.unwrap_or(Source::Random).as_str());
        let error = ErrorMessage { code: ErrorCode::Unavailable, message, session_id: Some(session_id), frame_id: Some(frame_id) };
        send_error(state, &conn.outbox, error).await;
        return;
    }
    let (input, source) = match image {
        Some(url) => (Input::DataUrl(url), source.unwrap_or(Source::Client)),
        None => match state.sources.pick(source.unwrap_or(Source::Random)) {
            Ok(picked) => (Input::Crop(picked.crop), picked.source),
            Err(e) => {
                let error = ErrorMessage { code: e.code(), message: e.to_string(), session_id: Some(session_id), frame_id: Some(frame_id) };
                send_error(state, &conn.outbox, error).await;
                return;
            }
        },
    };
    run_frame(state, conn, FrameMeta::new(session_id, frame_id, source).with(population, trial), input).await;
}

/// A response painted in the browser: checked against the model (the protocol has
/// checked its values), then answered and forwarded like a simulated one.
async fn imagined(state: &AppState, conn: &mut Connection, m: Imagined) {
    let Imagined { session_id, token, frame_id, payload, population } = m;
    if !admit_session(state, conn, &session_id, &token, frame_id).await {
        return;
    }
    let frame_id = frame_id.unwrap_or_else(|| state.frame_ids.next());
    let Ok(simulator) = state.simulator_for(population.unwrap_or_default()) else {
        check_population(state, conn, population.unwrap_or_default(), &session_id, Some(frame_id)).await;
        return;
    };
    let info = simulator.model().info();
    if let Err(e) = check_payload_len(payload.len(), info.n_lags(), info.n_channels()) {
        let of = match population.unwrap_or_default() {
            Population::Pvc1 => "",
            Population::Wide => " (the wide-field population's, under \"wide\")",
        };
        let message = format!("imagined: {e}; start from the last response or from the mean response of GET /api/info{of}");
        let error = ErrorMessage { code: e.code(), message, session_id: Some(session_id), frame_id: Some(frame_id) };
        send_error(state, &conn.outbox, error).await;
        return;
    }
    let meta = FrameMeta::new(session_id, frame_id, Source::Imagined).with(population, None);
    run_frame(state, conn, meta, Input::Imagined(payload)).await;
}

/// Takes a place among the connection's unanswered frames (and a worker's, when the
/// input needs one), then runs the frame on a task of the connection.
async fn run_frame(state: &AppState, conn: &mut Connection, meta: FrameMeta, input: Input) {
    let refuse = |message: String, meta: FrameMeta| ErrorMessage {
        code: ErrorCode::Overloaded,
        message,
        session_id: Some(meta.session_id),
        frame_id: Some(meta.frame_id),
    };
    let Ok(slot) = conn.slots.clone().try_acquire_owned() else {
        let message = format!(
            "this connection has {} frames waiting for their responses; read the responses, or send fewer frames",
            reply_slots(state)
        );
        send_error(state, &conn.outbox, refuse(message, meta)).await;
        return;
    };
    let ticket = if input.needs_worker() {
        match state.pool.admit(crate::pool::lane_of(conn.id)) {
            Ok(t) => Some(t),
            Err(e) => {
                send_error(state, &conn.outbox, refuse(e.to_string(), meta)).await;
                return;
            }
        }
    } else {
        None
    };
    state.metrics.frame_in(meta.source);
    let task_state = state.clone();
    let outbox = conn.outbox.clone();
    conn.tasks.spawn(async move {
        let _slot = slot;
        process(&task_state, &outbox, meta, input, ticket).await;
    });
}

async fn start_stream(state: &AppState, conn: &mut Connection, s: StartStream) {
    let StartStream { session_id, token, source, fps, population, trial } = s;
    if !admit_session(state, conn, &session_id, &token, None).await {
        return;
    }
    if !check_population(state, conn, population.unwrap_or_default(), &session_id, None).await {
        return;
    }
    let refusal = match (source, population.unwrap_or_default(), trial.unwrap_or_default()) {
        (StreamSource::Recorded, _, Trial::Single) => Some((
            ErrorCode::BadMessage,
            "start_stream: trial \"single\" draws trials from predicted means; recorded responses are single trials already: \
             leave trial out for source \"recorded\""
                .to_owned(),
        )),
        (StreamSource::Dream, Population::Wide, _) | (_, Population::Pvc1, _) => None,
        (other, Population::Wide, _) => Some((ErrorCode::Unavailable, wide_source_refusal(other.as_source().as_str()))),
    };
    if let Some((code, message)) = refusal {
        let error = ErrorMessage { code, message, session_id: Some(session_id), frame_id: None };
        send_error(state, &conn.outbox, error).await;
        return;
    }
    if let Err(e) = state.sources.check_stream(source) {
        let error = ErrorMessage { code: e.code(), message: e.to_string(), session_id: Some(session_id), frame_id: None };
        send_error(state, &conn.outbox, error).await;
        return;
    }
    if let Some(old) = conn.streams.remove(&session_id) {
        old.cancel();
    }
    let max = state.config.limits.max_streams_per_connection;
    if conn.streams.len() >= max {
        let message = format!(
            "this connection already runs {max} streams (the service's --max-streams-per-connection); stop one first"
        );
        let error = ErrorMessage { code: ErrorCode::BadSession, message, session_id: Some(session_id), frame_id: None };
        send_error(state, &conn.outbox, error).await;
        return;
    }
    let stop = CancellationToken::new();
    conn.streams.insert(session_id.clone(), stop.clone());
    let fps = fps.unwrap_or(DEFAULT_FPS);
    info!(connection = conn.id, session = %session_id, source = source.as_source().as_str(), fps, ?population, ?trial, "stream started");
    let stream = crate::streams::Stream { session_id, source, fps, population, trial: trial.unwrap_or_default() };
    conn.tasks.spawn(crate::streams::run(state.clone(), conn.outbox.clone(), stream, stop));
}

async fn send_error(state: &AppState, outbox: &Outbox, e: ErrorMessage) {
    state.metrics.error(e.code);
    debug!(code = %e.code, "browser error: {}", e.message);
    outbox.error(e).await;
}

/// The largest message `/ws` sends: a `response` with its payload as JSON numbers and the
/// crop as a PNG data URL (at worst about twice the raw pixels, base64-encoded), or an
/// error; it bounds the socket's write buffer.
fn max_outgoing_bytes(info: &models::ModelInfo) -> usize {
    let payload = info.n_lags() * info.n_channels() * 32;
    let side = info.image_size;
    let png = side * side * 2 * 4 / 3;
    payload + png + 16 * 1024
}

/// Frames one connection may have unanswered (see [`crate::ws::reply_slots`]).
fn reply_slots(state: &AppState) -> usize {
    crate::ws::reply_slots(state.config.workers, state.config.limits.queue_depth)
}

#[cfg(test)]
mod tests {
    use super::wants_delivered;

    #[test]
    fn delivered_notices_are_asked_for_in_the_query() {
        assert_eq!(wants_delivered(None), Ok(false));
        assert_eq!(wants_delivered(Some("")), Ok(false));
        assert_eq!(wants_delivered(Some("delivered=true")), Ok(true));
        assert_eq!(wants_delivered(Some("x=1&delivered=1")), Ok(true));
        assert_eq!(wants_delivered(Some("delivered=false")), Ok(false));
        let e = wants_delivered(Some("delivered=yes")).unwrap_err();
        assert!(e.contains("delivered=true"), "{e}");
    }
}
