//! Feeds arbitrary bytes to every message parser and validator of the wire protocol:
//! `decode` at each endpoint, the session-id rules, token checks and the `Origin`
//! policy. Every input must end in a value or an error; whatever decodes must encode
//! again and decode to the same message (what a service sends, a peer can read).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_protocol::{
    decode, validate, Endpoint, Message, OriginPolicy, SessionId, SharedSecret, INGEST_REPLIES, RELAY_INGEST,
    RELAY_SUBSCRIBE, SIMULATION, SIMULATION_CLIENT, SUBSCRIBER,
};

const ENDPOINTS: [Endpoint; 6] = [RELAY_INGEST, RELAY_SUBSCRIBE, SIMULATION, INGEST_REPLIES, SUBSCRIBER, SIMULATION_CLIENT];

fuzz_target!(|data: &[u8]| {
    // Services receive text frames, which are UTF-8 by the WebSocket rules; invalid
    // UTF-8 is refused before the parser, so it is mapped here instead of skipped.
    let text = String::from_utf8_lossy(data);
    for endpoint in &ENDPOINTS {
        match decode(&text, endpoint) {
            Ok(message) => round_trip(&message, endpoint),
            Err(e) => {
                // Every error has a code and a message a person can read.
                let reply = e.to_error_message(None, None);
                assert!(!reply.message.is_empty());
                let _ = Message::Error(reply).to_json();
            }
        }
    }
    // Any JSON value that parses as some message: validation never panics.
    if let Ok(message) = serde_json::from_str::<Message>(&text) {
        let _ = validate(&message);
    }
    // The same text as a session id, a token and an Origin header.
    let session = SessionId::new_unchecked(text.to_string());
    if session.check().is_ok() {
        let secret = SharedSecret::new("fuzz-secret-0123456789abcdef").expect("a 28-byte secret is long enough");
        let token = secret.token_for(&session);
        assert!(secret.verify_token(&session, &token).is_ok());
        assert!(secret.verify_token(&session, &text).is_err() || text == token);
    }
    let _ = OriginPolicy::default().admits(Some(&text));
    let _ = OriginPolicy::with_list(&text);
});

fn round_trip(message: &Message, endpoint: &Endpoint) {
    let json = message.to_json();
    match decode(&json, endpoint) {
        Ok(again) => assert_eq!(&again, message, "re-decoding {json}"),
        Err(e) => panic!("{json} was decoded from input but does not decode again: {e}"),
    }
}
