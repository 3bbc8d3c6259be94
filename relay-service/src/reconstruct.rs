//! The relay's hot path for one frame: response -> waveform_encoder -> z ->
//! image_decoder -> grayscale crop -> upscaled JPEG data URL. No disk I/O; runs on a
//! worker thread (see [`crate::pool`]).

use std::io::Cursor;
use std::sync::Arc;

use image::codecs::jpeg::JpegEncoder;
use image::GrayImage;
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
        let shown = if gray.width() == self.display_size { gray } else { upscale_bilinear(&gray, self.display_size) };
        let mut jpeg = Vec::with_capacity(16 * 1024);
        JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), self.jpeg_quality).encode_image(&shown)?;
        Ok(DataUrl::encode(ImageKind::Jpeg, &jpeg))
    }
}

/// Bilinear resize of a square grayscale image to `size` x `size`, with pixel centres
/// aligned (what a triangle filter does when enlarging). Written out because the general
/// separable resampler, on this enlargement, costs more than the reconstruction itself;
/// the direct loop costs a fraction of it (figures: docs/benchmarks/history.md).
pub fn upscale_bilinear(src: &GrayImage, size: u32) -> GrayImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let n = size as usize;
    if w == 0 || h == 0 || n == 0 {
        return GrayImage::new(size, size);
    }
    let px = src.as_raw();
    // Source coordinate, lower neighbour and weight of the upper one, per output index.
    let axis = |len: usize| -> Vec<(usize, usize, f32)> {
        let scale = len as f32 / n as f32;
        (0..n)
            .map(|i| {
                let x = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (len - 1) as f32);
                let x0 = x.floor() as usize;
                let x1 = (x0 + 1).min(len - 1);
                (x0, x1, x - x0 as f32)
            })
            .collect()
    };
    let xs = axis(w);
    let ys = axis(h);
    let mut out = Vec::with_capacity(n * n);
    for &(y0, y1, fy) in &ys {
        let (r0, r1) = (&px[y0 * w..y0 * w + w], &px[y1 * w..y1 * w + w]);
        for &(x0, x1, fx) in &xs {
            let top = f32::from(r0[x0]) * (1.0 - fx) + f32::from(r0[x1]) * fx;
            let bottom = f32::from(r1[x0]) * (1.0 - fx) + f32::from(r1[x1]) * fx;
            out.push((top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8);
        }
    }
    GrayImage::from_raw(size, size, out).unwrap_or_else(|| GrayImage::new(size, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_upscale_matches_the_triangle_filter() {
        let src = GrayImage::from_fn(48, 48, |x, y| image::Luma([((x * 5 + y * 3) % 256) as u8 ^ ((x * y) % 7) as u8]));
        let ours = upscale_bilinear(&src, 192);
        let reference = image::imageops::resize(&src, 192, 192, image::imageops::FilterType::Triangle);
        let worst = ours.as_raw().iter().zip(reference.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(worst <= 2, "largest difference {worst} grey levels");
        // Constant images stay constant; corners keep the corner pixels.
        let flat = upscale_bilinear(&GrayImage::from_pixel(48, 48, image::Luma([77])), 192);
        assert!(flat.as_raw().iter().all(|v| *v == 77));
        assert_eq!(ours.get_pixel(0, 0), src.get_pixel(0, 0));
        assert_eq!(ours.get_pixel(191, 191), src.get_pixel(47, 47));
    }
}
