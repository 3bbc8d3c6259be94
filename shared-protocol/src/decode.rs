//! Turning one text frame into a validated [`Message`], with an error that names the
//! right code: not JSON (`bad_json`), a NaN/Infinity literal (`non_finite`), no or an
//! unknown `type` (`bad_message`, `unknown_type`), bad fields (`bad_message`), or a
//! rule of [`crate::validate`] broken.

use serde::Deserialize;

use crate::error::{shorten, ProtocolError};
use crate::message::{Message, MessageType};
use crate::validate::validate;

/// An endpoint: its name, for error messages, and the message types it accepts.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub name: &'static str,
    pub accepts: &'static [MessageType],
}

/// The relay's `/ws/ingest`.
pub const RELAY_INGEST: Endpoint = Endpoint { name: "the relay's /ws/ingest", accepts: &[MessageType::WaveformLatent] };
/// The relay's `/ws/subscribe`.
pub const RELAY_SUBSCRIBE: Endpoint = Endpoint { name: "the relay's /ws/subscribe", accepts: &[MessageType::Subscribe] };
/// The simulation-service's `/ws`.
pub const SIMULATION: Endpoint = Endpoint {
    name: "the simulation-service's /ws",
    accepts: &[MessageType::Stimulus, MessageType::Imagined, MessageType::StartStream, MessageType::StopStream],
};
/// What the relay sends back on `/ws/ingest` (read by the simulation-service).
pub const INGEST_REPLIES: Endpoint = Endpoint {
    name: "a client of /ws/ingest",
    accepts: &[MessageType::ReconstructedImage, MessageType::Ack, MessageType::Error],
};
/// What the relay sends on `/ws/subscribe` (read by browsers and tests).
pub const SUBSCRIBER: Endpoint = Endpoint {
    name: "a subscriber",
    accepts: &[MessageType::Subscribed, MessageType::ReconstructedImage, MessageType::Error],
};
/// What the simulation-service sends on `/ws`.
pub const SIMULATION_CLIENT: Endpoint =
    Endpoint {
    name: "a client of the simulation-service",
    accepts: &[MessageType::Response, MessageType::Delivered, MessageType::Error],
};

impl Endpoint {
    fn expected(&self) -> String {
        self.accepts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Only the `type` of a message, read when the full parse failed to say why.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
}

/// Parses and validates one text frame received at `endpoint`.
pub fn decode(text: &str, endpoint: &Endpoint) -> Result<Message, ProtocolError> {
    match serde_json::from_str::<Message>(text) {
        Ok(message) => {
            let ty = message.message_type();
            if !endpoint.accepts.contains(&ty) {
                return Err(ProtocolError::NotAccepted {
                    got: ty,
                    endpoint: endpoint.name.to_owned(),
                    expected: endpoint.expected(),
                });
            }
            validate(&message)?;
            Ok(message)
        }
        Err(e) => Err(explain(text, &e, endpoint)),
    }
}

/// Why `text` did not parse as a message.
fn explain(text: &str, e: &serde_json::Error, endpoint: &Endpoint) -> ProtocolError {
    use serde_json::error::Category;
    if matches!(e.classify(), Category::Syntax | Category::Eof | Category::Io) {
        let (line, column) = (e.line(), e.column());
        if e.to_string().starts_with("number out of range") || non_finite_literal_at(text, line, column) {
            return ProtocolError::NonFiniteLiteral { line, column };
        }
        return ProtocolError::BadJson { message: strip_position(e), line, column };
    }
    let envelope = match serde_json::from_str::<Envelope>(text) {
        Ok(env) => env,
        Err(_) => return ProtocolError::NotAnObject,
    };
    let kind = match envelope.kind {
        Some(serde_json::Value::String(s)) => s,
        _ => return ProtocolError::MissingType { expected: endpoint.expected() },
    };
    match MessageType::from_wire(&kind) {
        Some(ty) if endpoint.accepts.contains(&ty) => ProtocolError::BadFields { message_type: ty, detail: strip_position(e) },
        Some(ty) => ProtocolError::NotAccepted { got: ty, endpoint: endpoint.name.to_owned(), expected: endpoint.expected() },
        None => ProtocolError::UnknownType { got: shorten(&kind), endpoint: endpoint.name.to_owned(), expected: endpoint.expected() },
    }
}

/// serde_json's message without its trailing " at line L column C" (reported separately
/// or meaningless for a single-line frame), with every quoted piece of the input
/// shortened: serde names an unknown field or variant in full, and a peer must not be
/// able to make an error message as large as its own message.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => s.as_str(),
    };
    shorten_quoted(s)
}

