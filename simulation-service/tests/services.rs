//! Both services end to end: real servers on ephemeral ports, the real fixture model and
//! dataset, real WebSocket clients playing the browser.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use serde_json::Value;
use shared_protocol::{ImageKind, SessionId};
use tokio_tungstenite::tungstenite::Message;

fn response_len() -> usize {
    let m = load_model();
    m.info().response_len()
}

#[tokio::test]
async fn an_image_sent_to_the_simulation_comes_back_from_the_relay_as_a_jpeg_for_the_same_session() {
    let stack = Stack::start(|_| {}).await;
    let session = stack.session().await;
    let mut watcher = stack.subscriber(&session).await;
    let mut browser = stack.browser().await;
    send(&mut browser, &session.stimulus(1, &png_data_url(320, 240))).await;

    let response = expect_type(&mut browser, "response").await;
    assert_eq!(response["session_id"], session.id.as_str());
    assert_eq!(response["frame_id"], 1);
    assert_eq!(response["source"], "client");
    let payload = response["payload"].as_array().unwrap();
    assert_eq!(payload.len(), response_len());
    assert!(payload.iter().all(|v| v.as_f64().is_some_and(f64::is_finite)));
    let shape = response["shape"].as_array().unwrap();
    assert_eq!(shape[0].as_u64().unwrap() * shape[1].as_u64().unwrap(), payload.len() as u64);
    let crop = decode_image_url(response["input_image"].as_str().unwrap(), ImageKind::Png);
    assert_eq!(crop.width(), load_model().info().image_size as u32);
    assert!(response["latency_ms"].as_f64().unwrap() >= 0.0);

    let image = expect_type(&mut watcher, "reconstructed_image").await;
    assert_eq!(image["session_id"], session.id.as_str());
    assert_eq!(image["frame_id"], 1);
    let jpeg = decode_image_url(image["image_base64"].as_str().unwrap(), ImageKind::Jpeg);
    assert_eq!((jpeg.width(), jpeg.height()), (192, 192));
    // A JPEG works too, and a stimulus without frame_id gets one from the service.
    send(
        &mut browser,
        &format!(
            r#"{{"type":"stimulus","session_id":"{}","token":"{}","image":"{}"}}"#,
            session.id,
            session.token,
            jpeg_data_url(64, 64)
        ),
    )
    .await;
    let r = expect_type(&mut browser, "response").await;
    let assigned = r["frame_id"].as_u64().unwrap();
    assert!(assigned > 1_000_000_000_000_000, "service-assigned ids are clock-based: {assigned}");
    assert_eq!(expect_type(&mut watcher, "reconstructed_image").await["frame_id"], assigned);
    stack.stop().await;
}

#[tokio::test]
async fn a_second_session_never_receives_the_first_ones_images() {
    let stack = Stack::start(|_| {}).await;
    let a = stack.session().await;
    let b = stack.session().await;
    let mut watch_a = stack.subscriber(&a).await;
    let mut watch_b = stack.subscriber(&b).await;
    // One browser connection drives both sessions.
    let mut browser = stack.browser().await;
    let image = png_data_url(64, 48);
    for f in 1..=4 {
        send(&mut browser, &a.stimulus(f, &image)).await;
    }
    for _ in 0..4 {
        assert_eq!(expect_type(&mut browser, "response").await["session_id"], a.id.as_str());
    }
    let mut frames = Vec::new();
    for _ in 0..4 {
        let m = expect_type(&mut watch_a, "reconstructed_image").await;
        assert_eq!(m["session_id"], a.id.as_str());
        frames.push(m["frame_id"].as_u64().unwrap());
    }
    frames.sort();
    assert_eq!(frames, vec![1, 2, 3, 4]);
    send(&mut browser, &b.stimulus(1, &image)).await;
    expect_type(&mut browser, "response").await;
    let m = expect_type(&mut watch_b, "reconstructed_image").await;
    assert_eq!((m["session_id"].as_str(), m["frame_id"].as_u64()), (Some(b.id.as_str()), Some(1)));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), next_json(&mut watch_b)).await.is_err(),
        "b received something more"
    );
    stack.stop().await;
}

