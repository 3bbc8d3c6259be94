//! The persistent connection to the relay's `/ws/ingest`.
//!
//! One task owns the socket. It connects with the shared secret as bearer token,
//! reconnects with exponential backoff (100 ms doubling up to `max_backoff`, with
//! jitter), and keeps every `waveform_latent` until the relay acknowledges it (a
//! `reconstructed_image`, an `ack` or an `error` naming its session and frame). After a
//! reconnect the unacknowledged ones are sent again, oldest first; the relay
//! de-duplicates by (session, frame_id), so each frame is reconstructed once. While the
//! relay is away, latents wait (up to a limit; beyond it the oldest is dropped and
//! counted as lost).
//!
//! Several relays (a comma-separated `--relay-url`) are used one at a time: when the
//! connection to one is lost or cannot be made, the link moves on to the next at once,
//! and backs off only after every relay failed in turn. The unacknowledged latents go
//! to whichever relay answers; relays sharing a Redis session store de-duplicate by
//! (session, frame_id) across instances, so a frame that one relay reconstructed before
//! it was lost is acknowledged by the next without a second image. One load-balanced URL
//! works the same way: each reconnection lands where the balancer sends it.
//!
//! On shutdown the task keeps going until every latent is acknowledged or the drain
//! timeout passes, then closes the socket.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use shared_protocol::{decode, ErrorMessage, Message, SessionId, SharedSecret, WaveformLatent, INGEST_REPLIES};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;

/// Latents queued for the link task before senders wait.
const QUEUE: usize = 1024;
/// First reconnection delay.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait for one relay to accept a connection, so that a relay machine that
/// vanished without refusing connections does not hold up the move to the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where errors the relay reports about a session's frames go (the browser that sent
/// them), so a person sees why a reconstruction never came.
pub trait ErrorSink: Send + Sync + 'static {
    fn relay_error(&self, error: ErrorMessage);

    /// The relay acknowledged the latent of `frame_id` (a `reconstructed_image` or an
    /// `ack`): the browser may forget that stimulus (the `delivered` message). Called once
    /// per latent this link held; the default does nothing.
    fn delivered(&self, _session: &SessionId, _frame_id: u64) {}
}

/// The handle the rest of the service uses to send latents.
#[derive(Debug, Clone)]
pub struct RelayLink {
    tx: mpsc::Sender<Pending>,
    connected: Arc<AtomicBool>,
}

/// A latent waiting for its acknowledgement.
#[derive(Debug, Clone)]
struct Pending {
    key: (SessionId, u64),
    text: Utf8Bytes,
}

/// What [`RelayLink::new`] hands to [`LinkTask::run`].
pub struct LinkTask {
    rx: mpsc::Receiver<Pending>,
    connected: Arc<AtomicBool>,
    /// Every [`RelayLink`] is gone: nothing more will be queued.
    senders_gone: bool,
}

/// Settings of the link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The relay's `/ws/ingest` URL, or several separated by commas (tried in turn).
    pub url: String,
    pub secret: SharedSecret,
    pub max_unacked: usize,
    pub max_backoff: Duration,
    pub drain_timeout: Duration,
}

impl RelayLink {
    pub fn new() -> (Self, LinkTask) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let connected = Arc::new(AtomicBool::new(false));
        (Self { tx, connected: connected.clone() }, LinkTask { rx, connected, senders_gone: false })
    }

    /// Queues a latent for the relay; it carries a frame id (every latent this service
    /// makes does). False once the link has stopped.
    pub async fn send(&self, latent: &WaveformLatent) -> bool {
        let Some(frame_id) = latent.frame_id else { return false };
        let text: Utf8Bytes = Message::WaveformLatent(latent.clone()).to_json().into();
        self.tx.send(Pending { key: (latent.session_id.clone(), frame_id), text }).await.is_ok()
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// Latents sent and not yet acknowledged, oldest first.
#[derive(Debug, Default)]
struct Unacked {
    by_seq: BTreeMap<u64, (Pending, Instant)>,
    by_key: HashMap<(SessionId, u64), u64>,
    next_seq: u64,
}

impl Unacked {
    /// Adds a latent; returns how many old ones had to be dropped to stay within `limit`.
    fn push(&mut self, p: Pending, limit: usize) -> u64 {
        let mut dropped = 0;
        if let Some(old) = self.by_key.get(&p.key).copied() {
            self.by_seq.remove(&old);
        }
        while self.by_seq.len() >= limit {
            match self.by_seq.pop_first() {
                Some((_, (old, _))) => {
                    self.by_key.remove(&old.key);
                    dropped += 1;
                }
                None => break,
            }
        }
        self.next_seq += 1;
        self.by_key.insert(p.key.clone(), self.next_seq);
        self.by_seq.insert(self.next_seq, (p, Instant::now()));
        dropped
    }

    /// Removes an acknowledged latent, returning when it was sent.
    fn ack(&mut self, key: &(SessionId, u64)) -> Option<Instant> {
        let seq = self.by_key.remove(key)?;
        self.by_seq.remove(&seq).map(|(_, sent)| sent)
    }

    fn len(&self) -> usize {
        self.by_seq.len()
    }

    fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection attempt failed, for the log.
fn describe_connect_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(response) if response.status() == 401 => {
            "the relay refused the shared secret (401); give both services the same V1_SHARED_SECRET".into()
        }
        Error::Http(response) => format!("the relay answered HTTP {}", response.status()),
        other => other.to_string(),
    }
}

