//! Reconstruction metrics on grayscale images: MSE, PSNR, SSIM and PixCorr, singly and
//! over a batch of target/reconstruction pairs.
//!
//! Images are grayscale with values meant to lie in [0, 1] (data range 1); the metrics
//! do not clamp, so a reconstruction that overshoots is scored as it is. The evaluation
//! protocol computes them on the receptive-field crop (primary, see
//! [`GrayImageF32::crop`]) and on the full frame (secondary).
//!
//! # SSIM and scikit-image
//! [`ssim`] follows Wang et al. (2004) exactly as scikit-image's `structural_similarity`
//! does with `gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
//! data_range=1`: Gaussian weights truncated at 3.5 sigma (radius 5, an 11x11 window),
//! K1 = 0.01, K2 = 0.03, population covariance, and the mean over the SSIM map after
//! cropping a 5-pixel border. scikit-image filters the whole image with reflected borders
//! and then discards that border; every pixel that survives the crop has its full window
//! inside the image, so the border mode never reaches the result. This module therefore
//! computes only the interior ("valid") part of the filtered maps, which gives the same
//! numbers with no border handling at all: on the reference vectors SSIM agrees with
//! scikit-image to better than 1e-8, the same as MSE and PixCorr do. That last difference
//! comes from storing pixels as f32 (8-bit value / 255) where the reference used float64.

use crate::identification::{two_way_identification_pixcorr, Identification};
use crate::stats::{mean, pearson};
use crate::MetricError;

/// Standard deviation of the SSIM Gaussian window, in pixels.
pub const SSIM_SIGMA: f64 = 1.5;
/// The Gaussian is truncated at this many standard deviations (scikit-image's default
/// for SSIM), which gives a radius of `int(3.5 * 1.5 + 0.5) = 5`.
pub const SSIM_TRUNCATE: f64 = 3.5;
/// Radius of the SSIM window; also the border width cropped from the SSIM map.
pub const SSIM_RADIUS: usize = 5;
/// Side of the SSIM window (11), and so the smallest image side SSIM accepts.
pub const SSIM_WINDOW: usize = 2 * SSIM_RADIUS + 1;
/// SSIM luminance constant factor: C1 = (K1 * data range)^2.
pub const SSIM_K1: f64 = 0.01;
/// SSIM contrast constant factor: C2 = (K2 * data range)^2.
pub const SSIM_K2: f64 = 0.03;
/// Data range assumed by SSIM and PSNR: images live in [0, 1].
pub const DATA_RANGE: f64 = 1.0;

/// A grayscale image with f32 pixels, row-major, meant to hold values in [0, 1].
///
/// Construction checks that the buffer matches the size, is non-empty and finite, so
/// every metric can rely on that.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImageF32 {
    width: u32,
    height: u32,
    pixels: Vec<f32>,
}

impl GrayImageF32 {
    /// Wraps a row-major pixel buffer of `width * height` finite values.
    pub fn new(width: u32, height: u32, pixels: Vec<f32>) -> Result<Self, MetricError> {
        let expected = width as usize * height as usize;
        if pixels.len() != expected {
            return Err(MetricError::PixelCount {
                width,
                height,
                expected,
                got: pixels.len(),
            });
        }
        if expected == 0 {
            return Err(MetricError::Empty {
                what: "image pixels",
            });
        }
        if let Some((index, &v)) = pixels.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(MetricError::NonFinite {
                what: "image pixels",
                index,
                value: f64::from(v),
            });
        }
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// Converts an 8-bit grayscale image to [0, 1] by dividing by 255, the convention of
    /// the metric reference values.
    pub fn from_luma8(img: &::image::GrayImage) -> Result<Self, MetricError> {
        let pixels = img.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect();
        Self::new(img.width(), img.height(), pixels)
    }

