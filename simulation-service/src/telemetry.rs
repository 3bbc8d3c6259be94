//! The simulation-service's Prometheus metrics, served at `/metrics`.
//!
//! Names start with `v1_sim_`. Frames in are stimuli and stream frames taken for
//! simulation; frames out are `response`s sent to browsers and `waveform_latent`s sent
//! to the relay.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
pub use service_kit::telemetry::CodeLabel;
use service_kit::telemetry::latency_buckets;
use shared_protocol::{ErrorCode, Source};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

pub struct Metrics {
    registry: Registry,
    /// Frames taken for simulation, by source.
    pub frames_in: Family<SourceLabel, Counter>,
    /// `response`s sent to browsers.
    pub responses_out: Counter,
    /// `waveform_latent`s sent to the relay on the connection that was up when they
    /// were made (first sends).
    pub latents_sent: Counter,
    /// `waveform_latent`s sent again: after a reconnect (including those made while no
    /// connection was up) or after a retryable refusal.
    pub latents_resent: Counter,
    /// `waveform_latent`s the relay acknowledged.
    pub latents_acked: Counter,
    /// `waveform_latent`s that will never reach the relay: the unacknowledged store
    /// overflowed, the relay refused one with a final error code, or shutdown ran out of
    /// time.
    pub latents_lost: Counter,
    /// Retryable refusals by the relay (`overloaded`, `unavailable`, `internal`,
    /// `rate_limited`), by code; each refused latent is kept and sent again.
    pub latents_refused: Family<CodeLabel, Counter>,
    /// `waveform_latent`s sent and not yet answered (at most the link's window).
    pub relay_in_flight: Gauge,
    /// Errors the relay answered, by code.
    pub relay_errors: Family<CodeLabel, Counter>,
    /// Errors sent to browsers, by code.
    pub errors: Family<CodeLabel, Counter>,
    /// Stream frames skipped because the workers were busy.
    pub stream_frames_skipped: Counter,
    /// Image decoding + image_encoder + waveform_decoder of one frame.
    pub inference_seconds: Histogram,
    /// Receipt of a frame to its `response` being queued for the browser.
    pub frame_latency: Histogram,
    /// `waveform_latent` sent to the relay's acknowledgement.
    pub relay_round_trip: Histogram,
    /// 1 while connected to the relay and it answers (0 while stalled).
    pub relay_connected: Gauge,
    /// Open browser connections.
    pub connections: Gauge,
    /// Running streams.
    pub streams: Gauge,
    /// Sessions with a live browser connection.
    pub sessions: Gauge,
    /// `waveform_latent`s waiting for the relay's acknowledgement.
    pub unacked: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self {
            registry: Registry::default(),
            frames_in: Family::default(),
            responses_out: Counter::default(),
            latents_sent: Counter::default(),
            latents_resent: Counter::default(),
            latents_acked: Counter::default(),
            latents_lost: Counter::default(),
            latents_refused: Family::default(),
            relay_in_flight: Gauge::default(),
            relay_errors: Family::default(),
            errors: Family::default(),
            stream_frames_skipped: Counter::default(),
            inference_seconds: Histogram::new(latency_buckets()),
            frame_latency: Histogram::new(latency_buckets()),
            relay_round_trip: Histogram::new(latency_buckets()),
            relay_connected: Gauge::default(),
            connections: Gauge::default(),
            streams: Gauge::default(),
            sessions: Gauge::default(),
            unacked: Gauge::default(),
        };
        let mut r = Registry::with_prefix("v1_sim");
        r.register("frames_in", "frames taken for simulation, by source", m.frames_in.clone());
        r.register("responses_out", "response messages sent to browsers", m.responses_out.clone());
        r.register("latents_sent", "waveform_latent messages sent to the relay", m.latents_sent.clone());
        r.register("latents_resent", "waveform_latent messages re-sent after a reconnect or a retryable refusal", m.latents_resent.clone());
        r.register("latents_acked", "waveform_latent messages acknowledged by the relay", m.latents_acked.clone());
        r.register("latents_lost", "waveform_latent messages that will never reach the relay (store overflow, final refusal, unacknowledged at shutdown)", m.latents_lost.clone());
        r.register("latents_refused", "retryable refusals by the relay, by code (the latent is sent again)", m.latents_refused.clone());
        r.register("relay_in_flight", "waveform_latent messages sent and not yet answered", m.relay_in_flight.clone());
        r.register("relay_errors", "errors answered by the relay, by code", m.relay_errors.clone());
        r.register("errors", "error messages sent to browsers, by code", m.errors.clone());
        r.register("stream_frames_skipped", "stream frames skipped because the workers were busy", m.stream_frames_skipped.clone());
        r.register("inference_seconds", "image decoding + image_encoder + waveform_decoder per frame", m.inference_seconds.clone());
        r.register("frame_latency_seconds", "receipt of a frame to its response", m.frame_latency.clone());
        r.register("relay_round_trip_seconds", "waveform_latent to the relay's acknowledgement", m.relay_round_trip.clone());
        r.register("relay_connected", "1 while connected to the relay and it answers", m.relay_connected.clone());
        r.register("connections", "open browser connections", m.connections.clone());
        r.register("streams", "running streams", m.streams.clone());
        r.register("sessions", "sessions with a live browser connection", m.sessions.clone());
        r.register("unacked_latents", "waveform_latent messages waiting for acknowledgement", m.unacked.clone());
        Self { registry: r, ..m }
    }

    pub fn error(&self, code: ErrorCode) {
        self.errors.get_or_create(&CodeLabel::of(code)).inc();
    }

    pub fn relay_error(&self, code: ErrorCode) {
        self.relay_errors.get_or_create(&CodeLabel::of(code)).inc();
    }

    pub fn latent_refused(&self, code: ErrorCode) {
        self.latents_refused.get_or_create(&CodeLabel::of(code)).inc();
    }

    pub fn frame_in(&self, source: Source) {
        self.frames_in.get_or_create(&SourceLabel { source: source.as_str().to_owned() }).inc();
    }

    pub fn encode(&self) -> String {
        service_kit::telemetry::encode(&self.registry)
    }
}