#[tokio::test]
async fn recorded_mode_streams_at_30_hz_with_the_true_frames_and_recorded_responses() {
    let stack = Stack::start(|_| {}).await;
    let set = models::recorded::RecordedSet::load(&fixture().data_root, load_model().info()).unwrap();
    assert!(set.n_frames() > 70, "the fixture's test split is long enough to stream 2 s without wrapping");
    let session = stack.session().await;
    let mut watcher = stack.subscriber(&session).await;
    let mut browser = stack.browser().await;
    send(&mut browser, &session.start_stream("recorded", 30)).await;

    let first = expect_type(&mut browser, "response").await;
    let started = Instant::now();
    assert_eq!(first["source"], "recorded");
    let seg = &set.segments[0];
    assert_eq!(first["recorded"]["movie"], seg.movie);
    assert_eq!(first["recorded"]["segment"], seg.segment);
    assert_eq!(first["recorded"]["frame"], seg.frames[0].frame);
    let payload: Vec<f32> = first["payload"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(payload, seg.frames[0].response, "recorded mode sends the recorded response");
    let truth = decode_image_url(first["input_image"].as_str().unwrap(), ImageKind::Png).to_luma8();
    assert_eq!(truth.as_raw(), seg.frames[0].crop.to_image().as_raw(), "with its true frame");

    // Count responses over two seconds after the first.
    let mut times = Vec::new();
    let mut ids = vec![first["frame_id"].as_u64().unwrap()];
    while started.elapsed() < Duration::from_secs(2) {
        let m = expect_type(&mut browser, "response").await;
        assert_eq!(m["source"], "recorded");
        ids.push(m["frame_id"].as_u64().unwrap());
        times.push(started.elapsed());
    }
    send(&mut browser, &session.stop_stream()).await;
    let rate = times.len() as f64 / times.last().unwrap().as_secs_f64();
    assert!((27.0..=33.0).contains(&rate), "streamed at {rate:.1} Hz ({} frames)", times.len());
    let mut gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0).collect();
    gaps.sort_by(|a, b| a.total_cmp(b));
    let median = gaps[gaps.len() / 2];
    assert!((28.0..=39.0).contains(&median), "median frame gap {median:.1} ms");
    // The relay reconstructs the stream for the session's subscribers.
    let mut reconstructed = 0;
    while reconstructed < 30 {
        let m = expect_type(&mut watcher, "reconstructed_image").await;
        assert!(ids.contains(&m["frame_id"].as_u64().unwrap()));
        reconstructed += 1;
    }
    // After stop_stream nothing more arrives (beyond frames already in flight).
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), next_json(&mut browser)).await {}
    assert!(tokio::time::timeout(Duration::from_millis(300), next_json(&mut browser)).await.is_err());
    stack.stop().await;
}

