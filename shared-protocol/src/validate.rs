//! The rules a message must follow beyond its JSON shape: session ids, payload lengths,
//! finite numbers, value ranges, image data URL prefixes. The limits that are part of the
//! protocol itself are constants here; limits a service may tighten (image bytes and
//! pixels, message size, rates) live in the services' configuration.

use crate::data_url;
use crate::error::ProtocolError;
use crate::message::{Message, MessageType, Source, Stimulus};

/// Most values in a `payload`.
pub const MAX_PAYLOAD_VALUES: usize = 65_536;
/// Largest value of an `imagined` payload: a spike count per 1/30 s bin (3,000 spikes/s,
/// beyond any V1 electrode).
pub const MAX_IMAGINED_COUNT: f32 = 100.0;
/// Largest `frame_id`: 2^53 - 1, the largest integer a browser's number holds exactly.
pub const MAX_FRAME_ID: u64 = (1 << 53) - 1;
/// Stream rates accepted by `start_stream`.
pub const MIN_FPS: u32 = 1;
pub const MAX_FPS: u32 = 30;
/// Default stream rate when `fps` is absent.
pub const DEFAULT_FPS: u32 = 30;
/// Default (and largest sensible) image data URL size, 4 MiB.
pub const DEFAULT_MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// Default largest image side in pixels.
pub const DEFAULT_MAX_IMAGE_SIDE: u32 = 4096;
/// Default largest image in pixels, 4 MP (a 2048x2048 photo): the decoding cost of one
/// frame is bounded by its pixels, not by its bytes (a few KB of PNG can claim 16 MP).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 4 * 1024 * 1024;
/// Longest token accepted before it is even compared (a real one, `<expiry>.<64 hex
/// digits>`, has at most 85 characters).
pub const MAX_TOKEN_LEN: usize = 256;

/// Checks every rule that needs no model and no service configuration.
pub fn validate(message: &Message) -> Result<(), ProtocolError> {
    if let Some(session) = message.session_id() {
        session.check()?;
    }
    let ty = message.message_type();
    if let Some(frame_id) = message.frame_id() {
        check_frame_id(ty, frame_id)?;
    }
    match message {
        Message::WaveformLatent(m) => {
            check_payload(ty, &m.payload)?;
            check_shape(ty, m.shape, m.payload.len())
        }
        Message::Response(m) => {
            check_payload(ty, &m.payload)?;
            check_shape(ty, m.shape, m.payload.len())?;
            if let Some(url) = &m.input_image {
                data_url::check_prefix(url, "input_image")?;
            }
            check_finite_opt(ty, "latency_ms", m.latency_ms)
        }
        Message::ReconstructedImage(m) => {
            data_url::check_prefix(&m.image_base64, "image_base64")?;
            check_finite_opt(ty, "latency_ms", m.latency_ms)
        }
        Message::Stimulus(m) => check_stimulus(m),
        Message::Imagined(m) => {
            check_payload(ty, &m.payload)?;
            check_counts(ty, &m.payload)
        }
        Message::StartStream(m) => match m.fps {
            Some(fps) if !(MIN_FPS..=MAX_FPS).contains(&fps) => Err(ProtocolError::OutOfRange {
                message_type: ty,
                field: "fps",
                got: u64::from(fps),
                min: u64::from(MIN_FPS),
                max: u64::from(MAX_FPS),
            }),
            _ => Ok(()),
        },
        Message::Ack(_) | Message::Delivered(_) | Message::StopStream(_) | Message::Subscribe(_) | Message::Subscribed(_) | Message::Error(_) => {
            Ok(())
        }
    }
}

fn check_frame_id(ty: MessageType, frame_id: u64) -> Result<(), ProtocolError> {
    if frame_id > MAX_FRAME_ID {
        return Err(ProtocolError::OutOfRange { message_type: ty, field: "frame_id", got: frame_id, min: 0, max: MAX_FRAME_ID });
    }
    Ok(())
}

/// Non-empty, at most [`MAX_PAYLOAD_VALUES`], every value finite.
pub fn check_payload(ty: MessageType, payload: &[f32]) -> Result<(), ProtocolError> {
    if payload.is_empty() {
        return Err(ProtocolError::EmptyPayload { message_type: ty, field: "payload" });
    }
    if payload.len() > MAX_PAYLOAD_VALUES {
        return Err(ProtocolError::PayloadTooLong {
            message_type: ty,
            field: "payload",
            got: payload.len(),
            max: MAX_PAYLOAD_VALUES,
        });
    }
    if let Some(index) = payload.iter().position(|v| !v.is_finite()) {
        return Err(ProtocolError::NonFinite { message_type: ty, field: "payload", index });
    }
    Ok(())
}

/// Every value a spike count in `0..=`[`MAX_IMAGINED_COUNT`] (after [`check_payload`]).
fn check_counts(ty: MessageType, payload: &[f32]) -> Result<(), ProtocolError> {
    match payload.iter().position(|v| !(0.0..=MAX_IMAGINED_COUNT).contains(v)) {
        Some(index) => Err(ProtocolError::CountOutOfRange {
            message_type: ty,
            index,
            got: payload[index],
            max: MAX_IMAGINED_COUNT,
        }),
        None => Ok(()),
    }
}

fn check_shape(ty: MessageType, shape: Option<[usize; 2]>, len: usize) -> Result<(), ProtocolError> {
    if let Some(shape) = shape {
        let expected = shape[0].saturating_mul(shape[1]);
        if expected != len {
            return Err(ProtocolError::ShapeMismatch { message_type: ty, shape, expected, got: len });
        }
    }
    Ok(())
}

fn check_finite_opt(ty: MessageType, field: &'static str, v: Option<f64>) -> Result<(), ProtocolError> {
    match v {
        Some(x) if !x.is_finite() => Err(ProtocolError::NonFinite { message_type: ty, field, index: 0 }),
        _ => Ok(()),
    }
}

fn check_stimulus(m: &Stimulus) -> Result<(), ProtocolError> {
    match (&m.image, m.source) {
        (Some(url), source) => {
            if matches!(source, Some(Source::Random | Source::Dataset | Source::Recorded | Source::Imagined | Source::Dream)) {
                return Err(ProtocolError::StimulusSource {
                    detail: format!(
                        "this one has an image and source {:?}; drop one of them",
                        source.map(Source::as_str).unwrap_or_default()
                    ),
                });
            }
            data_url::check_prefix(url, "image")
        }
        (None, Some(Source::Random | Source::Dataset | Source::Folder)) => Ok(()),
        (None, Some(other)) => Err(ProtocolError::StimulusSource {
            detail: format!("source {:?} needs an image", other.as_str()),
        }),
        (None, None) => Err(ProtocolError::StimulusSource { detail: "this one has neither".into() }),
    }
}

/// The payload length must be `lags * channels` of the loaded model.
pub fn check_payload_len(len: usize, lags: usize, channels: usize) -> Result<(), ProtocolError> {
    let expected = lags * channels;
    if len != expected {
        return Err(ProtocolError::PayloadLength { got: len, expected, lags, channels });
    }
    Ok(())
}
