//! Decoding a received image under limits (feature `image`): the header's dimensions,
//! pixel count and decoded size are checked before any pixel is decoded, and the
//! decoder's allocations are capped, so a small file that claims a huge image (a
//! decompression bomb, a 16-bit or palette image that expands several times) is refused
//! without allocating it or spending the CPU its decoding would take.
//!
//! This is the one implementation the simulation-service uses for `stimulus` images and
//! the fuzz target `data_url_image` exercises; it lives here so both see the same code.

use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageFormat, ImageReader};

use crate::data_url::DataUrl;
use crate::error::ProtocolError;

/// Why image bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("{field} is {width}x{height} pixels; at most {max}x{max} are accepted (the service's --max-image-side)")]
    TooLarge { field: &'static str, width: u32, height: u32, max: u32 },
    #[error("{field} is {width}x{height} pixels with {bytes_per_pixel} bytes a pixel once decoded; at most {max_pixels} pixels of 4 bytes are accepted (the service's --max-image-pixels). Send a smaller 8-bit JPEG or PNG")]
    TooManyPixels { field: &'static str, width: u32, height: u32, bytes_per_pixel: u8, max_pixels: u64 },
    #[error("{field} is not a JPEG or PNG image (its first bytes are {head}); send a JPEG or PNG data URL")]
    NotAnImage { field: &'static str, head: String },
    #[error("{field} could not be decoded as an image: {message}")]
    Decode { field: &'static str, message: String },
}

impl ImageError {
    /// The wire code: `too_large` for the side limit, `bad_image` otherwise.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            ImageError::TooLarge { .. } | ImageError::TooManyPixels { .. } => crate::ErrorCode::TooLarge,
            ImageError::NotAnImage { .. } | ImageError::Decode { .. } => crate::ErrorCode::BadImage,
        }
    }
}

/// Widest pixel JPEG and PNG decode to (16-bit RGBA), for the allocation cap.
const MAX_BYTES_PER_PIXEL: u64 = 8;
/// Bytes a pixel of an 8-bit RGBA image takes: the pixel budget is counted in these, so
/// an image that decodes wider (16-bit) is allowed proportionally fewer pixels.
const BUDGET_BYTES_PER_PIXEL: u64 = 4;

/// What a received image may cost to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest width or height.
    pub max_side: u32,
    /// Largest width x height, counted in 8-bit RGBA pixels.
    pub max_pixels: u64,
}

impl ImageLimits {
    /// Only the side limit (pixels up to `max_side` squared).
    pub fn side(max_side: u32) -> Self {
        Self { max_side, max_pixels: u64::from(max_side) * u64::from(max_side) }
    }
}

/// Decodes JPEG or PNG bytes no wider or taller than `max_side` pixels.
///
/// The decoders are third-party code run on hostile bytes; one of them has been seen to
/// panic on a malformed progressive JPEG (an assertion in zune-jpeg's upsampler, found by
/// the `data_url_image` fuzz target). A panic while reading the image is contained here
/// and reported as the bad image it is, instead of failing the worker with `internal`.
pub fn decode_image(bytes: &[u8], field: &'static str, max_side: u32) -> Result<DynamicImage, ImageError> {
    decode_image_within(bytes, field, ImageLimits::side(max_side))
}

/// Decodes JPEG or PNG bytes within `limits`: side, then pixels weighted by the bytes a
/// decoded pixel takes, both read from the header before decoding.
pub fn decode_image_within(bytes: &[u8], field: &'static str, limits: ImageLimits) -> Result<DynamicImage, ImageError> {
    std::panic::catch_unwind(|| decode_unguarded(bytes, field, limits)).unwrap_or_else(|_| {
        Err(ImageError::Decode { field, message: "the image data is malformed (the decoder gave up on it)".into() })
    })
}

fn decode_unguarded(bytes: &[u8], field: &'static str, image_limits: ImageLimits) -> Result<DynamicImage, ImageError> {
    let checked = check_header(bytes, field, image_limits)?;
    decode_checked(checked, field)
}