#[tokio::test]
async fn random_dataset_frames_and_an_image_folder_are_sources_too() {
    let folder = tempfile::tempdir().unwrap();
    for (i, (w, h)) in [(80u32, 60u32), (50, 50)].into_iter().enumerate() {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 3 + y * 7 + i as u32 * 50) % 256) as u8]));
        img.save(folder.path().join(format!("img{i}.png"))).unwrap();
    }
    std::fs::write(folder.path().join("notes.txt"), "not an image").unwrap();
    std::fs::write(folder.path().join("broken.png"), "not a png either").unwrap();
    let dir = folder.path().to_owned();
    let stack = Stack::start(move |c| c.image_dir = Some(dir)).await;
    let (_, _, info) = http(stack.sim.addr, "GET", "/api/info", &[]).await;
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["folder_images"], 2, "the unreadable file was skipped");
    assert_eq!(info["sources"], serde_json::json!(["recorded", "dataset", "folder", "dream"]));

    let session = stack.session().await;
    let mut browser = stack.browser().await;
    send(
        &mut browser,
        &format!(r#"{{"type":"stimulus","session_id":"{}","token":"{}","frame_id":5,"source":"random"}}"#, session.id, session.token),
    )
    .await;
    let r = expect_type(&mut browser, "response").await;
    assert_eq!((r["frame_id"].as_u64(), r["source"].as_str()), (Some(5), Some("dataset")));
    send(
        &mut browser,
        &format!(r#"{{"type":"stimulus","session_id":"{}","token":"{}","frame_id":6,"source":"folder"}}"#, session.id, session.token),
    )
    .await;
    assert_eq!(expect_type(&mut browser, "response").await["source"], "folder");
    send(&mut browser, &session.start_stream("folder", 10)).await;
    for _ in 0..3 {
        assert_eq!(expect_type(&mut browser, "response").await["source"], "folder");
    }
    send(&mut browser, &session.start_stream("dataset", 10)).await;
    // The new stream replaces the old one.
    let mut saw_dataset = false;
    for _ in 0..6 {
        if expect_type(&mut browser, "response").await["source"] == "dataset" {
            saw_dataset = true;
        }
    }
    assert!(saw_dataset);
    stack.stop().await;
}

/// A valid PNG that claims `w` x `h` pixels but holds an empty image data chunk: small
/// on the wire, huge if decoded.
fn png_header_only(w: u32, h: u32) -> String {
    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        let mut crc = 0xffff_ffffu32;
        for &b in &body {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        png.extend_from_slice(&body);
        png.extend_from_slice(&(!crc).to_be_bytes());
    }
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    shared_protocol::DataUrl::encode(ImageKind::Png, &png)
}

/// Every kind of bad input gets a clear error; another session's stream on the same
/// connection keeps running and its images keep reaching the relay.
#[tokio::test]
async fn bad_browser_inputs_get_clear_errors_while_other_sessions_keep_working() {
    let stack = Stack::start(|c| {
        c.limits.max_image_bytes = 256 * 1024;
        c.limits.max_message_bytes = 512 * 1024;
        c.limits.max_image_side = 2048;
    })
    .await;
    let good = stack.session().await;
    let bad = stack.session().await;
    let mut watcher = stack.subscriber(&good).await;
    let mut browser = stack.browser().await;
    send(&mut browser, &good.start_stream("recorded", 10)).await;
    expect_type(&mut browser, "response").await;

    let t = &bad.token;
    let s = &bad.id;
    let cases: Vec<(String, &str, &str)> = vec![
        ("{not json".into(), "bad_json", "not valid JSON"),
        (format!(r#"{{"type":"stimulus_please","session_id":"{s}"}}"#), "unknown_type", "stimulus, imagined, start_stream, stop_stream"),
        (format!(r#"{{"type":"subscribe","session_id":"{s}","token":"{t}"}}"#), "unknown_type", "not accepted"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","frame_id":1,"source":"random"}}"#), "bad_message", "missing field `token`"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{t}","frame_id":1,"source":"random","mood":"happy"}}"#), "bad_message", "unknown field `mood`"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{t}","frame_id":1}}"#), "bad_message", "neither"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{t}","frame_id":2,"image":"data:image/png;base64,%%%%"}}"#), "bad_image", "base64"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{t}","frame_id":3,"image":"data:image/png;base64,aGVsbG8gd29ybGQ="}}"#), "bad_image", "not a JPEG or PNG"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{t}","frame_id":4,"image":"data:image/gif;base64,R0lGODlh"}}"#), "bad_image", "image/jpeg or image/png"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{t}","frame_id":5,"image":"{}"}}"#, png_header_only(100_000, 100_000)), "too_large", "100000x100000"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{t}","frame_id":6,"image":"data:image/png;base64,{}"}}"#, "A".repeat(300 * 1024)), "too_large", "up to 262144 bytes"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{}","frame_id":7,"source":"random"}}"#, "0".repeat(64)), "unauthorized", "POST /api/sessions"),
        (format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{}","frame_id":7,"source":"random"}}"#, expired_token(s)), "unauthorized", "/renew"),
        (format!(r#"{{"type":"start_stream","session_id":"{s}","token":"{t}","source":"recorded","fps":60}}"#), "bad_message", "between 1 and 30"),
        (format!(r#"{{"type":"start_stream","session_id":"{s}","token":"{t}","source":"folder","fps":5}}"#), "unavailable", "--images"),
        (format!(r#"{{"type":"stimulus","session_id":"bad id","token":"{t}","frame_id":8,"source":"random"}}"#), "bad_session", "only A-Z"),
    ];
    for (text, code, needle) in &cases {
        send(&mut browser, text).await;
        // Stream responses of the good session interleave; skip them.
        let e = loop {
            let m = next_json(&mut browser).await.expect("connection closed");
            if m["type"] != "response" {
                break m;
            }
            assert_eq!(m["session_id"], good.id.as_str());
        };
        assert_eq!(e["type"], "error", "{}", short(&e));
        assert_eq!(e["code"], *code, "{} -> {}", &text[..text.len().min(120)], short(&e));
        assert!(e["message"].as_str().unwrap().contains(needle), "{} -> {}", &text[..text.len().min(120)], short(&e));
    }
    browser.send(Message::Binary(vec![0u8; 16].into())).await.unwrap();
    let e = loop {
        let m = next_json(&mut browser).await.unwrap();
        if m["type"] != "response" {
            break m;
        }
    };
    assert_eq!(e["code"], "binary_not_supported");
    // Errors for a frame name it.
    send(&mut browser, &bad.stimulus(42, "data:image/png;base64,aGVsbG8=")).await;
    let e = loop {
        let m = next_json(&mut browser).await.unwrap();
        if m["type"] != "response" {
            break m;
        }
    };
    assert_eq!((e["session_id"].as_str(), e["frame_id"].as_u64()), (Some(bad.id.as_str()), Some(42)));

    // The good session's stream kept going, and its images reached the relay.
    let mut n = 0;
    while n < 5 {
        if expect_type(&mut watcher, "reconstructed_image").await["session_id"] == good.id.as_str() {
            n += 1;
        }
    }
    // The bad session works once its messages are right.
    send(&mut browser, &bad.stimulus(43, &png_data_url(32, 32))).await;
    let r = loop {
        let m = next_json(&mut browser).await.unwrap();
        if m["session_id"] == bad.id.as_str() {
            break m;
        }
    };
    assert_eq!((r["type"].as_str(), r["frame_id"].as_u64()), (Some("response"), Some(43)));

    // An oversize message closes this connection with 1009; the server keeps serving.
    send(&mut browser, &format!(r#"{{"type":"stimulus","padding":"{}"}}"#, "x".repeat(600 * 1024))).await;
    assert_eq!(close_code(&mut browser).await, Some(1009));
    let mut again = stack.browser().await;
    send(&mut again, &good.stimulus(1000, &png_data_url(16, 16))).await;
    let r = loop {
        let m = next_json(&mut again).await.unwrap();
        if m["frame_id"] == 1000 {
            break m;
        }
    };
    assert_eq!(r["type"], "response");
    stack.stop().await;
}

#[tokio::test]
async fn latents_sent_while_the_relay_is_down_arrive_after_it_returns_exactly_once() {
    let relay = start_relay("127.0.0.1:0".parse().unwrap()).await;
    let relay_addr = relay.addr;
    let sim = start_sim(sim_config(relay_addr)).await;
    wait_until_linked(&sim.state).await;
    relay.stop().await;
    // The link notices the relay is gone.
    tokio::time::timeout(WAIT, async {
        while sim.state.relay.is_connected() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();

    let session = Session::named("while-down");
    let mut browser = connect(&format!("ws://{}/ws", sim.addr), &[]).await.unwrap();
    for f in 1..=3 {
        send(&mut browser, &session.stimulus(f, &png_data_url(40, 30))).await;
        expect_type(&mut browser, "response").await;
    }
    // The relay comes back on the same address; the latents are re-sent.
    let relay = start_relay(relay_addr).await;
    wait_until_linked(&sim.state).await;
    let mut watcher = connect(&format!("ws://{relay_addr}/ws/subscribe"), &[]).await.unwrap();
    send(&mut watcher, &format!(r#"{{"type":"subscribe","session_id":"{}","token":"{}"}}"#, session.id, session.token)).await;
    let subscribed = expect_type(&mut watcher, "subscribed").await;
    let mut frames = Vec::new();
    for _ in 0..subscribed["buffered"].as_u64().unwrap() {
        frames.push(expect_type(&mut watcher, "reconstructed_image").await["frame_id"].as_u64().unwrap());
    }
    while frames.len() < 3 {
        frames.push(expect_type(&mut watcher, "reconstructed_image").await["frame_id"].as_u64().unwrap());
    }
    frames.sort();
    assert_eq!(frames, vec![1, 2, 3]);
    assert!(tokio::time::timeout(Duration::from_millis(500), next_json(&mut watcher)).await.is_err(), "a frame came twice");
    assert!(sim.state.metrics.latents_resent.get() >= 3);
    assert_eq!(relay.state.metrics.frames_in.get(), 3);
    sim.stop().await;
    relay.stop().await;
}

#[tokio::test]
async fn api_info_health_metrics_and_cross_origin_rules() {
    let stack = Stack::start(|_| {}).await;
    let model = load_model();
    let info_model = model.info();
    let (status, head, body) = http(stack.sim.addr, "GET", "/api/info", &[("origin", "http://127.0.0.1:8080")]).await;
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: http://127.0.0.1:8080"), "{head}");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["lags"], info_model.n_lags());
    assert_eq!(info["lag_frames"], serde_json::json!(info_model.lags));
    assert_eq!(info["channels"].as_array().unwrap().len(), info_model.n_channels());
    let ch = &info["channels"][0];
    for field in ["file", "electrode", "row", "col"] {
        assert!(ch.get(field).is_some(), "channel lacks {field}: {ch}");
    }
    assert_eq!(info["image_size"], info_model.image_size);
    assert_eq!(info["shape"], serde_json::json!([info_model.n_lags(), info_model.n_channels()]));
    assert!(!info["recorded_segments"].as_array().unwrap().is_empty());
    assert_eq!(info["stimulus_sources"], serde_json::json!(["client", "random"]));
    let (_, head, _) = http(stack.sim.addr, "GET", "/api/info", &[("origin", "http://evil.example")]).await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    assert_eq!(connect(&format!("ws://{}/ws", stack.sim.addr), &[("origin", "http://evil.example")]).await.err(), Some(403));

    let (status, _, body) = http(stack.sim.addr, "GET", "/healthz", &[]).await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((health["status"].as_str(), health["relay_connected"].as_bool()), (Some("ok"), Some(true)));

    let session = stack.session().await;
    let mut browser = stack.browser().await;
    send(&mut browser, &session.stimulus(1, &png_data_url(20, 20))).await;
    expect_type(&mut browser, "response").await;
    send(&mut browser, "[]").await;
    expect_type(&mut browser, "error").await;
    // Wait for the relay's acknowledgement to be counted.
    tokio::time::timeout(WAIT, async {
        while stack.sim.state.metrics.latents_acked.get() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let (_, _, metrics) = http(stack.sim.addr, "GET", "/metrics", &[]).await;
    for needle in [
        "v1_sim_frames_in_total{source=\"client\"} 1",
        "v1_sim_responses_out_total 1",
        "v1_sim_latents_acked_total 1",
        "v1_sim_errors_total{code=\"bad_message\"} 1",
        "v1_sim_relay_connected 1",
        "v1_sim_connections 1",
        "v1_sim_inference_seconds_count 1",
        "v1_sim_relay_round_trip_seconds_count 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_frames_in_flight_and_delivers_their_latents() {
    let stack = Stack::start(|c| c.workers = 1).await;
    let session = stack.session().await;
    let mut watcher = stack.subscriber(&session).await;
    let mut browser = stack.browser().await;
    let image = png_data_url(640, 480);
    for f in 1..=8 {
        send(&mut browser, &session.stimulus(f, &image)).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let sim_state = stack.sim.state.clone();
    sim_state.shutdown.cancel();
    let mut responses = 0;
    while let Some(m) = next_json(&mut browser).await {
        assert_eq!(m["type"], "response", "{}", short(&m));
        responses += 1;
    }
    let taken: u64 = sim_state.metrics.frames_in.get_or_create(&simulation_service::telemetry::SourceLabel { source: "client".into() }).get();
    assert!(taken > 0);
    assert_eq!(responses, taken, "every frame taken was answered");
    for _ in 0..taken {
        expect_type(&mut watcher, "reconstructed_image").await;
    }
    stack.sim.stop().await;
    assert_eq!(sim_state.metrics.latents_lost.get(), 0);
    stack.relay.stop().await;
}

#[tokio::test]
async fn start_up_errors_say_what_to_do() {
    let relay_addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut config = sim_config(relay_addr);
    config.model_dir = "/nonexistent/model".into();
    let e = simulation_service::AppState::load(config).err().unwrap().to_string();
    assert!(e.contains("/nonexistent/model") && e.contains("v1 train"), "{e}");

    let empty = tempfile::tempdir().unwrap();
    let mut config = sim_config(relay_addr);
    config.data_root = Some(empty.path().to_owned());
    let e = simulation_service::AppState::load(config).err().unwrap().to_string();
    assert!(e.contains("--data") && e.contains("v1 build"), "{e}");

    let mut config = sim_config(relay_addr);
    config.relay_url = "http://127.0.0.1:8080".into();
    let e = simulation_service::AppState::load(config).err().unwrap().to_string();
    assert!(e.contains("ws://"), "{e}");

    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let e = simulation_service::bind(addr, simulation_service::BIND_ENV).await.err().unwrap().to_string();
    assert!(e.contains("already in use") && e.contains("--bind") && e.contains("V1_SIM_BIND"), "{e}");

    // The binary itself: no secret -> a clear message and a failing exit code.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_simulation-service"))
        .args(["--model", fixture().model_dir.to_str().unwrap()])
        .env_remove("V1_SHARED_SECRET")
        .env_remove("V1_SHARED_SECRET_FILE")
        // No secret file in the working directory either.
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("V1_SHARED_SECRET is not set"), "{stderr}");
}

/// A genuine token of `session` that expired a second ago.
fn expired_token(session: &str) -> String {
    secret().token_expiring_at(&SessionId::parse(session).unwrap(), shared_protocol::unix_now() - 1)
}