    /// Converts to 8 bits, clamping to [0, 1] and rounding to the nearest level.
    pub fn to_luma8(&self) -> ::image::GrayImage {
        let raw = self
            .pixels
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        // The buffer has exactly width * height bytes by construction.
        ::image::GrayImage::from_raw(self.width, self.height, raw)
            .unwrap_or_else(|| ::image::GrayImage::new(self.width, self.height))
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// `(width, height)`.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The row-major pixel buffer.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// Pixel at column `x`, row `y`, or `None` outside the image.
    pub fn get(&self, x: u32, y: u32) -> Option<f32> {
        if x < self.width && y < self.height {
            self.pixels
                .get(y as usize * self.width as usize + x as usize)
                .copied()
        } else {
            None
        }
    }

    /// Cuts out the `width` x `height` rectangle whose top-left corner is at (`x`, `y`),
    /// e.g. the receptive-field footprint on which reconstruction metrics are primarily
    /// reported.
    pub fn crop(&self, x: u32, y: u32, width: u32, height: u32) -> Result<Self, MetricError> {
        let fits = width > 0
            && height > 0
            && x.checked_add(width).is_some_and(|r| r <= self.width)
            && y.checked_add(height).is_some_and(|b| b <= self.height);
        if !fits {
            return Err(MetricError::CropOutOfBounds {
                x,
                y,
                crop_width: width,
                crop_height: height,
                width: self.width,
                height: self.height,
            });
        }
        let stride = self.width as usize;
        let mut pixels = Vec::with_capacity(width as usize * height as usize);
        for row in y as usize..(y + height) as usize {
            let start = row * stride + x as usize;
            pixels.extend_from_slice(&self.pixels[start..start + width as usize]);
        }
        Self::new(width, height, pixels)
    }

    fn to_f64(&self) -> Vec<f64> {
        self.pixels.iter().map(|&v| f64::from(v)).collect()
    }
}

fn check_same_size(
    target: &GrayImageF32,
    reconstruction: &GrayImageF32,
    what: impl FnOnce() -> String,
) -> Result<(), MetricError> {
    if target.size() == reconstruction.size() {
        Ok(())
    } else {
        Err(MetricError::SizeMismatch {
            what: what(),
            expected: target.size(),
            got: reconstruction.size(),
        })
    }
}

/// Mean squared error over pixels.
pub fn mse(target: &GrayImageF32, reconstruction: &GrayImageF32) -> Result<f64, MetricError> {
    check_same_size(target, reconstruction, || "MSE".to_owned())?;
    Ok(mse_unchecked(target, reconstruction))
}

fn mse_unchecked(target: &GrayImageF32, reconstruction: &GrayImageF32) -> f64 {
    let sum: f64 = target
        .pixels
        .iter()
        .zip(&reconstruction.pixels)
        .map(|(&a, &b)| {
            let d = f64::from(a) - f64::from(b);
            d * d
        })
        .sum();
    sum / target.pixels.len() as f64
}

/// PSNR in dB for a data range of 1: `10 log10(1 / MSE)`.
///
/// Returns `None` when the MSE is 0 (identical images): the value is +infinity, which
/// cannot be averaged or printed usefully, so callers leave such images out of a PSNR
/// mean and say how many they left out (see [`ImageBatchMetrics::psnr_defined`]).
pub fn psnr_from_mse(mse: f64) -> Option<f64> {
    (mse > 0.0).then(|| 10.0 * (DATA_RANGE * DATA_RANGE / mse).log10())
}

/// PSNR in dB of a reconstruction against its target; `None` for identical images (see
/// [`psnr_from_mse`]).
pub fn psnr(
    target: &GrayImageF32,
    reconstruction: &GrayImageF32,
) -> Result<Option<f64>, MetricError> {
    mse(target, reconstruction).map(psnr_from_mse)
}

/// Pearson correlation over pixels ("PixCorr"). A constant image gives 0.
pub fn pixcorr(target: &GrayImageF32, reconstruction: &GrayImageF32) -> Result<f64, MetricError> {
    check_same_size(target, reconstruction, || "PixCorr".to_owned())?;
    Ok(pixcorr_unchecked(target, reconstruction))
}

pub(crate) fn pixcorr_unchecked(target: &GrayImageF32, reconstruction: &GrayImageF32) -> f64 {
    pearson(&target.to_f64(), &reconstruction.to_f64())
}

/// The normalised 1-D Gaussian of the SSIM window, computed as scipy's
/// `gaussian_filter` does: `exp(-x^2 / (2 sigma^2))` for x in -5..=5, divided by its sum.
pub fn ssim_kernel() -> [f64; SSIM_WINDOW] {
    let mut k = [0.0; SSIM_WINDOW];
    let s2 = SSIM_SIGMA * SSIM_SIGMA;
    for (i, w) in k.iter_mut().enumerate() {
        let x = i as f64 - SSIM_RADIUS as f64;
        *w = (-0.5 / s2 * x * x).exp();
    }
    let sum: f64 = k.iter().sum();
    k.iter_mut().for_each(|w| *w /= sum);
    k
}

/// Gaussian-weighted local means of `img` at every pixel whose full window lies inside
/// the image: an `(w - 10) x (h - 10)` map, row-major. Separable: rows, then columns.
fn filter_valid(img: &[f64], w: usize, h: usize, kernel: &[f64; SSIM_WINDOW]) -> Vec<f64> {
    let ow = w - 2 * SSIM_RADIUS;
    let oh = h - 2 * SSIM_RADIUS;
    let mut rows = vec![0.0; h * ow];
    for r in 0..h {
        let line = &img[r * w..(r + 1) * w];
        let out = &mut rows[r * ow..(r + 1) * ow];
        for (c, o) in out.iter_mut().enumerate() {
            *o = kernel
                .iter()
                .zip(&line[c..c + SSIM_WINDOW])
                .map(|(k, v)| k * v)
                .sum();
        }
    }
    let mut out = vec![0.0; oh * ow];
    for r in 0..oh {
        for (k_i, k) in kernel.iter().enumerate() {
            let src = &rows[(r + k_i) * ow..(r + k_i + 1) * ow];
            let dst = &mut out[r * ow..(r + 1) * ow];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += k * s;
            }
        }
    }
    out
}

