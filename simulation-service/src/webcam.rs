//! The server's camera (cargo feature `webcam`, through nokhwa).
//!
//! Nothing is opened at start-up, so the service runs on machines without a camera. The
//! first `webcam` stream opens it: a capture thread owns the camera (camera handles are
//! not shareable across threads on every platform), turns each frame into the model's
//! crop and keeps only the latest. Streams read that latest crop at their own rate. When
//! the last stream using the camera ends, the thread stops and releases it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use models::{GrayCrop, V1Model};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraIndex, RequestedFormat, RequestedFormatType};
use nokhwa::Camera;
use tracing::{info, warn};

/// How long opening the camera may take before the stream is refused.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// The camera's shared state between the capture thread and its feeds.
#[derive(Debug, Default)]
struct Shared {
    latest: Mutex<Option<GrayCrop>>,
    users: AtomicUsize,
    stop: AtomicBool,
}

/// The server camera, opened on demand.
#[derive(Debug)]
pub struct Webcam {
    index: u32,
    model: Arc<V1Model>,
    running: Mutex<Option<Arc<Shared>>>,
}

/// A stream's use of the camera; the camera stops when the last feed is dropped.
#[derive(Debug)]
pub struct Feed {
    shared: Arc<Shared>,
}

impl Feed {
    /// The latest camera frame as the model's crop, once one has arrived.
    pub fn latest(&self) -> Option<GrayCrop> {
        match self.shared.latest.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if self.shared.users.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.stop.store(true, Ordering::Release);
        }
    }
}

impl Webcam {
    pub fn new(index: u32, model: Arc<V1Model>) -> Self {
        Self { index, model, running: Mutex::new(None) }
    }

    /// A feed from the camera, starting the capture thread when needed. Blocks up to a
    /// few seconds while the camera opens; call it off the async runtime.
    pub fn open(&self) -> Result<Feed, String> {
        let mut running = match self.running.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(shared) = running.as_ref() {
            if !shared.stop.load(Ordering::Acquire) {
                shared.users.fetch_add(1, Ordering::AcqRel);
                return Ok(Feed { shared: shared.clone() });
            }
        }
        let shared = Arc::new(Shared::default());
        shared.users.store(1, Ordering::Release);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread_shared = shared.clone();
        let model = self.model.clone();
        let index = self.index;
        std::thread::Builder::new()
            .name("webcam".into())
            .spawn(move || capture(index, model, thread_shared, ready_tx))
            .map_err(|e| format!("cannot start the camera thread: {e}"))?;
        match ready_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(Ok(())) => {
                *running = Some(shared.clone());
                Ok(Feed { shared })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                shared.stop.store(true, Ordering::Release);
                Err(format!("camera {index} did not open within {OPEN_TIMEOUT:?}"))
            }
        }
    }
}

/// The capture thread: open, report, then keep the latest crop until told to stop.
fn capture(index: u32, model: Arc<V1Model>, shared: Arc<Shared>, ready: mpsc::Sender<Result<(), String>>) {
    let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
    let mut camera = match Camera::new(CameraIndex::Index(index), format) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot open camera {index}: {e}. Is a camera connected, and may this user use it?")));
            return;
        }
    };
    if let Err(e) = camera.open_stream() {
        let _ = ready.send(Err(format!("cannot start camera {index}: {e}")));
        return;
    }
    info!(index, "server camera opened");
    let _ = ready.send(Ok(()));
    let mut failures = 0u32;
    // Log the first failure of a run of failures, then every hundredth.
    let mut next_log = 1u32;
    while !shared.stop.load(Ordering::Acquire) {
        let crop = camera
            .frame()
            .and_then(|buffer| buffer.decode_image::<RgbFormat>())
            .map_err(|e| e.to_string())
            .and_then(|rgb| model.prepare_image(&image::DynamicImage::ImageRgb8(rgb)).map_err(|e| e.to_string()));
        match crop {
            Ok(crop) => {
                failures = 0;
                next_log = 1;
                match shared.latest.lock() {
                    Ok(mut g) => *g = Some(crop),
                    Err(p) => *p.into_inner() = Some(crop),
                }
            }
            Err(e) => {
                failures += 1;
                if failures >= next_log {
                    warn!(index, failures, "camera frame failed: {e}");
                    next_log = failures + 100;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        }
    }
    let _ = camera.stop_stream();
    info!(index, "server camera released");
}