/// A reader of image bytes in memory.
type Reader<'a> = ImageReader<Cursor<&'a [u8]>>;

/// A reader whose header passed the limits, with what the header said.
struct Checked<'a> {
    reader: Reader<'a>,
    format: ImageFormat,
    width: u32,
    height: u32,
    max_side: u32,
}

/// Reads the header and checks the side and pixel limits before any pixel is decoded.
fn check_header<'a>(bytes: &'a [u8], field: &'static str, image_limits: ImageLimits) -> Result<Checked<'a>, ImageError> {
    use image::ImageDecoder;
    let max_side = image_limits.max_side;
    let reader = || -> Result<(Reader<'a>, ImageFormat), ImageError> {
        let r = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ImageError::Decode { field, message: e.to_string() })?;
        match r.format() {
            Some(f @ (ImageFormat::Jpeg | ImageFormat::Png)) => Ok((r, f)),
            _ => Err(ImageError::NotAnImage { field, head: head_hex(bytes) }),
        }
    };
    let header = reader()?.0.into_decoder().map_err(|e| ImageError::Decode { field, message: e.to_string() })?;
    let (width, height) = header.dimensions();
    let bytes_per_pixel = header.color_type().bytes_per_pixel();
    drop(header);
    if width > max_side || height > max_side {
        return Err(ImageError::TooLarge { field, width, height, max: max_side });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Decode { field, message: format!("the image is {width}x{height}") });
    }
    let pixels = u64::from(width) * u64::from(height);
    let weight = u64::from(bytes_per_pixel).max(BUDGET_BYTES_PER_PIXEL);
    if pixels * weight > image_limits.max_pixels * BUDGET_BYTES_PER_PIXEL {
        let max_pixels = image_limits.max_pixels;
        return Err(ImageError::TooManyPixels { field, width, height, bytes_per_pixel, max_pixels });
    }
    let (reader, format) = reader()?;
    Ok(Checked { reader, format, width, height, max_side })
}

/// Decodes an image whose header passed [`check_header`], with the decoder's allocations
/// capped at what an image of the largest side may take.
fn decode_checked(checked: Checked<'_>, field: &'static str) -> Result<DynamicImage, ImageError> {
    let Checked { mut reader, width, height, max_side, .. } = checked;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(u64::from(max_side) * u64::from(max_side) * MAX_BYTES_PER_PIXEL + (1 << 20));
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooLarge { field, width, height, max: max_side },
        other => ImageError::Decode { field, message: other.to_string() },
    })
}

/// Decodes JPEG or PNG bytes within `limits` to 8-bit grayscale (what the model sees), with
/// the same checks and panic containment as [`decode_image_within`].
///
/// A JPEG in YCbCr or grayscale is decoded to its luma plane alone: the chroma planes are
/// read (the entropy-coded data interleaves them) but neither transformed, upsampled nor
/// converted, which takes a 320x240 camera frame from ~0.9 ms (decode to RGB, then luma)
/// to ~0.4 ms. That luma is the JPEG's own Y' (ITU-R BT.601 weights, 0.299 R + 0.587 G +
/// 0.114 B); other images are converted with the `image` crate's weights (Rec. 709),
/// which differ from it on saturated colours only (the model was trained on grayscale
/// frames, where both agree).
pub fn decode_gray_within(bytes: &[u8], field: &'static str, limits: ImageLimits) -> Result<GrayImage, ImageError> {
    std::panic::catch_unwind(|| {
        let checked = check_header(bytes, field, limits)?;
        if checked.format == ImageFormat::Jpeg {
            if let Some(gray) = jpeg_luma(bytes, field, &checked)? {
                return Ok(gray);
            }
        }
        Ok(decode_checked(checked, field)?.into_luma8())
    })
    .unwrap_or_else(|_| Err(ImageError::Decode { field, message: "the image data is malformed (the decoder gave up on it)".into() }))
}

