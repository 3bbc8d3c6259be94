//! Where frames come from besides client images: the dataset's held-out test segments
//! (random frames, and recorded responses replayed with their true frames), a folder of
//! images, and the server's camera. Everything is read into memory before it is served,
//! so the hot path never touches the disk; a source that is not there answers
//! `unavailable`.
//!
//! The test segments may still be in the making when the service starts (`make up` and the
//! container prepare the dataset beside the running service): the service then starts
//! without them, says how far the preparation is, and [`watch_recorded`] swaps them in
//! when the cache appears, without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use models::recorded::{Preparation, RecordedFrame, RecordedSet};
use models::{GrayCrop, V1Model};
use rand::Rng;
use shared_protocol::{RecordedPosition, RecordedStatus, Source, StreamSource};
use tracing::{info, warn};

use crate::error::{FrameError, StartError};
use crate::simulate::decode_image;
use crate::AppState;

/// How often a service waiting for its dataset looks at the data root again.
pub const RECORDED_POLL: Duration = Duration::from_secs(1);

/// One image of the image folder, already cropped for the model.
#[derive(Debug, Clone)]
pub struct FolderImage {
    pub name: String,
    pub crop: GrayCrop,
}

/// The frame sources of this service.
#[derive(Debug, Default)]
pub struct Sources {
    /// Held-out test segments of the dataset cache that fits the model, and what the
    /// service says about them. Behind a lock because they can arrive after start-up.
    recorded: RwLock<Recorded>,
    /// The data root (`--data`), watched while the segments are not loaded.
    data_root: Option<PathBuf>,
    /// The model's crop side, for random frames made without a dataset or an image folder.
    crop_size: usize,
    /// The image folder.
    pub folder: Option<Arc<Vec<FolderImage>>>,
    /// The server's camera, opened on first use.
    #[cfg(feature = "webcam")]
    pub webcam: Option<Arc<crate::webcam::Webcam>>,
}

#[derive(Debug)]
struct Recorded {
    set: Option<Arc<RecordedSet>>,
    status: RecordedStatus,
}

impl Default for Recorded {
    fn default() -> Self {
        Self { set: None, status: RecordedStatus::Unavailable { reason: NO_DATA_ROOT.into() } }
    }
}

const NO_DATA_ROOT: &str =
    "this simulation-service has no dataset: start it with --data <data root> (V1_DATA) holding a dataset cache that fits the model";

/// A frame picked from a source, with where it came from.
#[derive(Debug, Clone)]
pub struct Picked {
    pub crop: GrayCrop,
    pub source: Source,
}

/// What one look at the data root found.
fn look(dir: &Path, model: &models::ModelInfo) -> Result<Recorded, models::ModelError> {
    match RecordedSet::load(dir, model) {
        Ok(set) => {
            let status = RecordedStatus::Ready { segments: set.segments.len() };
            Ok(Recorded { set: Some(Arc::new(set)), status })
        }
        Err(e) => match Preparation::read(dir).filter(Preparation::is_fresh) {
            Some(p) => Ok(Recorded { set: None, status: RecordedStatus::Preparing { percent: p.percent, phase: Some(p.phase) } }),
            None => Err(e),
        },
    }
}

impl Sources {
    /// Loads the dataset's test segments from `data_root` and the images of
    /// `image_dir`, each when given. A data root without a fitting cache is an error,
    /// unless a command is preparing it right now: then the service starts without the
    /// segments and [`watch_recorded`] picks them up.
    pub fn load(
        model: &V1Model,
        data_root: Option<&Path>,
        image_dir: Option<&Path>,
        max_folder_images: usize,
        max_image_side: u32,
    ) -> Result<Self, StartError> {
        let recorded = match data_root {
            Some(dir) => {
                let found = look(dir, model.info()).map_err(|source| StartError::Data { dir: dir.to_owned(), source })?;
                match (&found.set, &found.status) {
                    (Some(set), _) => info!(segments = set.segments.len(), frames = set.n_frames(), "loaded recorded test segments"),
                    (None, status) => info!(dir = %dir.display(), ?status, "the dataset is being prepared; recorded mode starts when it is ready"),
                }
                found
            }
            None => Recorded::default(),
        };
        let folder = match image_dir {
            Some(dir) => Some(Arc::new(load_folder(model, dir, max_folder_images, max_image_side)?)),
            None => None,
        };
        Ok(Self {
            recorded: RwLock::new(recorded),
            data_root: data_root.map(Path::to_owned),
            crop_size: model.info().image_size,
            folder,
            #[cfg(feature = "webcam")]
            webcam: None,
        })
    }

