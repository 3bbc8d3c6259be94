//! The wire format against the seed's messages, the examples of docs/protocol.md, and
//! each kind of bad input.

use shared_protocol::*;

const SEED_LATENT: &str = r#"{"type":"waveform_latent","session_id":"xyz123","payload":[0.023,0.55,-0.011]}"#;
const SEED_IMAGE: &str =
    r#"{"type":"reconstructed_image","session_id":"xyz123","image_base64":"data:image/jpeg;base64,/9j/4AAQ"}"#;

#[test]
fn seed_messages_round_trip_byte_for_byte() {
    let latent = decode(SEED_LATENT, &RELAY_INGEST).unwrap();
    match &latent {
        Message::WaveformLatent(m) => {
            assert_eq!(m.session_id.as_str(), "xyz123");
            assert_eq!(m.payload, vec![0.023, 0.55, -0.011]);
            assert_eq!((m.frame_id, m.shape, m.sent_at_ms, m.source), (None, None, None, None));
        }
        other => panic!("decoded as {other:?}"),
    }
    assert_eq!(latent.to_json(), SEED_LATENT);

    let image = decode(SEED_IMAGE, &INGEST_REPLIES).unwrap();
    assert_eq!(image.to_json(), SEED_IMAGE);
    let image = decode(SEED_IMAGE, &SUBSCRIBER).unwrap();
    assert_eq!(image.to_json(), SEED_IMAGE);
}

