//! WebSocket connection plumbing shared by every socket of the services: the writer
//! task that owns the sending half, the reader that turns the receiving half into
//! events (shutdown, close, oversize, binary, rate-limited or accepted text), the
//! per-connection rate limiter, and the upgrade with size limits.
//!
//! Each connection is split: the handler reads, and a writer task sends whatever the
//! handler and its frame tasks queue. The queue is bounded, so a client that stops
//! reading slows down only its own connection.

use std::time::Instant;

use std::future::Future;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use axum::extract::WebSocketUpgrade;
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared_protocol::{ErrorMessage, Message, SessionId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Messages queued per connection before senders wait.
pub const OUTGOING_QUEUE: usize = 256;

/// What the writer task sends.
#[derive(Debug)]
pub enum Outgoing {
    Text(Utf8Bytes),
    /// Close with a code and reason, then stop.
    Close(u16, &'static str),
}

/// The sending half of a connection, cheap to clone into frame tasks.
#[derive(Debug, Clone)]
pub struct Outbox(mpsc::Sender<Outgoing>);

impl Outbox {
    /// Queues a message; false once the connection is gone.
    pub async fn send(&self, message: &Message) -> bool {
        self.text(message.to_json().into()).await
    }

    pub async fn text(&self, text: Utf8Bytes) -> bool {
        self.0.send(Outgoing::Text(text)).await.is_ok()
    }

    pub async fn error(&self, error: ErrorMessage) -> bool {
        self.send(&Message::Error(error)).await
    }

    /// Queues an error without waiting; false when the queue is full or the connection
    /// is gone (used from places that must not block, such as the relay link).
    pub fn try_error(&self, error: ErrorMessage) -> bool {
        self.0.try_send(Outgoing::Text(Message::Error(error).to_json().into())).is_ok()
    }

    /// Whether the connection's writer is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    pub async fn close(&self, code: u16, reason: &'static str) {
        let _ = self.0.send(Outgoing::Close(code, reason)).await;
    }
}

/// Spawns the writer task of `sink`; it ends after a close or when every [`Outbox`] is
/// dropped (then it closes the socket normally).
pub fn spawn_writer(mut sink: SplitSink<WebSocket, WsMessage>) -> (Outbox, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Outgoing>(OUTGOING_QUEUE);
    let task = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Outgoing::Text(text) => {
                    if sink.send(WsMessage::Text(text)).await.is_err() {
                        return;
                    }
                }
                Outgoing::Close(code, reason) => {
                    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    return;
                }
            }
        }
        let _ = sink.close().await;
    });
    (Outbox(tx), task)
}

/// A token bucket: `rate` messages per second on average, bursts of up to one second's
/// worth.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        Self { rate, tokens: rate, last: now }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Whether a read error is a message over the size limit (answered with close 1009).
pub fn is_oversize(error: &axum::Error) -> bool {
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}

/// Sends the close frame a connection ended with (if any), then waits for the writer to
/// flush what is queued. Every other [`Outbox`] clone must be dropped already (frame
/// tasks finished), or this waits until they are.
pub async fn finish(outbox: Outbox, writer: JoinHandle<()>, close: Option<(u16, &'static str)>) {
    if let Some((code, reason)) = close {
        outbox.close(code, reason).await;
    }
    drop(outbox);
    let _ = writer.await;
}

/// Applies the message size limit to an upgrade and serves the socket as a task of
/// `tasks`, so that shutdown waits for it (upgraded connections are not tracked by the
/// HTTP server).
pub fn accept<F, Fut>(ws: WebSocketUpgrade, max_message_bytes: usize, tasks: &TaskTracker, serve: F) -> Response
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tasks = tasks.clone();
    ws.max_message_size(max_message_bytes)
        .max_frame_size(max_message_bytes)
        .on_upgrade(move |socket| tasks.track_future(serve(socket)))
}

/// What the peer sent next.
#[derive(Debug)]
pub enum Event {
    /// A text message within the rate limit, with the time it was read.
    Text { text: Utf8Bytes, received: std::time::Instant },
    /// A text message over the connection's rate limit (to be refused, not processed).
    RateLimited { text: Utf8Bytes },
    /// A binary message (the protocol is text only).
    Binary,
}