    /// Whether Recorded mode can play, is being prepared, or cannot be had.
    pub fn recorded_status(&self) -> RecordedStatus {
        self.read_recorded().status.clone()
    }

    /// The loaded test segments, if any.
    pub fn recorded_set(&self) -> Option<Arc<RecordedSet>> {
        self.read_recorded().set.clone()
    }

    fn read_recorded(&self) -> std::sync::RwLockReadGuard<'_, Recorded> {
        // A panic while holding the lock cannot leave `Recorded` half-updated (it is
        // replaced whole), so a poisoned lock is still good to read.
        self.recorded.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Looks at the data root once more while the segments are not loaded (blocking:
    /// reads the cache when it has appeared). True once they are loaded.
    pub fn refresh_recorded(&self, model: &models::ModelInfo) -> bool {
        let Some(dir) = self.data_root.as_deref() else { return false };
        if self.read_recorded().set.is_some() {
            return true;
        }
        let next = look(dir, model).unwrap_or_else(|e| Recorded {
            set: None,
            status: RecordedStatus::Unavailable { reason: format!("cannot load recorded responses from the data root {}: {e}", dir.display()) },
        });
        let before = self.recorded_status();
        if std::mem::discriminant(&before) != std::mem::discriminant(&next.status) {
            match (&next.set, &next.status) {
                (Some(set), _) => info!(segments = set.segments.len(), frames = set.n_frames(), "picked up the recorded test segments; recorded mode is available"),
                (None, RecordedStatus::Unavailable { reason }) => warn!("recorded mode is unavailable: {reason}"),
                (None, status) => info!(?status, "the dataset is being prepared"),
            }
        }
        let ready = next.set.is_some();
        *self.recorded.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        ready
    }

    fn recorded_frames(&self) -> Option<Arc<RecordedSet>> {
        self.recorded_set().filter(|s| s.n_frames() > 0)
    }

    fn folder_images(&self) -> Option<&[FolderImage]> {
        self.folder.as_deref().map(Vec::as_slice).filter(|f| !f.is_empty())
    }

    /// Stream sources this service can serve now.
    pub fn stream_sources(&self) -> Vec<StreamSource> {
        let mut out = Vec::new();
        if self.recorded_frames().is_some() {
            out.push(StreamSource::Recorded);
            out.push(StreamSource::Dataset);
        }
        if self.folder_images().is_some() {
            out.push(StreamSource::Folder);
        }
        #[cfg(feature = "webcam")]
        if self.webcam.is_some() {
            out.push(StreamSource::Webcam);
        }
        out.push(StreamSource::Dream);
        out
    }

    /// Why a stream source cannot be served, if it cannot.
    pub fn check_stream(&self, source: StreamSource) -> Result<(), FrameError> {
        let missing = match source {
            StreamSource::Recorded | StreamSource::Dataset if self.recorded_frames().is_none() => {
                return Err(FrameError::Unavailable(match self.recorded_status() {
                    RecordedStatus::Preparing { percent, phase } => format!(
                        "source {:?} is not available yet: the dataset is being prepared ({}{percent}%); it turns on by itself when ready",
                        source.as_source().as_str(),
                        phase.map(|p| format!("{p}, ")).unwrap_or_default()
                    ),
                    RecordedStatus::Unavailable { reason } => format!("source {:?} is not available: {reason}", source.as_source().as_str()),
                    RecordedStatus::Ready { .. } => format!("source {:?} is not available: the dataset has no test frames", source.as_source().as_str()),
                }));
            }
            StreamSource::Folder if self.folder_images().is_none() => {
                "has no image folder: start it with --images <folder> (V1_IMAGES)"
            }
            StreamSource::Webcam if !self.has_webcam() => {
                "has no server camera: build it with `--features webcam` and start it on a machine with a camera"
            }
            _ => return Ok(()),
        };
        Err(FrameError::Unavailable(format!(
            "source {:?} is not available: this simulation-service {missing}",
            source.as_source().as_str()
        )))
    }

    fn has_webcam(&self) -> bool {
        #[cfg(feature = "webcam")]
        {
            self.webcam.is_some()
        }
        #[cfg(not(feature = "webcam"))]
        {
            false
        }
    }

    /// A random frame for a `stimulus` without an image: `random` takes the dataset when
    /// there is one, else the image folder, else a procedural pattern (so that it works
    /// while the dataset is still being prepared).
    pub fn pick(&self, wanted: Source) -> Result<Picked, FrameError> {
        let mut rng = rand::rng();
        let from_dataset = |set: &RecordedSet, rng: &mut rand::rngs::ThreadRng| {
            let n = set.n_frames();
            let (_, frame) = nth_frame(set, rng.random_range(0..n))?;
            Some(Picked { crop: frame.crop.clone(), source: Source::Dataset })
        };
        let from_folder = |images: &[FolderImage], rng: &mut rand::rngs::ThreadRng| Picked {
            crop: images[rng.random_range(0..images.len())].crop.clone(),
            source: Source::Folder,
        };
        let picked = match wanted {
            Source::Dataset => self.recorded_frames().and_then(|s| from_dataset(&s, &mut rng)),
            Source::Folder => self.folder_images().map(|f| from_folder(f, &mut rng)),
            _ => match (self.recorded_frames(), self.folder_images()) {
                (Some(set), _) => from_dataset(&set, &mut rng),
                (None, Some(images)) => Some(from_folder(images, &mut rng)),
                (None, None) if self.crop_size > 0 => Some(Picked { crop: procedural_crop(self.crop_size, &mut rng), source: Source::Random }),
                (None, None) => None,
            },
        };
        picked.ok_or_else(|| {
            FrameError::Unavailable(format!(
                "source {:?} is not available: this simulation-service has {}; start it with --data <data root> or --images <folder>",
                wanted.as_str(),
                match wanted {
                    Source::Dataset => "no dataset",
                    Source::Folder => "no image folder",
                    _ => "neither a dataset nor an image folder",
                }
            ))
        })
    }

    /// An anchor of a dream: a random natural frame (dataset, else image folder), else a
    /// procedural pattern, `size` pixels on a side (a frame of another side, as the
    /// wide-field model's anchors are, is resized).
    pub fn dream_anchor(&self, size: usize) -> GrayCrop {
        match self.pick(Source::Random) {
            Ok(picked) if picked.crop.size == size => picked.crop,
            Ok(picked) => {
                let side = u32::try_from(picked.crop.size).unwrap_or(u32::MAX);
                GrayCrop::from_u8(size, &models::pipeline::resize_square_triangle(&picked.crop.to_image(), 0, 0, side, size))
            }
            Err(_) => procedural_crop(size, &mut rand::rng()),
        }
    }

    /// Each channel's receptive-field centre (crop pixels) from the dataset cache, if any.
    pub fn receptive_fields(&self) -> Option<Vec<models::projective::RfInCrop>> {
        self.recorded_set().map(|s| s.receptive_fields.clone()).filter(|r| !r.is_empty())
    }

    /// Whether what the service knows about the dataset can still change (it is watching
    /// the data root for the test segments).
    pub fn recorded_may_change(&self) -> bool {
        self.data_root.is_some() && self.read_recorded().set.is_none()
    }

    /// The `i`-th frame of the recorded segments in order (wrapping around), for
    /// recorded mode.
    pub fn recorded_at(&self, i: usize) -> Option<(RecordedPosition, RecordedFrame)> {
        let set = self.recorded_frames()?;
        nth_frame(&set, i % set.n_frames()).map(|(position, frame)| (position, frame.clone()))
    }

    /// The `i`-th image of the folder (wrapping around).
    pub fn folder_at(&self, i: usize) -> Option<&FolderImage> {
        let images = self.folder_images()?;
        images.get(i % images.len())
    }
}

/// Until the recorded test segments are loaded, looks at the data root every
/// [`RECORDED_POLL`] and swaps them in when they appear. Ends at shutdown, or at once when
/// there is nothing to wait for.
pub async fn watch_recorded(state: AppState) {
    while state.sources.recorded_may_change() {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(RECORDED_POLL) => {}
        }
        let worker = state.clone();
        match tokio::task::spawn_blocking(move || worker.sources.refresh_recorded(worker.simulator.model().info())).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                warn!("looking for the recorded test segments failed: {e}");
                return;
            }
        }
    }
}