/// Mean structural similarity (Wang et al. 2004) with the protocol in the module docs.
///
/// Both images must be at least 11x11 (one full window). Identical images give 1,
/// an inverted image gives a negative value.
pub fn ssim(target: &GrayImageF32, reconstruction: &GrayImageF32) -> Result<f64, MetricError> {
    check_same_size(target, reconstruction, || "SSIM".to_owned())?;
    let (w, h) = (target.width as usize, target.height as usize);
    if w < SSIM_WINDOW || h < SSIM_WINDOW {
        return Err(MetricError::TooSmallForSsim {
            width: target.width,
            height: target.height,
            min: SSIM_WINDOW as u32,
        });
    }
    let x = target.to_f64();
    let y = reconstruction.to_f64();
    let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
    let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
    let xy: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();

    let kernel = ssim_kernel();
    let ux = filter_valid(&x, w, h, &kernel);
    let uy = filter_valid(&y, w, h, &kernel);
    let uxx = filter_valid(&xx, w, h, &kernel);
    let uyy = filter_valid(&yy, w, h, &kernel);
    let uxy = filter_valid(&xy, w, h, &kernel);

    let c1 = (SSIM_K1 * DATA_RANGE).powi(2);
    let c2 = (SSIM_K2 * DATA_RANGE).powi(2);
    let n = ux.len();
    let mut total = 0.0;
    for i in 0..n {
        let (mx, my) = (ux[i], uy[i]);
        // Population (weighted) variances and covariance, as in Wang et al. 2004.
        let vx = uxx[i] - mx * mx;
        let vy = uyy[i] - my * my;
        let vxy = uxy[i] - mx * my;
        let a1 = 2.0 * mx * my + c1;
        let a2 = 2.0 * vxy + c2;
        let b1 = mx * mx + my * my + c1;
        let b2 = vx + vy + c2;
        total += (a1 * a2) / (b1 * b2);
    }
    Ok(total / n as f64)
}

