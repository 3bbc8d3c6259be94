//! The relay's Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Names start with `v1_relay_`. Frames in are `waveform_latent`s accepted on
//! `/ws/ingest`; frames out are `reconstructed_image`s pushed to subscribers. Refused
//! requests (a foreign page, a wrong token) are counted by reason in `refusals_total`;
//! their log lines are rate-limited ([`Metrics::refused`]), so the counters are where a
//! flood shows in full.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
pub use service_kit::telemetry::CodeLabel;
use service_kit::log_limit::LogLimiter;
use service_kit::telemetry::latency_buckets;

/// Label for counters split by endpoint.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

/// Label of `refusals_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Why the relay refused a request before doing any work for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A page whose `Origin` is not allowed (WebSocket upgrade or POST).
    Origin,
    /// A POST without `Content-Type: application/json`.
    ContentType,
    /// A session token that is wrong (or malformed) for its session.
    Token,
    /// A genuine session token past its expiry.
    ExpiredToken,
    /// `/ws/ingest` without the shared secret as bearer token.
    Bearer,
}

impl Refusal {
    const ALL: [Refusal; 5] = [Refusal::Origin, Refusal::ContentType, Refusal::Token, Refusal::ExpiredToken, Refusal::Bearer];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Origin => "origin",
            Refusal::ContentType => "content_type",
            Refusal::Token => "token",
            Refusal::ExpiredToken => "expired_token",
            Refusal::Bearer => "bearer",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Every metric of the relay, registered once.
pub struct Metrics {
    registry: Registry,
    /// `waveform_latent`s accepted for reconstruction.
    pub frames_in: Counter,
    /// Re-sent frames acknowledged without reconstructing them again.
    pub duplicates: Counter,
    /// Images pushed to subscribers (one per subscriber).
    pub frames_out: Counter,
    /// Images dropped from a full session buffer.
    pub buffer_drops: Counter,
    /// Images a slow subscriber missed.
    pub subscriber_lag: Counter,
    /// Error messages sent, by code.
    pub errors: Family<CodeLabel, Counter>,
    /// WebSocket connections accepted, by endpoint.
    pub connections: Family<EndpointLabel, Counter>,
    /// Receipt of a `waveform_latent` to the reply to its sender.
    pub frame_latency: Histogram,
    /// Reconstruction + JPEG encoding alone.
    pub reconstruct_seconds: Histogram,
    /// Sessions held.
    pub sessions: Gauge,
    /// Live subscriptions.
    pub subscribers: Gauge,
    /// Open `/ws/ingest` connections.
    pub ingest_connections: Gauge,
    /// Frames accepted and not yet answered.
    pub in_flight: Gauge,
    /// Requests refused before any work, by [`Refusal`].
    pub refusals: Family<ReasonLabel, Counter>,
    /// One log line per second per [`Refusal`], indexed by [`Refusal::index`].
    refusal_logs: [LogLimiter; Refusal::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("v1_relay");
        let m = Self {
            frames_in: Counter::default(),
            duplicates: Counter::default(),
            frames_out: Counter::default(),
            buffer_drops: Counter::default(),
            subscriber_lag: Counter::default(),
            errors: Family::default(),
            connections: Family::default(),
            frame_latency: Histogram::new(latency_buckets()),
            reconstruct_seconds: Histogram::new(latency_buckets()),
            sessions: Gauge::default(),
            subscribers: Gauge::default(),
            ingest_connections: Gauge::default(),
            in_flight: Gauge::default(),
            refusals: Family::default(),
            refusal_logs: Default::default(),
            registry: Registry::default(),
        };
        registry.register("frames_in", "waveform_latent messages accepted for reconstruction", m.frames_in.clone());
        registry.register("duplicate_frames", "re-sent frames acknowledged without reconstruction", m.duplicates.clone());
        registry.register("frames_out", "reconstructed images pushed to subscribers", m.frames_out.clone());
        registry.register("buffer_drops", "images dropped from full session buffers (oldest first)", m.buffer_drops.clone());
        registry.register("subscriber_missed", "images slow subscribers missed", m.subscriber_lag.clone());
        registry.register("errors", "error messages sent, by code", m.errors.clone());
        registry.register("connections", "WebSocket connections accepted, by endpoint", m.connections.clone());
        registry.register(
            "frame_latency_seconds",
            "receipt of a waveform_latent to the reply to its sender",
            m.frame_latency.clone(),
        );
        registry.register(
            "reconstruct_seconds",
            "waveform_encoder + image_decoder + JPEG encoding of one frame",
            m.reconstruct_seconds.clone(),
        );
        registry.register("sessions", "sessions held", m.sessions.clone());
        registry.register("subscribers", "live subscriptions", m.subscribers.clone());
        registry.register("ingest_connections", "open /ws/ingest connections", m.ingest_connections.clone());
        registry.register("in_flight_frames", "frames accepted and not yet answered", m.in_flight.clone());
        registry.register(
            "refusals",
            "requests refused before any work, by reason (origin, content_type, token, expired_token, bearer)",
            m.refusals.clone(),
        );
        // Every reason shows from the start, at 0, so that a dashboard can rate() it.
        for r in Refusal::ALL {
            let _ = m.refusals.get_or_create(&ReasonLabel { reason: r.label() });
        }
        Self { registry, ..m }
    }

    pub fn error(&self, code: shared_protocol::ErrorCode) {
        self.errors.get_or_create(&CodeLabel::of(code)).inc();
    }

    /// Counts a refusal. `Some(n)` when a log line about it may be written now, `n` being
    /// the refusals of that reason not logged since the last line; `None` to stay silent.
    pub fn refused(&self, reason: Refusal) -> Option<u64> {
        self.refusals.get_or_create(&ReasonLabel { reason: reason.label() }).inc();
        self.refusal_logs[reason.index()].check()
    }

    pub fn connection(&self, endpoint: &str) {
        self.connections.get_or_create(&EndpointLabel { endpoint: endpoint.to_owned() }).inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        service_kit::telemetry::encode(&self.registry)
    }
}
