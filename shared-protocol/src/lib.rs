//! The wire format between the browser, the simulation-service and the relay-service,
//! defined once. Every message is one JSON object in one WebSocket text frame, tagged by
//! `"type"`; `docs/protocol.md` is the prose version of this crate.
//!
//! The seed's minimal messages are valid as they are and serialise back to the same
//! bytes:
//!
//! ```
//! use shared_protocol::{decode, Message, RELAY_INGEST};
//! let seed = r#"{"type":"waveform_latent","session_id":"xyz123","payload":[0.023,0.55,-0.011]}"#;
//! let message = decode(seed, &RELAY_INGEST).unwrap();
//! assert!(matches!(message, Message::WaveformLatent(_)));
//! assert_eq!(message.to_json(), seed);
//! ```
//!
//! # Layout
//! - [`message`]: one struct per message and the tagged union [`Message`].
//! - [`decode()`]: text frame -> validated message, with the right error code; the
//!   [`Endpoint`]s say which messages each socket accepts.
//! - [`validate()`]: the rules beyond JSON shape, and the protocol's fixed limits.
//! - [`error`]: [`ErrorCode`] (on the wire) and [`ProtocolError`] (what was wrong).
//! - [`data_url`]: image data URLs, checked, decoded under a size limit, encoded.
//! - `image_limits` (feature `image`): decoding a received JPEG/PNG under the size and
//!   side limits, header dimensions checked before decoding.
//! - [`auth`]: session tokens (expiry + HMAC-SHA256) and the shared secret.
//! - [`origin`]: the `Origin` allow-list for WebSocket upgrades.
//! - [`status`]: what the simulation-service's HTTP endpoints say about its sources.

pub mod auth;
pub mod data_url;
pub mod decode;
pub mod error;
#[cfg(feature = "image")]
pub mod image_limits;
pub mod message;
pub mod origin;
pub mod status;
pub mod validate;

pub use auth::{unix_now, IssuedToken, SharedSecret, WeakSecret, DEFAULT_TOKEN_TTL};
pub use data_url::{DataUrl, ImageKind};
pub use decode::{
    decode, Endpoint, INGEST_REPLIES, RELAY_INGEST, RELAY_SUBSCRIBE, SIMULATION, SIMULATION_CLIENT, SUBSCRIBER,
};
pub use error::{ErrorCode, ProtocolError};
pub use message::{
    Ack, IngestReply, INGEST_REPLY_HEADER, Delivered, ErrorMessage, Imagined, Message, MessageType, Population, ReconstructedImage, RecordedPosition, Response, SessionId, Source,
    StartStream, Stimulus, StopStream, StreamSource, Subscribe, Subscribed, Trial, WaveformLatent,
};
pub use origin::{BadOrigin, OriginPolicy};
pub use status::RecordedStatus;
pub use validate::{check_payload_len, validate};
