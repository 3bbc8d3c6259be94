//! The relay's hot path for one frame: response -> waveform_encoder -> z ->
//! image_decoder -> grayscale crop -> upscaled JPEG data URL. No disk I/O; runs on a
//! worker thread (see [`crate::pool`]).

use std::io::Cursor;
use std::sync::Arc;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use models::V1Model;
use shared_protocol::{DataUrl, ImageKind};

/// The model is shared by all worker threads without a lock; this fails to compile if
/// it ever stops being shareable.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<V1Model>();
};

/// Why a frame could not be reconstructed (a fault of the relay, reported as `internal`:
/// the payload was validated before).
#[derive(Debug, thiserror::Error)]
pub enum ReconstructError {
    #[error("reconstruction failed: {0}")]
    Model(#[from] models::ModelError),
    #[error("JPEG encoding failed: {0}")]
    Encode(#[from] image::ImageError),
}

/// A loaded model plus how to present its output.
#[derive(Debug, Clone)]
pub struct Reconstructor {
    model: Arc<V1Model>,
    display_size: u32,
    jpeg_quality: u8,
}

impl Reconstructor {
    pub fn new(model: Arc<V1Model>, display_size: u32, jpeg_quality: u8) -> Self {
        Self { model, display_size, jpeg_quality }
    }

    pub fn model(&self) -> &V1Model {
        &self.model
    }

    /// The JPEG data URL of the image reconstructed from `payload`.
    pub fn reconstruct(&self, payload: &[f32]) -> Result<String, ReconstructError> {
        let crop = self.model.reconstruct(payload)?;
        let gray = crop.to_image();
        let shown = if gray.width() == self.display_size {
            gray
        } else {
            image::imageops::resize(&gray, self.display_size, self.display_size, FilterType::Triangle)
        };
        let mut jpeg = Vec::with_capacity(16 * 1024);
        JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), self.jpeg_quality).encode_image(&shown)?;
        Ok(DataUrl::encode(ImageKind::Jpeg, &jpeg))
    }
}
