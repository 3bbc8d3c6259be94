//! Feeds arbitrary bytes to the image path of a `stimulus`: data-URL parsing and base64
//! (`DataUrl::parse`), then the header-dimension check and decoding
//! (`image_limits::decode_image`), with the simulation-service's limits scaled down so
//! that each execution stays fast. The raw bytes also go straight to the decoder, and as
//! base64 behind a valid prefix, so the fuzzer reaches the decoders quickly; and to the
//! grayscale decode the simulation-service runs on stimuli (`decode_gray_within`: a JPEG's
//! luma plane straight from zune-jpeg), which must agree with the full decode on the size.

#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use shared_protocol::image_limits::{decode_data_url, decode_gray_within, decode_image, DataUrlImageError, ImageError, ImageLimits};
use shared_protocol::{DataUrl, ImageKind};

/// Largest data URL accepted here (the service's default is 4 MiB; inputs are smaller).
const MAX_BYTES: usize = 1 << 20;
/// Largest side: small, so a valid header of any size is refused or decoded quickly, and
/// the decoder's allocation cap (side² x 8 bytes) stays well under libFuzzer's RSS limit.
const MAX_SIDE: u32 = 512;

/// Where the image decoders live: a panic there is contained by `decode_image` (and
/// reported as `bad_image`), so it is counted rather than treated as a crash. A panic
/// anywhere else (the data-URL code, our checks) still aborts and is reported.
const DECODER_CRATES: [&str; 5] = ["/zune-jpeg-", "/zune-core-", "/png-", "/fdeflate-", "/image-0."];

static CONTAINED: AtomicU64 = AtomicU64::new(0);
static HOOK: Once = Once::new();

/// libFuzzer's panic hook aborts on every panic, before `catch_unwind` could see it; this
/// one lets decoder panics unwind to `decode_image` and keeps the abort for the rest.
fn contain_decoder_panics() {
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_decoder = info.location().is_some_and(|l| DECODER_CRATES.iter().any(|c| l.file().contains(c)));
            if in_decoder {
                if CONTAINED.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("contained a decoder panic (reported as bad_image; later ones are not printed): {info}");
                }
            } else {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    contain_decoder_panics();
    // 1. The bytes as a data URL.
    let text = String::from_utf8_lossy(data);
    check(decode_data_url(&text, "image", MAX_BYTES, MAX_SIDE));
    // 2. The bytes as the image inside a valid data URL (JPEG and PNG prefixes).
    for kind in [ImageKind::Jpeg, ImageKind::Png] {
        let url = DataUrl::encode(kind, data);
        match DataUrl::parse(&url, "image", MAX_BYTES) {
            Ok(parsed) => assert_eq!(parsed.bytes, data, "base64 round trip"),
            Err(e) => assert!(data.is_empty() || url.len() > MAX_BYTES, "valid data URL refused: {e}"),
        }
    }
    // 3. The bytes straight to the decoder.
    let full = decode_image(data, "image", MAX_SIDE);
    // 4. The same bytes to the grayscale decode: within the same limits (`check`), and an
    //    image of the same size whenever both decode it.
    let gray = decode_gray_within(data, "image", ImageLimits::side(MAX_SIDE));
    if let (Ok(a), Ok(b)) = (&full, &gray) {
        assert_eq!((a.width(), a.height()), b.dimensions(), "grayscale and full decodes disagree on the size");
    }
    check(gray.map(image::DynamicImage::ImageLuma8).map_err(DataUrlImageError::from));
    check(full.map_err(DataUrlImageError::from));
});

/// A decoded image respects the limit; an error is one of the documented kinds.
fn check(result: Result<image::DynamicImage, DataUrlImageError>) {
    match result {
        Ok(img) => assert!(img.width() <= MAX_SIDE && img.height() <= MAX_SIDE && img.width() > 0 && img.height() > 0),
        Err(DataUrlImageError::Image(ImageError::TooLarge { width, height, max, .. })) => {
            assert_eq!(max, MAX_SIDE);
            let _ = (width, height);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
