//! Where frames come from besides client images: the dataset's held-out test segments
//! (random frames, and recorded responses replayed with their true frames), a folder of
//! images, and the server's camera. Everything is read at start-up, so the hot path
//! never touches the disk; a source that was not configured answers `unavailable`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use models::recorded::{RecordedFrame, RecordedSet};
use models::{GrayCrop, V1Model};
use rand::Rng;
use shared_protocol::{RecordedPosition, Source, StreamSource};
use tracing::{info, warn};

use crate::error::{FrameError, StartError};
use crate::simulate::decode_image;

/// One image of the image folder, already cropped for the model.
#[derive(Debug, Clone)]
pub struct FolderImage {
    pub name: String,
    pub crop: GrayCrop,
}

/// The frame sources of this service.
#[derive(Debug, Default)]
pub struct Sources {
    /// Held-out test segments of the dataset cache that fits the model.
    pub recorded: Option<Arc<RecordedSet>>,
    /// The image folder.
    pub folder: Option<Arc<Vec<FolderImage>>>,
    /// The server's camera, opened on first use.
    #[cfg(feature = "webcam")]
    pub webcam: Option<Arc<crate::webcam::Webcam>>,
}

/// A frame picked from a source, with where it came from.
#[derive(Debug, Clone)]
pub struct Picked {
    pub crop: GrayCrop,
    pub source: Source,
}

impl Sources {
    /// Loads the dataset's test segments from `data_root` and the images of
    /// `image_dir`, each when given.
    pub fn load(
        model: &V1Model,
        data_root: Option<&Path>,
        image_dir: Option<&Path>,
        max_folder_images: usize,
        max_image_side: u32,
    ) -> Result<Self, StartError> {
        let recorded = match data_root {
            Some(dir) => {
                let set = RecordedSet::load(dir, model.info())
                    .map_err(|source| StartError::Data { dir: dir.to_owned(), source })?;
                info!(segments = set.segments.len(), frames = set.n_frames(), "loaded recorded test segments");
                Some(Arc::new(set))
            }
            None => None,
        };
        let folder = match image_dir {
            Some(dir) => Some(Arc::new(load_folder(model, dir, max_folder_images, max_image_side)?)),
            None => None,
        };
        Ok(Self {
            recorded,
            folder,
            #[cfg(feature = "webcam")]
            webcam: None,
        })
    }

    fn recorded_frames(&self) -> Option<&RecordedSet> {
        self.recorded.as_deref().filter(|s| s.n_frames() > 0)
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
                "has no dataset: start it with --data <data root> (V1_DATA) holding a dataset cache that fits the model"
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
    /// there is one, else the image folder.
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
            Source::Dataset => self.recorded_frames().and_then(|s| from_dataset(s, &mut rng)),
            Source::Folder => self.folder_images().map(|f| from_folder(f, &mut rng)),
            _ => match (self.recorded_frames(), self.folder_images()) {
                (Some(set), _) => from_dataset(set, &mut rng),
                (None, Some(images)) => Some(from_folder(images, &mut rng)),
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
    /// procedural pattern of the model's crop size.
    pub fn dream_anchor(&self, size: usize) -> GrayCrop {
        match self.pick(Source::Random) {
            Ok(picked) => picked.crop,
            Err(_) => procedural_crop(size, &mut rand::rng()),
        }
    }

    /// Each channel's receptive-field centre (crop pixels) from the dataset cache, if any.
    pub fn receptive_fields(&self) -> Option<&[models::projective::RfInCrop]> {
        self.recorded.as_deref().map(|s| s.receptive_fields.as_slice()).filter(|r| !r.is_empty())
    }

    /// The `i`-th frame of the recorded segments in order (wrapping around), for
    /// recorded mode.
    pub fn recorded_at(&self, i: usize) -> Option<(RecordedPosition, &RecordedFrame)> {
        let set = self.recorded_frames()?;
        nth_frame(set, i % set.n_frames())
    }

    /// The `i`-th image of the folder (wrapping around).
    pub fn folder_at(&self, i: usize) -> Option<&FolderImage> {
        let images = self.folder_images()?;
        images.get(i % images.len())
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
