//! The messages on the wire, one struct each, and [`Message`], the tagged union that is
//! the JSON of one WebSocket text frame.
//!
//! Every struct denies unknown fields so that a typo in a field name surfaces as an error
//! instead of a silently ignored value. Optional fields are skipped when absent, so the
//! seed's minimal messages serialise back to exactly the bytes they were read from.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// A session id as it appears on the wire: 1–64 characters of `[A-Za-z0-9_-]`.
///
/// Deserialisation accepts any string so that a bad id is reported as `bad_session`
/// (by [`crate::validate`]) rather than as a generic parse error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// Longest session id accepted on the wire.
    pub const MAX_LEN: usize = 64;

    /// Checks the wire rules and wraps `id`.
    pub fn parse(id: &str) -> Result<Self, crate::ProtocolError> {
        let s = Self(id.to_owned());
        s.check()?;
        Ok(s)
    }

    /// Wraps a string without checking it; [`crate::validate`] checks it later. Used for
    /// ids that come from a trusted place (the relay's own generator).
    pub fn new_unchecked(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The wire rules: length and alphabet.
    pub fn check(&self) -> Result<(), crate::ProtocolError> {
        let s = &self.0;
        let problem = if s.is_empty() {
            Some("is empty".to_owned())
        } else if s.len() > Self::MAX_LEN {
            Some(format!("has {} characters (at most {})", s.len(), Self::MAX_LEN))
        } else {
            s.chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
                .map(|c| format!("contains {c:?}; only A-Z, a-z, 0-9, '_' and '-' are allowed"))
        };
        match problem {
            None => Ok(()),
            Some(reason) => Err(crate::ProtocolError::BadSession { got: crate::error::shorten(s), reason }),
        }
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An image the browser sent (upload, drop, snapshot).
    Client,
    /// A frame picked at random by the simulation-service (dataset, else image folder).
    Random,
    /// A frame of the dataset's held-out test split.
    Dataset,
    /// An image from the simulation-service's image folder.
    Folder,
    /// A camera frame (the browser's camera in a `stimulus`, the server's in a stream).
    Webcam,
    /// A recorded response replayed with its true frame.
    Recorded,
    /// A response painted by a person in the browser (`imagined`), not simulated.
    Imagined,
    /// Activity the simulation-service dreams up without an image (the `dream` stream).
    Dream,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Client => "client",
            Source::Random => "random",
            Source::Dataset => "dataset",
            Source::Folder => "folder",
            Source::Webcam => "webcam",
            Source::Recorded => "recorded",
            Source::Imagined => "imagined",
            Source::Dream => "dream",
        }
    }
}

/// What the simulation-service can stream by itself after `start_stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamSource {
    /// Recorded responses of held-out test segments, in order, with their true frames.
    Recorded,
    /// Random frames of the dataset, through the model.
    Dataset,
    /// Images of the image folder, in order, through the model.
    Folder,
    /// The server's camera (only in builds with the `webcam` feature).
    Webcam,
    /// No image: a slow walk through the image latent z between the latents of natural
    /// frames, decoded to rates by the waveform_decoder.
    Dream,
}

impl StreamSource {
    pub fn as_source(self) -> Source {
        match self {
            StreamSource::Recorded => Source::Recorded,
            StreamSource::Dataset => Source::Dataset,
            StreamSource::Folder => Source::Folder,
            StreamSource::Webcam => Source::Webcam,
            StreamSource::Dream => Source::Dream,
        }
    }
}

/// Which modelled V1 population a message is about: the field `population`, absent
/// meaning [`Population::Pvc1`] (every message written before there were two keeps its
/// meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Population {
    /// The pvc-1 array: ~100 channels, the crop at the array's receptive-field footprint.
    #[default]
    Pvc1,
    /// The wide-field population: arrays tiling the whole 4:3 movie frame.
    Wide,
}

impl Population {
    pub const ALL: [Population; 2] = [Population::Pvc1, Population::Wide];

    pub fn as_str(self) -> &'static str {
        match self {
            Population::Pvc1 => "pvc1",
            Population::Wide => "wide",
        }
    }
}

impl std::fmt::Display for Population {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a simulated response is the model's predicted mean counts or one trial: the
/// field `trial`, absent meaning [`Trial::Mean`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trial {
    /// The predicted mean counts per bin (what every response was before `trial`).
    #[default]
    Mean,
    /// One Poisson draw per predicted mean count: whole numbers, like a recorded trial.
    Single,
}

