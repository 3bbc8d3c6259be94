//! WebSocket connection plumbing shared by every socket of the services: the writer
//! task that owns the sending half, the reader that turns the receiving half into
//! events (shutdown, close, oversize, binary, rate-limited or accepted text), the
//! per-connection rate limiter, and the upgrade with size limits.
//!
//! Each connection is split: the handler reads, and a writer task sends whatever the
//! handler and its frame tasks queue. The queue is bounded, so a client that stops
//! reading slows down only its own connection.
//!
//! What a client can make a connection hold is bounded: the socket's write buffer has a
//! maximum (the pongs owed to a client that pings and never reads wait there), pings and
//! pongs take from the same rate budget as messages and a connection that pings past it
//! is closed with 1008, and a connection silent for the idle timeout is closed (the
//! writer pings every third of it, so a live peer always answers something).

use std::time::{Duration, Instant};

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

/// At most one log line a second about connections closed for what their peer did (a
/// flood of abusive connections must not become a flood of log lines).
pub static CLOSE_LOG: crate::log_limit::LogLimiter = crate::log_limit::LogLimiter::per_second();

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

/// Spawns the writer task of `sink`, which also pings the peer every `ping_every`; it
/// ends after a close or when every [`Outbox`] is dropped (then it closes the socket
/// normally).
pub fn spawn_writer(mut sink: SplitSink<WebSocket, WsMessage>, ping_every: Duration) -> (Outbox, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Outgoing>(OUTGOING_QUEUE);
    let task = tokio::spawn(async move {
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let out = tokio::select! {
                out = rx.recv() => out,
                _ = ping.tick() => {
                    if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            match out {
                Some(Outgoing::Text(text)) => {
                    if sink.send(WsMessage::Text(text)).await.is_err() {
                        return;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    return;
                }
                None => break,
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

/// Bytes the socket buffers before it writes them out (tungstenite's default).
const WRITE_BUFFER: usize = 128 * 1024;

/// Applies the size limits to an upgrade and serves the socket as a task of `tasks`, so
/// that shutdown waits for it (upgraded connections are not tracked by the HTTP server).
/// `max_message_bytes` bounds what the peer sends; `max_outgoing_bytes` is the largest
/// message this endpoint sends, and with it the socket's write buffer is bounded.
pub fn accept<F, Fut>(
    ws: WebSocketUpgrade,
    max_message_bytes: usize,
    max_outgoing_bytes: usize,
    tasks: &TaskTracker,
    serve: F,
) -> Response
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tasks = tasks.clone();
    ws.max_message_size(max_message_bytes)
        .max_frame_size(max_message_bytes)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(max_write_buffer(max_outgoing_bytes))
        .on_upgrade(move |socket| tasks.track_future(serve(socket)))
}

/// The write buffer's bound: one message on top of a full buffer (a message is written
/// whole once the buffer has been flushed below [`WRITE_BUFFER`]), with room for frame
/// headers and control frames.
pub fn max_write_buffer(max_outgoing_bytes: usize) -> usize {
    WRITE_BUFFER + max_outgoing_bytes + 64 * 1024
}

/// What the peer sent next.
#[derive(Debug)]
pub enum Event {
    /// A text message within the rate limit, with the time it was read.
    Text { text: Utf8Bytes, received: Instant },
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
    /// Nothing received for the idle timeout, not even a pong (answered with close 1000).
    Idle(Duration),
    /// Pings or pongs past the message rate (answered with close 1008).
    Abusive,
}

impl End {
    /// The close frame to send: 1001 with `away` on shutdown, 1009 with `oversize` for an
    /// oversize message, 1000 for an idle connection, 1008 for control frames past the
    /// rate, none otherwise.
    pub fn close_frame(&self, away: &'static str, oversize: &'static str) -> Option<(u16, &'static str)> {
        use axum::extract::ws::close_code;
        match self {
            End::Shutdown => Some((close_code::AWAY, away)),
            End::Oversize(_) => Some((close_code::SIZE, oversize)),
            End::Idle(_) => Some((close_code::NORMAL, "no message or pong within the idle timeout")),
            End::Abusive => Some((close_code::POLICY, "pings or pongs past the message rate")),
            End::Closed | End::Failed(_) => None,
        }
    }

    /// Whether the service ended the connection because of what the peer did (for logs).
    pub fn describe(&self) -> Option<String> {
        match self {
            End::Oversize(e) => Some(format!("message over the size limit: {e}")),
            End::Idle(after) => Some(format!("no message or pong for {} s", after.as_secs())),
            End::Abusive => Some("pings or pongs past the message rate".to_owned()),
            End::Closed | End::Shutdown | End::Failed(_) => None,
        }
    }
}

/// What one connection's peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Messages per second on average, pings and pongs included.
    pub rate: u32,
    /// Silence after which the connection is closed (see [`End::Idle`]).
    pub idle_timeout: Duration,
}

/// The receiving half of a connection with its rate limit, idle timeout and the
/// service's shutdown.
pub struct Reader {
    stream: SplitStream<WebSocket>,
    limiter: RateLimiter,
    idle_timeout: Duration,
    shutdown: CancellationToken,
}

impl Reader {
    pub fn new(stream: SplitStream<WebSocket>, budget: Budget, shutdown: CancellationToken) -> Self {
        let limiter = RateLimiter::new(budget.rate, Instant::now());
        Self { stream, limiter, idle_timeout: budget.idle_timeout, shutdown }
    }

    /// Waits for the next message that needs an answer; pings and pongs are answered by
    /// the socket itself, but count against the rate. Shutdown wins over a message that
    /// is already waiting.
    pub async fn next(&mut self) -> Result<Event, End> {
        loop {
            let next = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Err(End::Shutdown),
                next = self.stream.next() => next,
                _ = tokio::time::sleep(self.idle_timeout) => return Err(End::Idle(self.idle_timeout)),
            };
            match next {
                None | Some(Ok(WsMessage::Close(_))) => return Err(End::Closed),
                Some(Err(e)) if is_oversize(&e) => return Err(End::Oversize(e)),
                Some(Err(e)) => return Err(End::Failed(e)),
                Some(Ok(WsMessage::Binary(_))) => return Ok(Event::Binary),
                Some(Ok(WsMessage::Text(text))) => {
                    let received = Instant::now();
                    return Ok(if self.limiter.allow(received) {
                        Event::Text { text, received }
                    } else {
                        Event::RateLimited { text }
                    });
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {
                    // No legitimate client pings faster than it may send messages, and an
                    // answer per ping is what a flood wants: past the rate, it is closed.
                    if !self.limiter.allow(Instant::now()) {
                        return Err(End::Abusive);
                    }
                }
            }
        }
    }
}

/// Splits an upgraded socket into a [`Reader`] and a writer task (see [`spawn_writer`])
/// that pings every third of the idle timeout.
pub fn split(socket: WebSocket, budget: Budget, shutdown: CancellationToken) -> (Reader, Outbox, JoinHandle<()>) {
    let (sink, stream) = socket.split();
    let (outbox, writer) = spawn_writer(sink, budget.idle_timeout / 3);
    (Reader::new(stream, budget, shutdown), outbox, writer)
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
        assert_eq!(End::Abusive.close_frame("away", "big").map(|c| c.0), Some(1008));
        assert_eq!(End::Idle(Duration::from_secs(9)).close_frame("away", "big").map(|c| c.0), Some(1000));
    }
}