/// All per-image reconstruction metrics of one target/reconstruction pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageMetrics {
    /// Mean squared error over pixels.
    pub mse: f64,
    /// `10 log10(1 / MSE)` in dB; `None` for identical images.
    pub psnr_db: Option<f64>,
    /// Mean SSIM.
    pub ssim: f64,
    /// Pearson r over pixels.
    pub pixcorr: f64,
}

/// Computes MSE, PSNR, SSIM and PixCorr of one pair.
pub fn image_metrics(
    target: &GrayImageF32,
    reconstruction: &GrayImageF32,
) -> Result<ImageMetrics, MetricError> {
    let mse = mse(target, reconstruction)?;
    Ok(ImageMetrics {
        mse,
        psnr_db: psnr_from_mse(mse),
        ssim: ssim(target, reconstruction)?,
        pixcorr: pixcorr_unchecked(target, reconstruction),
    })
}

/// Reconstruction metrics over a test set: per-image values, their means, and 2-way
/// identification by pixel correlation.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBatchMetrics {
    /// One entry per pair, in input order.
    pub per_image: Vec<ImageMetrics>,
    /// Mean MSE over all pairs.
    pub mean_mse: f64,
    /// Mean PSNR over the pairs where it is defined (MSE > 0); `None` if none is.
    pub mean_psnr_db: Option<f64>,
    /// How many pairs entered `mean_psnr_db` (the others were identical images).
    pub psnr_defined: usize,
    /// Mean SSIM over all pairs.
    pub mean_ssim: f64,
    /// Mean PixCorr over all pairs.
    pub mean_pixcorr: f64,
    /// 2-way identification by pixel correlation; `None` for a single pair, where no
    /// other target exists to compare with.
    pub identification: Option<Identification>,
}

