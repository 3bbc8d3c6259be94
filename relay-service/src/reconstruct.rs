//! The relay's hot path for one frame: response -> waveform_encoder -> z ->
//! image_decoder -> grayscale crop -> upscaled JPEG data URL. No disk I/O; runs on a
//! worker thread (see [`crate::pool`]).

use std::sync::Arc;

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
    Encode(#[from] jpeg_encoder::EncodingError),
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
        let side = u16::try_from(shown.width()).unwrap_or(u16::MAX);
        jpeg_encoder::Encoder::new(&mut jpeg, self.jpeg_quality).encode(shown.as_raw(), side, side, jpeg_encoder::ColorType::Luma)?;
        Ok(DataUrl::encode(ImageKind::Jpeg, &jpeg))
    }
}

/// Bilinear resize of a square grayscale image to `size` x `size`, with pixel centres
/// aligned (what a triangle filter does when enlarging). Written out because the general
/// separable resampler, on this enlargement, costs more than the reconstruction itself;
/// the direct loop costs a fraction of it. Fixed point (weights in 1/256ths): the float
/// version's libm `round` per output pixel was ~20% of the relay's CPU per frame
/// (figures: docs/benchmarks/history.md, "Live loop").
pub fn upscale_bilinear(src: &GrayImage, size: u32) -> GrayImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let n = size as usize;
    if w == 0 || h == 0 || n == 0 {
        return GrayImage::new(size, size);
    }
    let px = src.as_raw();
    // Lower neighbour, upper neighbour and the upper one's weight (0..=256), per output index.
    let axis = |len: usize| -> Vec<(usize, usize, u32)> {
        let scale = len as f32 / n as f32;
        (0..n)
            .map(|i| {
                let x = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (len - 1) as f32);
                let x0 = x.floor() as usize;
                let x1 = (x0 + 1).min(len - 1);
                (x0, x1, ((x - x0 as f32) * 256.0 + 0.5) as u32)
            })
            .collect()
    };
    let xs = axis(w);
    let ys = axis(h);
    // Horizontal pass once per source row (8 fractional bits), then each output row is a
    // blend of two of those rows: a straight loop the compiler vectorises.
    let mut wide = vec![0u16; h * n];
    for (src_row, dst) in px.chunks_exact(w).zip(wide.chunks_exact_mut(n)) {
        for (d, &(x0, x1, fx)) in dst.iter_mut().zip(&xs) {
            *d = (u32::from(src_row[x0]) * (256 - fx) + u32::from(src_row[x1]) * fx) as u16;
        }
    }
    let mut out = vec![0u8; n * n];
    for (&(y0, y1, fy), out_row) in ys.iter().zip(out.chunks_exact_mut(n)) {
        let (top, bottom) = (&wide[y0 * n..][..n], &wide[y1 * n..][..n]);
        for ((o, t), b) in out_row.iter_mut().zip(top).zip(bottom) {
            // Both passes carry 8 fractional bits: 16 in all, rounded to nearest.
            *o = ((u32::from(*t) * (256 - fy) + u32::from(*b) * fy + (1 << 15)) >> 16) as u8;
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
