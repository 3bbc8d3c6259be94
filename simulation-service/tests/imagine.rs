//! Imagine mode and dreams end to end: real servers on ephemeral ports, the real fixture
//! model and dataset, real WebSocket clients playing the browser.

// Not every helper of `common` is used here.
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use shared_protocol::ImageKind;

/// Both services, a session, its subscriber on the relay and a browser on the simulation.
async fn connected() -> (Stack, Session, Ws, Ws) {
    let stack = Stack::start(|_| {}).await;
    let session = stack.session().await;
    let watcher = stack.subscriber(&session).await;
    let browser = stack.browser().await;
    (stack, session, watcher, browser)
}

fn relay_frames_in(stack: &Stack) -> u64 {
    stack.relay.state.metrics.frames_in.get()
}

#[tokio::test]
async fn an_edited_response_is_reconstructed_for_its_session_and_bad_ones_never_reach_the_relay() {
    let (stack, session, mut watcher, mut browser) = connected().await;
    let (_, _, info) = http(stack.sim.addr, "GET", "/api/info", &[]).await;
    let info: Value = serde_json::from_str(&info).unwrap();
    let mean: Vec<f32> = info["response_mean"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(mean.len(), load_model().info().response_len());
    assert_eq!(info["max_imagined_count"], 100.0);

    // Wrong length: named, with what the model expects and where to get a right one.
    let mut short_payload = mean.clone();
    short_payload.pop();
    send(&mut browser, &session.imagined(1, &short_payload)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "payload_length", "{}", short(&e));
    assert_eq!(e["frame_id"], 1);
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(&format!("payload has {} values", mean.len() - 1)) && message.contains("GET /api/info"), "{message}");

    // Out of range and non-finite values: the index and the allowed range.
    let mut negative = mean.clone();
    negative[5] = -2.0;
    send(&mut browser, &session.imagined(2, &negative)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "non_finite");
    assert!(e["message"].as_str().unwrap().contains("payload[5] is -2; imagined activity is a spike count per bin, between 0 and 100"), "{}", short(&e));
    let mut huge = mean.clone();
    huge[0] = 1e6;
    send(&mut browser, &session.imagined(3, &huge)).await;
    assert_eq!(expect_type(&mut browser, "error").await["code"], "non_finite");
    let text = session.imagined(4, &mean).replacen("[", "[1e39,", 1);
    send(&mut browser, &text).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "non_finite");
    assert!(e["message"].as_str().unwrap().contains("payload[0]"), "{}", short(&e));

    // A token of another session, and no token.
    let other = stack.session().await;
    let foreign = Session { id: session.id.clone(), token: other.token.clone() };
    send(&mut browser, &foreign.imagined(5, &mean)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "unauthorized");
    assert!(e["message"].as_str().unwrap().contains("POST /api/sessions"), "{}", short(&e));
    send(&mut browser, &format!(r#"{{"type":"imagined","session_id":"{}","payload":[1]}}"#, session.id)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "bad_message");
    assert!(e["message"].as_str().unwrap().contains("token"), "{}", short(&e));
    assert_eq!(relay_frames_in(&stack), 0, "a refused edit reached the relay");

    // A good edit: one electrode raised over the mean.
    let mut edited = mean.clone();
    edited[3] += 4.0;
    send(&mut browser, &session.imagined(6, &edited)).await;
    let response = expect_type(&mut browser, "response").await;
    assert_eq!(response["frame_id"], 6);
    assert_eq!(response["source"], "imagined");
    assert!(response.get("input_image").is_none(), "an imagined response has no image: {}", short(&response));
    let echoed: Vec<f32> = response["payload"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(echoed, edited);
    // The first image the session's subscriber gets is that edit's: nothing refused came before it.
    let image = expect_type(&mut watcher, "reconstructed_image").await;
    assert_eq!(image["frame_id"], 6);
    let jpeg = decode_image_url(image["image_base64"].as_str().unwrap(), ImageKind::Jpeg);
    assert_eq!((jpeg.width(), jpeg.height()), (192, 192));
    assert_eq!(relay_frames_in(&stack), 1);
    stack.stop().await;
}

#[tokio::test]
async fn raising_an_electrode_changes_the_reconstruction_and_the_mean_restores_it() {
    let (stack, session, mut watcher, mut browser) = connected().await;
    let mean = load_model().info().response_mean.clone();
    let mut raised = mean.clone();
    let channels = load_model().info().n_channels();
    for l in 0..load_model().info().n_lags() {
        raised[l * channels] = 30.0;
    }
    let mut images = Vec::new();
    for (frame, payload) in [(1, &mean), (2, &raised), (3, &mean)] {
        send(&mut browser, &session.imagined(frame, payload)).await;
        expect_type(&mut browser, "response").await;
        let image = expect_type(&mut watcher, "reconstructed_image").await;
        assert_eq!(image["frame_id"], frame);
        images.push(decode_image_url(image["image_base64"].as_str().unwrap(), ImageKind::Jpeg).to_luma8());
    }
    let diff = |a: &image::GrayImage, b: &image::GrayImage| -> f64 {
        a.pixels().zip(b.pixels()).map(|(p, q)| (f64::from(p[0]) - f64::from(q[0])).abs()).sum::<f64>() / a.len() as f64
    };
    assert!(diff(&images[0], &images[1]) > 0.5, "raising channel 0 changed the image by {:.3} grey levels", diff(&images[0], &images[1]));
    assert_eq!(diff(&images[0], &images[2]), 0.0, "the mean response again gives the same image");
    stack.stop().await;
}

#[tokio::test]
async fn a_dream_streams_activity_without_an_image_and_its_reconstructions() {
    let (stack, session, mut watcher, mut browser) = connected().await;
    let (_, _, info) = http(stack.sim.addr, "GET", "/api/info", &[]).await;
    assert!(info.contains("\"dream\""), "{info}");
    send(&mut browser, &session.start_stream("dream", 30)).await;
    let started = Instant::now();
    let mut payloads: Vec<Vec<f64>> = Vec::new();
    while payloads.len() < 20 {
        let r = expect_type(&mut browser, "response").await;
        assert_eq!(r["source"], "dream");
        assert!(r.get("input_image").is_none(), "a dream has no image: {}", short(&r));
        let p: Vec<f64> = r["payload"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0), "rates are non-negative counts");
        payloads.push(p);
    }
    let elapsed = started.elapsed();
    let mut images = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while images < 10 && Instant::now() < deadline {
        if next_json(&mut watcher).await.is_some_and(|m| m["type"] == "reconstructed_image") {
            images += 1;
        }
    }
    send(&mut browser, &session.stop_stream()).await;
    assert_eq!(images, 10, "the dream's frames are reconstructed for the session");
    // 20 frames at 30 frames/s: well under 2 s even on a busy machine.
    assert!(elapsed < Duration::from_secs(2), "20 dream frames took {elapsed:?}");
    // The walk moves: the activity changes from frame to frame.
    let changed = payloads.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(changed >= 15, "only {changed} of 19 consecutive dream frames differ");
    stack.stop().await;
}

#[tokio::test]
async fn projective_fields_come_with_each_channels_receptive_field() {
    let stack = Stack::start(|_| {}).await;
    let (status, _, body) = http(stack.sim.addr, "GET", "/api/projective-fields", &[]).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let model = load_model();
    let channels = v["channels"].as_array().unwrap();
    assert_eq!(channels.len(), model.info().n_channels());
    assert_eq!(v["image_size"], model.info().image_size);
    for (c, ch) in channels.iter().enumerate() {
        assert_eq!(ch["index"], c);
        let img = decode_image_url(ch["image"].as_str().unwrap(), ImageKind::Png);
        assert_eq!(img.width(), model.info().image_size as u32);
        assert_eq!(ch["rf_center"].as_array().map(Vec::len), Some(2), "the fixture has a dataset with RF estimates");
        assert!(ch["pf_peak"].as_f64().unwrap() > 0.0, "channel {c} changes the reconstruction");
    }
    stack.stop().await;
}
