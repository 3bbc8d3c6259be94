//! The persistent connection to the relay's `/ws/ingest`.
//!
//! One task owns the link. It connects with the shared secret as bearer token,
//! reconnects with exponential backoff (100 ms doubling up to `max_backoff`, with
//! jitter), and keeps every `waveform_latent` in a store until the relay has settled it:
//! a `reconstructed_image` or an `ack` acknowledges it, an `error` with a final code
//! (see [`is_retryable`]) gives it up (counted as lost, reported to the browser), and an
//! error with a retryable code (`overloaded`, `unavailable`, `internal`, `rate_limited`)
//! puts it back in the store to be sent again after a pause. The relay de-duplicates
//! by (session, frame_id), so a frame sent twice is reconstructed once.
//!
//! # Flow control
//! At most a window of latents is sent and unanswered at a time; the others wait in the
//! store, oldest first, and go out as answers come back. So a backlog (after a
//! reconnect, or when a stalled relay resumes) reaches the relay in batches its worker
//! queue can take, instead of all at once. A refusal halves the window (down to one) and
//! holds every send for a pause (50 ms, doubling up to 2 s while refusals continue, with
//! jitter); each acknowledgement widens the window by one again, up to its setting. The
//! store has a limit; beyond it the oldest latent is dropped and counted as lost.
//!
//! # Health
//! The link pings the relay every second (or a third of the stall timeout, if shorter).
//! No inbound traffic (a pong or a reply) for the stall timeout marks it
//! [`LinkState::Stalled`]: frames wait, `/healthz` says degraded. Silence for the dead
//! timeout, or a latent unanswered that long, drops the connection and reconnects,
//! which re-sends what is unacknowledged. [`RelayLink::health`] reports the state and
//! its cause; each change of state is logged once (a warning when it is not healthy).
//!
//! # Several relays
//! Several relays (a comma-separated `--relay-url`) are used one at a time: when the
//! connection to one is lost or cannot be made, the link moves on to the next at once,
//! and backs off only after every relay failed in turn. The unacknowledged latents go
//! to whichever relay answers; relays sharing a Redis session store de-duplicate by
//! (session, frame_id) across instances, so a frame that one relay reconstructed before
//! it was lost is acknowledged by the next without a second image. One load-balanced URL
//! works the same way: each reconnection lands where the balancer sends it.
//!
//! On shutdown the task keeps going until every latent is acknowledged or the drain
//! timeout passes, then closes the socket; what is still unacknowledged is counted lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use shared_protocol::{
    decode, ErrorCode, ErrorMessage, IngestReply, Message, SessionId, SharedSecret, WaveformLatent, INGEST_REPLIES, INGEST_REPLY_HEADER,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::telemetry::Metrics;

/// Latents queued for the link task before senders wait.
const QUEUE: usize = 1024;
/// First reconnection delay.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait for one relay to accept a connection, so that a relay machine that
/// vanished without refusing connections does not hold up the move to the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// First pause after the relay refused a latent for now: long enough for its workers to
/// finish a few frames.
const RETRY_MIN: Duration = Duration::from_millis(50);
/// Longest pause between retries of refused latents, so that frames resume soon after
/// the relay recovers.
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Longest gap between pings; the stall timeout shortens it (see [`LinkConfig::ping_every`]).
const MAX_PING_INTERVAL: Duration = Duration::from_secs(1);
/// Room in the writer's queue beyond the window, for pings and the close frame.
const OUTBOX_SLACK: usize = 8;
/// How long a close frame may take to go out at shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// `internal` answers one latent may get before it is given up: a fault that passes
/// (a worker lost to a bug) is retried, one that this latent causes every time is not
/// retried for ever.
const MAX_INTERNAL_FAULTS: u8 = 3;

/// Whether a relay `error` about a latent means "not now" rather than "never": the
/// relay did not take the frame (its queue was full, a store or peer was away, a
/// reconstruction failed inside it, or the connection sent too fast), so the same bytes
/// may succeed later. Every other code says the latent itself is wrong or not allowed,
/// which no re-send changes.
pub fn is_retryable(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::Overloaded | ErrorCode::Unavailable | ErrorCode::Internal | ErrorCode::RateLimited)
}

/// Where errors the relay reports about a session's frames go (the browser that sent
/// them), so a person sees why a reconstruction never came.
pub trait ErrorSink: Send + Sync + 'static {
    /// A final refusal: the frame will never be reconstructed.
    fn relay_error(&self, error: ErrorMessage);

    /// The relay acknowledged the latent of `frame_id` (a `reconstructed_image` or an
    /// `ack`): the browser may forget that stimulus (the `delivered` message). Called once
    /// per latent this link held; the default does nothing.
    fn delivered(&self, _session: &SessionId, _frame_id: u64) {}
}

/// What the link is doing, as `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Before the first connection attempt has finished.
    Connecting,
    /// Connected, and the relay answers.
    Connected,
    /// Connected, but nothing came from the relay for the stall timeout.
    Stalled,
    /// No connection: the relay cannot be reached or the connection was lost.
    Unreachable,
    /// The relay refused the shared secret (HTTP 401).
    RefusedSecret,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Stalled => "stalled",
            LinkState::Unreachable => "unreachable",
            LinkState::RefusedSecret => "refused_secret",
        }
    }
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of the link's health.
#[derive(Debug, Clone)]
pub struct LinkHealth {
    pub state: LinkState,
    /// Why the link is not healthy, for people; `None` while connected.
    pub cause: Option<String>,
    /// The relay URL in use or last tried.
    pub url: String,
    /// When the link entered this state.
    pub since: Instant,
    /// Latents waiting for the relay's answer (sent or not yet sent).
    pub unacked: usize,
}

impl LinkHealth {
    /// Connected and the relay answers.
    pub fn is_healthy(&self) -> bool {
        self.state == LinkState::Connected
    }
}

/// The link's state, written by the link task and read by `/healthz` and `/api/info`.
#[derive(Debug)]
struct Status {
    health: Mutex<LinkHealth>,
    /// Mirrors `health.state == Connected`, for readers that only need that.
    healthy: AtomicBool,
}