async fn connect(url: &str, config: &LinkConfig) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| format!("bad relay URL {url}: {e}"))?;
    let bearer = HeaderValue::from_str(&config.secret.bearer_header())
        .map_err(|_| "the shared secret is not a valid HTTP header value; use hex digits".to_owned())?;
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    let connecting = tokio_tungstenite::connect_async(request);
    let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| describe_connect_error(&e))?;
    Ok(socket)
}

impl LinkTask {
    /// Runs the link until `drain` is cancelled and every latent is acknowledged (or the
    /// drain timeout passes).
    pub async fn run(mut self, config: LinkConfig, metrics: Arc<Metrics>, errors: Arc<dyn ErrorSink>, drain: CancellationToken) {
        let mut unacked = Unacked::default();
        let mut backoff = MIN_BACKOFF;
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut logged_failure = false;
        let urls = crate::config::relay_urls(&config.url);
        // The relay in use, and how many attempts in a row failed (a full round of
        // failures is when backing off starts).
        let mut current = 0usize;
        let mut failures = 0usize;
        loop {
            let url = urls.get(current).copied().unwrap_or(config.url.as_str());
            if drain.is_cancelled() && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + config.drain_timeout);
            }
            if (drain.is_cancelled() || self.senders_gone) && unacked.is_empty() && self.rx.is_empty() {
                break;
            }
            // Connect, queueing latents meanwhile.
            let attempt = {
                let connecting = connect(url, &config);
                tokio::pin!(connecting);
                loop {
                    tokio::select! {
                        r = &mut connecting => break Some(r),
                        p = self.rx.recv(), if !self.senders_gone => match p {
                            Some(p) => self.queue(&mut unacked, p, &config, &metrics),
                            None => {
                                self.senders_gone = true;
                                if unacked.is_empty() {
                                    break None;
                                }
                            }
                        },
                        _ = sleep_until(deadline) => break None,
                        _ = drain.cancelled(), if deadline.is_none() => {
                            deadline = Some(tokio::time::Instant::now() + config.drain_timeout);
                        }
                    }
                }
            };
            let socket = match attempt {
                None => break,
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    failures += 1;
                    current = (current + 1) % urls.len().max(1);
                    if failures < urls.len() {
                        warn!(%url, next = urls.get(current).copied().unwrap_or_default(), "cannot reach the relay: {e}; trying the next one");
                        continue;
                    }
                    failures = 0;
                    if !logged_failure {
                        warn!(%url, "cannot reach the relay: {e}; retrying with backoff");
                        logged_failure = true;
                    } else {
                        debug!(%url, "relay still unreachable: {e}");
                    }
                    let jitter = rand::rng().random_range(0.8..1.2);
                    let wait = backoff.mul_f64(jitter);
                    backoff = (backoff * 2).min(config.max_backoff);
                    let until = tokio::time::Instant::now() + wait;
                    if !self.collect_until(until, deadline, &mut unacked, &config, &metrics, &drain).await {
                        break;
                    }
                    continue;
                }
            };
            info!(%url, resend = unacked.len(), "connected to the relay");
            logged_failure = false;
            failures = 0;
            backoff = MIN_BACKOFF;
            self.connected.store(true, Ordering::Relaxed);
            metrics.relay_connected.set(1);
            let finished = self.serve(socket, &mut unacked, &config, &metrics, &*errors, &drain, &mut deadline).await;
            self.connected.store(false, Ordering::Relaxed);
            metrics.relay_connected.set(0);
            if finished {
                break;
            }
            if urls.len() > 1 {
                current = (current + 1) % urls.len();
                warn!(%url, next = urls[current], unacked = unacked.len(), "lost the relay connection; moving to the next relay");
            } else {
                warn!(unacked = unacked.len(), "lost the relay connection; reconnecting");
            }
        }
        if !unacked.is_empty() {
            warn!(lost = unacked.len(), "stopping with latents the relay never acknowledged");
            metrics.latents_lost.inc_by(unacked.len() as u64);
        }
        metrics.unacked.set(0);
    }

    fn queue(&self, unacked: &mut Unacked, p: Pending, config: &LinkConfig, metrics: &Metrics) {
        let dropped = unacked.push(p, config.max_unacked);
        if dropped > 0 {
            metrics.latents_lost.inc_by(dropped);
            warn!(dropped, limit = config.max_unacked, "too many unacknowledged latents; dropped the oldest");
        }
        metrics.unacked.set(unacked.len() as i64);
    }

    /// Waits until `until`, queueing latents. False when the link should stop.
    async fn collect_until(
        &mut self,
        until: tokio::time::Instant,
        deadline: Option<tokio::time::Instant>,
        unacked: &mut Unacked,
        config: &LinkConfig,
        metrics: &Metrics,
        drain: &CancellationToken,
    ) -> bool {
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                _ = sleep_until(deadline) => return false,
                _ = drain.cancelled(), if deadline.is_none() => return true,
                p = self.rx.recv(), if !self.senders_gone => match p {
                    Some(p) => self.queue(unacked, p, config, metrics),
                    None => {
                        self.senders_gone = true;
                        if unacked.is_empty() {
                            return false;
                        }
                    }
                },
            }
        }
    }

    /// Uses one connection until it breaks (false) or draining is done (true).
    #[allow(clippy::too_many_arguments)]
    async fn serve(
        &mut self,
        socket: Socket,
        unacked: &mut Unacked,
        config: &LinkConfig,
        metrics: &Metrics,
        errors: &dyn ErrorSink,
        drain: &CancellationToken,
        deadline: &mut Option<tokio::time::Instant>,
    ) -> bool {
        let (mut sink, mut stream) = socket.split();
        let resend: Vec<Utf8Bytes> = unacked.by_seq.values().map(|(p, _)| p.text.clone()).collect();
        for text in resend {
            if sink.send(WsMessage::Text(text)).await.is_err() {
                return false;
            }
            metrics.latents_resent.inc();
        }
        loop {
            let stopping = drain.is_cancelled() || self.senders_gone;
            if stopping && unacked.is_empty() && (self.senders_gone || self.rx.is_empty()) {
                let close = CloseFrame { code: CloseCode::Normal, reason: "simulation-service shutting down".into() };
                let _ = sink.send(WsMessage::Close(Some(close))).await;
                return true;
            }
            tokio::select! {
                p = self.rx.recv(), if !self.senders_gone => match p {
                    Some(p) => {
                        let text = p.text.clone();
                        self.queue(unacked, p, config, metrics);
                        if sink.send(WsMessage::Text(text)).await.is_err() {
                            return false;
                        }
                        metrics.latents_sent.inc();
                    }
                    None => self.senders_gone = true,
                },
                incoming = stream.next() => match incoming {
                    Some(Ok(WsMessage::Text(text))) => self.on_reply(text.as_str(), unacked, metrics, errors),
                    Some(Ok(WsMessage::Close(frame))) => {
                        info!(?frame, "the relay closed the connection");
                        return false;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        debug!("relay connection error: {e}");
                        return false;
                    }
                    None => return false,
                },
                _ = drain.cancelled(), if deadline.is_none() => {
                    *deadline = Some(tokio::time::Instant::now() + config.drain_timeout);
                }
                _ = sleep_until(*deadline) => {
                    let close = CloseFrame { code: CloseCode::Away, reason: "simulation-service shutting down".into() };
                    let _ = sink.send(WsMessage::Close(Some(close))).await;
                    return true;
                }
            }
        }
    }

    fn on_reply(&self, text: &str, unacked: &mut Unacked, metrics: &Metrics, errors: &dyn ErrorSink) {
        let message = match decode(text, &INGEST_REPLIES) {
            Ok(m) => m,
            Err(e) => {
                warn!("unreadable reply from the relay: {e}");
                return;
            }
        };
        let key = match (message.session_id(), message.frame_id()) {
            (Some(s), Some(f)) => (s.clone(), f),
            _ => {
                if let Message::Error(e) = &message {
                    metrics.relay_error(e.code);
                    warn!(code = %e.code, "relay error: {}", e.message);
                }
                return;
            }
        };
        if let Some(sent) = unacked.ack(&key) {
            metrics.latents_acked.inc();
            metrics.relay_round_trip.observe(sent.elapsed().as_secs_f64());
            if !matches!(message, Message::Error(_)) {
                errors.delivered(&key.0, key.1);
            }
        }
        metrics.unacked.set(unacked.len() as i64);
        if let Message::Error(e) = message {
            metrics.relay_error(e.code);
            warn!(session = %key.0, frame = key.1, code = %e.code, "relay refused a frame: {}", e.message);
            errors.relay_error(ErrorMessage { message: format!("the relay could not reconstruct this frame: {}", e.message), ..e });
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(session: &str, frame: u64) -> Pending {
        Pending { key: (SessionId::parse(session).unwrap(), frame), text: Utf8Bytes::from(format!("{session}/{frame}")) }
    }

    #[test]
    fn unacked_keeps_order_acks_by_key_and_drops_the_oldest_over_the_limit() {
        let mut u = Unacked::default();
        assert_eq!(u.push(pending("a", 1), 3), 0);
        assert_eq!(u.push(pending("b", 1), 3), 0);
        assert_eq!(u.push(pending("a", 2), 3), 0);
        assert!(u.ack(&(SessionId::parse("b").unwrap(), 1)).is_some());
        assert!(u.ack(&(SessionId::parse("b").unwrap(), 1)).is_none());
        assert_eq!(u.push(pending("a", 3), 3), 0);
        assert_eq!(u.push(pending("a", 4), 3), 1, "a/1 is dropped");
        let order: Vec<&str> = u.by_seq.values().map(|(p, _)| p.text.as_str()).collect();
        assert_eq!(order, vec!["a/2", "a/3", "a/4"]);
        assert!(u.ack(&(SessionId::parse("a").unwrap(), 1)).is_none());
    }

    /// Records relay errors, for the failover test.
    #[derive(Default)]
    struct Errors(std::sync::Mutex<Vec<ErrorMessage>>);

    impl ErrorSink for Errors {
        fn relay_error(&self, error: ErrorMessage) {
            if let Ok(mut v) = self.0.lock() {
                v.push(error);
            }
        }
    }

    const SECRET: &str = "failover-secret-0123456789abcdef0123";

    async fn start_relay(model_dir: &std::path::Path) -> service_kit::testing::Running<relay_service::AppState> {
        let config = relay_service::RelayConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            model_dir: model_dir.to_path_buf(),
            static_dir: "/nonexistent-frontend".into(),
            secret: SharedSecret::new(SECRET).unwrap(),
            origins: shared_protocol::OriginPolicy::default(),
            workers: 1,
            jpeg_quality: 90,
            display_size: 64,
            drain_timeout: Duration::from_secs(5),
            limits: relay_service::Limits::default(),
        };
        let state = relay_service::AppState::new(config, models::V1Model::load(model_dir).unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        service_kit::testing::Running::start(listener, state, |listener, state, stop| {
            relay_service::run(listener, state, async move {
                let _ = stop.await;
            })
        })
    }

    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + service_kit::testing::WAIT;
        while !done() {
            assert!(Instant::now() < until, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A relay list: a dead address is skipped at once, the link uses the first live
    /// relay, and when that one goes away it moves to the next with what was not yet
    /// acknowledged.
    #[tokio::test]
    async fn the_link_moves_to_the_next_relay_when_one_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (model_dir, _) = models::testing::tiny_fixture(dir.path()).unwrap();
        let a = start_relay(&model_dir).await;
        let b = start_relay(&model_dir).await;
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let config = LinkConfig {
            url: format!("ws://{dead}/ws/ingest, ws://{}/ws/ingest,ws://{}/ws/ingest", a.addr, b.addr),
            secret: SharedSecret::new(SECRET).unwrap(),
            max_unacked: 64,
            max_backoff: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
        };
        let (link, task) = RelayLink::new();
        let metrics = Arc::new(Metrics::new());
        let errors = Arc::new(Errors::default());
        let drain = CancellationToken::new();
        let handle = tokio::spawn(task.run(config, metrics.clone(), errors.clone(), drain.clone()));
        let info = a.state.reconstructor.model().info();
        let len = info.n_lags() * info.n_channels();
        let latent = |frame: u64| WaveformLatent {
            session_id: SessionId::parse("failover").unwrap(),
            payload: (0..len).map(|i| (i % 5) as f32 * 0.3).collect(),
            frame_id: Some(frame),
            shape: None,
            sent_at_ms: None,
            source: None,
        };
        let started = Instant::now();
        assert!(link.send(&latent(1)).await);
        wait_until("frame 1 is acknowledged", || metrics.latents_acked.get() == 1).await;
        assert!(started.elapsed() < MIN_BACKOFF * 4 + Duration::from_secs(2), "no backoff before trying the next relay");
        assert_eq!((a.state.metrics.frames_in.get(), b.state.metrics.frames_in.get()), (1, 0), "the first live relay got it");

        a.stop().await;
        wait_until("the link moves to relay b", || b.state.metrics.ingest_connections.get() == 1).await;
        for frame in 2..=4 {
            assert!(link.send(&latent(frame)).await);
        }
        wait_until("frames 2-4 are acknowledged", || metrics.latents_acked.get() == 4).await;
        assert_eq!(b.state.metrics.frames_in.get(), 3, "the next relay reconstructed the rest");
        assert!(link.is_connected());
        assert_eq!(metrics.latents_lost.get(), 0);
        assert!(errors.0.lock().unwrap().is_empty());
        drain.cancel();
        tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
        b.stop().await;
    }
}
