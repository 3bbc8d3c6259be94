//! One frame from input to output: frame ids, the work on a worker thread, and the
//! delivery of its `response` (to the browser) and `waveform_latent` (to the relay).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use candle_core::Tensor;
use models::GrayCrop;
use shared_protocol::validate::MAX_FRAME_ID;
use shared_protocol::{Delivered, ErrorMessage, Message, Population, RecordedPosition, Response, SessionId, Source, Trial, WaveformLatent};

use crate::error::FrameError;
use crate::pool::{JobFailed, Ticket};
use crate::relay_link::ErrorSink;
use crate::simulate::crop_png;
use crate::ws::Outbox;
use crate::AppState;

/// Frame ids for frames this service makes itself (streams, stimuli without an id):
/// microseconds since the Unix epoch, kept strictly increasing. They never repeat across
/// restarts (the relay de-duplicates by id), they stay far above the small counters
/// browsers use, and they remain below 2^53 (exact in a browser) for centuries.
#[derive(Debug, Default)]
pub struct FrameIds(AtomicU64);

impl FrameIds {
    pub fn next(&self) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let mut last = self.0.load(Ordering::Relaxed);
        loop {
            let id = now.max(last + 1).min(MAX_FRAME_ID);
            match self.0.compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return id,
                Err(actual) => last = actual,
            }
        }
    }
}

/// Milliseconds since the Unix epoch (the wire's `sent_at_ms`).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What is known about a frame before its work.
#[derive(Debug, Clone)]
pub struct FrameMeta {
    pub session_id: SessionId,
    pub frame_id: u64,
    pub source: Source,
    /// When the frame arrived or was produced (latency figures).
    pub received: Instant,
    pub received_at_ms: u64,
    pub recorded: Option<RecordedPosition>,
    /// The population asked for, as the message named it (absent: the pvc-1 array); the
    /// response and the latent carry it on.
    pub population: Option<Population>,
    /// Whether the response is a single trial drawn from the predicted means.
    pub trial: Trial,
}

impl FrameMeta {
    pub fn new(session_id: SessionId, frame_id: u64, source: Source) -> Self {
        Self {
            session_id,
            frame_id,
            source,
            received: Instant::now(),
            received_at_ms: now_ms(),
            recorded: None,
            population: None,
            trial: Trial::Mean,
        }
    }

    /// The same frame for `population` (as named on the wire) and `trial`.
    pub fn with(mut self, population: Option<Population>, trial: Option<Trial>) -> Self {
        self.population = population;
        self.trial = trial.unwrap_or_default();
        self
    }

    /// The population whose model runs this frame.
    pub fn population(&self) -> Population {
        self.population.unwrap_or_default()
    }
}

/// The input of one frame.
#[derive(Debug, Clone)]
pub enum Input {
    /// A client image, still encoded.
    DataUrl(String),
    /// A crop from a source.
    Crop(GrayCrop),
    /// A recorded response with its true frame: nothing to simulate.
    Recorded { crop: GrayCrop, response: Vec<f32> },
    /// A response painted in the browser, already validated: nothing to simulate, no image.
    Imagined(Vec<f32>),
    /// A point of a dream: the latent z between two anchors (`t` in [0,1] from `from` to
    /// `to`), decoded to rates by the waveform_decoder. No image.
    Dream { from: Tensor, to: Tensor, t: f32 },
}

impl Input {
    /// Whether the frame needs a worker (model inference or image decoding).
    pub fn needs_worker(&self) -> bool {
        !matches!(self, Input::Recorded { .. } | Input::Imagined(_))
    }
}

/// The response and, when the frame has one, the crop's PNG data URL. Predicted means
/// become one Poisson draw each when the frame asks for a single trial; recorded and
/// imagined responses are counts already and pass as they are.
fn work(state: &AppState, meta: &FrameMeta, input: Input) -> Result<(Vec<f32>, Option<String>), FrameError> {
    let simulator = state.simulator_for(meta.population())?;
    let single = |means: Vec<f32>| match meta.trial {
        Trial::Single => state.trials.sample(&meta.session_id, &means),
        Trial::Mean => means,
    };
    let (crop, response) = match input {
        Input::DataUrl(url) => {
            let crop = simulator.crop_from_data_url(&url, "image")?;
            let response = single(simulator.predict(&crop)?);
            (crop, response)
        }
        Input::Crop(crop) => {
            let response = single(simulator.predict(&crop)?);
            (crop, response)
        }
        Input::Recorded { crop, response } => (crop, response),
        Input::Imagined(response) => return Ok((response, None)),
        Input::Dream { from, to, t } => return Ok((single(simulator.dream(&from, &to, t)?), None)),
    };
    Ok((response, Some(crop_png(&crop)?)))
}

