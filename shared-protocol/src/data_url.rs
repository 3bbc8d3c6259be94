//! Images on the wire are `data:image/<kind>;base64,<data>` URLs, ready for an `<img src>`.
//! This module checks their prefix cheaply, decodes them under a size limit, and encodes
//! them. Whether the bytes are a decodable image of acceptable dimensions is the
//! receiving service's business (it has the image decoder).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::error::{shorten, ProtocolError};

/// Standard alphabet; padding optional on input (some encoders drop it), always written.
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The image kinds the services read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
}

impl ImageKind {
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
        }
    }
}

/// A decoded data URL: the declared kind and the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUrl {
    pub kind: ImageKind,
    pub bytes: Vec<u8>,
}

/// Splits `data:image/<kind>;base64,` off, returning the media type and the base64 part.
fn split<'a>(url: &'a str, field: &'static str) -> Result<(&'a str, &'a str), ProtocolError> {
    let bad = |reason: String| ProtocolError::BadDataUrl { field, reason };
    let rest = url.strip_prefix("data:").ok_or_else(|| {
        bad(format!(
            "it starts with {:?}, expected \"data:image/jpeg;base64,\"",
            url.chars().take(24).collect::<String>()
        ))
    })?;
    // The header is short; do not scan megabytes of base64 looking for a comma.
    let header_end = rest.bytes().take(100).position(|b| b == b',').ok_or_else(|| {
        bad("no ',' after the media type; expected \"data:image/jpeg;base64,<data>\"".into())
    })?;
    let header = &rest[..header_end];
    let data = &rest[header_end + 1..];
    let media = header
        .strip_suffix(";base64")
        .ok_or_else(|| bad(format!("header {:?} is not base64-encoded; expected \";base64,\"", shorten(header))))?;
    if !media.to_ascii_lowercase().starts_with("image/") {
        return Err(bad(format!("media type {:?} is not an image", shorten(media))));
    }
    Ok((media, data))
}

/// Cheap check that `url` looks like an image data URL (no decoding).
pub fn check_prefix(url: &str, field: &'static str) -> Result<(), ProtocolError> {
    split(url, field).map(|_| ())
}

impl DataUrl {
    /// Decodes a JPEG or PNG data URL of at most `max_bytes` characters.
    pub fn parse(url: &str, field: &'static str, max_bytes: usize) -> Result<Self, ProtocolError> {
        if url.len() > max_bytes {
            return Err(ProtocolError::ImageTooLarge { field, got: url.len(), max: max_bytes });
        }
        let (media, data) = split(url, field)?;
        let kind = match media.to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" => ImageKind::Jpeg,
            "image/png" => ImageKind::Png,
            other => {
                return Err(ProtocolError::BadDataUrl {
                    field,
                    reason: format!("media type {:?} is not supported; send image/jpeg or image/png", shorten(other)),
                })
            }
        };
        let bytes = ENGINE
            .decode(data.as_bytes())
            .map_err(|e| ProtocolError::BadDataUrl { field, reason: format!("the base64 data is invalid: {e}") })?;
        if bytes.is_empty() {
            return Err(ProtocolError::BadDataUrl { field, reason: "the data is empty".into() });
        }
        Ok(Self { kind, bytes })
    }

    /// The data URL of `bytes` as `kind`.
    pub fn encode(kind: ImageKind, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(24 + bytes.len().div_ceil(3) * 4);
        out.push_str("data:");
        out.push_str(kind.mime());
        out.push_str(";base64,");
        ENGINE.encode_string(bytes, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bytes() {
        let url = DataUrl::encode(ImageKind::Png, &[1, 2, 3, 250]);
        assert!(url.starts_with("data:image/png;base64,"));
        let d = DataUrl::parse(&url, "image", 1000).unwrap();
        assert_eq!(d, DataUrl { kind: ImageKind::Png, bytes: vec![1, 2, 3, 250] });
    }

    #[test]
    fn accepts_missing_padding_and_jpg_alias() {
        let d = DataUrl::parse("data:image/jpg;base64,AQID+g", "image", 1000).unwrap();
        assert_eq!(d.kind, ImageKind::Jpeg);
        assert_eq!(d.bytes, vec![1, 2, 3, 250]);
    }

    #[test]
    fn rejects_each_malformed_part_with_a_reason() {
        let cases = [
            ("http://x/y.png", "starts with"),
            ("data:image/png;base64", "no ','"),
            ("data:image/png,AAAA", "not base64-encoded"),
            ("data:text/plain;base64,AAAA", "not an image"),
            ("data:image/gif;base64,AAAA", "not supported"),
            ("data:image/png;base64,!!!!", "base64 data is invalid"),
            ("data:image/png;base64,", "empty"),
        ];
        for (url, expected) in cases {
            let err = DataUrl::parse(url, "image", 1000).unwrap_err();
            assert!(err.to_string().contains(expected), "{url}: {err}");
            assert_eq!(err.code(), crate::ErrorCode::BadImage, "{url}");
        }
    }

    #[test]
    fn size_is_checked_before_decoding() {
        let url = format!("data:image/png;base64,{}", "A".repeat(100));
        let err = DataUrl::parse(&url, "image", 50).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::TooLarge);
        assert!(err.to_string().contains("up to 50 bytes"), "{err}");
    }
}
