//! The relay on its own: real server on an ephemeral port, real WebSocket and HTTP
//! clients, a real model whose response is 3 values long (so that the seed's message is
//! exactly valid).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::Value;
use shared_protocol::SessionId;
use tokio_tungstenite::tungstenite::Message;

const SEED_LATENT: &str = r#"{"type":"waveform_latent","session_id":"xyz123","payload":[0.023,0.55,-0.011]}"#;

fn latent(session: &str, frame: u64) -> String {
    format!(r#"{{"type":"waveform_latent","session_id":"{session}","payload":[0.5,1.0,{}],"frame_id":{frame}}}"#, frame as f32 / 10.0)
}

#[tokio::test]
async fn the_seed_latent_is_accepted_byte_for_byte_and_answered_with_a_decodable_jpeg() {
    let relay = Relay::seed(|_| {}).await;
    let mut watcher = relay.subscriber("xyz123").await;
    assert_eq!(expect_type(&mut watcher, "subscribed").await["buffered"], 0);
    let mut ingest = relay.ingest().await;
    send(&mut ingest, SEED_LATENT).await;
    let reply = expect_type(&mut ingest, "reconstructed_image").await;
    assert_eq!(reply["session_id"], "xyz123");
    assert!(reply.get("frame_id").is_none(), "the seed has no frame id, so neither has the reply");
    let img = decode_jpeg(reply["image_base64"].as_str().unwrap());
    assert_eq!((img.width(), img.height()), (64, 64));
    // The reply parses back as the protocol's message, and the subscriber got the same.
    let text = reply.to_string();
    shared_protocol::decode(&text, &shared_protocol::SUBSCRIBER).unwrap();
    let pushed = expect_type(&mut watcher, "reconstructed_image").await;
    assert_eq!(pushed, reply);
    relay.stop().await;
}

#[tokio::test]
async fn a_second_session_never_receives_the_first_ones_images() {
    let relay = Relay::seed(|_| {}).await;
    let mut a = relay.subscriber("session-a").await;
    let mut b = relay.subscriber("session-b").await;
    expect_type(&mut a, "subscribed").await;
    expect_type(&mut b, "subscribed").await;
    let mut ingest = relay.ingest().await;
    for f in 1..=5 {
        send(&mut ingest, &latent("session-a", f)).await;
    }
    send(&mut ingest, &latent("session-b", 100)).await;
    for _ in 0..6 {
        expect_type(&mut ingest, "reconstructed_image").await;
    }
    let mut got_a = Vec::new();
    for _ in 0..5 {
        let m = expect_type(&mut a, "reconstructed_image").await;
        assert_eq!(m["session_id"], "session-a");
        got_a.push(m["frame_id"].as_u64().unwrap());
    }
    got_a.sort();
    assert_eq!(got_a, vec![1, 2, 3, 4, 5]);
    let m = expect_type(&mut b, "reconstructed_image").await;
    assert_eq!((m["session_id"].as_str(), m["frame_id"].as_u64()), (Some("session-b"), Some(100)));
    // Nothing else arrives for b.
    assert!(tokio::time::timeout(Duration::from_millis(300), next_json(&mut b)).await.is_err());
    relay.stop().await;
}

#[tokio::test]
async fn resent_frames_are_reconstructed_once_and_late_subscribers_get_the_buffer_in_frame_order() {
    let relay = Relay::seed(|c| c.limits.buffered_images = 4).await;
    let mut ingest = relay.ingest().await;
    for f in [3u64, 1, 2, 5, 4, 6] {
        send(&mut ingest, &latent("s", f)).await;
        expect_type(&mut ingest, "reconstructed_image").await;
    }
    // A re-send (as after a reconnect) is acknowledged, not reconstructed again.
    send(&mut ingest, &latent("s", 5)).await;
    let ack = expect_type(&mut ingest, "ack").await;
    assert_eq!((ack["session_id"].as_str(), ack["frame_id"].as_u64()), (Some("s"), Some(5)));
    let mut late = relay.subscriber("s").await;
    let subscribed = expect_type(&mut late, "subscribed").await;
    assert_eq!(subscribed["buffered"], 4, "the buffer keeps 4; the oldest two (3 and 1) were dropped");
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(expect_type(&mut late, "reconstructed_image").await["frame_id"].as_u64().unwrap());
    }
    assert_eq!(order, vec![2, 4, 5, 6]);
    let metrics = http(relay.addr, "GET", "/metrics", &[]).await.2;
    assert!(metrics.contains("v1_relay_duplicate_frames_total 1"), "{metrics}");
    assert!(metrics.contains("v1_relay_buffer_drops_total 2"), "{metrics}");
    relay.stop().await;
}