impl Trial {
    pub fn as_str(self) -> &'static str {
        match self {
            Trial::Mean => "mean",
            Trial::Single => "single",
        }
    }
}

/// A string-valued field with a fixed set of values, read so that a wrong value is
/// refused with the field's name, the value and every valid value (serde's own message
/// names neither the field nor, for long values, the value in a readable way).
struct Choice {
    field: &'static str,
    valid: &'static str,
}

impl Choice {
    fn read<'de, D, T>(self, deserializer: D, parse: fn(&str) -> Option<T>) -> Result<T, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        match &value {
            serde_json::Value::String(s) => parse(s).ok_or_else(|| {
                D::Error::custom(format!("{} {:?} is not one of the valid values: {}", self.field, crate::error::shorten(s), self.valid))
            }),
            other => Err(D::Error::custom(format!(
                "{} must be a string, one of {}; got {}",
                self.field,
                self.valid,
                crate::error::shorten(&other.to_string())
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Population {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let choice = Choice { field: "population", valid: "\"pvc1\" (the pvc-1 array, the default) or \"wide\" (the wide-field population)" };
        choice.read(deserializer, |s| Population::ALL.into_iter().find(|p| p.as_str() == s))
    }
}

impl<'de> Deserialize<'de> for Trial {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let choice = Choice { field: "trial", valid: "\"mean\" (the predicted mean counts, the default) or \"single\" (one Poisson draw per count)" };
        choice.read(deserializer, |s| [Trial::Mean, Trial::Single].into_iter().find(|t| t.as_str() == s))
    }
}

/// simulation-service → relay (`/ws/ingest`): the response to one frame, to reconstruct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveformLatent {
    pub session_id: SessionId,
    /// Lag-major response: `payload[l * channels + c]`.
    pub payload: Vec<f32>,
    /// Per-session frame id; the relay acknowledges and de-duplicates by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_id: Option<u64>,
    /// `[lags, channels]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<[usize; 2]>,
    /// Sender clock, ms since the Unix epoch, for end-to-end latency figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The population whose model made the response, and whose model reconstructs it
    /// (`"pvc1"` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
}

/// relay → sender (acknowledgement) and → subscribers: the image reconstructed from one
/// response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconstructedImage {
    pub session_id: SessionId,
    /// A `data:image/jpeg;base64,` URL.
    pub image_base64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_id: Option<u64>,
    /// Copied from the `waveform_latent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<u64>,
    /// Relay processing time (receipt to reply), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Copied from the `waveform_latent`: the population whose model reconstructed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
}

/// relay → sender: a re-sent `waveform_latent` whose `frame_id` the relay had already
/// reconstructed. It acknowledges the frame without reconstructing it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub session_id: SessionId,
    pub frame_id: u64,
}

/// The HTTP header a sender puts on its `/ws/ingest` upgrade request to choose how the
/// relay answers each reconstructed frame (see [`IngestReply`]). Absent, the relay answers
/// as the seed design did: with the whole `reconstructed_image`.
pub const INGEST_REPLY_HEADER: &str = "v1-ingest-reply";

/// How the relay answers a sender on `/ws/ingest` for each frame it reconstructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IngestReply {
    /// The `reconstructed_image` itself (the default; what senders written to the seed's
    /// two messages expect).
    #[default]
    Image,
    /// An [`Ack`] naming the session and frame: all a sender that keeps frames until they
    /// are acknowledged needs (the simulation-service asks for this). A frame sent without
    /// `frame_id` still gets its `reconstructed_image`, since an `ack` could not name it.
    Ack,
}

impl IngestReply {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestReply::Image => "image",
            IngestReply::Ack => "ack",
        }
    }

    /// Reads the header value; the error says what is accepted.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "image" => Ok(IngestReply::Image),
            "ack" => Ok(IngestReply::Ack),
            other => Err(format!(
                "{INGEST_REPLY_HEADER}: {:?} is not a reply mode; use \"ack\" (an ack per frame) or \"image\" (the reconstructed_image, the default)",
                crate::error::shorten(other)
            )),
        }
    }
}

/// simulation-service → browser: the relay has acknowledged this frame's
/// `waveform_latent` (reconstructed it into the session's buffer, or already had it).
///
/// Until this arrives the frame exists only in the simulation-service's memory, which a
/// crash loses; a browser that must not lose frames keeps each stimulus until its
/// `delivered` and sends the undelivered ones again (same `frame_id`s) after
/// reconnecting. The relay's (session, frame_id) de-duplication makes that idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivered {
    pub session_id: SessionId,
    pub frame_id: u64,
}

