//! The two populations and single trials end to end: real servers on ephemeral ports, the
//! real fixture model (the pvc-1 array) and a second, wide-field fixture model, real
//! WebSocket clients playing the browser, the relay's subscriber and a sender on its
//! `/ws/ingest`.

// Not every helper of `common` is used here.
#[allow(unused_imports)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;
use shared_protocol::ImageKind;

/// Both services with the wide-field model (`wide_sim`: in the simulation-service too).
async fn stack(wide_sim: bool, wide_relay: bool) -> Stack {
    Stack::start_with(wide_relay, |c| c.wide_model_dir = wide_sim.then(|| wide_model_dir().clone())).await
}

fn stimulus(session: &Session, frame_id: u64, image: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"stimulus","session_id":"{}","token":"{}","frame_id":{frame_id},"image":"{image}"{extra}}}"#,
        session.id, session.token
    )
}

fn payload(v: &Value) -> Vec<f32> {
    v["payload"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn relay_frames_in(stack: &Stack) -> u64 {
    stack.relay.state.metrics.frames_in.get()
}

#[tokio::test]
async fn each_population_is_simulated_and_reconstructed_by_its_own_model() {
    let stack = stack(true, true).await;
    let session = stack.session().await;
    let mut watcher = stack.subscriber(&session).await;
    let mut browser = stack.browser().await;
    let (pvc1, wide) = (load_model(), load_wide_model());
    assert_ne!(pvc1.info().response_len(), wide.info().response_len(), "the fixtures must differ in length");
    let frame = png_data_url(320, 240);

    // "wide": the wide model's response (its length and shape), reconstructed by the relay
    // with the wide model: the image is exactly the one that model makes of the payload.
    send(&mut browser, &stimulus(&session, 1, &frame, r#","population":"wide""#)).await;
    let r = expect_type(&mut browser, "response").await;
    assert_eq!(r["population"], "wide", "{}", short(&r));
    assert!(r.get("trial").is_none(), "{}", short(&r));
    let got = payload(&r);
    assert_eq!(got.len(), wide.info().response_len());
    assert_eq!(r["shape"], serde_json::json!([wide.info().n_lags(), wide.info().n_channels()]));
    let crop = wide.prepare_image(&decode_image_url(&frame, ImageKind::Png)).unwrap();
    assert_eq!(got, wide.predict(&crop).unwrap(), "the wide model predicted it");
    let image = expect_type(&mut watcher, "reconstructed_image").await;
    assert_eq!((image["frame_id"].as_u64(), image["population"].as_str()), (Some(1), Some("wide")), "{}", short(&image));
    let expected = relay_service::reconstruct::Reconstructor::new(Arc::new(load_wide_model()), 192, 90).reconstruct(&got).unwrap();
    assert_eq!(image["image_base64"], expected, "the relay reconstructed with the wide model");

    // "pvc1" and absent: the first model, as before.
    for (frame_id, extra, named) in [(2u64, r#","population":"pvc1""#, Some("pvc1")), (3, "", None)] {
        send(&mut browser, &stimulus(&session, frame_id, &frame, extra)).await;
        let r = expect_type(&mut browser, "response").await;
        assert_eq!(r["population"].as_str(), named, "{}", short(&r));
        let got = payload(&r);
        assert_eq!(got.len(), pvc1.info().response_len());
        let crop = pvc1.prepare_image(&decode_image_url(&frame, ImageKind::Png)).unwrap();
        assert_eq!(got, pvc1.predict(&crop).unwrap());
        let image = expect_type(&mut watcher, "reconstructed_image").await;
        assert_eq!(image["frame_id"].as_u64(), Some(frame_id));
        assert_eq!(image["population"].as_str(), named, "{}", short(&image));
        let expected = relay_service::reconstruct::Reconstructor::new(Arc::new(load_model()), 192, 90).reconstruct(&got).unwrap();
        assert_eq!(image["image_base64"], expected, "the relay reconstructed with the pvc-1 model");
    }

    // An edited wide response: checked against the wide model's length.
    let mean = wide.info().response_mean.clone();
    let imagined = |frame_id: u64, payload: &[f32]| {
        let values: Vec<String> = payload.iter().map(|v| v.max(0.0).to_string()).collect();
        format!(
            r#"{{"type":"imagined","session_id":"{}","token":"{}","frame_id":{frame_id},"payload":[{}],"population":"wide"}}"#,
            session.id,
            session.token,
            values.join(",")
        )
    };
    send(&mut browser, &imagined(4, &mean[1..])).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "payload_length", "{}", short(&e));
    assert!(e["message"].as_str().unwrap().contains(&format!("the model expects {}", mean.len())), "{}", short(&e));
    send(&mut browser, &imagined(5, &mean)).await;
    let r = expect_type(&mut browser, "response").await;
    assert_eq!((r["source"].as_str(), r["population"].as_str()), (Some("imagined"), Some("wide")));
    let image = expect_type(&mut watcher, "reconstructed_image").await;
    assert_eq!((image["frame_id"].as_u64(), image["population"].as_str()), (Some(5), Some("wide")));

    // A wide dream: the wide model's rates.
    send(&mut browser, &format!(r#"{{"type":"start_stream","session_id":"{}","token":"{}","source":"dream","fps":30,"population":"wide"}}"#, session.id, session.token)).await;
    for _ in 0..3 {
        let r = expect_type(&mut browser, "response").await;
        assert_eq!((r["source"].as_str(), r["population"].as_str()), (Some("dream"), Some("wide")));
        assert_eq!(payload(&r).len(), wide.info().response_len());
    }
    send(&mut browser, &session.stop_stream()).await;
    stack.stop().await;
}

#[tokio::test]
async fn wide_frames_the_service_cannot_simulate_are_refused_and_nothing_reaches_the_relay() {
    // The simulation-service without the wide model.
    let stack = stack(false, true).await;
    let session = stack.session().await;
    let mut browser = stack.browser().await;
    let frame = png_data_url(64, 48);
    let expected = "this service runs without the wide-field model; start it with --wide-model DIR";
    send(&mut browser, &stimulus(&session, 1, &frame, r#","population":"wide""#)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!((e["code"].as_str(), e["frame_id"].as_u64()), (Some("unavailable"), Some(1)), "{}", short(&e));
    assert!(e["message"].as_str().unwrap().starts_with(expected), "{}", short(&e));
    send(&mut browser, &format!(r#"{{"type":"imagined","session_id":"{}","token":"{}","frame_id":2,"payload":[1],"population":"wide"}}"#, session.id, session.token)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!((e["code"].as_str(), e["frame_id"].as_u64()), (Some("unavailable"), Some(2)), "{}", short(&e));
    assert!(e["message"].as_str().unwrap().starts_with(expected), "{}", short(&e));
    send(&mut browser, &format!(r#"{{"type":"start_stream","session_id":"{}","token":"{}","source":"dream","population":"wide"}}"#, session.id, session.token)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "unavailable", "{}", short(&e));
    assert!(e["message"].as_str().unwrap().starts_with(expected), "{}", short(&e));
    // What it has, it says; the projective fields of a population it lacks are refused.
    let (_, _, body) = http(stack.sim.addr, "GET", "/api/info", &[]).await;
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["populations"], serde_json::json!(["pvc1"]));
    assert_eq!(info["wide"]["available"], false);
    assert!(info["wide"]["reason"].as_str().unwrap().starts_with(expected));
    let (status, _, body) = http(stack.sim.addr, "GET", "/api/projective-fields?population=wide", &[]).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains(expected), "{body}");
    // The pvc-1 array still works on the same connection, and is the first frame the relay sees.
    send(&mut browser, &stimulus(&session, 3, &frame, "")).await;
    assert_eq!(expect_type(&mut browser, "response").await["frame_id"], 3);
    tokio::time::timeout(WAIT, async {
        while relay_frames_in(&stack) < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(relay_frames_in(&stack), 1, "a refused wide frame reached the relay");
    stack.stop().await;

    // A relay without the wide model refuses a wide latent on /ws/ingest, naming the frame,
    // with a final code: no re-send can change it.
    let stack = self::stack(false, false).await;
    let mut ingest = connect(&format!("ws://{}/ws/ingest", stack.relay.addr), &[("authorization", &format!("Bearer {SECRET}"))]).await.unwrap();
    send(&mut ingest, r#"{"type":"waveform_latent","session_id":"s1","payload":[1,2,3],"frame_id":9,"population":"wide"}"#).await;
    let e = expect_type(&mut ingest, "error").await;
    assert_eq!((e["code"].as_str(), e["frame_id"].as_u64()), (Some("bad_message"), Some(9)), "{}", short(&e));
    let message = e["message"].as_str().unwrap();
    assert!(message.starts_with("waveform_latent: population \"wide\": ") && message.contains(expected), "{message}");
    assert_eq!(relay_frames_in(&stack), 0);
    stack.stop().await;
}

#[tokio::test]
async fn a_wide_frame_the_relay_cannot_reconstruct_is_reported_to_the_browser_and_not_sent_again() {
    // The simulation-service has the wide model, its relay does not.
    let stack = stack(true, false).await;
    let session = stack.session().await;
    let mut browser = stack.browser().await;
    send(&mut browser, &stimulus(&session, 1, &png_data_url(64, 48), r#","population":"wide""#)).await;
    let r = expect_type(&mut browser, "response").await;
    assert_eq!((r["frame_id"].as_u64(), r["population"].as_str()), (Some(1), Some("wide")));
    // The relay's final refusal reaches the browser that sent the frame.
    let e = expect_type(&mut browser, "error").await;
    assert_eq!((e["code"].as_str(), e["frame_id"].as_u64()), (Some("bad_message"), Some(1)), "{}", short(&e));
    assert!(e["message"].as_str().unwrap().contains("start it with --wide-model DIR"), "{}", short(&e));
    let m = &stack.sim.state.metrics;
    tokio::time::timeout(WAIT, async {
        while m.latents_lost.get() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the refused latent was never given up");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(m.latents_resent.get(), 0, "a latent the relay can never reconstruct was sent again");
    assert_eq!(relay_frames_in(&stack), 0);
    stack.stop().await;
}

#[tokio::test]
async fn a_relay_checks_a_wide_latent_against_the_wide_model() {
    let stack = stack(true, true).await;
    let mut ingest = connect(&format!("ws://{}/ws/ingest", stack.relay.addr), &[("authorization", &format!("Bearer {SECRET}"))]).await.unwrap();
    let pvc1_len = load_model().info().response_len();
    let wide_len = load_wide_model().info().response_len();
    let latent = |frame: u64, len: usize, population: &str| {
        let values = vec!["0.5"; len].join(",");
        format!(r#"{{"type":"waveform_latent","session_id":"s1","payload":[{values}],"frame_id":{frame}{population}}}"#)
    };
    // A pvc-1 length under "wide" is refused with the wide model's expectation.
    send(&mut ingest, &latent(1, pvc1_len, r#","population":"wide""#)).await;
    let e = expect_type(&mut ingest, "error").await;
    assert_eq!(e["code"], "payload_length", "{}", short(&e));
    let message = e["message"].as_str().unwrap();
    assert!(message.starts_with("population \"wide\": ") && message.contains(&format!("expects {wide_len}")), "{message}");
    // The wide length without a population is refused by the pvc-1 model.
    send(&mut ingest, &latent(2, wide_len, "")).await;
    let e = expect_type(&mut ingest, "error").await;
    assert!(e["message"].as_str().unwrap().contains(&format!("expects {pvc1_len}")), "{}", short(&e));
    // The right lengths: each reconstructed, the image naming its population as the latent did.
    send(&mut ingest, &latent(3, wide_len, r#","population":"wide""#)).await;
    let image = expect_type(&mut ingest, "reconstructed_image").await;
    assert_eq!((image["frame_id"].as_u64(), image["population"].as_str()), (Some(3), Some("wide")));
    send(&mut ingest, &latent(4, pvc1_len, "")).await;
    let image = expect_type(&mut ingest, "reconstructed_image").await;
    assert_eq!(image["frame_id"], 4);
    assert!(image.get("population").is_none(), "{}", short(&image));
    stack.stop().await;
}

#[tokio::test]
async fn single_trials_are_whole_counts_drawn_from_the_mean() {
    let stack = stack(true, true).await;
    let session = stack.session().await;
    let mut browser = stack.browser().await;
    let frame = jpeg_data_url(320, 240);
    for population in ["pvc1", "wide"] {
        let extra = |trial: &str| format!(r#","population":"{population}"{trial}"#);
        send(&mut browser, &stimulus(&session, 1, &frame, &extra(""))).await;
        let mean_response = expect_type(&mut browser, "response").await;
        assert!(mean_response.get("trial").is_none(), "{}", short(&mean_response));
        let mean = payload(&mean_response);
        assert!(mean.iter().any(|v| v.fract() != 0.0), "the means are not all whole numbers");
        let mut draws = Vec::new();
        for frame_id in 2..=4 {
            send(&mut browser, &stimulus(&session, frame_id, &frame, &extra(r#","trial":"single""#))).await;
            let r = expect_type(&mut browser, "response").await;
            assert_eq!(r["trial"], "single", "{}", short(&r));
            let draw = payload(&r);
            assert_eq!(draw.len(), mean.len());
            assert!(draw.iter().all(|v| *v >= 0.0 && v.fract() == 0.0), "{population}: not whole counts: {:?}", &draw[..8]);
            assert_ne!(draw, mean);
            draws.push(draw);
        }
        assert!(draws[0] != draws[1] || draws[1] != draws[2], "{population}: three identical draws");
        // The draws follow the means: over the population, they sum to about the same.
        let (total_mean, total_draws) = (mean.iter().sum::<f32>(), draws.iter().flatten().sum::<f32>() / 3.0);
        assert!((total_draws - total_mean).abs() <= 6.0 * total_mean.sqrt() + 3.0, "{population}: draws sum to {total_draws}, means to {total_mean}");
        send(&mut browser, &stimulus(&session, 5, &frame, &extra(r#","trial":"mean""#))).await;
        assert_eq!(payload(&expect_type(&mut browser, "response").await), mean, "trial \"mean\" is the means");
    }
    // A stream of single trials; recorded responses are single trials already.
    send(&mut browser, &format!(r#"{{"type":"start_stream","session_id":"{}","token":"{}","source":"dream","trial":"single"}}"#, session.id, session.token)).await;
    for _ in 0..3 {
        let r = expect_type(&mut browser, "response").await;
        assert_eq!((r["source"].as_str(), r["trial"].as_str()), (Some("dream"), Some("single")));
        assert!(payload(&r).iter().all(|v| v.fract() == 0.0));
    }
    send(&mut browser, &session.stop_stream()).await;
    send(&mut browser, &format!(r#"{{"type":"start_stream","session_id":"{}","token":"{}","source":"recorded","trial":"single"}}"#, session.id, session.token)).await;
    let e = loop {
        // Responses of the dream still on their way are skipped.
        let m = next_json(&mut browser).await.expect("the service closed the connection");
        if m["type"] == "error" {
            break m;
        }
    };
    assert_eq!(e["code"], "bad_message", "{}", short(&e));
    assert!(e["message"].as_str().unwrap().contains("recorded responses are single trials already"), "{}", short(&e));
    stack.stop().await;
}

#[tokio::test]
async fn unknown_populations_and_trials_are_refused_naming_the_field_and_the_valid_values() {
    let stack = stack(true, true).await;
    let session = stack.session().await;
    let mut browser = stack.browser().await;
    let frame = png_data_url(32, 24);
    for (extra, field, value) in [
        (r#","population":"v4""#, "population", "\"v4\""),
        (r#","trial":"sometimes""#, "trial", "\"sometimes\""),
        (r#","population":3"#, "population", "3"),
    ] {
        send(&mut browser, &stimulus(&session, 1, &frame, extra)).await;
        let e = expect_type(&mut browser, "error").await;
        assert_eq!((e["code"].as_str(), e["frame_id"].as_u64()), (Some("bad_message"), Some(1)), "{}", short(&e));
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(field) && message.contains(value), "{message}");
        let valid = if field == "trial" { ["\"mean\"", "\"single\""] } else { ["\"pvc1\"", "\"wide\""] };
        assert!(valid.iter().all(|v| message.contains(v)), "{message}");
    }
    // Server-picked frames are cut for the pvc-1 array: the wide population says what it takes.
    send(&mut browser, &format!(r#"{{"type":"stimulus","session_id":"{}","token":"{}","frame_id":2,"source":"random","population":"wide"}}"#, session.id, session.token)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "unavailable", "{}", short(&e));
    assert!(e["message"].as_str().unwrap().contains("images sent by the browser"), "{}", short(&e));
    send(&mut browser, &format!(r#"{{"type":"start_stream","session_id":"{}","token":"{}","source":"recorded","population":"wide"}}"#, session.id, session.token)).await;
    let e = expect_type(&mut browser, "error").await;
    assert_eq!(e["code"], "unavailable", "{}", short(&e));
    assert!(e["message"].as_str().unwrap().contains("source \"recorded\""), "{}", short(&e));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(relay_frames_in(&stack), 0, "a refused frame reached the relay");
    stack.stop().await;
}

#[tokio::test]
async fn info_and_projective_fields_describe_the_wide_population_beside_the_first() {
    let stack = stack(true, true).await;
    let (pvc1, wide) = (load_model(), load_wide_model());
    let (_, _, body) = http(stack.sim.addr, "GET", "/api/info", &[]).await;
    let info: Value = serde_json::from_str(&body).unwrap();
    // Every existing field is the pvc-1 model's, as before.
    assert_eq!(info["channels"].as_array().unwrap().len(), pvc1.info().n_channels());
    assert_eq!(info["response_len"], pvc1.info().response_len());
    assert_eq!(info["image_size"], pvc1.info().image_size);
    assert_eq!(info["populations"], serde_json::json!(["pvc1", "wide"]));
    let w = &info["wide"];
    assert_eq!(w["available"], true);
    assert_eq!(w["response_len"], wide.info().response_len());
    assert_eq!(w["shape"], serde_json::json!([wide.info().n_lags(), wide.info().n_channels()]));
    assert_eq!(w["crop_window"], serde_json::json!({"x": 0, "y": 0, "width": 320, "height": 240}));
    let channels = w["channels"].as_array().unwrap();
    assert_eq!(channels.len(), wide.info().n_channels());
    assert_eq!(channels.iter().filter(|c| c.get("rf_centre").is_none()).count(), WIDE_UNPLACED);
    assert_eq!(w["response_mean"].as_array().unwrap().len(), wide.info().response_len());

    let (status, _, body) = http(stack.sim.addr, "GET", "/api/projective-fields?population=wide", &[]).await;
    assert_eq!(status, 200, "{body}");
    let fields: Value = serde_json::from_str(&body).unwrap();
    let channels = fields["channels"].as_array().unwrap();
    assert_eq!(channels.len(), wide.info().n_channels());
    assert_eq!(channels[0]["rf_center"], serde_json::json!(wide.info().channels[0].rf_centre.unwrap()));
    assert!(channels.last().unwrap()["rf_center"].is_null());
    let (status, _, body) = http(stack.sim.addr, "GET", "/api/projective-fields?population=pvc1", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["channels"].as_array().unwrap().len(), pvc1.info().n_channels());
    let (status, _, body) = http(stack.sim.addr, "GET", "/api/projective-fields?population=v4", &[]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("population \\\"v4\\\" is not one of the valid values"), "{body}");
    stack.stop().await;
}