impl Status {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkHealth> {
        // A panic while holding this lock cannot leave the snapshot half-written in a
        // way that matters: every field is replaced whole.
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The handle the rest of the service uses to send latents and read the link's health.
#[derive(Debug, Clone)]
pub struct RelayLink {
    tx: mpsc::Sender<Pending>,
    status: Arc<Status>,
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
    status: Arc<Status>,
    /// Every [`RelayLink`] is gone: nothing more will be queued.
    senders_gone: bool,
    /// The store is over its limit and dropping latents; warned once per episode.
    dropping: bool,
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
    /// Latents sent and not yet answered, at most.
    pub window: usize,
    /// No inbound traffic for this long marks the link stalled.
    pub stall_after: Duration,
    /// No inbound traffic (or a latent unanswered) for this long drops the connection.
    pub dead_after: Duration,
}

impl LinkConfig {
    /// How often to ping: often enough that a healthy relay's pong always comes within
    /// the stall timeout.
    fn ping_every(&self) -> Duration {
        (self.stall_after / 3).clamp(Duration::from_millis(10), MAX_PING_INTERVAL)
    }
}

impl RelayLink {
    pub fn new() -> (Self, LinkTask) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let status = Arc::new(Status {
            health: Mutex::new(LinkHealth {
                state: LinkState::Connecting,
                cause: Some("connecting to the relay".into()),
                url: String::new(),
                since: Instant::now(),
                unacked: 0,
            }),
            healthy: AtomicBool::new(false),
        });
        (Self { tx, status: status.clone() }, LinkTask { rx, status, senders_gone: false, dropping: false })
    }

    /// Queues a latent for the relay; it carries a frame id (every latent this service
    /// makes does). False once the link has stopped.
    pub async fn send(&self, latent: &WaveformLatent) -> bool {
        let Some(frame_id) = latent.frame_id else { return false };
        let text: Utf8Bytes = Message::WaveformLatent(latent.clone()).to_json().into();
        self.tx.send(Pending { key: (latent.session_id.clone(), frame_id), text }).await.is_ok()
    }

    /// Connected and the relay answers (false while stalled).
    pub fn is_connected(&self) -> bool {
        self.status.healthy.load(Ordering::Relaxed)
    }

