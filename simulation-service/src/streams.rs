//! Streams: frames the service produces by itself at a steady rate after `start_stream`.
//!
//! - `recorded`: the held-out test segments in order, each frame's recorded response
//!   with its true frame (no simulation; the relay reconstructs from real activity).
//! - `dataset`: random test frames through the model.
//! - `folder`: the image folder in order through the model.
//! - `webcam`: the server camera's latest frame through the model.
//! - `dream`: no image at all. The image latent z walks slowly from the latent of one
//!   random natural frame (dataset, else image folder, else a procedural pattern) to the
//!   next, [`DREAM_LEG`] per leg with easing at each anchor, and the waveform_decoder turns
//!   each point of the walk into rates: plausible population activity that no image on
//!   the screen caused.
//!
//! The clock ticks at `fps`; a tick that finds the previous frame still running, or the
//! workers busy, is skipped rather than queued, so a stream never falls behind real time.

use std::time::{Duration, Instant};

use candle_core::Tensor;

use shared_protocol::{ErrorMessage, Population, SessionId, Source, StreamSource, Trial};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::frames::{process, FrameMeta, Input};
use crate::ws::Outbox;
use crate::AppState;

/// Time the dream takes to glide from one anchor latent to the next.
pub const DREAM_LEG: Duration = Duration::from_secs(2);

/// The walk of a dream: the leg it is on and when that leg began.
struct Dream {
    from: Tensor,
    to: Tensor,
    leg_started: Instant,
}

impl Dream {
    async fn start(state: &AppState, population: Population) -> Result<Self, String> {
        Ok(Self { from: anchor(state, population).await?, to: anchor(state, population).await?, leg_started: Instant::now() })
    }

    /// The next point of the walk, starting a new leg (a new anchor) when one is over.
    async fn next(&mut self, state: &AppState, population: Population) -> Result<Input, String> {
        let mut t = self.leg_started.elapsed().as_secs_f32() / DREAM_LEG.as_secs_f32();
        if t >= 1.0 {
            let next = anchor(state, population).await?;
            self.from = std::mem::replace(&mut self.to, next);
            self.leg_started = Instant::now();
            t = 0.0;
        }
        Ok(Input::Dream { from: self.from.clone(), to: self.to.clone(), t })
    }
}

/// The latent z of a new anchor in `population`'s model (image_encoder, off the async
/// threads).
async fn anchor(state: &AppState, population: Population) -> Result<Tensor, String> {
    let state = state.clone();
    let encoded = tokio::task::spawn_blocking(move || {
        let simulator = state.simulator_for(population)?;
        let crop = state.sources.dream_anchor(simulator.model().info().image_size);
        simulator.latent(&crop)
    })
    .await;
    match encoded {
        Ok(Ok(z)) => Ok(z),
        Ok(Err(e)) => Err(format!("the dream could not encode its next anchor: {e}")),
        Err(e) => Err(format!("the dream's anchor task failed: {e}")),
    }
}

/// What one stream produces.
#[derive(Debug, Clone)]
pub struct Stream {
    pub session_id: SessionId,
    pub source: StreamSource,
    /// Frames per second.
    pub fps: u32,
    /// The population as `start_stream` named it (absent: the pvc-1 array).
    pub population: Option<Population>,
    pub trial: Trial,
}