/// Every kind of bad input gets an error with a clear code and message; the
/// connection, its other sessions and the buffered images survive.
#[tokio::test]
async fn bad_ingest_inputs_get_clear_errors_and_the_connection_keeps_working() {
    let relay = Relay::seed(|_| {}).await;
    let mut ingest = relay.ingest().await;
    send(&mut ingest, &latent("keep", 1)).await;
    expect_type(&mut ingest, "reconstructed_image").await;

    let cases: Vec<(String, &str, &str)> = vec![
        ("this is not json".into(), "bad_json", "not valid JSON"),
        (r#"{"type":"waveform_latent","#.into(), "bad_json", "not valid JSON"),
        (r#"{"type":"wavefrom_latent","session_id":"keep","payload":[1,2,3]}"#.into(), "unknown_type", "wavefrom_latent"),
        (r#"{"type":"subscribe","session_id":"keep","token":"x"}"#.into(), "unknown_type", "accepts waveform_latent"),
        (r#"{"session_id":"keep","payload":[1,2,3]}"#.into(), "bad_message", "\"type\""),
        (r#"{"type":"waveform_latent","session_id":"keep"}"#.into(), "bad_message", "missing field `payload`"),
        (r#"{"type":"waveform_latent","session_id":"keep","payload":[1,2,3],"extra":1}"#.into(), "bad_message", "unknown field `extra`"),
        (r#"{"type":"waveform_latent","session_id":"keep","payload":[1,2],"frame_id":9}"#.into(), "payload_length", "expects 3 (1 lags x 3 channels)"),
        (r#"{"type":"waveform_latent","session_id":"keep","payload":[1,NaN,3]}"#.into(), "non_finite", "NaN"),
        (r#"{"type":"waveform_latent","session_id":"keep","payload":[1,Infinity,3]}"#.into(), "non_finite", "Infinity"),
        (r#"{"type":"waveform_latent","session_id":"keep","payload":[1,1e39,3]}"#.into(), "non_finite", "payload[1]"),
        (r#"{"type":"waveform_latent","session_id":"kee p","payload":[1,2,3]}"#.into(), "bad_session", "only A-Z"),
        (r#"{"type":"waveform_latent","session_id":"keep","payload":[]}"#.into(), "bad_message", "empty"),
    ];
    for (text, code, needle) in &cases {
        send(&mut ingest, text).await;
        let e = expect_type(&mut ingest, "error").await;
        assert_eq!(e["code"], *code, "{text} -> {e}");
        assert!(e["message"].as_str().unwrap().contains(needle), "{text} -> {e}");
    }
    // The payload_length error names the frame so the sender can match it.
    send(&mut ingest, r#"{"type":"waveform_latent","session_id":"keep","payload":[1],"frame_id":77}"#).await;
    let e = expect_type(&mut ingest, "error").await;
    assert_eq!((e["session_id"].as_str(), e["frame_id"].as_u64()), (Some("keep"), Some(77)));

    ingest.send(Message::Binary(vec![1u8, 2, 3].into())).await.unwrap();
    let e = expect_type(&mut ingest, "error").await;
    assert_eq!(e["code"], "binary_not_supported");

    // Still working, and nothing buffered was lost.
    send(&mut ingest, &latent("keep", 2)).await;
    expect_type(&mut ingest, "reconstructed_image").await;
    let mut late = relay.subscriber("keep").await;
    assert_eq!(expect_type(&mut late, "subscribed").await["buffered"], 2);
    relay.stop().await;
}

#[tokio::test]
async fn oversize_messages_close_with_1009_and_the_server_keeps_serving() {
    let relay = Relay::seed(|c| c.limits.max_message_bytes = 4096).await;
    let mut ingest = relay.ingest().await;
    let big = format!(r#"{{"type":"waveform_latent","session_id":"big","payload":[{}]}}"#, vec!["1.0"; 2000].join(","));
    send(&mut ingest, &big).await;
    assert_eq!(close_code(&mut ingest).await, Some(1009));
    let mut again = relay.ingest().await;
    send(&mut again, SEED_LATENT).await;
    expect_type(&mut again, "reconstructed_image").await;
    relay.stop().await;
}

#[tokio::test]
async fn ingest_needs_the_shared_secret_and_subscribers_need_the_token() {
    let relay = Relay::seed(|_| {}).await;
    let url = relay.ws_url("/ws/ingest");
    assert_eq!(connect(&url, &[]).await.err(), Some(401));
    assert_eq!(connect(&url, &[("authorization", "Bearer not-the-secret-at-all")]).await.err(), Some(401));
    let (status, _, body) = http(relay.addr, "GET", "/ws/ingest", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("V1_SHARED_SECRET"), "{body}");

    let mut sub = connect(&relay.ws_url("/ws/subscribe"), &[]).await.unwrap();
    let wrong = secret().token_for(&SessionId::parse("other").unwrap());
    send(&mut sub, &format!(r#"{{"type":"subscribe","session_id":"mine","token":"{wrong}"}}"#)).await;
    let e = expect_type(&mut sub, "error").await;
    assert_eq!((e["code"].as_str(), e["session_id"].as_str()), (Some("unauthorized"), Some("mine")));
    send(&mut sub, r#"{"type":"subscribe","session_id":"mine","token":"short"}"#).await;
    assert_eq!(expect_type(&mut sub, "error").await["code"], "unauthorized");
    // The same connection can still subscribe properly.
    let token = secret().token_for(&SessionId::parse("mine").unwrap());
    send(&mut sub, &format!(r#"{{"type":"subscribe","session_id":"mine","token":"{token}"}}"#)).await;
    expect_type(&mut sub, "subscribed").await;
    relay.stop().await;
}

#[tokio::test]
async fn pages_from_other_origins_are_refused() {
    let relay = Relay::seed(|_| {}).await;
    let url = relay.ws_url("/ws/subscribe");
    assert_eq!(connect(&url, &[("origin", "http://evil.example")]).await.err(), Some(403));
    assert!(connect(&url, &[("origin", "http://localhost:5173")]).await.is_ok());
    assert!(connect(&url, &[("origin", &format!("http://{}", relay.addr))]).await.is_ok());
    relay.stop().await;
}

#[tokio::test]
async fn sessions_are_issued_with_verifiable_tokens_and_limited_per_client() {
    let relay = Relay::seed(|c| c.limits.max_sessions_per_client = 2).await;
    let (status, ctype, body) = http(relay.addr, "POST", "/api/sessions", &[JSON]).await;
    assert_eq!(status, 201, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let grant: Value = serde_json::from_str(&body).unwrap();
    let id = grant["session_id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "128 bits in hex");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let session = SessionId::parse(id).unwrap();
    secret().verify_token(&session, grant["token"].as_str().unwrap()).unwrap();
    // The issued session works for subscribing.
    let mut sub = relay.subscriber(id).await;
    expect_type(&mut sub, "subscribed").await;
    assert_eq!(http(relay.addr, "POST", "/api/sessions", &[JSON]).await.0, 201);
    let (status, _, body) = http(relay.addr, "POST", "/api/sessions", &[JSON]).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("max-sessions-per-client"), "{body}");
    assert_eq!(http(relay.addr, "GET", "/api/sessions", &[]).await.0, 405);
    relay.stop().await;
}

#[tokio::test]
async fn health_metrics_and_the_frontend_placeholder() {
    let relay = Relay::seed(|_| {}).await;
    let (status, _, body) = http(relay.addr, "GET", "/healthz", &[]).await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["model"]["channels"], 3);
    let mut ingest = relay.ingest().await;
    send(&mut ingest, SEED_LATENT).await;
    expect_type(&mut ingest, "reconstructed_image").await;
    send(&mut ingest, "nope").await;
    expect_type(&mut ingest, "error").await;
    let (status, ctype, metrics) = http(relay.addr, "GET", "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(ctype.contains("openmetrics-text"), "{ctype}");
    for needle in [
        "v1_relay_frames_in_total 1",
        "v1_relay_errors_total{code=\"bad_json\"} 1",
        "v1_relay_frame_latency_seconds_count 1",
        "v1_relay_reconstruct_seconds_bucket",
        "v1_relay_sessions 1",
        "v1_relay_ingest_connections 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    let (status, _, page) = http(relay.addr, "GET", "/", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("frontend not built: run <code>make frontend</code>"), "{page}");
    relay.stop().await;
}

#[tokio::test]
async fn the_built_frontend_is_served_with_index_fallback() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<html>the app</html>").unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("assets/app.js"), "console.log(1)").unwrap();
    let relay = Relay::start(seed_model(), config(PathBuf::from(dir.path()))).await;
    assert_eq!(http(relay.addr, "GET", "/", &[]).await.2, "<html>the app</html>");
    let (status, ctype, js) = http(relay.addr, "GET", "/assets/app.js", &[]).await;
    assert_eq!((status, js.as_str()), (200, "console.log(1)"));
    assert!(ctype.contains("javascript"), "{ctype}");
    assert_eq!(http(relay.addr, "GET", "/some/client/route", &[]).await.2, "<html>the app</html>");
    assert_eq!(http(relay.addr, "GET", "/healthz", &[]).await.0, 200);
    relay.stop().await;
}

#[tokio::test]
async fn too_many_messages_per_second_are_rate_limited_without_closing() {
    let relay = Relay::seed(|c| c.limits.ingest_messages_per_second = 5).await;
    let mut ingest = relay.ingest().await;
    for f in 0..8 {
        send(&mut ingest, &latent("fast", f)).await;
    }
    let mut limited = 0;
    let mut images = 0;
    for _ in 0..8 {
        let m = next_json(&mut ingest).await.unwrap();
        match m["type"].as_str().unwrap() {
            "error" => {
                assert_eq!(m["code"], "rate_limited", "{m}");
                assert_eq!(m["session_id"], "fast", "{m}");
                limited += 1;
            }
            "reconstructed_image" => images += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((images, limited), (5, 3));
    tokio::time::sleep(Duration::from_millis(400)).await;
    send(&mut ingest, &latent("fast", 100)).await;
    expect_type(&mut ingest, "reconstructed_image").await;
    relay.stop().await;
}

#[tokio::test]
async fn shutdown_drains_frames_already_accepted() {
    let relay = Relay::seed(|c| c.workers = 1).await;
    let mut ingest = relay.ingest().await;
    let mut watcher = relay.subscriber("drain").await;
    expect_type(&mut watcher, "subscribed").await;
    for f in 1..=20 {
        send(&mut ingest, &latent("drain", f)).await;
    }
    // Let the relay read them, then stop it while they are being reconstructed.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let state = relay.state.clone();
    state.shutdown.cancel();
    let mut replies = 0;
    while let Some(m) = next_json(&mut ingest).await {
        assert_eq!(m["type"], "reconstructed_image", "{m}");
        replies += 1;
    }
    let accepted = state.metrics.frames_in.get();
    assert!(accepted > 0);
    assert_eq!(replies as u64, accepted, "every accepted frame was answered before the close");
    relay.stop().await;
}

#[tokio::test]
async fn the_binary_explains_start_up_errors() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_relay-service"))
            .args(args)
            .env("V1_SHARED_SECRET", SECRET)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, stderr) = run(&["--model", "/nonexistent/model", "--bind", "127.0.0.1:0"]);
    assert!(!ok);
    assert!(stderr.contains("cannot load the model from /nonexistent/model") && stderr.contains("v1 train"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    seed_model().save(dir.path()).unwrap();
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (ok, stderr) = run(&["--model", dir.path().to_str().unwrap(), "--bind", &addr]);
    assert!(!ok);
    assert!(stderr.contains("already in use") && stderr.contains("V1_RELAY_BIND"), "{stderr}");

    let (ok, stderr) = run(&["--model", dir.path().to_str().unwrap(), "--bind", "127.0.0.1:0", "--jpeg-quality", "0"]);
    assert!(!ok);
    assert!(stderr.contains("jpeg quality is 0; it must be between 1 and 100"), "{stderr}");

    // A GPU this machine lacks (or a build without CUDA): refused at start, with the way out.
    let (ok, stderr) = run(&["--model", dir.path().to_str().unwrap(), "--bind", "127.0.0.1:0", "--device", "cuda:97"]);
    assert!(!ok);
    assert!(stderr.contains("cannot open --device cuda:97") && stderr.contains("--device cpu"), "{stderr}");
    let (ok, stderr) = run(&["--model", dir.path().to_str().unwrap(), "--bind", "127.0.0.1:0", "--device", "gpu7"]);
    assert!(!ok);
    assert!(stderr.contains("`gpu7` is not a device"), "{stderr}");
}

/// A sender that asks for acks (`v1-ingest-reply: ack`, as the simulation-service does)
/// gets an `ack` per reconstructed frame instead of the image, while subscribers still get
/// the image; without the header, or with `image`, the reply is the `reconstructed_image`;
/// an unknown value is refused before the upgrade with a message naming the header.
#[tokio::test]
async fn ingest_replies_with_acks_when_the_sender_asks_for_them() {
    let relay = Relay::seed(|_| {}).await;
    let mut watcher = relay.subscriber("acked").await;
    expect_type(&mut watcher, "subscribed").await;
    let url = relay.ws_url("/ws/ingest");
    let bearer = format!("Bearer {SECRET}");
    let mut acked = connect(&url, &[("authorization", &bearer), ("v1-ingest-reply", "ack")]).await.unwrap();
    send(&mut acked, &latent("acked", 7)).await;
    let ack = next_json(&mut acked).await.unwrap();
    assert_eq!(ack, serde_json::json!({"type": "ack", "session_id": "acked", "frame_id": 7}));
    let image = expect_type(&mut watcher, "reconstructed_image").await;
    assert_eq!(image["frame_id"], 7);
    decode_jpeg(image["image_base64"].as_str().unwrap());
    // A frame without an id cannot be named by an ack: it gets its image, as in the seed.
    send(&mut acked, r#"{"type":"waveform_latent","session_id":"acked","payload":[0.1,0.2,0.3]}"#).await;
    let reply = expect_type(&mut acked, "reconstructed_image").await;
    assert!(reply.get("frame_id").is_none());

    let mut explicit = connect(&url, &[("authorization", &bearer), ("v1-ingest-reply", "image")]).await.unwrap();
    send(&mut explicit, &latent("acked", 8)).await;
    assert_eq!(expect_type(&mut explicit, "reconstructed_image").await["frame_id"], 8);

    let bad = [("authorization", bearer.as_str()), ("v1-ingest-reply", "jpeg please")];
    assert_eq!(connect(&url, &bad).await.err(), Some(400));
    let (status, _, body) = http(relay.addr, "GET", "/ws/ingest", &bad).await;
    assert_eq!(status, 400, "{body}");
    let message = serde_json::from_str::<Value>(&body).unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("v1-ingest-reply") && message.contains("\"ack\"") && message.contains("jpeg please"), "{message}");
    relay.stop().await;
}
