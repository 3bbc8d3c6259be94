//! A service started while its dataset is still being prepared: it serves client images at
//! once, says how far the preparation is, and turns Recorded mode on by itself when the
//! cache appears (real servers on ephemeral ports, the fixture's cache copied in late).

#[allow(unused_imports)]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use models::recorded::Preparation;
use serde_json::Value;

async fn info(addr: std::net::SocketAddr) -> Value {
    let (status, _, body) = http(addr, "GET", "/api/info", &[]).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Puts the fixture's cache files into `root/cache` the way `v1 build` does: each whole
/// file appears at once under its final name.
fn finish_preparation(root: &Path) {
    let cache = root.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    for entry in std::fs::read_dir(fixture().data_root.join("cache")).unwrap() {
        let from = entry.unwrap().path();
        let name = from.file_name().unwrap();
        let tmp = cache.join(format!("{}.tmp-copy", name.to_string_lossy()));
        std::fs::copy(&from, &tmp).unwrap();
        std::fs::rename(&tmp, cache.join(name)).unwrap();
    }
    Preparation::remove(root).unwrap();
}

#[tokio::test]
async fn recorded_mode_is_picked_up_when_the_preparation_beside_the_service_finishes() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("dataset");
    Preparation::new("simulating the dataset", 37).write(&root).unwrap();
    let data_root = root.clone();
    let stack = Stack::start(move |c| c.data_root = Some(data_root)).await;

    let first = info(stack.sim.addr).await;
    assert_eq!(first["recorded"], serde_json::json!({"state": "preparing", "percent": 37, "phase": "simulating the dataset"}));
    assert_eq!(first["sources"], serde_json::json!(["dream"]));
    let (_, _, health) = http(stack.sim.addr, "GET", "/healthz", &[]).await;
    assert!(health.contains(r#""state":"preparing""#), "{health}");

    // Client images work meanwhile; recorded mode says why it cannot play yet.
    let session = stack.session().await;
    let mut browser = stack.browser().await;
    send(&mut browser, &session.stimulus(1, &png_data_url(64, 48))).await;
    assert_eq!(expect_type(&mut browser, "response").await["source"], "client");
    let random = format!(r#"{{"type":"stimulus","session_id":"{}","token":"{}","frame_id":2,"source":"random"}}"#, session.id, session.token);
    send(&mut browser, &random).await;
    let pattern = expect_type(&mut browser, "response").await;
    assert_eq!(pattern["source"], "random", "a procedural pattern stands in for the dataset: {pattern}");
    send(&mut browser, &session.start_stream("recorded", 10)).await;
    let refused = expect_type(&mut browser, "error").await;
    assert_eq!(refused["code"], "unavailable");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("being prepared") && message.contains("37%"), "{message}");

    // Progress moves on, then the cache appears: no restart, no reconnection.
    Preparation::new("building the cache", 60).write(&root).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while info(stack.sim.addr).await["recorded"]["percent"] != 60 {
        assert!(Instant::now() < deadline, "the service did not see the new progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    finish_preparation(&root);
    let ready = loop {
        let now = info(stack.sim.addr).await;
        if now["recorded"]["state"] == "ready" {
            break now;
        }
        assert!(Instant::now() < deadline, "recorded mode never became ready: {}", now["recorded"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(ready["recorded"]["segments"].as_u64().unwrap() > 0);
    assert_eq!(ready["sources"], serde_json::json!(["recorded", "dataset", "dream"]));
    send(&mut browser, &session.start_stream("recorded", 10)).await;
    let played = expect_type(&mut browser, "response").await;
    assert_eq!(played["source"], "recorded");
    assert!(played["recorded"]["movie"].is_u64(), "{played}");
    stack.stop().await;
}

#[tokio::test]
async fn a_preparation_that_stopped_leaves_recorded_mode_unavailable_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().to_owned();
    Preparation::new("simulating the dataset", 5).write(&root).unwrap();
    let data_root = root.clone();
    let stack = Stack::start(move |c| c.data_root = Some(data_root)).await;
    assert_eq!(info(stack.sim.addr).await["recorded"]["state"], "preparing");

    // The command died: its file is no longer rewritten and goes stale.
    let stale = Preparation { updated_unix: 1, ..Preparation::new("simulating the dataset", 5) };
    stale.write(&root).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let recorded = loop {
        let now = info(stack.sim.addr).await["recorded"].clone();
        if now["state"] == "unavailable" {
            break now;
        }
        assert!(Instant::now() < deadline, "still {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = recorded["reason"].as_str().unwrap();
    assert!(reason.contains(&root.display().to_string()) && reason.contains("v1 build"), "{reason}");
    stack.stop().await;
}
