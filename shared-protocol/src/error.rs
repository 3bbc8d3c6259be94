//! Error codes on the wire ([`ErrorCode`]) and what can be wrong with a message
//! ([`ProtocolError`]). Each `ProtocolError` knows its code and says what was wrong,
//! where (message type, field, index) and what was expected.

use serde::{Deserialize, Serialize};

use crate::message::{ErrorMessage, MessageType, SessionId};

/// The `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The text frame is not JSON.
    BadJson,
    /// JSON, but not a valid message of its type (missing, extra or mistyped fields,
    /// values out of range).
    BadMessage,
    /// `type` is not a message this endpoint accepts.
    UnknownType,
    /// The payload's length does not fit the model (lags x channels) or its `shape`.
    PayloadLength,
    /// A payload value is NaN or infinite.
    NonFinite,
    /// A payload, image or message over its limit.
    TooLarge,
    /// An image that cannot be decoded or is not a JPEG/PNG data URL.
    BadImage,
    /// A malformed session id, or a session the service cannot hold.
    BadSession,
    /// A missing or wrong token.
    Unauthorized,
    /// More messages per second than the connection may send.
    RateLimited,
    /// The service's work queue is full; the frame was not processed.
    Overloaded,
    /// A binary WebSocket frame; the protocol is JSON text only.
    BinaryNotSupported,
    /// A requested source is not available here (no dataset, no image folder, no camera),
    /// or the service is shutting down.
    Unavailable,
    /// A fault inside the service.
    Internal,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::PayloadLength => "payload_length",
            ErrorCode::NonFinite => "non_finite",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadImage => "bad_image",
            ErrorCode::BadSession => "bad_session",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can be wrong with a message, found while decoding or validating it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the message is not valid JSON ({message} at line {line}, column {column}); send one JSON object per text frame")]
    BadJson { message: String, line: usize, column: usize },
    #[error("the message has a NaN or Infinity at line {line}, column {column}; JSON has no such numbers and every payload value must be finite")]
    NonFiniteLiteral { line: usize, column: usize },
    #[error("the message is JSON but not an object; send {{\"type\": ..., ...}}")]
    NotAnObject,
    #[error("the message has no string field \"type\"; expected one of {expected}")]
    MissingType { expected: String },
    #[error("unknown message type {got:?}; {endpoint} accepts {expected}")]
    UnknownType { got: String, endpoint: String, expected: String },
    #[error("{got} messages are not accepted here; {endpoint} accepts {expected}")]
    NotAccepted { got: MessageType, endpoint: String, expected: String },
    #[error("{message_type}: {detail}")]
    BadFields { message_type: MessageType, detail: String },
    #[error("session_id {got:?} {reason}")]
    BadSession { got: String, reason: String },
    #[error("{message_type}: {field} is empty; it needs at least one value")]
    EmptyPayload { message_type: MessageType, field: &'static str },
    #[error("{message_type}: {field} has {got} values; at most {max} are accepted")]
    PayloadTooLong { message_type: MessageType, field: &'static str, got: usize, max: usize },
    #[error("{message_type}: {field}[{index}] is not a finite number (values beyond ±3.4e38 do not fit 32 bits)")]
    NonFinite { message_type: MessageType, field: &'static str, index: usize },
    #[error("{message_type}: payload[{index}] is {got}; imagined activity is a spike count per bin, between 0 and {max}: clamp the value")]
    CountOutOfRange { message_type: MessageType, index: usize, got: f32, max: f32 },
    #[error("{message_type}: shape {shape:?} means {expected} values but payload has {got}")]
    ShapeMismatch { message_type: MessageType, shape: [usize; 2], expected: usize, got: usize },
    #[error("payload has {got} values; the model expects {expected} ({lags} lags x {channels} channels)")]
    PayloadLength { got: usize, expected: usize, lags: usize, channels: usize },
    #[error("{message_type}: {field} is {got}; it must be between {min} and {max}")]
    OutOfRange { message_type: MessageType, field: &'static str, got: u64, min: u64, max: u64 },
    #[error("{field} is not an image data URL: {reason}")]
    BadDataUrl { field: &'static str, reason: String },
    #[error("{field} is {got} bytes; images are accepted up to {max} bytes (as a data URL)")]
    ImageTooLarge { field: &'static str, got: usize, max: usize },
    #[error("stimulus needs either `image` (a JPEG or PNG data URL) or `source`: \"random\", \"dataset\" or \"folder\"; {detail}")]
    StimulusSource { detail: String },
    #[error("token is missing or wrong for session {session}; get a session and its token from the relay's POST /api/sessions")]
    Unauthorized { session: String },
    /// A genuine token whose lifetime is over (it cannot be renewed any more).
    #[error("the token of session {session} expired at {expired_at} (Unix seconds); a page renews its token before it expires with the relay's POST /api/sessions/{session}/renew; now get a new session from POST /api/sessions")]
    TokenExpired { session: String, expired_at: u64 },
    #[error("binary WebSocket frames are not supported; send each message as JSON in a text frame")]
    Binary,
}

impl ProtocolError {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::BadJson { .. } => ErrorCode::BadJson,
            ProtocolError::NonFiniteLiteral { .. } | ProtocolError::NonFinite { .. } | ProtocolError::CountOutOfRange { .. } => {
                ErrorCode::NonFinite
            }
            ProtocolError::NotAnObject
            | ProtocolError::MissingType { .. }
            | ProtocolError::BadFields { .. }
            | ProtocolError::EmptyPayload { .. }
            | ProtocolError::OutOfRange { .. }
            | ProtocolError::StimulusSource { .. } => ErrorCode::BadMessage,
            ProtocolError::UnknownType { .. } | ProtocolError::NotAccepted { .. } => ErrorCode::UnknownType,
            ProtocolError::BadSession { .. } => ErrorCode::BadSession,
            ProtocolError::PayloadTooLong { .. } | ProtocolError::ImageTooLarge { .. } => ErrorCode::TooLarge,
            ProtocolError::ShapeMismatch { .. } | ProtocolError::PayloadLength { .. } => ErrorCode::PayloadLength,
            ProtocolError::BadDataUrl { .. } => ErrorCode::BadImage,
            ProtocolError::Unauthorized { .. } | ProtocolError::TokenExpired { .. } => ErrorCode::Unauthorized,
            ProtocolError::Binary => ErrorCode::BinaryNotSupported,
        }
    }

    /// The `error` message that reports this error to the peer.
    pub fn to_error_message(&self, session_id: Option<SessionId>, frame_id: Option<u64>) -> ErrorMessage {
        ErrorMessage { code: self.code(), message: self.to_string(), session_id, frame_id }
    }
}

/// At most 80 characters of untrusted text, for echoing it in an error message.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX - 3).collect();
        out.push_str("...");
        out
    }
}