/// Runs one frame (on a worker when `ticket` is given) and delivers it, or reports its
/// error to the browser. Returns false when the browser connection is gone, or when the
/// service is shutting down and dropped the frame unanswered.
pub async fn process(state: &AppState, outbox: &Outbox, meta: FrameMeta, input: Input, ticket: Option<Ticket>) -> bool {
    let timed = |state: &AppState, meta: &FrameMeta, input: Input| {
        let started = Instant::now();
        let r = work(state, meta, input);
        (r, started.elapsed())
    };
    let result = match ticket {
        Some(ticket) => {
            let worker_state = state.clone();
            let worker_meta = meta.clone();
            match ticket.run(move || timed(&worker_state, &worker_meta, input)).await {
                Ok((r, compute)) => {
                    state.metrics.inference_seconds.observe(compute.as_secs_f64());
                    r
                }
                // The service is going down: no reply, so the browser re-sends the frame.
                Err(JobFailed::Cancelled) => return false,
                Err(JobFailed::Panicked(why)) => Err(FrameError::Internal(why)),
            }
        }
        None => timed(state, &meta, input).0,
    };
    match result {
        Ok((payload, input_image)) => deliver(state, outbox, meta, payload, input_image).await,
        Err(e) => {
            let code = e.code();
            state.metrics.error(code);
            let error = ErrorMessage { code, message: e.to_string(), session_id: Some(meta.session_id), frame_id: Some(meta.frame_id) };
            outbox.error(error).await
        }
    }
}

/// Sends the latent to the relay first (its reconstruction is the longer way), then the
/// response to the browser.
async fn deliver(state: &AppState, outbox: &Outbox, meta: FrameMeta, payload: Vec<f32>, input_image: Option<String>) -> bool {
    // The frame ran with this population's model, so the service has it.
    let model = state.simulator_for(meta.population()).unwrap_or(&state.simulator).model();
    let info = model.info();
    let shape = Some([info.n_lags(), info.n_channels()]);
    let latent = WaveformLatent {
        session_id: meta.session_id.clone(),
        payload: payload.clone(),
        frame_id: Some(meta.frame_id),
        shape,
        sent_at_ms: Some(meta.received_at_ms),
        source: Some(meta.source),
        population: meta.population,
    };
    state.relay.send(&latent).await;
    let latency = meta.received.elapsed();
    let response = Response {
        session_id: meta.session_id,
        frame_id: Some(meta.frame_id),
        payload,
        shape,
        input_image,
        latency_ms: Some(round_ms(latency)),
        source: Some(meta.source),
        sent_at_ms: Some(meta.received_at_ms),
        recorded: meta.recorded,
        population: meta.population,
        trial: (meta.trial == Trial::Single).then_some(Trial::Single),
    };
    let sent = outbox.send(&Message::Response(response)).await;
    if sent {
        state.metrics.responses_out.inc();
    }
    state.metrics.frame_latency.observe(latency.as_secs_f64());
    sent
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Which browser connection uses each session, so that errors the relay reports about a
/// session's frames (and, when asked for, their `delivered` notices) reach it.
#[derive(Debug, Default)]
pub struct Viewers {
    map: Mutex<HashMap<SessionId, Viewer>>,
}

#[derive(Debug)]
struct Viewer {
    conn: u64,
    outbox: Outbox,
    /// The connection asked for `delivered` messages (`/ws?delivered=true`).
    wants_delivered: bool,
}

impl Viewers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Viewer>> {
        match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Records that connection `conn` uses `session` (the latest user wins).
    pub fn register(&self, session: &SessionId, conn: u64, outbox: &Outbox, wants_delivered: bool) -> usize {
        let mut map = self.lock();
        map.insert(session.clone(), Viewer { conn, outbox: outbox.clone(), wants_delivered });
        map.len()
    }

    /// Forgets every session of connection `conn`.
    pub fn forget_connection(&self, conn: u64) -> usize {
        let mut map = self.lock();
        map.retain(|_, v| v.conn != conn);
        map.len()
    }
}

impl ErrorSink for Viewers {
    fn relay_error(&self, error: ErrorMessage) {
        let Some(session) = error.session_id.clone() else { return };
        let outbox = self.lock().get(&session).map(|v| v.outbox.clone());
        if let Some(outbox) = outbox {
            outbox.try_error(error);
        }
    }

    /// Tells the browser using the session, if it asked, that the relay has the frame. The send waits
    /// for room in that browser's queue on a task of its own, so a browser that reads
    /// slowly delays only its own notices, never the relay link; how many can wait is
    /// bounded by the frames the connection may have in flight.
    fn delivered(&self, session: &SessionId, frame_id: u64) {
        let outbox = self.lock().get(session).filter(|v| v.wants_delivered).map(|v| v.outbox.clone());
        let Some(outbox) = outbox else { return };
        let notice = Message::Delivered(Delivered { session_id: session.clone(), frame_id });
        tokio::spawn(async move {
            outbox.send(&notice).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ids_increase_and_stay_browser_safe() {
        let ids = FrameIds::default();
        let a = ids.next();
        let b = ids.next();
        assert!(b > a);
        assert!(a > 1_000_000_000_000_000, "microseconds since 1970: {a}");
        assert!(b <= MAX_FRAME_ID);
    }
}