/// The luma plane of a YCbCr or grayscale JPEG; None for other colour spaces (CMYK,
/// YCCK, RGB), which take the general path.
fn jpeg_luma(bytes: &[u8], field: &'static str, checked: &Checked<'_>) -> Result<Option<GrayImage>, ImageError> {
    use zune_core::colorspace::ColorSpace;
    let side = checked.max_side as usize;
    let options = zune_core::options::DecoderOptions::default()
        .set_max_width(side)
        .set_max_height(side)
        .jpeg_set_out_colorspace(ColorSpace::Luma);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), options);
    let bad = |e: zune_jpeg::errors::DecodeErrors| ImageError::Decode { field, message: e.to_string() };
    decoder.decode_headers().map_err(bad)?;
    if !matches!(decoder.input_colorspace(), Some(ColorSpace::YCbCr | ColorSpace::Luma)) {
        return Ok(None);
    }
    let (width, height) = (checked.width, checked.height);
    let mut luma = vec![0u8; width as usize * height as usize];
    if decoder.output_buffer_size() != Some(luma.len()) {
        return Err(ImageError::Decode { field, message: format!("the JPEG's frame does not match its {width}x{height} header") });
    }
    decoder.decode_into(&mut luma).map_err(bad)?;
    Ok(GrayImage::from_raw(width, height, luma))
}