/// browser → simulation-service (`/ws`): one frame to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stimulus {
    pub session_id: SessionId,
    /// `token` from `POST /api/sessions`.
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_id: Option<u64>,
    /// A JPEG or PNG data URL; absent when the service should pick the frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Without `image`: `random`, `dataset` or `folder`. With `image`: a label
    /// (`client`, `webcam`) copied to the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The population to simulate (`"pvc1"` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
    /// `"single"`: a Poisson draw of the predicted mean counts instead of the means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
}

/// browser -> simulation-service (`/ws`): a response edited by hand (Imagine mode), to be
/// reconstructed like a simulated one. Checked like any response (length, finite values)
/// and, since it claims to be spike counts, every value in
/// `0..=`[`crate::validate::MAX_IMAGINED_COUNT`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imagined {
    pub session_id: SessionId,
    /// `token` from `POST /api/sessions`.
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_id: Option<u64>,
    /// Lag-major counts: `payload[l * channels + c]`.
    pub payload: Vec<f32>,
    /// The population the payload belongs to (`"pvc1"` when absent); its length must be
    /// that population's lags x channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
}

/// Where a recorded frame sits in the dataset, so a viewer can name what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedPosition {
    pub movie: u16,
    pub segment: u16,
    pub frame: u16,
}

/// simulation-service → browser: the population response to one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub session_id: SessionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_id: Option<u64>,
    /// Lag-major: `payload[l * channels + c]`; predicted mean counts, or recorded counts
    /// when `source` is `recorded`.
    pub payload: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<[usize; 2]>,
    /// The grayscale crop the model saw (the true frame in recorded mode), a data URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_image: Option<String>,
    /// Simulation processing time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<u64>,
    /// In recorded mode: which movie, segment and frame this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedPosition>,
    /// The population that answered, as the request named it (absent: `"pvc1"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
    /// `"single"` when the payload is one Poisson draw of the predicted means (absent:
    /// the means themselves, or recorded counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
}

/// browser → simulation-service: stream frames from a server-side source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartStream {
    pub session_id: SessionId,
    pub token: String,
    pub source: StreamSource,
    /// Frames per second, 1–30; 30 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// The population to simulate (`"pvc1"` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
    /// `"single"`: each frame's response is a Poisson draw of the predicted means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
}

/// browser → simulation-service: stop this connection's stream of the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopStream {
    pub session_id: SessionId,
}

/// browser → relay (`/ws/subscribe`): receive the session's reconstructions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    pub session_id: SessionId,
    pub token: String,
}

/// relay → browser: the subscription holds; `buffered` images follow in frame order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribed {
    pub session_id: SessionId,
    pub buffered: usize,
}

/// Any direction: something was wrong with a message or the service could not serve it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorMessage {
    pub code: ErrorCode,
    /// What was wrong, where, and what to do, for a person.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_id: Option<u64>,
}

/// One WebSocket text frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    WaveformLatent(WaveformLatent),
    ReconstructedImage(ReconstructedImage),
    Ack(Ack),
    Delivered(Delivered),
    Stimulus(Stimulus),
    Imagined(Imagined),
    Response(Response),
    StartStream(StartStream),
    StopStream(StopStream),
    Subscribe(Subscribe),
    Subscribed(Subscribed),
    Error(ErrorMessage),
}

/// The `type` of a message, for listing what an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    WaveformLatent,
    ReconstructedImage,
    Ack,
    Delivered,
    Stimulus,
    Imagined,
    Response,
    StartStream,
    StopStream,
    Subscribe,
    Subscribed,
    Error,
}

impl MessageType {
    pub const ALL: [MessageType; 12] = [
        MessageType::WaveformLatent,
        MessageType::ReconstructedImage,
        MessageType::Ack,
        MessageType::Delivered,
        MessageType::Stimulus,
        MessageType::Imagined,
        MessageType::Response,
        MessageType::StartStream,
        MessageType::StopStream,
        MessageType::Subscribe,
        MessageType::Subscribed,
        MessageType::Error,
    ];

