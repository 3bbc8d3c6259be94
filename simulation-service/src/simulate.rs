//! The simulation-service's hot path for one frame: image data URL -> bytes (size
//! limit) -> header dimensions (side limit, checked before decoding) -> decoded grayscale
//! image -> centre crop -> image_encoder -> z -> waveform_decoder -> response. No disk
//! I/O; runs on a worker thread (see [`crate::pool`]).

use std::sync::Arc;

use candle_core::Tensor;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{DynamicImage, ImageEncoder};
use models::{GrayCrop, V1Model};
use shared_protocol::image_limits::ImageLimits;
use shared_protocol::{DataUrl, ImageKind};

use crate::error::FrameError;

/// The model is shared by all worker threads without a lock; this fails to compile if
/// it ever stops being shareable.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<V1Model>();
};

/// The model plus the image limits.
#[derive(Debug, Clone)]
pub struct Simulator {
    model: Arc<V1Model>,
    max_image_bytes: usize,
    image_limits: ImageLimits,
}

impl Simulator {
    pub fn new(model: Arc<V1Model>, max_image_bytes: usize, image_limits: ImageLimits) -> Self {
        Self { model, max_image_bytes, image_limits }
    }

    pub fn model(&self) -> &V1Model {
        &self.model
    }

    /// Decodes an image data URL into the crop the model sees (straight to grayscale: a
    /// JPEG's luma plane alone, see [`shared_protocol::image_limits::decode_gray_within`]).
    pub fn crop_from_data_url(&self, url: &str, field: &'static str) -> Result<GrayCrop, FrameError> {
        let data = DataUrl::parse(url, field, self.max_image_bytes)?;
        let gray = shared_protocol::image_limits::decode_gray_within(&data.bytes, field, self.image_limits)?;
        Ok(self.model.prepare_gray(&gray)?)
    }

    /// image_encoder -> z -> waveform_decoder: predicted mean counts, lag-major.
    pub fn predict(&self, crop: &GrayCrop) -> Result<Vec<f32>, FrameError> {
        Ok(self.model.predict(crop)?)
    }

    /// image_encoder alone: the latent z of a crop (an anchor of a dream).
    pub fn latent(&self, crop: &GrayCrop) -> Result<Tensor, FrameError> {
        Ok(self.model.encode_crop(crop)?)
    }

    /// The rates the waveform_decoder gives for the latent `t` of the way (eased, so the
    /// walk slows down at each anchor) from `from` to `to`.
    pub fn dream(&self, from: &Tensor, to: &Tensor, t: f32) -> Result<Vec<f32>, FrameError> {
        let t = t.clamp(0.0, 1.0);
        let eased = f64::from(t * t * (3.0 - 2.0 * t));
        let z = ((from * (1.0 - eased)).and_then(|a| (to * eased).and_then(|b| a + b)))
            .map_err(|e| FrameError::Internal(format!("mixing two latents failed: {e}")))?;
        Ok(self.model.decode_latent(&z)?)
    }
}

/// Decodes JPEG or PNG bytes, refusing images wider or taller than `max_side` from their
/// header alone, so that a small file claiming a huge image never allocates it. The
/// implementation is shared with the fuzz target `data_url_image`
/// ([`shared_protocol::image_limits`]).
pub fn decode_image(bytes: &[u8], field: &'static str, max_side: u32) -> Result<DynamicImage, FrameError> {
    shared_protocol::image_limits::decode_image(bytes, field, max_side).map_err(FrameError::from)
}

/// A crop as a PNG data URL (what `response.input_image` carries).
pub fn crop_png(crop: &GrayCrop) -> Result<String, FrameError> {
    let img = crop.to_image();
    let mut png = Vec::with_capacity(4096);
    // Fast deflate: 10 µs instead of 64 µs for a 48x48 crop, for a few hundred bytes more.
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, PngFilter::Adaptive)
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::L8)
        .map_err(|e| FrameError::Internal(format!("PNG encoding of the crop failed: {e}")))?;
    Ok(DataUrl::encode(ImageKind::Png, &png))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x + y) % 256) as u8]));
        let mut out = Vec::new();
        PngEncoder::new(&mut out).write_image(img.as_raw(), w, h, image::ExtendedColorType::L8).unwrap();
        out
    }

    #[test]
    fn decodes_small_images() {
        let img = decode_image(&png_bytes(20, 10), "image", 64).unwrap();
        assert_eq!((img.width(), img.height()), (20, 10));
    }

    #[test]
    fn refuses_large_dimensions_before_decoding() {
        let e = decode_image(&png_bytes(65, 10), "image", 64).unwrap_err();
        assert!(matches!(e, FrameError::ImageTooLarge { width: 65, height: 10, max: 64, .. }), "{e:?}");
        assert_eq!(e.code(), shared_protocol::ErrorCode::TooLarge);
    }

    #[test]
    fn a_header_claiming_a_huge_image_is_refused_without_allocating_it() {
        // A valid PNG for 100000 x 100000 pixels with a tiny (empty) image data chunk.
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(&mut png, b"IEND", &[]);
        let e = decode_image(&png, "image", 4096).unwrap_err();
        assert!(matches!(e, FrameError::ImageTooLarge { width: 100_000, height: 100_000, .. }), "{e:?}");
    }

    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    }

    #[test]
    fn non_images_and_truncated_images_are_bad_images() {
        let e = decode_image(b"hello, this is text", "image", 64).unwrap_err();
        assert!(matches!(e, FrameError::NotAnImage { .. }), "{e:?}");
        assert!(e.to_string().contains("68 65 6c 6c"), "{e}");
        let mut png = png_bytes(20, 20);
        png.truncate(png.len() / 2);
        let e = decode_image(&png, "image", 64).unwrap_err();
        assert_eq!(e.code(), shared_protocol::ErrorCode::BadImage, "{e:?}");
    }

    #[test]
    fn crops_encode_as_png_data_urls() {
        let crop = GrayCrop { size: 4, pixels: vec![0.5; 16] };
        let url = crop_png(&crop).unwrap();
        let data = DataUrl::parse(&url, "input_image", 1 << 20).unwrap();
        let back = decode_image(&data.bytes, "input_image", 64).unwrap();
        assert_eq!((back.width(), back.height()), (4, 4));
    }

    /// CRC-32 (IEEE) for building a PNG chunk by hand.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