    /// The link's state, its cause and the relay in use.
    pub fn health(&self) -> LinkHealth {
        self.status.lock().clone()
    }
}

/// Where one latent of the store is.
#[derive(Debug)]
struct Entry {
    pending: Pending,
    /// When it was last sent, while it waits for its answer on the current connection;
    /// `None` while it waits to be sent.
    in_flight_since: Option<Instant>,
    /// Made while a connection was up and not sent yet: its first send counts as sent,
    /// any other as re-sent.
    fresh: bool,
    /// `internal` answers so far.
    internal_faults: u8,
}

/// Every latent the relay has not settled, oldest first: those sent and unanswered (in
/// flight) and those waiting for room in the window.
#[derive(Debug, Default)]
struct Unacked {
    entries: BTreeMap<u64, Entry>,
    by_key: HashMap<(SessionId, u64), u64>,
    /// Sequence numbers of the entries waiting to be sent, so the oldest is found at once.
    waiting: BTreeSet<u64>,
    in_flight: usize,
    next_seq: u64,
}

/// A latent taken from the store to be sent.
struct Outgoing {
    text: Utf8Bytes,
    /// Sent before, or waited through a reconnect.
    resend: bool,
}

impl Unacked {
    /// Adds a latent (replacing one with the same key); returns how many old ones had
    /// to be dropped to stay within `limit`.
    fn push(&mut self, p: Pending, fresh: bool, limit: usize) -> u64 {
        let mut dropped = 0;
        if let Some(old) = self.by_key.get(&p.key).copied() {
            self.remove_seq(old);
        }
        while self.entries.len() >= limit.max(1) {
            match self.entries.first_key_value().map(|(&seq, _)| seq) {
                Some(seq) => {
                    self.remove_seq(seq);
                    dropped += 1;
                }
                None => break,
            }
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        self.by_key.insert(p.key.clone(), seq);
        self.waiting.insert(seq);
        self.entries.insert(seq, Entry { pending: p, in_flight_since: None, fresh, internal_faults: 0 });
        dropped
    }

    fn remove_seq(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        self.by_key.remove(&entry.pending.key);
        if entry.in_flight_since.is_some() {
            self.in_flight -= 1;
        } else {
            self.waiting.remove(&seq);
        }
        Some(entry)
    }

    /// Takes the oldest waiting latent and marks it in flight since `now`.
    fn next_to_send(&mut self, now: Instant) -> Option<Outgoing> {
        let seq = self.waiting.pop_first()?;
        let entry = self.entries.get_mut(&seq)?;
        entry.in_flight_since = Some(now);
        self.in_flight += 1;
        let resend = !entry.fresh;
        entry.fresh = false;
        Some(Outgoing { text: entry.pending.text.clone(), resend })
    }

    /// Removes a latent the relay settled (acknowledged or finally refused); returns when
    /// it was sent, if it was in flight.
    fn settle(&mut self, key: &(SessionId, u64)) -> Option<Option<Instant>> {
        let seq = *self.by_key.get(key)?;
        self.remove_seq(seq).map(|e| e.in_flight_since)
    }

    /// Puts a refused latent back among the waiting, in its old place; returns when it
    /// was sent (`None` if it was not in flight).
    /// Counts an `internal` answer for `key`; whether it may still be retried.
    fn may_retry_internal(&mut self, key: &(SessionId, u64)) -> bool {
        let Some(entry) = self.by_key.get(key).and_then(|seq| self.entries.get_mut(seq)) else { return false };
        entry.internal_faults = entry.internal_faults.saturating_add(1);
        entry.internal_faults < MAX_INTERNAL_FAULTS
    }

    fn refused(&mut self, key: &(SessionId, u64)) -> Option<Instant> {
        let seq = *self.by_key.get(key)?;
        let entry = self.entries.get_mut(&seq)?;
        let sent = entry.in_flight_since.take()?;
        self.in_flight -= 1;
        self.waiting.insert(seq);
        Some(sent)
    }

    /// After a connection ended: nothing is in flight any more, and everything goes out
    /// again (as re-sends) on the next connection.
    fn requeue_all(&mut self) {
        for (&seq, entry) in &mut self.entries {
            if entry.in_flight_since.take().is_some() {
                self.waiting.insert(seq);
            }
            entry.fresh = false;
        }
        self.in_flight = 0;
    }

    /// When the longest-unanswered latent in flight was sent.
    fn oldest_in_flight(&self) -> Option<Instant> {
        self.entries.values().filter_map(|e| e.in_flight_since).min()
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The window and the pause after refusals, for one connection.
#[derive(Debug)]
struct Flow {
    /// The configured window.
    limit: usize,
    /// The window now: halved by a refusal, widened by one per acknowledgement.
    window: usize,
    /// No latent goes out before this.
    hold_until: Option<Instant>,
    /// When the current run of refusals began; a refusal of a latent sent before it is
    /// part of the batch that started the run and does not lengthen the pause.
    refusals_since: Option<Instant>,
    /// The pause the last refusal set.
    delay: Duration,
}

impl Flow {
    fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self { limit, window: limit, hold_until: None, refusals_since: None, delay: RETRY_MIN }
    }

    /// Whether one more latent may go out now, with `in_flight` unanswered.
    fn may_send(&self, in_flight: usize, now: Instant) -> bool {
        in_flight < self.window && self.hold_until.is_none_or(|until| now >= until)
    }

    /// The relay refused a latent sent at `sent`. The first refusal of a run pauses
    /// sending for [`RETRY_MIN`]; a refusal of a latent sent after that pause doubles it
    /// (up to [`RETRY_MAX`]). `jitter` (around 1) spreads the retries of several
    /// simulation-services that share a relay.
    fn refused(&mut self, sent: Instant, now: Instant, jitter: f64) {
        let delay = match self.refusals_since {
            Some(since) if sent < since => return,
            Some(_) => (self.delay * 2).min(RETRY_MAX),
            None => RETRY_MIN,
        };
        self.delay = delay;
        self.refusals_since = Some(now);
        self.hold_until = Some(now + delay.mul_f64(jitter));
        self.window = (self.window / 2).max(1);
    }

    /// The relay acknowledged a latent sent at `sent`: the window grows back, and once a
    /// latent sent after the last pause is taken, the run of refusals is over.
    fn acknowledged(&mut self, sent: Instant) {
        self.window = (self.window + 1).min(self.limit);
        if self.refusals_since.is_some_and(|since| sent >= since) {
            self.refusals_since = None;
            self.delay = RETRY_MIN;
        }
    }

    /// When sending may resume, while a pause holds it.
    fn held_until(&self, now: Instant) -> Option<Instant> {
        self.hold_until.filter(|&until| until > now)
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Socket, WsMessage>;

/// Why a connection attempt failed.
#[derive(Debug)]
enum ConnectError {
    /// HTTP 401: the secrets differ; retrying cannot help until someone fixes them.
    Secret(String),
    Other(String),
}

fn describe_connect_error(e: &tokio_tungstenite::tungstenite::Error) -> ConnectError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(response) if response.status() == 401 => ConnectError::Secret(
            "the relay refused the shared secret (HTTP 401); give both services the same V1_SHARED_SECRET".into(),
        ),
        Error::Http(response) => ConnectError::Other(format!("the relay answered HTTP {}", response.status())),
        other => ConnectError::Other(other.to_string()),
    }
}

async fn connect(url: &str, config: &LinkConfig) -> Result<Socket, ConnectError> {
    let mut request =
        url.into_client_request().map_err(|e| ConnectError::Other(format!("bad relay URL {url}: {e}")))?;
    let bearer = HeaderValue::from_str(&config.secret.bearer_header()).map_err(|_| {
        ConnectError::Other("the shared secret is not a valid HTTP header value; use hex digits".to_owned())
    })?;
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    // Only the ids of each reconstructed frame are needed here: an `ack` instead of the
    // whole `reconstructed_image` saves the relay sending, and this service parsing, a
    // JPEG data URL per frame.
    request.headers_mut().insert(INGEST_REPLY_HEADER, HeaderValue::from_static(IngestReply::Ack.as_str()));
    let connecting = tokio_tungstenite::connect_async(request);
    let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| ConnectError::Other(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| describe_connect_error(&e))?;
    Ok(socket)
}

/// How one connection ended.
enum Served {
    /// Draining is done (or its time ran out): the link stops.
    Finished,
    /// The connection broke or was dropped as dead; the reason, for the log and `/healthz`.
    Lost(String),
}

/// Writes what the link task queues, so that a relay that stopped reading blocks this
/// task and not the one that watches for the stall.
async fn write_all(mut sink: Sink, mut outbox: mpsc::Receiver<WsMessage>) -> Result<(), String> {
    while let Some(message) = outbox.recv().await {
        let closing = matches!(message, WsMessage::Close(_));
        sink.send(message).await.map_err(|e| format!("sending to the relay failed: {e}"))?;
        if closing {
            break;
        }
    }
    Ok(())
}

/// Aborts the writer task when a connection's `serve` returns, however it returns.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LinkTask {
    /// Records a new state; returns the previous one when it changed (the caller logs).
    fn set_state(&self, metrics: &Metrics, state: LinkState, cause: Option<String>, url: &str) -> Option<LinkState> {
        let mut health = self.status.lock();
        let previous = health.state;
        health.cause = cause;
        if health.url != url {
            health.url = url.to_owned();
        }
        let healthy = state == LinkState::Connected;
        self.status.healthy.store(healthy, Ordering::Relaxed);
        metrics.relay_connected.set(i64::from(healthy));
        if previous == state {
            return None;
        }
        health.state = state;
        health.since = Instant::now();
        Some(previous)
    }

    fn count_unacked(&self, unacked: &Unacked, metrics: &Metrics) {
        metrics.unacked.set(unacked.len() as i64);
        metrics.relay_in_flight.set(unacked.in_flight as i64);
        self.status.lock().unacked = unacked.len();
    }

    /// Runs the link until `drain` is cancelled and every latent is acknowledged (or the
    /// drain timeout passes).
    pub async fn run(mut self, config: LinkConfig, metrics: Arc<Metrics>, errors: Arc<dyn ErrorSink>, drain: CancellationToken) {
        let mut unacked = Unacked::default();
        let mut backoff = MIN_BACKOFF;
        let mut deadline: Option<Instant> = None;
        let urls = crate::config::relay_urls(&config.url);
        // The relay in use, and how many attempts in a row failed (a full round of
        // failures is when backing off starts).
        let mut current = 0usize;
        let mut failures = 0usize;
        loop {
            let url = urls.get(current).copied().unwrap_or(config.url.as_str());
            if drain.is_cancelled() && deadline.is_none() {
                deadline = Some(Instant::now() + config.drain_timeout);
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
                            Some(p) => self.queue(&mut unacked, p, false, &config, &metrics),
                            None => {
                                self.senders_gone = true;
                                if unacked.is_empty() {
                                    break None;
                                }
                            }
                        },
                        _ = sleep_until(deadline) => break None,
                        _ = drain.cancelled(), if deadline.is_none() => {
                            deadline = Some(Instant::now() + config.drain_timeout);
                        }
                    }
                }
            };
            let socket = match attempt {
                None => break,
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    failures += 1;
                    let (state, cause) = match e {
                        ConnectError::Secret(m) => (LinkState::RefusedSecret, m),
                        ConnectError::Other(m) => (LinkState::Unreachable, format!("cannot reach {url}: {m}")),
                    };
                    if self.set_state(&metrics, state, Some(cause.clone()), url).is_some() {
                        warn!(%url, state = %state, unacked = unacked.len(), "relay link {state}: {cause}");
                    } else {
                        debug!(%url, "relay still {state}: {cause}");
                    }
                    current = (current + 1) % urls.len().max(1);
                    if failures < urls.len() {
                        debug!(next = urls.get(current).copied().unwrap_or_default(), "trying the next relay at once");
                        continue;
                    }
                    failures = 0;
                    let jitter = rand::rng().random_range(0.8..1.2);
                    let wait = backoff.mul_f64(jitter);
                    backoff = (backoff * 2).min(config.max_backoff);
                    let until = Instant::now() + wait;
                    if !self.collect_until(until, deadline, &mut unacked, &config, &metrics, &drain).await {
                        break;
                    }
                    continue;
                }
            };
            let previous = self.set_state(&metrics, LinkState::Connected, None, url);
            info!(%url, resend = unacked.len(), was = ?previous.map(LinkState::as_str), "connected to the relay");
            failures = 0;
            backoff = MIN_BACKOFF;
            let end = self.serve(socket, url, &mut unacked, &config, &metrics, &*errors, &drain, &mut deadline).await;
            unacked.requeue_all();
            self.count_unacked(&unacked, &metrics);
            let why = match end {
                Served::Finished => {
                    self.set_state(&metrics, LinkState::Unreachable, Some("the simulation-service is shutting down".into()), url);
                    break;
                }
                Served::Lost(why) => why,
            };
            let cause = format!("lost the connection to {url}: {why}");
            self.set_state(&metrics, LinkState::Unreachable, Some(cause.clone()), url);
            if urls.len() > 1 {
                current = (current + 1) % urls.len();
                warn!(next = urls[current], unacked = unacked.len(), "{cause}; moving to the next relay");
            } else {
                warn!(unacked = unacked.len(), "{cause}; reconnecting");
            }
        }
        if !unacked.is_empty() {
            warn!(lost = unacked.len(), "stopping with latents the relay never acknowledged");
            metrics.latents_lost.inc_by(unacked.len() as u64);
        }
        metrics.unacked.set(0);
        metrics.relay_in_flight.set(0);
    }

    fn queue(&mut self, unacked: &mut Unacked, p: Pending, fresh: bool, config: &LinkConfig, metrics: &Metrics) {
        let dropped = unacked.push(p, fresh, config.max_unacked);
        if dropped > 0 {
            metrics.latents_lost.inc_by(dropped);
            if !self.dropping {
                warn!(limit = config.max_unacked, "too many unacknowledged latents; dropping the oldest (counted in v1_sim_latents_lost_total)");
                self.dropping = true;
            }
        } else if self.dropping && unacked.len() < config.max_unacked {
            self.dropping = false;
        }
        self.count_unacked(unacked, metrics);
    }

    /// Waits until `until`, queueing latents. False when the link should stop.
    async fn collect_until(
        &mut self,
        until: Instant,
        deadline: Option<Instant>,
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
                    Some(p) => self.queue(unacked, p, false, config, metrics),
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

    /// Sends waiting latents while the window and the pause allow. Err when the writer
    /// has gone (the connection broke).
    fn fill(&self, unacked: &mut Unacked, flow: &Flow, outbox: &mpsc::Sender<WsMessage>, metrics: &Metrics) -> Result<(), String> {
        let now = Instant::now();
        // The outbox has room for the whole window; the capacity check only keeps a
        // latent from being taken when pings filled it.
        while flow.may_send(unacked.in_flight, now) && outbox.capacity() > 0 {
            let Some(out) = unacked.next_to_send(now) else { break };
            if outbox.try_send(WsMessage::Text(out.text)).is_err() {
                return Err("the connection's writer stopped".into());
            }
            if out.resend {
                metrics.latents_resent.inc();
            } else {
                metrics.latents_sent.inc();
            }
        }
        self.count_unacked(unacked, metrics);
        Ok(())
    }

    /// Uses one connection until it breaks, is found dead, or draining is done.
    #[allow(clippy::too_many_arguments)]
    async fn serve(
        &mut self,
        socket: Socket,
        url: &str,
        unacked: &mut Unacked,
        config: &LinkConfig,
        metrics: &Metrics,
        errors: &dyn ErrorSink,
        drain: &CancellationToken,
        deadline: &mut Option<Instant>,
    ) -> Served {
        let (sink, mut stream) = socket.split();
        let (outbox, outbox_rx) = mpsc::channel::<WsMessage>(config.window.max(1) + OUTBOX_SLACK);
        let mut writer = tokio::spawn(write_all(sink, outbox_rx));
        let _abort_writer = AbortOnDrop(writer.abort_handle());
        let mut flow = Flow::new(config.window);
        let mut last_inbound = Instant::now();
        let ping_every = config.ping_every();
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(why) = self.fill(unacked, &flow, &outbox, metrics) {
                return Served::Lost(why);
            }
            let stopping = drain.is_cancelled() || self.senders_gone;
            if stopping && unacked.is_empty() && (self.senders_gone || self.rx.is_empty()) {
                close(outbox, writer, CloseCode::Normal).await;
                return Served::Finished;
            }
            let held = flow.held_until(Instant::now());
            tokio::select! {
                p = self.rx.recv(), if !self.senders_gone => match p {
                    Some(p) => self.queue(unacked, p, true, config, metrics),
                    None => self.senders_gone = true,
                },
                incoming = stream.next() => {
                    last_inbound = Instant::now();
                    if self.status.lock().state == LinkState::Stalled
                        && self.set_state(metrics, LinkState::Connected, None, url).is_some()
                    {
                        info!(%url, unacked = unacked.len(), "the relay answers again");
                    }
                    match incoming {
                        Some(Ok(WsMessage::Text(text))) => self.on_reply(text.as_str(), unacked, &mut flow, metrics, errors),
                        Some(Ok(WsMessage::Close(frame))) => {
                            let why = frame.map_or_else(|| "the relay closed the connection".to_owned(), |f| {
                                format!("the relay closed the connection ({} {})", u16::from(f.code), f.reason)
                            });
                            return Served::Lost(why);
                        }
                        // Pings are answered by the socket itself; pongs only prove the relay is alive.
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Served::Lost(e.to_string()),
                        None => return Served::Lost("the relay closed the connection".into()),
                    }
                },
                _ = ping.tick() => {
                    let silent = last_inbound.elapsed();
                    if silent >= config.dead_after {
                        return Served::Lost(format!("nothing from the relay for {:.1} s", silent.as_secs_f64()));
                    }
                    if let Some(sent) = unacked.oldest_in_flight() {
                        if sent.elapsed() >= config.dead_after {
                            return Served::Lost(format!(
                                "a latent has waited {:.1} s for the relay's answer",
                                sent.elapsed().as_secs_f64()
                            ));
                        }
                    }
                    if silent >= config.stall_after {
                        let cause = format!(
                            "connected to {url}, but nothing came from the relay for {:.1} s (pings unanswered); \
                             {} latents wait, the connection is dropped after {} s of silence",
                            silent.as_secs_f64(),
                            unacked.len(),
                            config.dead_after.as_secs_f64()
                        );
                        if self.set_state(metrics, LinkState::Stalled, Some(cause.clone()), url).is_some() {
                            warn!(%url, unacked = unacked.len(), "relay link stalled: {cause}");
                        }
                    }
                    // A full outbox means the relay is not reading; the ping would not get through either.
                    if let Err(mpsc::error::TrySendError::Closed(_)) = outbox.try_send(WsMessage::Ping(Bytes::new())) {
                        return Served::Lost("the connection's writer stopped".into());
                    }
                },
                _ = sleep_until(held) => {}
                written = &mut writer => {
                    let why = match written {
                        Ok(Err(e)) => e,
                        Ok(Ok(())) => "the connection's writer stopped".into(),
                        Err(e) => format!("the connection's writer failed: {e}"),
                    };
                    return Served::Lost(why);
                },
                _ = drain.cancelled(), if deadline.is_none() => {
                    *deadline = Some(Instant::now() + config.drain_timeout);
                }
                _ = sleep_until(*deadline) => {
                    close(outbox, writer, CloseCode::Away).await;
                    return Served::Finished;
                }
            }
        }
    }

    fn on_reply(&self, text: &str, unacked: &mut Unacked, flow: &mut Flow, metrics: &Metrics, errors: &dyn ErrorSink) {
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
        match message {
            Message::Error(e) if is_retryable(e.code) && (e.code != ErrorCode::Internal || unacked.may_retry_internal(&key)) => {
                metrics.relay_error(e.code);
                metrics.latent_refused(e.code);
                if let Some(sent) = unacked.refused(&key) {
                    let jitter = rand::rng().random_range(0.8..1.2);
                    flow.refused(sent, Instant::now(), jitter);
                }
                debug!(session = %key.0, frame = key.1, code = %e.code, window = flow.window, "the relay refused a frame for now; it is sent again: {}", e.message);
            }
            Message::Error(e) => {
                metrics.relay_error(e.code);
                if unacked.settle(&key).is_some() {
                    metrics.latents_lost.inc();
                }
                warn!(session = %key.0, frame = key.1, code = %e.code, "the relay refused a frame; it is given up: {}", e.message);
                errors.relay_error(ErrorMessage { message: format!("the relay could not reconstruct this frame: {}", e.message), ..e });
            }
            _ => {
                if let Some(sent) = unacked.settle(&key) {
                    metrics.latents_acked.inc();
                    if let Some(sent) = sent {
                        metrics.relay_round_trip.observe(sent.elapsed().as_secs_f64());
                        flow.acknowledged(sent);
                    }
                    errors.delivered(&key.0, key.1);
                }
            }
        }
        self.count_unacked(unacked, metrics);
    }
}