    /// The `"type"` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::WaveformLatent => "waveform_latent",
            MessageType::ReconstructedImage => "reconstructed_image",
            MessageType::Ack => "ack",
            MessageType::Delivered => "delivered",
            MessageType::Stimulus => "stimulus",
            MessageType::Imagined => "imagined",
            MessageType::Response => "response",
            MessageType::StartStream => "start_stream",
            MessageType::StopStream => "stop_stream",
            MessageType::Subscribe => "subscribe",
            MessageType::Subscribed => "subscribed",
            MessageType::Error => "error",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::WaveformLatent(_) => MessageType::WaveformLatent,
            Message::ReconstructedImage(_) => MessageType::ReconstructedImage,
            Message::Ack(_) => MessageType::Ack,
            Message::Delivered(_) => MessageType::Delivered,
            Message::Stimulus(_) => MessageType::Stimulus,
            Message::Imagined(_) => MessageType::Imagined,
            Message::Response(_) => MessageType::Response,
            Message::StartStream(_) => MessageType::StartStream,
            Message::StopStream(_) => MessageType::StopStream,
            Message::Subscribe(_) => MessageType::Subscribe,
            Message::Subscribed(_) => MessageType::Subscribed,
            Message::Error(_) => MessageType::Error,
        }
    }

    /// The session the message is about, when it names one.
    pub fn session_id(&self) -> Option<&SessionId> {
        match self {
            Message::WaveformLatent(m) => Some(&m.session_id),
            Message::ReconstructedImage(m) => Some(&m.session_id),
            Message::Ack(m) => Some(&m.session_id),
            Message::Delivered(m) => Some(&m.session_id),
            Message::Stimulus(m) => Some(&m.session_id),
            Message::Imagined(m) => Some(&m.session_id),
            Message::Response(m) => Some(&m.session_id),
            Message::StartStream(m) => Some(&m.session_id),
            Message::StopStream(m) => Some(&m.session_id),
            Message::Subscribe(m) => Some(&m.session_id),
            Message::Subscribed(m) => Some(&m.session_id),
            Message::Error(m) => m.session_id.as_ref(),
        }
    }

    /// The frame the message is about, when it names one.
    pub fn frame_id(&self) -> Option<u64> {
        match self {
            Message::WaveformLatent(m) => m.frame_id,
            Message::ReconstructedImage(m) => m.frame_id,
            Message::Ack(m) => Some(m.frame_id),
            Message::Delivered(m) => Some(m.frame_id),
            Message::Stimulus(m) => m.frame_id,
            Message::Imagined(m) => m.frame_id,
            Message::Response(m) => m.frame_id,
            Message::Error(m) => m.frame_id,
            Message::StartStream(_) | Message::StopStream(_) | Message::Subscribe(_) | Message::Subscribed(_) => None,
        }
    }

    /// The JSON text of the message. Values are validated before they are sent, so the
    /// only way this could fail (a non-finite float) does not arise; should it, the
    /// message is replaced by an `internal` error rather than sending invalid JSON.
    pub fn to_json(&self) -> String {
        match serde_json::to_string(self) {
            Ok(s) => s,
            Err(e) => {
                let fallback = Message::Error(ErrorMessage {
                    code: ErrorCode::Internal,
                    message: format!("a {} message could not be encoded: {e}", self.message_type()),
                    session_id: self.session_id().cloned(),
                    frame_id: self.frame_id(),
                });
                serde_json::to_string(&fallback).unwrap_or_else(|_| {
                    r#"{"type":"error","code":"internal","message":"a message could not be encoded"}"#.to_owned()
                })
            }
        }
    }
}

macro_rules! into_message {
    ($($variant:ident),*) => {
        $(impl From<$variant> for Message {
            fn from(m: $variant) -> Self {
                Message::$variant(m)
            }
        })*
    };
}
into_message!(WaveformLatent, ReconstructedImage, Ack, Delivered, Stimulus, Imagined, Response, StartStream, StopStream, Subscribe, Subscribed);

impl From<ErrorMessage> for Message {
    fn from(m: ErrorMessage) -> Self {
        Message::Error(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_reply_modes_read_their_header_values_and_name_the_header_otherwise() {
        assert_eq!(IngestReply::default(), IngestReply::Image);
        for mode in [IngestReply::Image, IngestReply::Ack] {
            assert_eq!(IngestReply::parse(mode.as_str()), Ok(mode));
        }
        assert_eq!(IngestReply::parse(" ack "), Ok(IngestReply::Ack));
        let e = IngestReply::parse("ACKS").unwrap_err();
        assert!(e.contains(INGEST_REPLY_HEADER) && e.contains("\"ACKS\"") && e.contains("\"ack\""), "{e}");
    }
}
