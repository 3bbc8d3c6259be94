//! `/ws/subscribe`: browsers receive the reconstructions of their sessions.
//!
//! A `subscribe` with the session's token is answered by `subscribed` (with the number
//! of buffered images), the buffered images in frame order, then every new image of the
//! session as it is made. One connection may hold several subscriptions (up to a limit);
//! subscribing again to the same session restarts it with a fresh replay. A subscriber
//! that falls behind by more than the session buffer is told how many images it missed.
//! With the Redis store, a subscriber whose relay lost its pub/sub link to Redis is told
//! so (`unavailable`) and keeps its subscription; subscribing again replays the buffer.
//!
//! A token outlives the session's state (an idle session is forgotten, a relay
//! restarts), so a subscription may (re)create its session. Such a session counts
//! against the subscriber's address like one it was issued, so holding old tokens does
//! not lift the per-client limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use axum::extract::ws::WebSocket;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use shared_protocol::{
    decode, ErrorCode, ErrorMessage, Message, ProtocolError, SessionId, Subscribe, Subscribed, RELAY_SUBSCRIBE,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::store::{Live, Store, Subscription};
use crate::ws::{accept, finish, peek_ids, split, Budget, End, Event, Outbox};
use crate::AppState;

/// Largest message a subscriber sends (`subscribe` is tiny).
const MAX_SUBSCRIBER_MESSAGE: usize = 16 * 1024;

pub async fn upgrade(State(state): State<AppState>, peer: crate::http::Peer, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if let Some(refusal) = crate::http::check_origin(&state, &headers) {
        return refusal;
    }
    if state.shutdown.is_cancelled() {
        return crate::http::error_response(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "the relay is shutting down");
    }
    let limit = MAX_SUBSCRIBER_MESSAGE.min(state.config.limits.max_message_bytes);
    let tasks = state.tasks.clone();
    let client = crate::http::client_ip(&peer);
    accept(ws, limit, state.config.max_outgoing_bytes(), &tasks, move |socket| serve(socket, state, client))
}

/// Serves one subscriber connection from `client` (counted against its per-client
/// session limit when a subscription creates a session; `None`: not counted) until it
/// leaves or the relay shuts down.
pub async fn serve(socket: WebSocket, state: AppState, client: Option<IpAddr>) {
    state.metrics.connection("subscribe");
    let rate = state.config.limits.subscribe_messages_per_second;
    let budget = Budget { rate, idle_timeout: state.config.limits.net.idle_timeout };
    let (mut reader, outbox, writer) = split(socket, budget, state.shutdown.clone());
    let mut forwarders: HashMap<SessionId, JoinHandle<()>> = HashMap::new();
    let close = loop {
        match reader.next().await {
            Ok(Event::Text { text, received }) => match decode(text.as_str(), &RELAY_SUBSCRIBE) {
                Ok(Message::Subscribe(sub)) => subscribe(&state, &outbox, &mut forwarders, sub, client, received).await,
                Ok(other) => {
                    let e = ErrorMessage {
                        code: ErrorCode::UnknownType,
                        message: format!("{} is not accepted on /ws/subscribe", other.message_type()),
                        session_id: other.session_id().cloned(),
                        frame_id: None,
                    };
                    send_error(&state, &outbox, e).await;
                }
                Err(e) => send_error(&state, &outbox, e.to_error_message(peek_ids(&text).0, None)).await,
            },
            Ok(Event::RateLimited { .. }) => {
                let message = format!("more than {rate} messages per second on this connection; the message was dropped");
                let e = ErrorMessage { code: ErrorCode::RateLimited, message, session_id: None, frame_id: None };
                send_error(&state, &outbox, e).await;
            }
            Ok(Event::Binary) => send_error(&state, &outbox, ProtocolError::Binary.to_error_message(None, None)).await,
            Err(end) => {
                if let End::Oversize(_) = end {
                    state.metrics.error(ErrorCode::TooLarge);
                }
                if let End::Oversize(e) | End::Failed(e) = &end {
                    debug!("subscriber read error: {e}");
                }
                break end.close_frame("relay shutting down", "message over the subscriber size limit");
            }
        }
    };
    for (_, f) in forwarders.drain() {
        f.abort();
    }
    finish(outbox, writer, close).await;
}

async fn subscribe(
    state: &AppState,
    outbox: &Outbox,
    forwarders: &mut HashMap<SessionId, JoinHandle<()>>,
    sub: Subscribe,
    client: Option<IpAddr>,
    now: Instant,
) {
    let Subscribe { session_id, token } = sub;
    if let Err(e) = state.config.secret.verify_token(&session_id, &token) {
        crate::http::refused_token(state, &e, &session_id, "subscribe");
        // Counted above already; sent without counting it again.
        outbox.error(e.to_error_message(Some(session_id), None)).await;
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
    let Subscription { replay, mut live, replayed_through } = match state.sessions.subscribe(&session_id, client, now).await {
        Ok(s) => s,
        Err(e) => {
            let code = e.code();
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
                // Already sent in the replay (the Redis store may deliver an image both
                // ways while a subscription starts).
                Ok(Live::Image { seq, .. }) if seq <= replayed_through => {}
                Ok(Live::Image { json, .. }) => {
                    if !forward_outbox.text(json).await {
                        break;
                    }
                }
                Ok(Live::Interrupted) => {
                    let message = "the relay lost its link to the session store (Redis) and is reconnecting; images made meanwhile were not pushed: subscribe again to get the buffered ones".to_owned();
                    let e = ErrorMessage { code: ErrorCode::Unavailable, message, session_id: Some(forward_session.clone()), frame_id: None };
                    state.metrics.error(e.code);
                    if !forward_outbox.error(e).await {
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