/// Sends a close frame and gives the writer a moment to get it out.
async fn close(outbox: mpsc::Sender<WsMessage>, writer: tokio::task::JoinHandle<Result<(), String>>, code: CloseCode) {
    let frame = CloseFrame { code, reason: "simulation-service shutting down".into() };
    let _ = outbox.try_send(WsMessage::Close(Some(frame)));
    drop(outbox);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, writer).await;
}

async fn sleep_until(deadline: Option<Instant>) {
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

    fn key(session: &str, frame: u64) -> (SessionId, u64) {
        (SessionId::parse(session).unwrap(), frame)
    }

    fn order(u: &Unacked) -> Vec<&str> {
        u.entries.values().map(|e| e.pending.text.as_str()).collect()
    }

    #[test]
    fn unacked_keeps_order_acks_by_key_and_drops_the_oldest_over_the_limit() {
        let mut u = Unacked::default();
        assert_eq!(u.push(pending("a", 1), true, 3), 0);
        assert_eq!(u.push(pending("b", 1), true, 3), 0);
        assert_eq!(u.push(pending("a", 2), true, 3), 0);
        assert!(u.settle(&key("b", 1)).is_some());
        assert!(u.settle(&key("b", 1)).is_none());
        assert_eq!(u.push(pending("a", 3), true, 3), 0);
        assert_eq!(u.push(pending("a", 4), true, 3), 1, "a/1 is dropped");
        assert_eq!(order(&u), vec!["a/2", "a/3", "a/4"]);
        assert!(u.settle(&key("a", 1)).is_none());
    }

    #[test]
    fn latents_go_out_oldest_first_and_a_refused_one_keeps_its_place() {
        let now = Instant::now();
        let mut u = Unacked::default();
        for f in 1..=4 {
            u.push(pending("s", f), true, 100);
        }
        let first = u.next_to_send(now).unwrap();
        assert_eq!((first.text.as_str(), first.resend), ("s/1", false));
        assert_eq!(u.next_to_send(now).unwrap().text.as_str(), "s/2");
        assert_eq!(u.in_flight, 2);
        // s/1 refused: it goes out again before s/3, as a re-send.
        assert_eq!(u.refused(&key("s", 1)), Some(now));
        assert_eq!(u.in_flight, 1);
        assert_eq!(u.refused(&key("s", 1)), None, "a latent not in flight is not refused twice");
        let again = u.next_to_send(now).unwrap();
        assert_eq!((again.text.as_str(), again.resend), ("s/1", true));
        assert_eq!(u.next_to_send(now).unwrap().text.as_str(), "s/3");
        assert_eq!(u.in_flight, 3);
        // Settled latents leave the window.
        assert_eq!(u.settle(&key("s", 2)), Some(Some(now)));
        assert_eq!(u.settle(&key("s", 4)), Some(None), "s/4 was waiting, not in flight");
        assert_eq!((u.in_flight, u.len()), (2, 2));
        assert!(u.next_to_send(now).is_none());
    }

    #[test]
    fn a_lost_connection_puts_every_latent_back_in_order_as_re_sends() {
        let now = Instant::now();
        let mut u = Unacked::default();
        for f in 1..=3 {
            u.push(pending("s", f), true, 100);
        }
        u.next_to_send(now).unwrap();
        u.next_to_send(now).unwrap();
        assert_eq!(u.oldest_in_flight(), Some(now));
        u.requeue_all();
        assert_eq!((u.in_flight, u.oldest_in_flight()), (0, None));
        let sent: Vec<(String, bool)> =
            std::iter::from_fn(|| u.next_to_send(now)).map(|o| (o.text.to_string(), o.resend)).collect();
        assert_eq!(sent, vec![("s/1".into(), true), ("s/2".into(), true), ("s/3".into(), true)]);
        // Made while no connection was up: its first send already counts as a re-send.
        u.push(pending("s", 9), false, 100);
        assert!(u.next_to_send(now).unwrap().resend);
    }

    #[test]
    fn dropping_or_replacing_a_latent_in_flight_frees_its_place_in_the_window() {
        let now = Instant::now();
        let mut u = Unacked::default();
        u.push(pending("s", 1), true, 2);
        u.push(pending("s", 2), true, 2);
        u.next_to_send(now).unwrap();
        u.next_to_send(now).unwrap();
        assert_eq!(u.in_flight, 2);
        assert_eq!(u.push(pending("s", 3), true, 2), 1, "s/1 dropped over the limit");
        assert_eq!(u.in_flight, 1);
        // The same frame again replaces the one in flight and waits to be sent.
        assert_eq!(u.push(pending("s", 2), true, 2), 0);
        assert_eq!((u.in_flight, u.len()), (0, 2));
        assert_eq!(order(&u), vec!["s/3", "s/2"]);
    }

    #[test]
    fn refusals_halve_the_window_once_per_run_and_pause_with_a_doubling_delay() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut flow = Flow::new(32);
        assert!(flow.may_send(31, t0));
        assert!(!flow.may_send(32, t0));
        // A batch sent at t0 is refused at t0+10: one halving, one pause of RETRY_MIN.
        flow.refused(t0, t0 + ms(10), 1.0);
        for _ in 0..20 {
            flow.refused(t0, t0 + ms(11), 1.0);
        }
        assert_eq!(flow.window, 16);
        assert_eq!(flow.held_until(t0 + ms(10)), Some(t0 + ms(10) + RETRY_MIN));
        assert!(!flow.may_send(0, t0 + ms(20)), "held");
        let resumed = t0 + ms(10) + RETRY_MIN;
        assert!(flow.may_send(0, resumed));
        // An acknowledgement of the old batch widens the window but does not end the run.
        flow.acknowledged(t0);
        assert_eq!(flow.window, 17);
        // Refused again after the pause: the delay doubles, the window halves again.
        flow.refused(resumed, resumed + ms(5), 1.0);
        assert_eq!((flow.window, flow.delay), (8, RETRY_MIN * 2));
        let mut at = resumed + ms(5);
        for _ in 0..10 {
            at += flow.delay;
            flow.refused(at, at + ms(1), 1.0);
            at += ms(1);
        }
        assert_eq!((flow.window, flow.delay), (1, RETRY_MAX), "the window stays at least one, the delay at most RETRY_MAX");
        assert_eq!(flow.held_until(at), Some(at + RETRY_MAX));
        // A latent sent after the pause is acknowledged: the run is over, the window grows back.
        flow.acknowledged(at + RETRY_MAX);
        assert_eq!((flow.refusals_since, flow.delay, flow.window), (None, RETRY_MIN, 2));
        for _ in 0..100 {
            flow.acknowledged(at + RETRY_MAX);
        }
        assert_eq!(flow.window, 32, "never beyond the setting");
        // Jitter stretches the pause.
        let later = at + Duration::from_secs(10);
        flow.refused(later, later, 1.2);
        assert_eq!(flow.held_until(later), Some(later + RETRY_MIN.mul_f64(1.2)));
    }

    #[test]
    fn only_refusals_that_a_re_send_can_cure_are_retried() {
        for code in [ErrorCode::Overloaded, ErrorCode::Unavailable, ErrorCode::Internal, ErrorCode::RateLimited] {
            assert!(is_retryable(code), "{code}");
        }
        for code in [
            ErrorCode::BadJson,
            ErrorCode::BadMessage,
            ErrorCode::UnknownType,
            ErrorCode::PayloadLength,
            ErrorCode::NonFinite,
            ErrorCode::TooLarge,
            ErrorCode::BadImage,
            ErrorCode::BadSession,
            ErrorCode::Unauthorized,
            ErrorCode::BinaryNotSupported,
            ErrorCode::Unknown,
        ] {
            assert!(!is_retryable(code), "{code}");
        }
    }

    /// Records relay errors and deliveries.
    #[derive(Default)]
    struct Errors {
        errors: std::sync::Mutex<Vec<ErrorMessage>>,
        delivered: std::sync::Mutex<Vec<u64>>,
    }

    impl ErrorSink for Errors {
        fn relay_error(&self, error: ErrorMessage) {
            if let Ok(mut v) = self.errors.lock() {
                v.push(error);
            }
        }

        fn delivered(&self, _session: &SessionId, frame_id: u64) {
            if let Ok(mut v) = self.delivered.lock() {
                v.push(frame_id);
            }
        }
    }

    const SECRET: &str = "failover-secret-0123456789abcdef0123";

    fn link_config(url: String) -> LinkConfig {
        LinkConfig {
            url,
            secret: SharedSecret::new(SECRET).unwrap(),
            max_unacked: 1024,
            max_backoff: Duration::from_millis(200),
            drain_timeout: Duration::from_secs(5),
            window: 8,
            stall_after: Duration::from_secs(3),
            dead_after: Duration::from_secs(30),
        }
    }

    fn latent(session: &str, frame: u64) -> WaveformLatent {
        WaveformLatent {
            session_id: SessionId::parse(session).unwrap(),
            payload: vec![0.5; 6],
            frame_id: Some(frame),
            shape: None,
            sent_at_ms: None,
            source: None,
            population: None,
        }
    }

    async fn start_relay(model_dir: &std::path::Path) -> service_kit::testing::Running<relay_service::AppState> {
        let config = relay_service::RelayConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            model_dir: model_dir.to_path_buf(),
            wide_model_dir: None,
            device: models::DeviceChoice::Cpu,
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
        let until = std::time::Instant::now() + service_kit::testing::WAIT;
        while !done() {
            assert!(std::time::Instant::now() < until, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the scripted relay answers to one latent.
    #[derive(Debug, Clone, Copy)]
    enum Reply {
        Ack,
        Refuse(ErrorCode),
    }

    /// What the scripted relay saw: each batch of latents (read until the sender paused)
    /// as (frame id) lists, in arrival order.
    type Batches = Arc<std::sync::Mutex<Vec<Vec<u64>>>>;

    /// A relay stand-in on loopback that reads latents until none came for a moment,
    /// then answers that batch as `script(frame_id, attempt)` says (attempt counts from 1).
    async fn scripted_relay(script: fn(u64, u32) -> Reply) -> (std::net::SocketAddr, Batches) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let batches: Batches = Arc::default();
        let seen = batches.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // The link asks for acks rather than images; a relay stand-in that refuses
            // other upgrades makes every test here fail if it stops asking.
            // The callback's signature is tungstenite's (its error is a whole HTTP response).
            #[allow(clippy::result_large_err)]
            let asks_for_acks = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                                 response: tokio_tungstenite::tungstenite::handshake::server::Response| {
                if request.headers().get(INGEST_REPLY_HEADER).and_then(|v| v.to_str().ok()) == Some("ack") {
                    Ok(response)
                } else {
                    let mut refusal = tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(Some("ack replies only".into()));
                    *refusal.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::BAD_REQUEST;
                    Err(refusal)
                }
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, asks_for_acks).await.unwrap();
            let mut attempts: HashMap<u64, u32> = HashMap::new();
            loop {
                let mut batch = Vec::new();
                loop {
                    let wait = if batch.is_empty() { Duration::from_secs(60) } else { Duration::from_millis(150) };
                    match tokio::time::timeout(wait, ws.next()).await {
                        Ok(Some(Ok(WsMessage::Text(t)))) => {
                            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                            batch.push((v["session_id"].as_str().unwrap().to_owned(), v["frame_id"].as_u64().unwrap()));
                        }
                        Ok(Some(Ok(_))) => {}
                        Ok(_) => return,
                        Err(_) => break,
                    }
                }
                seen.lock().unwrap().push(batch.iter().map(|(_, f)| *f).collect());
                for (session, frame) in batch {
                    let attempt = attempts.entry(frame).or_default();
                    *attempt += 1;
                    let reply = match script(frame, *attempt) {
                        Reply::Ack => format!(r#"{{"type":"ack","session_id":"{session}","frame_id":{frame}}}"#),
                        Reply::Refuse(code) => format!(
                            r#"{{"type":"error","code":"{code}","message":"scripted","session_id":"{session}","frame_id":{frame}}}"#
                        ),
                    };
                    if ws.send(WsMessage::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
            }
        });
        (addr, batches)
    }

    /// Retryable refusals are sent again (not reported, not lost), a final one is given
    /// up and reported, and no more than the window is ever unanswered.
    #[tokio::test]
    async fn refused_latents_are_retried_within_the_window_and_final_errors_are_lost() {
        fn script(frame: u64, attempt: u32) -> Reply {
            match (frame, attempt) {
                (5, _) => Reply::Refuse(ErrorCode::BadMessage),
                (10..=14, 1) => Reply::Refuse(ErrorCode::Overloaded),
                (20, 1 | 2) => Reply::Refuse(ErrorCode::Internal),
                // A fault this latent causes every time: given up after MAX_INTERNAL_FAULTS.
                (30, _) => Reply::Refuse(ErrorCode::Internal),
                _ => Reply::Ack,
            }
        }
        let (addr, batches) = scripted_relay(script).await;
        let config = link_config(format!("ws://{addr}/ws/ingest"));
        let (link, task) = RelayLink::new();
        let metrics = Arc::new(Metrics::new());
        let errors = Arc::new(Errors::default());
        let drain = CancellationToken::new();
        let handle = tokio::spawn(task.run(config, metrics.clone(), errors.clone(), drain.clone()));
        // Made while connected, so first sends count as sent and every other as re-sent.
        wait_until("connected", || link.is_connected()).await;
        for frame in 1..=40 {
            assert!(link.send(&latent("script", frame)).await);
        }
        wait_until("every frame is settled", || metrics.latents_acked.get() + metrics.latents_lost.get() == 40).await;
        drain.cancel();
        tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();

        let batches = batches.lock().unwrap().clone();
        let largest = batches.iter().map(Vec::len).max().unwrap_or(0);
        assert_eq!(batches.first().map(Vec::len), Some(8), "the first batch fills the window: {batches:?}");
        assert!(largest <= 8, "never more than the window unanswered: {batches:?}");
        let first_sends: Vec<u64> = {
            let mut seen = BTreeSet::new();
            batches.iter().flatten().copied().filter(|f| seen.insert(*f)).collect()
        };
        assert_eq!(first_sends, (1..=40).collect::<Vec<_>>(), "oldest first: {batches:?}");
        let delivered = errors.delivered.lock().unwrap().clone();
        let expected: Vec<u64> = (1..=40).filter(|&f| f != 5 && f != 30).collect();
        assert_eq!(delivered.iter().copied().collect::<BTreeSet<_>>(), expected.iter().copied().collect::<BTreeSet<_>>());
        assert_eq!(delivered.len(), 38, "each frame acknowledged once");
        let reported: Vec<(ErrorCode, Option<u64>)> =
            errors.errors.lock().unwrap().iter().map(|e| (e.code, e.frame_id)).collect();
        assert_eq!(
            reported,
            vec![(ErrorCode::BadMessage, Some(5)), (ErrorCode::Internal, Some(30))],
            "only final refusals reach the browser"
        );
        assert_eq!((metrics.latents_acked.get(), metrics.latents_lost.get()), (38, 2));
        let refused = |code| metrics.latents_refused.get_or_create(&crate::telemetry::CodeLabel::of(code)).get();
        assert_eq!((refused(ErrorCode::Overloaded), refused(ErrorCode::Internal)), (5, 4));
        assert_eq!(metrics.latents_sent.get(), 40);
        assert_eq!(metrics.latents_resent.get(), 9, "each retried refusal sent again once");
    }

    /// A relay that accepts the connection and then reads nothing (a stopped process):
    /// the link reports it stalled, drops it after the dead timeout and reconnects.
    #[tokio::test]
    async fn a_silent_relay_is_reported_stalled_then_dropped_and_reconnected() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            // First connection: handshake, then silence (held open, never read).
            let (tcp, _) = listener.accept().await.unwrap();
            let silent = tokio_tungstenite::accept_async(tcp).await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            // Second connection: answers everything.
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            drop(silent);
            while let Some(Ok(m)) = ws.next().await {
                if let WsMessage::Text(t) = m {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    let reply = format!(r#"{{"type":"ack","session_id":"{}","frame_id":{}}}"#, v["session_id"].as_str().unwrap(), v["frame_id"]);
                    if ws.send(WsMessage::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
            }
        });
        let mut config = link_config(format!("ws://{addr}/ws/ingest"));
        config.stall_after = Duration::from_millis(300);
        config.dead_after = Duration::from_millis(1500);
        let (link, task) = RelayLink::new();
        let metrics = Arc::new(Metrics::new());
        let drain = CancellationToken::new();
        let handle = tokio::spawn(task.run(config, metrics.clone(), Arc::new(Errors::default()), drain.clone()));
        wait_until("connected", || link.health().state == LinkState::Connected).await;
        assert!(link.is_connected());
        assert!(link.send(&latent("stall", 1)).await);
        wait_until("the link is stalled", || link.health().state == LinkState::Stalled).await;
        let health = link.health();
        assert!(!link.is_connected(), "a stalled link is not connected");
        assert_eq!(metrics.relay_connected.get(), 0);
        assert!(health.cause.as_deref().is_some_and(|c| c.contains("nothing came from the relay")), "{health:?}");
        assert_eq!(metrics.latents_acked.get(), 0);
        wait_until("the frame is acknowledged on a new connection", || metrics.latents_acked.get() == 1).await;
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        assert!(link.is_connected());
        assert_eq!(metrics.latents_resent.get(), 1, "re-sent on the new connection");
        drain.cancel();
        tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
        assert_eq!(metrics.latents_lost.get(), 0);
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
        let mut config = link_config(format!("ws://{dead}/ws/ingest, ws://{}/ws/ingest,ws://{}/ws/ingest", a.addr, b.addr));
        config.max_unacked = 64;
        config.max_backoff = Duration::from_secs(5);
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
            population: None,
        };
        let started = std::time::Instant::now();
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
        assert!(errors.errors.lock().unwrap().is_empty());
        drain.cancel();
        tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
        b.stop().await;
    }
}
