//! The wire format against `fixtures/wire-format.json`, the examples that the frontend's
//! tests and its fake services check too: every valid message decodes at each endpoint
//! that reads it and encodes back to the same JSON value, every invalid one is refused
//! with its error code, and every message type the protocol has appears with both kinds
//! of example, so that a new message cannot reach the wire without them.

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value;
use shared_protocol::*;

fn fixture() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/wire-format.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn endpoint(name: &str) -> Endpoint {
    match name {
        "relay_ingest" => RELAY_INGEST,
        "relay_subscribe" => RELAY_SUBSCRIBE,
        "simulation" => SIMULATION,
        "ingest_replies" => INGEST_REPLIES,
        "subscriber" => SUBSCRIBER,
        "simulation_client" => SIMULATION_CLIENT,
        other => panic!("the fixture names an endpoint {other:?} that the protocol does not have"),
    }
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} should be an array in {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("{field} should hold strings in {v}")).to_owned())
        .collect()
}

fn entries<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v[field].as_array().unwrap_or_else(|| panic!("{field} should be an array in {v}"))
}

/// The text frame of an invalid example: `text` as it is (it may not be JSON), else
/// `message` serialised.
fn frame_of(example: &Value) -> String {
    match (&example["text"], &example["message"]) {
        (Value::String(text), Value::Null) => text.clone(),
        (Value::Null, message) if !message.is_null() => message.to_string(),
        _ => panic!("an invalid example needs `text` or `message`, not both: {example}"),
    }
}

/// Checks one invalid example at each endpoint it names (its own `endpoint`, else the
/// message's `endpoints`); what went wrong goes to `problems`.
fn check_refused(example: &Value, endpoints: &[String], problems: &mut Vec<String>) {
    let why = example["why"].as_str().unwrap_or_else(|| panic!("an invalid example needs `why`: {example}"));
    let code = example["code"].as_str().unwrap_or_else(|| panic!("an invalid example needs `code`: {example}"));
    let own = example["endpoint"].as_str().map(|e| vec![e.to_owned()]);
    let text = frame_of(example);
    for name in own.as_deref().unwrap_or(endpoints) {
        match decode(&text, &endpoint(name)) {
            Ok(m) => problems.push(format!("{why}: accepted at {name} as {m:?}")),
            Err(e) if e.code().as_str() != code => {
                problems.push(format!("{why}: refused at {name} with {} instead of {code}: {e}", e.code().as_str()))
            }
            Err(_) => {}
        }
    }
}

#[test]
fn every_valid_example_decodes_and_round_trips_and_every_invalid_one_is_refused() {
    let fixture = fixture();
    let mut covered = HashSet::new();
    let mut problems = Vec::new();
    for message in entries(&fixture, "messages") {
        let ty = message["type"].as_str().unwrap_or_else(|| panic!("a message without type: {message}"));
        let wire = MessageType::from_wire(ty).unwrap_or_else(|| panic!("the fixture has a message type {ty:?} the protocol does not"));
        assert!(covered.insert(wire), "{ty} appears twice in the fixture");
        let endpoints = strings(message, "endpoints");
        assert!(!endpoints.is_empty(), "{ty}: no endpoint reads it");
        let valid = entries(message, "valid");
        let invalid = entries(message, "invalid");
        assert!(!valid.is_empty() && !invalid.is_empty(), "{ty}: needs valid and invalid examples");
        for example in valid {
            assert_eq!(example["type"], ty, "a valid example under {ty}: {example}");
            let text = example.to_string();
            for name in &endpoints {
                match decode(&text, &endpoint(name)) {
                    Ok(decoded) => {
                        let again: Value = serde_json::from_str(&decoded.to_json()).unwrap();
                        if decoded.message_type() != wire || &again != example {
                            problems.push(format!("{text} at {name} encoded back as {again}"));
                        }
                    }
                    Err(e) => problems.push(format!("{text} refused at {name}: {e}")),
                }
            }
        }
        for example in invalid {
            check_refused(example, &endpoints, &mut problems);
        }
    }
    for example in entries(&fixture, "any_type") {
        let all: Vec<String> = ["relay_ingest", "relay_subscribe", "simulation", "ingest_replies", "subscriber", "simulation_client"]
            .map(str::to_owned)
            .to_vec();
        check_refused(example, &all, &mut problems);
    }
    assert!(problems.is_empty(), "fixtures/wire-format.json and the decoder disagree:\n{}", problems.join("\n"));
    let missing: Vec<&str> = MessageType::ALL.iter().filter(|t| !covered.contains(t)).map(|t| t.as_str()).collect();
    assert!(missing.is_empty(), "message types without examples in fixtures/wire-format.json: {missing:?}; add valid and invalid ones");
}

/// The check above is only as good as its refusal to pass silently: an example that
/// decodes where it should be refused, or is refused with another code, is reported.
#[test]
fn a_valid_message_listed_as_invalid_or_a_wrong_code_is_reported() {
    let mut problems = Vec::new();
    let fine = serde_json::json!({"why": "actually fine", "code": "bad_message", "message": {"type": "ack", "session_id": "s1", "frame_id": 7}});
    check_refused(&fine, &["ingest_replies".to_owned()], &mut problems);
    let wrong_code = serde_json::json!({"why": "bad session", "code": "bad_json", "message": {"type": "ack", "session_id": "a b", "frame_id": 7}});
    check_refused(&wrong_code, &["ingest_replies".to_owned()], &mut problems);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("actually fine: accepted at ingest_replies"), "{}", problems[0]);
    assert!(problems[1].contains("with bad_session instead of bad_json"), "{}", problems[1]);
}
