//! `/ws/subscribe`: browsers receive the reconstructions of their sessions.
//!
//! A `subscribe` with the session's token is answered by `subscribed` (with the number
//! of buffered images), the buffered images in frame order, then every new image of the
//! session as it is made. One connection may hold several subscriptions (up to a limit);
//! subscribing again to the same session restarts it with a fresh replay. A subscriber
//! that falls behind by more than the session buffer is told how many images it missed.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::ws::{close_code, Message as WsMessage, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use shared_protocol::{
    decode, ErrorCode, ErrorMessage, Message, ProtocolError, SessionId, Subscribe, Subscribed, RELAY_SUBSCRIBE,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::ingest::peek_ids;
use crate::sessions::{SessionError, Subscription};
use crate::ws::{is_oversize, spawn_writer, Outbox, RateLimiter};
use crate::AppState;

/// Largest message a subscriber sends (`subscribe` is tiny).
const MAX_SUBSCRIBER_MESSAGE: usize = 16 * 1024;

pub async fn upgrade(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if let Some(refusal) = crate::http::check_origin(&state, &headers) {
        return refusal;
    }
    if state.shutdown.is_cancelled() {
        return crate::http::error_response(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "the relay is shutting down");
    }
    let limit = MAX_SUBSCRIBER_MESSAGE.min(state.config.limits.max_message_bytes);
    let tasks = state.tasks.clone();
    ws.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| tasks.track_future(serve(socket, state)))
}

/// Serves one subscriber connection until it leaves or the relay shuts down.
pub async fn serve(socket: WebSocket, state: AppState) {
    state.metrics.connection("subscribe");
    let (sink, mut stream) = socket.split();
    let (outbox, writer) = spawn_writer(sink);
    let mut forwarders: HashMap<SessionId, JoinHandle<()>> = HashMap::new();
    let mut limiter = RateLimiter::new(state.config.limits.subscribe_messages_per_second, Instant::now());
    let mut close: Option<(u16, &'static str)> = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => {
                close = Some((close_code::AWAY, "relay shutting down"));
                break;
            }
            next = stream.next() => next,
        };
        match next {
            None | Some(Ok(WsMessage::Close(_))) => break,
            Some(Err(e)) => {
                if is_oversize(&e) {
                    state.metrics.error(ErrorCode::TooLarge);
                    close = Some((close_code::SIZE, "message over the subscriber size limit"));
                }
                debug!("subscriber read error: {e}");
                break;
            }
            Some(Ok(WsMessage::Binary(_))) => {
                send_error(&state, &outbox, ProtocolError::Binary.to_error_message(None, None)).await;
            }
            Some(Ok(WsMessage::Text(text))) => {
                let now = Instant::now();
                if !limiter.allow(now) {
                    let message = format!(
                        "more than {} messages per second on this connection; the message was dropped",
                        state.config.limits.subscribe_messages_per_second
                    );
                    send_error(&state, &outbox, ErrorMessage { code: ErrorCode::RateLimited, message, session_id: None, frame_id: None })
                        .await;
                    continue;
                }
                match decode(text.as_str(), &RELAY_SUBSCRIBE) {
                    Ok(Message::Subscribe(sub)) => subscribe(&state, &outbox, &mut forwarders, sub, now).await,
                    Ok(other) => {
                        let e = ErrorMessage {
                            code: ErrorCode::UnknownType,
                            message: format!("{} is not accepted on /ws/subscribe", other.message_type()),
                            session_id: other.session_id().cloned(),
                            frame_id: None,
                        };
                        send_error(&state, &outbox, e).await;
                    }
                    Err(e) => {
                        let ids = peek_ids(&text);
                        send_error(&state, &outbox, e.to_error_message(ids.0, None)).await;
                    }
                }
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
        }
    }
    for (_, f) in forwarders.drain() {
        f.abort();
    }
    if let Some((code, reason)) = close {
        outbox.close(code, reason).await;
    }
    drop(outbox);
    let _ = writer.await;
}

async fn subscribe(
    state: &AppState,
    outbox: &Outbox,
    forwarders: &mut HashMap<SessionId, JoinHandle<()>>,
    sub: Subscribe,
    now: Instant,
) {
    let Subscribe { session_id, token } = sub;
    if let Err(e) = state.config.secret.verify_token(&session_id, &token) {
        warn!(session = %session_id, "subscribe refused: wrong token");
        send_error(state, outbox, e.to_error_message(Some(session_id), None)).await;
        return;
    }
    let max = state.config.limits.max_subscriptions_per_connection;
    if !forwarders.contains_key(&session_id) && forwarders.len() >= max {
        let message = format!(
            "this connection already holds {max} subscriptions (the relay's --max-subscriptions-per-connection); open another connection"
        );
        send_error(state, outbox, ErrorMessage { code: ErrorCode::BadSession, message, session_id: Some(session_id), frame_id: None })
            .await;
        return;
    }
    let Subscription { replay, mut live } = match state.sessions.subscribe(&session_id, now) {
        Ok(s) => s,
        Err(e) => {
            let code = match e {
                SessionError::Full { .. } => ErrorCode::Overloaded,
                SessionError::ClientLimit { .. } => ErrorCode::BadSession,
            };
            let message = e.to_string();
            send_error(state, outbox, ErrorMessage { code, message, session_id: Some(session_id), frame_id: None }).await;
            return;
        }
    };
    if let Some(old) = forwarders.remove(&session_id) {
        old.abort();
    }
    let ack = Message::Subscribed(Subscribed { session_id: session_id.clone(), buffered: replay.len() });
    outbox.send(&ack).await;
    let replayed = replay.len() as u64;
    for text in replay {
        outbox.text(text).await;
    }
    state.metrics.frames_out.inc_by(replayed);
    let forward_state = state.clone();
    let forward_outbox = outbox.clone();
    let forward_session = session_id.clone();
    let forwarder = tokio::spawn(async move {
        let state = forward_state;
        state.metrics.subscribers.inc();
        let _gauge = GaugeGuard(&state);
        loop {
            match live.recv().await {
                Ok(text) => {
                    if !forward_outbox.text(text).await {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    state.metrics.subscriber_lag.inc_by(missed);
                    let message = format!(
                        "this subscriber fell behind and missed {missed} images of the session; read faster or subscribe again for the buffered ones"
                    );
                    let e = ErrorMessage { code: ErrorCode::Overloaded, message, session_id: Some(forward_session.clone()), frame_id: None };
                    state.metrics.error(e.code);
                    if !forward_outbox.error(e).await {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    forwarders.insert(session_id, forwarder);
}

/// Decrements the subscriber gauge when a forwarder ends, however it ends.
struct GaugeGuard<'a>(&'a AppState);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.metrics.subscribers.dec();
    }
}

async fn send_error(state: &AppState, outbox: &Outbox, e: ErrorMessage) {
    state.metrics.error(e.code);
    outbox.error(e).await;
}