/// Evaluates a batch of reconstructions against their targets (pairs by position).
///
/// Every pair must have matching sizes; all images need to be at least 11x11 for SSIM.
pub fn evaluate_reconstructions(
    targets: &[GrayImageF32],
    reconstructions: &[GrayImageF32],
) -> Result<ImageBatchMetrics, MetricError> {
    if targets.len() != reconstructions.len() {
        return Err(MetricError::LengthMismatch {
            what: "reconstructions vs targets",
            expected: targets.len(),
            got: reconstructions.len(),
        });
    }
    if targets.is_empty() {
        return Err(MetricError::Empty { what: "targets" });
    }
    let mut per_image = Vec::with_capacity(targets.len());
    for (i, (t, r)) in targets.iter().zip(reconstructions).enumerate() {
        check_same_size(t, r, || format!("pair {i}"))?;
        per_image.push(image_metrics(t, r)?);
    }
    let psnrs: Vec<f64> = per_image.iter().filter_map(|m| m.psnr_db).collect();
    let collect = |f: fn(&ImageMetrics) -> f64| per_image.iter().map(f).collect::<Vec<_>>();
    let identification = if targets.len() >= 2 {
        Some(two_way_identification_pixcorr(targets, reconstructions)?)
    } else {
        None
    };
    Ok(ImageBatchMetrics {
        mean_mse: mean(&collect(|m| m.mse)),
        mean_psnr_db: (!psnrs.is_empty()).then(|| mean(&psnrs)),
        psnr_defined: psnrs.len(),
        mean_ssim: mean(&collect(|m| m.ssim)),
        mean_pixcorr: mean(&collect(|m| m.pixcorr)),
        identification,
        per_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, f: impl Fn(u32, u32) -> f32) -> GrayImageF32 {
        let pixels = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y));
        GrayImageF32::new(w, h, pixels.collect()).unwrap()
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = ssim_kernel();
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        for i in 0..SSIM_WINDOW {
            assert_eq!(k[i], k[SSIM_WINDOW - 1 - i]);
        }
        assert!(k[SSIM_RADIUS] > k[SSIM_RADIUS - 1]);
    }

    #[test]
    fn filter_of_constant_is_constant() {
        let data = vec![0.25; 13 * 12];
        let out = filter_valid(&data, 13, 12, &ssim_kernel());
        assert_eq!(out.len(), 3 * 2);
        assert!(out.iter().all(|v| (v - 0.25).abs() < 1e-15));
    }

    #[test]
    fn new_rejects_wrong_pixel_count_and_nan() {
        assert!(matches!(
            GrayImageF32::new(2, 2, vec![0.0; 3]),
            Err(MetricError::PixelCount {
                expected: 4,
                got: 3,
                ..
            })
        ));
        assert!(matches!(
            GrayImageF32::new(2, 1, vec![0.0, f32::NAN]),
            Err(MetricError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            GrayImageF32::new(0, 5, vec![]),
            Err(MetricError::Empty { .. })
        ));
    }

    #[test]
    fn crop_takes_the_right_pixels_and_checks_bounds() {
        let im = img(4, 3, |x, y| (y * 4 + x) as f32);
        let c = im.crop(1, 1, 2, 2).unwrap();
        assert_eq!(c.pixels(), &[5.0, 6.0, 9.0, 10.0]);
        assert!(matches!(
            im.crop(3, 0, 2, 1),
            Err(MetricError::CropOutOfBounds { .. })
        ));
        assert!(im.crop(0, 0, 0, 1).is_err());
        assert!(im.crop(u32::MAX, 0, 2, 1).is_err());
    }

    #[test]
    fn size_mismatch_and_small_images_are_errors() {
        let a = img(12, 12, |_, _| 0.5);
        let b = img(12, 11, |_, _| 0.5);
        assert!(matches!(mse(&a, &b), Err(MetricError::SizeMismatch { .. })));
        let small = img(10, 20, |x, _| x as f32 / 10.0);
        assert!(matches!(
            ssim(&small, &small),
            Err(MetricError::TooSmallForSsim { min: 11, .. })
        ));
        let exact = img(11, 11, |x, y| ((x + y) % 3) as f32 / 2.0);
        assert!((ssim(&exact, &exact).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn psnr_of_identical_is_none_and_known_value_otherwise() {
        assert_eq!(psnr_from_mse(0.0), None);
        assert!((psnr_from_mse(0.01).unwrap() - 20.0).abs() < 1e-12);
    }

    #[test]
    fn luma8_round_trip() {
        let g = ::image::GrayImage::from_raw(3, 1, vec![0, 128, 255]).unwrap();
        let f = GrayImageF32::from_luma8(&g).unwrap();
        assert_eq!(f.get(2, 0), Some(1.0));
        assert_eq!(f.get(3, 0), None);
        assert_eq!(f.to_luma8(), g);
    }

    #[test]
    fn batch_rejects_count_mismatch_and_reports_means() {
        let a = img(16, 16, |x, y| ((x * 7 + y * 3) % 16) as f32 / 15.0);
        let b = img(16, 16, |x, y| ((x * 5 + y * 11) % 16) as f32 / 15.0);
        assert!(matches!(
            evaluate_reconstructions(std::slice::from_ref(&a), &[]),
            Err(MetricError::LengthMismatch { .. })
        ));
        let batch = evaluate_reconstructions(&[a.clone(), b.clone()], &[a.clone(), a]).unwrap();
        assert_eq!(batch.per_image.len(), 2);
        assert_eq!(batch.psnr_defined, 1);
        assert_eq!(batch.mean_psnr_db, batch.per_image[1].psnr_db);
        let expected_mse = batch.per_image[1].mse / 2.0;
        assert!((batch.mean_mse - expected_mse).abs() < 1e-15);
        assert!(batch.identification.is_some());
    }
}