/// Why a connection stopped reading.
#[derive(Debug)]
pub enum End {
    /// The peer closed the socket or went away.
    Closed,
    /// The service is shutting down (answered with close 1001).
    Shutdown,
    /// A message over the size limit (answered with close 1009).
    Oversize(axum::Error),
    /// Any other read error.
    Failed(axum::Error),
}

impl End {
    /// The close frame to send: 1001 with `away` on shutdown, 1009 with `oversize` for an
    /// oversize message, none otherwise.
    pub fn close_frame(&self, away: &'static str, oversize: &'static str) -> Option<(u16, &'static str)> {
        use axum::extract::ws::close_code;
        match self {
            End::Shutdown => Some((close_code::AWAY, away)),
            End::Oversize(_) => Some((close_code::SIZE, oversize)),
            End::Closed | End::Failed(_) => None,
        }
    }
}

/// The receiving half of a connection with its rate limit and the service's shutdown.
pub struct Reader {
    stream: SplitStream<WebSocket>,
    limiter: RateLimiter,
    shutdown: CancellationToken,
}

impl Reader {
    /// `rate`: messages per second the peer may send on average.
    pub fn new(stream: SplitStream<WebSocket>, rate: u32, shutdown: CancellationToken) -> Self {
        Self { stream, limiter: RateLimiter::new(rate, std::time::Instant::now()), shutdown }
    }

    /// Waits for the next message that needs an answer; pings and pongs are handled by
    /// the socket itself. Shutdown wins over a message that is already waiting.
    pub async fn next(&mut self) -> Result<Event, End> {
        loop {
            let next = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Err(End::Shutdown),
                next = self.stream.next() => next,
            };
            match next {
                None | Some(Ok(WsMessage::Close(_))) => return Err(End::Closed),
                Some(Err(e)) if is_oversize(&e) => return Err(End::Oversize(e)),
                Some(Err(e)) => return Err(End::Failed(e)),
                Some(Ok(WsMessage::Binary(_))) => return Ok(Event::Binary),
                Some(Ok(WsMessage::Text(text))) => {
                    let received = std::time::Instant::now();
                    return Ok(if self.limiter.allow(received) {
                        Event::Text { text, received }
                    } else {
                        Event::RateLimited { text }
                    });
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            }
        }
    }
}

/// Splits an upgraded socket into a [`Reader`] and a writer task (see [`spawn_writer`]).
pub fn split(socket: WebSocket, rate: u32, shutdown: CancellationToken) -> (Reader, Outbox, JoinHandle<()>) {
    let (sink, stream) = socket.split();
    let (outbox, writer) = spawn_writer(sink);
    (Reader::new(stream, rate, shutdown), outbox, writer)
}

/// The session and frame a message that failed validation was about, when its JSON
/// still says so, so the sender can match the error to its frame.
pub fn peek_ids(text: &str) -> (Option<SessionId>, Option<u64>) {
    #[derive(serde::Deserialize)]
    struct Ids {
        session_id: Option<String>,
        frame_id: Option<u64>,
    }
    match serde_json::from_str::<Ids>(text) {
        Ok(ids) => (ids.session_id.and_then(|s| SessionId::parse(&s).ok()), ids.frame_id),
        Err(_) => (None, None),
    }
}

/// Frames one connection may have unanswered: twice what the workers can hold, so that
/// under plain overload the worker queue refuses first (with the more useful message)
/// and this bound only catches a peer that stops reading.
pub fn reply_slots(workers: usize, queue_depth: usize) -> usize {
    2 * (workers + queue_depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_limiter_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, t0);
        assert!((0..10).all(|_| r.allow(t0)));
        assert!(!r.allow(t0));
        assert!(r.allow(t0 + Duration::from_millis(100)));
        assert!(!r.allow(t0 + Duration::from_millis(100)));
        // Idle time refills up to one second's worth, not more.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| r.allow(later)).count(), 10);
    }

    #[test]
    fn peek_ids_reads_what_the_json_still_says() {
        let (session, frame) = peek_ids(r#"{"type":"nope","session_id":"xyz123","frame_id":4}"#);
        assert_eq!(session.map(|s| s.to_string()), Some("xyz123".to_owned()));
        assert_eq!(frame, Some(4));
        assert_eq!(peek_ids("not json"), (None, None));
    }

    #[test]
    fn close_frames_follow_the_protocol_codes() {
        assert_eq!(End::Shutdown.close_frame("away", "big"), Some((1001, "away")));
        assert_eq!(End::Closed.close_frame("away", "big"), None);
    }
}