/// A few soft bright and dark blobs and an oriented grating patch on mid-grey: something
/// with the local contrast of a natural frame, for a service without images.
fn procedural_crop(size: usize, rng: &mut impl Rng) -> GrayCrop {
    let s = size as f32;
    let mut pixels = vec![0.5f32; size * size];
    for _ in 0..5 {
        let (cx, cy) = (rng.random_range(0.0..s), rng.random_range(0.0..s));
        let width = rng.random_range(0.05..0.25) * s;
        let amplitude = rng.random_range(-0.4f32..0.4);
        let grating = rng.random_bool(0.4);
        let (angle, period) = (rng.random_range(0.0..std::f32::consts::PI), rng.random_range(3.0..10.0f32));
        for (i, p) in pixels.iter_mut().enumerate() {
            let (x, y) = ((i % size) as f32 - cx, (i / size) as f32 - cy);
            let envelope = (-(x * x + y * y) / (2.0 * width * width)).exp();
            let carrier = if grating { (std::f32::consts::TAU * (x * angle.cos() + y * angle.sin()) / period).cos() } else { 1.0 };
            *p += amplitude * envelope * carrier;
        }
    }
    pixels.iter_mut().for_each(|p| *p = p.clamp(0.0, 1.0));
    GrayCrop { size, pixels }
}