#[test]
fn every_documented_example_decodes_at_its_endpoint_and_round_trips() {
    let token = "9b1e".repeat(16);
    let examples: Vec<(String, Endpoint)> = vec![
        (
            r#"{"type":"waveform_latent","session_id":"s1","payload":[1.5,2.0,0.0,4.25,0.5,1.0],"frame_id":7,"shape":[2,3],"sent_at_ms":1700000000000,"source":"recorded"}"#.into(),
            RELAY_INGEST,
        ),
        (
            r#"{"type":"reconstructed_image","session_id":"s1","image_base64":"data:image/jpeg;base64,/9j/","frame_id":7,"sent_at_ms":1700000000000,"latency_ms":3.5}"#.into(),
            SUBSCRIBER,
        ),
        (r#"{"type":"ack","session_id":"s1","frame_id":7}"#.into(), INGEST_REPLIES),
        (r#"{"type":"delivered","session_id":"s1","frame_id":7}"#.into(), SIMULATION_CLIENT),
        (
            format!(r#"{{"type":"stimulus","session_id":"s1","token":"{token}","frame_id":7,"image":"data:image/png;base64,iVBORw0KGgo="}}"#),
            SIMULATION,
        ),
        (format!(r#"{{"type":"stimulus","session_id":"s1","token":"{token}","frame_id":8,"source":"random"}}"#), SIMULATION),
        (
            r#"{"type":"response","session_id":"s1","frame_id":7,"payload":[0.4,1.2],"shape":[1,2],"input_image":"data:image/png;base64,iVBO","latency_ms":2.1,"source":"recorded","recorded":{"movie":0,"segment":3,"frame":17}}"#.into(),
            SIMULATION_CLIENT,
        ),
        (format!(r#"{{"type":"start_stream","session_id":"s1","token":"{token}","source":"recorded","fps":30}}"#), SIMULATION),
        (format!(r#"{{"type":"imagined","session_id":"s1","token":"{token}","frame_id":9,"payload":[0.4,1.2,0.0,3.5]}}"#), SIMULATION),
        (format!(r#"{{"type":"start_stream","session_id":"s1","token":"{token}","source":"dream","fps":20}}"#), SIMULATION),
        (
            r#"{"type":"waveform_latent","session_id":"s1","payload":[0.4,1.2],"frame_id":9,"shape":[1,2],"source":"imagined"}"#.into(),
            RELAY_INGEST,
        ),
        (r#"{"type":"response","session_id":"s1","frame_id":10,"payload":[0.4,1.2],"shape":[1,2],"source":"dream"}"#.into(), SIMULATION_CLIENT),
        (r#"{"type":"stop_stream","session_id":"s1"}"#.into(), SIMULATION),
        (format!(r#"{{"type":"subscribe","session_id":"s1","token":"{token}"}}"#), RELAY_SUBSCRIBE),
        (r#"{"type":"subscribed","session_id":"s1","buffered":12}"#.into(), SUBSCRIBER),
        (
            r#"{"type":"error","code":"payload_length","message":"payload has 3 values","session_id":"xyz123","frame_id":7}"#.into(),
            SUBSCRIBER,
        ),
    ];
    for (text, endpoint) in examples {
        let m = decode(&text, &endpoint).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(m.to_json(), text);
    }
}

fn err(text: &str, endpoint: &Endpoint) -> ProtocolError {
    decode(text, endpoint).expect_err(text)
}

#[test]
fn missing_extra_and_mistyped_fields_are_bad_messages_that_name_the_field() {
    let e = err(r#"{"type":"waveform_latent","session_id":"xyz123"}"#, &RELAY_INGEST);
    assert_eq!(e.code(), ErrorCode::BadMessage);
    assert!(e.to_string().contains("missing field `payload`"), "{e}");

    let e = err(r#"{"type":"waveform_latent","session_id":"xyz123","payload":[1],"colour":"red"}"#, &RELAY_INGEST);
    assert_eq!(e.code(), ErrorCode::BadMessage);
    assert!(e.to_string().contains("unknown field `colour`"), "{e}");

    let e = err(r#"{"type":"waveform_latent","session_id":"xyz123","payload":"1,2"}"#, &RELAY_INGEST);
    assert_eq!(e.code(), ErrorCode::BadMessage);
    assert!(e.to_string().starts_with("waveform_latent:"), "{e}");

    let e = err(r#"{"type":"waveform_latent","session_id":"xyz123","payload":[1],"frame_id":-1}"#, &RELAY_INGEST);
    assert_eq!(e.code(), ErrorCode::BadMessage);
}

#[test]
fn unknown_types_list_what_the_endpoint_accepts() {
    let e = err(r#"{"type":"waveform","session_id":"xyz123","payload":[1]}"#, &RELAY_INGEST);
    assert_eq!(e.code(), ErrorCode::UnknownType);
    assert!(e.to_string().contains("\"waveform\""), "{e}");
    assert!(e.to_string().contains("waveform_latent"), "{e}");
    let e = err(r#"{"type":"waveform_latent","session_id":"a","payload":[1]}"#, &SIMULATION);
    assert!(e.to_string().contains("stimulus, imagined, start_stream, stop_stream"), "{e}");
}

#[test]
fn payload_rules() {
    let e = err(r#"{"type":"waveform_latent","session_id":"a","payload":[]}"#, &RELAY_INGEST);
    assert_eq!(e.code(), ErrorCode::BadMessage);
    // 1e39 fits JSON and f64 but not f32: reported as non-finite with its index.
    let e = err(r#"{"type":"waveform_latent","session_id":"a","payload":[0,1,1e39]}"#, &RELAY_INGEST);
    assert_eq!(e.code(), ErrorCode::NonFinite);
    assert!(e.to_string().contains("payload[2]"), "{e}");
    let long = format!(
        r#"{{"type":"waveform_latent","session_id":"a","payload":[{}]}}"#,
        vec!["1"; validate::MAX_PAYLOAD_VALUES + 1].join(",")
    );
    assert_eq!(err(&long, &RELAY_INGEST).code(), ErrorCode::TooLarge);
    let e = err(r#"{"type":"waveform_latent","session_id":"a","payload":[1,2,3],"shape":[2,2]}"#, &RELAY_INGEST);
    assert_eq!(e.code(), ErrorCode::PayloadLength);
    assert!(e.to_string().contains("4 values but payload has 3"), "{e}");
    let e = check_payload_len(3, 3, 96).unwrap_err();
    assert_eq!(e.to_string(), "payload has 3 values; the model expects 288 (3 lags x 96 channels)");
}

#[test]
fn imagined_payloads_are_finite_spike_counts_in_range() {
    let token = "9b1e".repeat(16);
    let imagined = |payload: &str| format!(r#"{{"type":"imagined","session_id":"s1","token":"{token}","frame_id":3,"payload":[{payload}]}}"#);
    let e = err(&imagined("1,2,-0.5"), &SIMULATION);
    assert_eq!(e.code(), ErrorCode::NonFinite);
    assert_eq!(e.to_string(), "imagined: payload[2] is -0.5; imagined activity is a spike count per bin, between 0 and 100: clamp the value");
    let e = err(&imagined("1,250"), &SIMULATION);
    assert_eq!(e.code(), ErrorCode::NonFinite);
    assert!(e.to_string().contains("payload[1] is 250"), "{e}");
    let e = err(&imagined("1,1e39"), &SIMULATION);
    assert_eq!(e.code(), ErrorCode::NonFinite);
    assert!(e.to_string().contains("payload[1] is not a finite number"), "{e}");
    assert_eq!(err(&imagined(""), &SIMULATION).code(), ErrorCode::BadMessage);
    let e = err(r#"{"type":"imagined","session_id":"s1","payload":[1]}"#, &SIMULATION);
    assert!(e.to_string().contains("missing field `token`"), "{e}");
    // Only browsers paint: the relay takes latents, and a stimulus image cannot claim to be imagined.
    assert_eq!(err(&imagined("1"), &RELAY_INGEST).code(), ErrorCode::UnknownType);
    let e = err(&format!(r#"{{"type":"stimulus","session_id":"s1","token":"{token}","image":"data:image/png;base64,iVBO","source":"imagined"}}"#), &SIMULATION);
    assert_eq!(e.code(), ErrorCode::BadMessage);
    assert!(decode(&imagined("0,100,7.25"), &SIMULATION).is_ok());
}

#[test]
fn session_id_rules() {
    for bad in ["", "has space", "ünïcode", "a/b", &"x".repeat(65)] {
        let text = format!(r#"{{"type":"waveform_latent","session_id":{bad:?},"payload":[1]}}"#);
        let e = err(&text, &RELAY_INGEST);
        assert_eq!(e.code(), ErrorCode::BadSession, "{bad:?}: {e}");
    }
    assert!(decode(
        &format!(r#"{{"type":"waveform_latent","session_id":"{}","payload":[1]}}"#, "a-Z_9".repeat(12)),
        &RELAY_INGEST
    )
    .is_ok());
}

#[test]
fn stream_and_stimulus_rules() {
    let t = "a".repeat(64);
    for fps in [0, 31, 1000] {
        let text = format!(r#"{{"type":"start_stream","session_id":"s","token":"{t}","source":"recorded","fps":{fps}}}"#);
        assert_eq!(err(&text, &SIMULATION).code(), ErrorCode::BadMessage, "{fps}");
    }
    let text = format!(r#"{{"type":"start_stream","session_id":"s","token":"{t}","source":"television"}}"#);
    assert_eq!(err(&text, &SIMULATION).code(), ErrorCode::BadMessage);
    let text = format!(r#"{{"type":"stimulus","session_id":"s","token":"{t}","frame_id":1}}"#);
    let e = err(&text, &SIMULATION);
    assert_eq!(e.code(), ErrorCode::BadMessage);
    assert!(e.to_string().contains("neither"), "{e}");
    let text = format!(r#"{{"type":"stimulus","session_id":"s","token":"{t}","image":"hello"}}"#);
    assert_eq!(err(&text, &SIMULATION).code(), ErrorCode::BadImage);
    let text = format!(r#"{{"type":"stimulus","session_id":"s","token":"{t}","frame_id":9007199254740992,"source":"random"}}"#);
    assert_eq!(err(&text, &SIMULATION).code(), ErrorCode::BadMessage);
}

#[test]
fn error_codes_are_snake_case_and_unknown_codes_still_parse() {
    let m = ErrorMessage { code: ErrorCode::BinaryNotSupported, message: "m".into(), session_id: None, frame_id: None };
    assert_eq!(Message::from(m).to_json(), r#"{"type":"error","code":"binary_not_supported","message":"m"}"#);
    let m = decode(r#"{"type":"error","code":"from_the_future","message":"m"}"#, &SUBSCRIBER).unwrap();
    assert!(matches!(m, Message::Error(ErrorMessage { code: ErrorCode::Unknown, .. })));
    assert_eq!(ProtocolError::Binary.code(), ErrorCode::BinaryNotSupported);
}

#[test]
fn delivered_names_its_frame_and_is_refused_where_it_does_not_belong() {
    let m = Message::from(Delivered { session_id: SessionId::parse("s1").unwrap(), frame_id: 9 });
    assert_eq!(m.to_json(), r#"{"type":"delivered","session_id":"s1","frame_id":9}"#);
    assert_eq!((m.message_type(), m.session_id().map(SessionId::as_str), m.frame_id()), (MessageType::Delivered, Some("s1"), Some(9)));
    assert_eq!(decode(&m.to_json(), &SIMULATION_CLIENT).unwrap(), m);
    // Browsers send stimuli, not delivery notices; the frame id is required and bounded.
    assert_eq!(err(&m.to_json(), &SIMULATION).code(), ErrorCode::UnknownType);
    assert_eq!(err(r#"{"type":"delivered","session_id":"s1"}"#, &SIMULATION_CLIENT).code(), ErrorCode::BadMessage);
    assert_eq!(err(r#"{"type":"delivered","session_id":"s1","frame_id":9007199254740992}"#, &SIMULATION_CLIENT).code(), ErrorCode::BadMessage);
}

/// `protocol_decode` crash-fbd3611ad2872069ba9b89f41729c81d736bcd4f: a `response` whose
/// `latency_ms` (a 16-digit number) decoded to a float that came back 1 ULP different
/// after encoding and decoding again. serde_json's default float parser is not
/// correctly rounded; with its `float_roundtrip` feature every number a service reads is
/// exactly the one its peer wrote.
#[test]
fn fuzz_crash_fbd3611a_numbers_survive_encode_and_decode_bit_for_bit() {
    let bytes = hex::decode(CRASH_FBD3611A).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let first = decode(&text, &SIMULATION_CLIENT).unwrap();
    assert_eq!(decode(&first.to_json(), &SIMULATION_CLIENT).unwrap(), first);
    // Long mantissas near the limits of f64 and f32, as a hand-written peer might send.
    for v in ["2011764140000123.2", "2011764140000123", "0.30000000000000004", "1.7976931348623157e308", "5e-324", "123456789.12345679"] {
        let text = format!(r#"{{"type":"response","session_id":"s","payload":[0.1,3.4028235e38,1.1754944e-38],"latency_ms":{v}}}"#);
        let m = decode(&text, &SIMULATION_CLIENT).unwrap();
        assert_eq!(decode(&m.to_json(), &SIMULATION_CLIENT).unwrap(), m, "{v}");
    }
}

const CRASH_FBD3611A: &str = "7b2274797065223a22726573706f6e7365222c2273657373696f6e5f6964223a2233663963222c226672616d655f6964223a372c227061796c6f6164223a5b302e342c312e325d2c227368617065223a5b312c325d2c22696e7075745f696d616765223a22646174613a696d6167652f706e673b6261736536342c6956424fa7f9a1ffffffffffffff4e6672616d655f696672216d655f69646e64222c226c6174656e63795f6d73223a323031313736343134303030303132332c227265636f72646564223a7b226d6f766965223a312c227365676d656e74223a332c226672616d65223a31377d7d";

#[test]
fn population_and_trial_are_optional_and_unknown_values_are_refused_by_name() {
    let t = "a".repeat(64);
    // Absent: the pvc-1 array and the mean response; nothing is written back.
    let text = format!(r#"{{"type":"stimulus","session_id":"s","token":"{t}","source":"random"}}"#);
    match decode(&text, &SIMULATION).unwrap() {
        Message::Stimulus(s) => assert_eq!((s.population, s.trial), (None, None)),
        other => panic!("decoded as {other:?}"),
    }
    let text = format!(r#"{{"type":"start_stream","session_id":"s","token":"{t}","source":"dream","population":"wide","trial":"single"}}"#);
    match decode(&text, &SIMULATION).unwrap() {
        m @ Message::StartStream(_) => {
            assert_eq!(m.to_json(), text);
            let Message::StartStream(s) = m else { unreachable!() };
            assert_eq!((s.population, s.trial), (Some(Population::Wide), Some(Trial::Single)));
        }
        other => panic!("decoded as {other:?}"),
    }
    assert_eq!(Population::default(), Population::Pvc1);
    assert_eq!(Trial::default(), Trial::Mean);

    // A wrong value names the field, the value and every valid value.
    let text = format!(r#"{{"type":"stimulus","session_id":"s","token":"{t}","source":"random","population":"v4"}}"#);
    let e = err(&text, &SIMULATION);
    assert_eq!(e.code(), ErrorCode::BadMessage);
    let message = e.to_string();
    assert!(message.starts_with("stimulus: population \"v4\" is not one of the valid values: \"pvc1\""), "{message}");
    assert!(message.contains("\"wide\""), "{message}");
    let text = format!(r#"{{"type":"start_stream","session_id":"s","token":"{t}","source":"dream","trial":"average"}}"#);
    let message = err(&text, &SIMULATION).to_string();
    assert!(message.contains("trial \"average\" is not one of the valid values: \"mean\"") && message.contains("\"single\""), "{message}");
    let text = format!(r#"{{"type":"imagined","session_id":"s","token":"{t}","payload":[1],"population":7}}"#);
    let message = err(&text, &SIMULATION).to_string();
    assert!(message.contains("population must be a string, one of \"pvc1\"") && message.contains("got 7"), "{message}");
    let e = err(r#"{"type":"waveform_latent","session_id":"s","payload":[1],"population":"everything"}"#, &RELAY_INGEST);
    assert!(e.to_string().contains("population \"everything\""), "{e}");
    // A megabyte value is not echoed in full.
    let mega = "x".repeat(1_000_000);
    let e = err(&format!(r#"{{"type":"waveform_latent","session_id":"s","payload":[1],"population":"{mega}"}}"#), &RELAY_INGEST);
    assert!(e.to_string().len() < 1_000, "{}", e.to_string().len());

    // The relay's image carries the population; without it, the seed's bytes.
    let image = r#"{"type":"reconstructed_image","session_id":"s","image_base64":"data:image/jpeg;base64,/9j/","population":"wide"}"#;
    assert_eq!(decode(image, &SUBSCRIBER).unwrap().to_json(), image);
    let response = r#"{"type":"response","session_id":"s","payload":[0.0,2.0],"population":"pvc1","trial":"single"}"#;
    assert_eq!(decode(response, &SIMULATION_CLIENT).unwrap().to_json(), response);
}