/// Either step of reading an image data URL failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataUrlImageError {
    #[error(transparent)]
    Url(#[from] ProtocolError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// A data URL of at most `max_bytes` characters -> a decoded image of at most `max_side`
/// pixels a side: [`DataUrl::parse`] then [`decode_image`].
pub fn decode_data_url(url: &str, field: &'static str, max_bytes: usize, max_side: u32) -> Result<DynamicImage, DataUrlImageError> {
    let data = DataUrl::parse(url, field, max_bytes)?;
    Ok(decode_image(&data.bytes, field, max_side)?)
}

/// First bytes of unrecognised data, for the error message.
fn head_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty".into();
    }
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::ImageEncoder;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x + y) % 256) as u8]));
        let mut out = Vec::new();
        PngEncoder::new(&mut out).write_image(img.as_raw(), w, h, image::ExtendedColorType::L8).unwrap();
        out
    }

    #[test]
    fn decodes_within_the_limit_and_refuses_beyond_it_from_the_header() {
        let img = decode_image(&png(20, 10), "image", 64).unwrap();
        assert_eq!((img.width(), img.height()), (20, 10));
        let e = decode_image(&png(65, 10), "image", 64).unwrap_err();
        assert_eq!(e, ImageError::TooLarge { field: "image", width: 65, height: 10, max: 64 });
        assert_eq!(e.code(), crate::ErrorCode::TooLarge);
    }

    /// `data_url_image` crash-d704c8988409e1fad5bc9f2d9068fae7a2f1208c: a 12x7 progressive
    /// JPEG with 2x2 chroma subsampling whose scan data trips an assertion in zune-jpeg
    /// 0.5.15's upsampler (`input.len() * 2 <= scratch_space.len()`).
    #[test]
    fn fuzz_crash_d704c898_progressive_jpeg_upsampler_panic_is_a_bad_image() {
        let bytes = hex::decode(CRASH_D704C898).unwrap();
        let e = decode_image(&bytes, "image", 4096).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::BadImage, "{e:?}");
        assert!(e.to_string().contains("malformed"), "{e}");
        // As a data URL too, the way a stimulus carries it.
        let url = DataUrl::encode(crate::ImageKind::Jpeg, &bytes);
        let e = decode_data_url(&url, "image", 1 << 20, 4096).unwrap_err();
        assert!(matches!(e, DataUrlImageError::Image(ImageError::Decode { .. })), "{e:?}");
    }

    /// `data_url_image`, second run: corpus input 3407a30aeeb64759a95855832f5641de0d6bbc7d,
    /// a malformed JPEG that makes zune-jpeg 0.5.15's AVX2 IDCT index past its output
    /// (idct/avx2.rs:246); contained by `decode_image` while fuzzing, kept here so it stays so.
    #[test]
    fn fuzz_input_3407a30a_jpeg_idct_out_of_bounds_is_a_bad_image() {
        let bytes = hex::decode(INPUT_3407A30A).unwrap();
        let e = decode_image(&bytes, "image", 4096).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::BadImage, "{e:?}");
    }

    fn jpeg(img: image::DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
        out
    }

    /// The grayscale decode: a colour JPEG's own luma plane (BT.601 luma of its pixels,
    /// within rounding), a grey JPEG's pixels exactly, a PNG's `image` luma exactly; the
    /// same limits and the same containment of decoder panics as the full decode.
    #[test]
    fn grayscale_decoding_reads_the_jpeg_luma_plane_under_the_same_limits() {
        let limits = ImageLimits::side(64);
        let rgb = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 256) as u8]));
        let colour = jpeg(DynamicImage::ImageRgb8(rgb));
        let gray = decode_gray_within(&colour, "image", limits).unwrap();
        assert_eq!(gray.dimensions(), (64, 48));
        let decoded = decode_image_within(&colour, "image", limits).unwrap().to_rgb8();
        let diffs: Vec<f32> = gray
            .pixels()
            .zip(decoded.pixels())
            .map(|(g, c)| {
                let y = 0.299 * f32::from(c[0]) + 0.587 * f32::from(c[1]) + 0.114 * f32::from(c[2]);
                (f32::from(g[0]) - y).abs()
            })
            .collect();
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let worst = diffs.iter().copied().fold(0f32, f32::max);
        // Decoded pixels are clamped to 0..=255 where the JPEG's colours overshoot, so a
        // few saturated pixels differ by more than rounding.
        assert!(mean <= 1.0, "luma plane vs BT.601 luma of the decoded pixels: {mean} grey levels apart on average");
        assert!(worst <= 8.0, "luma plane vs BT.601 luma of the decoded pixels: {worst} grey levels apart at most");

        let grey = jpeg(DynamicImage::ImageLuma8(image::GrayImage::from_fn(40, 30, |x, y| image::Luma([(x * 6 + y) as u8]))));
        assert_eq!(decode_gray_within(&grey, "image", limits).unwrap(), decode_image_within(&grey, "image", limits).unwrap().to_luma8());
        let rgb_png = {
            let mut out = Vec::new();
            let img = image::RgbImage::from_fn(20, 10, |x, y| image::Rgb([(x * 12) as u8, (y * 25) as u8, 200]));
            DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
            out
        };
        assert_eq!(decode_gray_within(&rgb_png, "image", limits).unwrap(), decode_image_within(&rgb_png, "image", limits).unwrap().to_luma8());

        let wide = jpeg(DynamicImage::ImageRgb8(image::RgbImage::new(65, 10)));
        assert_eq!(decode_gray_within(&wide, "image", limits).unwrap_err(), ImageError::TooLarge { field: "image", width: 65, height: 10, max: 64 });
        let budget = ImageLimits { max_side: 64, max_pixels: 600 };
        assert!(matches!(decode_gray_within(&colour, "image", budget), Err(ImageError::TooManyPixels { width: 64, height: 48, .. })));
        for bad in [CRASH_D704C898, INPUT_3407A30A] {
            let e = decode_gray_within(&hex::decode(bad).unwrap(), "image", ImageLimits::side(4096)).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::BadImage, "{e:?}");
        }
        let e = decode_gray_within(b"hello", "image", limits).unwrap_err();
        assert!(matches!(e, ImageError::NotAnImage { .. }), "{e:?}");
    }

    const INPUT_3407A30A: &str = "ffd8ffe000104a4649565b00010100000100010000ffdb0043000d090af5ff00000b0a0b0e0e0d0f13201513121213271c8950202e2931302e292d2c333a604a3e333646372c2d405744464c4e525352323e6150605a4a5a51524fffdb0043010e0e0e133b110ff1eb0f0f0f0f0f0f0f0000002828282828282828282828bdbdbdbdbdbdbdbdbdbdbdbdbdbd9dbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbd28282828282828282828282828282828282828282828282828282828282828282828ffc00011080003011003012200021101034101ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300041105122108090a0bffc400b510000201030302042433627282090a161718191a25262728292a3435363738393a434445464748a1082342b1c11552d1f02433627282090a161718191a25262728292a3435373738393a434445464748494a535455565758595a636465666768696affffffffff737475767770797a838485868788898a92939495969798999a0100000000009394e4e5e6e7e8e9eaf1f2f3f0f5f6f7f8f9faffda0008010100003f00e1bfe158ff00646174613a474946383761696d61c3f4afaff700000000000000000406ffc40014010100000000000000000000000000000000ffda000c030100021003100000018900000000ffda000c030100021003100000010101000000000000003144444444444444444444444444444444444444444444444444444444000000000406ffc4001401010000000000000000000100010502ffffffffffffffffffffffffffffffffffffffffff0000000000000000000000000000000000000000000000000000000000000000ffd9";

    const CRASH_D704C898: &str = "ffd8ffe000104a46494600012d00000100010000ffdb0043000d090a0b0a080d0b0a0b0e0e0d0f13201513121213271c1e17202e2931302e292d2c334a3e61333646372c2d574041464c4e525352323e5a615a50604a51524fffdb0043010e0e0e1311132615150000000000000000000000000000000000000025000000000000000000000000000000000000000000000000000000008b8b8b8b8b8b8b8b4fffc2001108000c000703011100022201031101ffc400160001010100000000000000000000000000000406010000000000006bffc40014010100000000000000000000000000000000000301000000000000000000000000000011f010ffda0008010100013f10a452dfff00ffd9";

    /// The pixel budget is read from the header: a big image is refused before decoding,
    /// and one that decodes to 16 bits a channel gets half the pixels of an 8-bit RGBA one.
    #[test]
    fn the_pixel_budget_counts_decoded_bytes() {
        let limits = ImageLimits { max_side: 4096, max_pixels: 100 * 100 };
        assert!(decode_image_within(&png(100, 100), "image", limits).is_ok());
        let e = decode_image_within(&png(101, 100), "image", limits).unwrap_err();
        assert!(matches!(e, ImageError::TooManyPixels { width: 101, height: 100, bytes_per_pixel: 1, .. }), "{e:?}");
        assert_eq!(e.code(), crate::ErrorCode::TooLarge);
        assert!(e.to_string().contains("--max-image-pixels"), "{e}");
        let rgba16 = |w: u32, h: u32| {
            let img = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_pixel(w, h, image::Rgba([40_000, 1, 2, 65_535]));
            let mut out = Vec::new();
            image::DynamicImage::ImageRgba16(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
            out
        };
        assert!(decode_image_within(&rgba16(70, 70), "image", limits).is_ok(), "4,900 px x 8 bytes fit 10,000 x 4");
        let e = decode_image_within(&rgba16(80, 80), "image", limits).unwrap_err();
        assert!(matches!(e, ImageError::TooManyPixels { bytes_per_pixel: 8, .. }), "{e:?}");
        // The side-only limit behaves as before.
        assert!(decode_image(&png(64, 64), "image", 64).is_ok());
    }

    #[test]
    fn data_urls_go_through_both_steps() {
        let url = DataUrl::encode(crate::ImageKind::Png, &png(8, 8));
        assert_eq!(decode_data_url(&url, "image", 1 << 20, 64).unwrap().width(), 8);
        let e = decode_data_url("data:image/png;base64,aGVsbG8=", "image", 1 << 20, 64).unwrap_err();
        assert!(matches!(e, DataUrlImageError::Image(ImageError::NotAnImage { .. })), "{e:?}");
        assert!(e.to_string().contains("68 65 6c 6c"), "{e}");
        let e = decode_data_url("data:image/png;base64,!!", "image", 1 << 20, 64).unwrap_err();
        assert!(matches!(e, DataUrlImageError::Url(_)), "{e:?}");
    }
}