/// Runs one stream until `stop`, shutdown, or the browser leaving.
pub async fn run(state: AppState, outbox: Outbox, stream: Stream, stop: CancellationToken) {
    let Stream { session_id, source, fps, population, trial } = stream;
    let model_population = population.unwrap_or_default();
    state.metrics.streams.inc();
    let _gauge = StreamGauge(&state);
    // What the source needs before its first tick: the camera opened, the dream's first leg.
    let camera = match source {
        StreamSource::Webcam => Some(open_camera(&state).await),
        _ => None,
    };
    let dream = match source {
        StreamSource::Dream => Some(Dream::start(&state, model_population).await),
        _ => None,
    };
    let (camera, mut dream) = match (camera.transpose(), dream.transpose()) {
        (Ok(camera), Ok(dream)) => (camera, dream),
        (Err(message), _) | (_, Err(message)) => {
            report(&state, &outbox, &session_id, message).await;
            return;
        }
    };
    let period = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut index = 0usize;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = state.shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let frame_id = state.frame_ids.next();
        let trial = (source != StreamSource::Recorded).then_some(trial);
        let mut meta = FrameMeta::new(session_id.clone(), frame_id, source.as_source()).with(population, trial);
        let input = match source {
            StreamSource::Recorded => match state.sources.recorded_at(index) {
                Some((position, frame)) => {
                    meta.recorded = Some(position);
                    Input::Recorded { crop: frame.crop, response: frame.response }
                }
                None => break,
            },
            StreamSource::Folder => match state.sources.folder_at(index) {
                Some(image) => Input::Crop(image.crop.clone()),
                None => break,
            },
            StreamSource::Dataset => match state.sources.pick(Source::Dataset) {
                Ok(picked) => Input::Crop(picked.crop),
                Err(e) => {
                    report(&state, &outbox, &session_id, e.to_string()).await;
                    break;
                }
            },
            // No camera frame yet: wait for the next tick.
            StreamSource::Webcam => match camera.as_ref().and_then(|c| c.latest()) {
                Some(crop) => Input::Crop(crop),
                None => continue,
            },
            StreamSource::Dream => match dream.as_mut() {
                Some(d) => match d.next(&state, model_population).await {
                    Ok(input) => input,
                    Err(message) => {
                        report(&state, &outbox, &session_id, message).await;
                        break;
                    }
                },
                None => break,
            },
        };
        index += 1;
        let ticket = if input.needs_worker() {
            match state.pool.admit(crate::pool::lane_of(&session_id)) {
                Ok(t) => Some(t),
                Err(_) => {
                    state.metrics.stream_frames_skipped.inc();
                    continue;
                }
            }
        } else {
            None
        };
        state.metrics.frame_in(source.as_source());
        if !process(&state, &outbox, meta, input, ticket).await {
            break;
        }
    }
    info!(session = %session_id, source = source.as_source().as_str(), frames = index, "stream stopped");
}

async fn report(state: &AppState, outbox: &Outbox, session_id: &SessionId, message: String) {
    let e = ErrorMessage {
        code: shared_protocol::ErrorCode::Unavailable,
        message,
        session_id: Some(session_id.clone()),
        frame_id: None,
    };
    state.metrics.error(e.code);
    outbox.error(e).await;
}

#[cfg(feature = "webcam")]
type Camera = crate::webcam::Feed;

/// Builds without the `webcam` feature have no camera; `start_stream` refuses the
/// source before a stream starts, so this is never opened.
#[cfg(not(feature = "webcam"))]
struct Camera;

#[cfg(not(feature = "webcam"))]
impl Camera {
    fn latest(&self) -> Option<models::GrayCrop> {
        None
    }
}

#[cfg(not(feature = "webcam"))]
async fn open_camera(_state: &AppState) -> Result<Camera, String> {
    Err("this build has no server camera (build with `--features webcam`)".into())
}

#[cfg(feature = "webcam")]
async fn open_camera(state: &AppState) -> Result<Camera, String> {
    let Some(camera) = state.sources.webcam.clone() else {
        return Err("this simulation-service has no server camera".into());
    };
    match tokio::task::spawn_blocking(move || camera.open()).await {
        Ok(r) => r,
        Err(e) => Err(format!("opening the camera failed: {e}")),
    }
}

/// Decrements the stream gauge however the stream ends.
struct StreamGauge<'a>(&'a AppState);

impl Drop for StreamGauge<'_> {
    fn drop(&mut self) {
        self.0.metrics.streams.dec();
    }
}