/// `text` with each backtick-quoted part cut to [`shorten`]'s length; the whole at most
/// [`MAX_DETAIL`] characters.
fn shorten_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DETAIL));
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        // Odd parts sit between backticks: they quote the input.
        if i % 2 == 1 {
            out.push_str(&shorten(part));
        } else {
            out.push_str(part);
        }
    }
    if out.chars().count() > MAX_DETAIL {
        out = out.chars().take(MAX_DETAIL - 3).collect::<String>() + "...";
    }
    out
}

/// Longest explanation taken from the JSON parser.
const MAX_DETAIL: usize = 600;

/// Whether the syntax error at (line, column) sits on `NaN`, `Infinity` or `-Infinity`,
/// which JavaScript's `JSON.stringify` never writes but hand-written senders might.
fn non_finite_literal_at(text: &str, line: usize, column: usize) -> bool {
    let Some(line_text) = text.lines().nth(line.saturating_sub(1)) else { return false };
    // serde_json reports the column of the offending character (1-based) or just past it.
    let start = column.saturating_sub(2);
    let window: String = line_text.chars().skip(start).take(12).collect();
    ["NaN", "Infinity"].iter().any(|lit| window.contains(lit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn code(text: &str, endpoint: &Endpoint) -> ErrorCode {
        decode(text, endpoint).unwrap_err().code()
    }

    #[test]
    fn classifies_nan_and_infinity_literals() {
        let t = r#"{"type":"waveform_latent","session_id":"a","payload":[1.0,NaN]}"#;
        assert_eq!(code(t, &RELAY_INGEST), ErrorCode::NonFinite);
        let t = r#"{"type":"waveform_latent","session_id":"a","payload":[Infinity]}"#;
        assert_eq!(code(t, &RELAY_INGEST), ErrorCode::NonFinite);
        let t = r#"{"type":"waveform_latent","session_id":"a","payload":[-Infinity]}"#;
        assert_eq!(code(t, &RELAY_INGEST), ErrorCode::NonFinite);
        let t = r#"{"type":"waveform_latent","session_id":"a","payload":[1e999]}"#;
        assert_eq!(code(t, &RELAY_INGEST), ErrorCode::NonFinite);
    }

    #[test]
    fn plain_syntax_errors_are_bad_json() {
        let err = decode(r#"{"type":"waveform_latent","#, &RELAY_INGEST).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadJson);
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        assert_eq!(code("not json", &RELAY_INGEST), ErrorCode::BadJson);
    }

    #[test]
    fn non_objects_and_missing_types_are_bad_messages() {
        assert_eq!(code("[1,2,3]", &RELAY_INGEST), ErrorCode::BadMessage);
        assert_eq!(code("42", &RELAY_INGEST), ErrorCode::BadMessage);
        let err = decode(r#"{"session_id":"a","payload":[1]}"#, &RELAY_INGEST).unwrap_err();
        assert!(matches!(err, ProtocolError::MissingType { .. }), "{err:?}");
        let err = decode(r#"{"type":5,"session_id":"a"}"#, &RELAY_INGEST).unwrap_err();
        assert!(matches!(err, ProtocolError::MissingType { .. }), "{err:?}");
    }

    /// Found by the relay's abuse suite: a 1 MB field name, enum variant or type came
    /// back in full inside the error message.
    #[test]
    fn megabyte_names_are_not_echoed_in_errors() {
        let mega = "x".repeat(1_000_000);
        for text in [
            format!(r#"{{"type":"waveform_latent","session_id":"a","payload":[1],"{mega}":1}}"#),
            format!(r#"{{"type":"waveform_latent","session_id":"a","payload":[1],"source":"{mega}"}}"#),
            format!(r#"{{"type":"{mega}","session_id":"a","payload":[1]}}"#),
            format!(r#"{{"type":"waveform_latent","session_id":"{mega}","payload":[1]}}"#),
        ] {
            let err = decode(&text, &RELAY_INGEST).unwrap_err();
            let message = err.to_string();
            assert!(message.len() < 1_000, "{} bytes: {:.200}", message.len(), message);
            assert!(message.contains("xxx..."), "{message:.300}");
        }
        let err = decode(&format!(r#"{{"type":"waveform_latent","session_id":"a","payload":[1],"{mega}":1}}"#), &RELAY_INGEST).unwrap_err();
        assert!(err.to_string().contains("expected one of `session_id`, `payload`"), "{err}");
    }

    #[test]
    fn wrong_endpoint_is_unknown_type_naming_what_is_accepted() {
        let t = r#"{"type":"subscribe","session_id":"a","token":"b"}"#;
        let err = decode(t, &RELAY_INGEST).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnknownType);
        assert!(err.to_string().contains("accepts waveform_latent"), "{err}");
        // Even when it is malformed as well.
        let err = decode(r#"{"type":"subscribe"}"#, &RELAY_INGEST).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnknownType);
    }
}
