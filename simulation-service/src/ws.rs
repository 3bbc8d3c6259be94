//! Plumbing of the browser WebSocket: the writer task that owns the sending
//! half, the per-connection rate limiter, and recognising an oversize message.
//!
//! Each connection is split: the handler reads, and a writer task sends whatever the
//! handler and its frame tasks queue. The queue is bounded, so a client that stops
//! reading slows down only its own connection.

use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use shared_protocol::{ErrorMessage, Message};
use tokio::sync::mpsc;

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
pub fn spawn_writer(mut sink: SplitSink<WebSocket, WsMessage>) -> (Outbox, tokio::task::JoinHandle<()>) {
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
}