fn nth_frame(set: &RecordedSet, mut i: usize) -> Option<(RecordedPosition, &RecordedFrame)> {
    for seg in &set.segments {
        if i < seg.frames.len() {
            let f = &seg.frames[i];
            return Some((RecordedPosition { movie: seg.movie, segment: seg.segment, frame: f.frame }, f));
        }
        i -= seg.frames.len();
    }
    None
}

/// Reads every JPEG/PNG of `dir` (sorted by name, at most `max` of them) into crops.
/// Unreadable files are skipped with a warning; a folder without a usable image is an
/// error.
fn load_folder(model: &V1Model, dir: &Path, max: usize, max_side: u32) -> Result<Vec<FolderImage>, StartError> {
    let err = |message: String| StartError::Images { dir: dir.to_owned(), message };
    let entries = std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    paths.sort();
    if paths.len() > max {
        warn!(dir = %dir.display(), found = paths.len(), used = max, "image folder has more images than --max-folder-images; using the first");
        paths.truncate(max);
    }
    let mut images = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        let loaded = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| decode_image(&bytes, "image", max_side).map_err(|e| e.to_string()))
            .and_then(|img| model.prepare_image(&img).map_err(|e| e.to_string()));
        match loaded {
            Ok(crop) => images.push(FolderImage { name, crop }),
            Err(e) => warn!(file = %path.display(), "skipping image: {e}"),
        }
    }
    if images.is_empty() {
        return Err(err("it holds no readable .png, .jpg or .jpeg image".into()));
    }
    info!(dir = %dir.display(), images = images.len(), "loaded the image folder");
    Ok(images)
}
