//! Session isolation: an attacker who guesses session ids, replays a victim's id with
//! its own token, sends stimuli into the victim's session or talks to the relay's ingest
//! without the shared secret gets a clear refusal and none of the victim's images,
//! while the victim keeps receiving every one of its own.

#[allow(unused_imports)]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The next message, which must be an `error` with `code`; returns it.
async fn expect_error(ws: &mut Ws, code: &str, needle: &str) -> Value {
    let e = expect_type(ws, "error").await;
    assert_eq!(e["code"], code, "{}", short(&e));
    assert!(e["message"].as_str().unwrap().contains(needle), "{}", short(&e));
    e
}

fn subscribe(session: &str, token: &str) -> String {
    format!(r#"{{"type":"subscribe","session_id":"{session}","token":"{token}"}}"#)
}

/// A random id of the relay's form (128 bits, hex).
fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[tokio::test]
async fn no_guess_replay_or_borrowed_token_reaches_another_session() {
    let stack = Stack::start(|_| {}).await;
    let victim = stack.session().await;
    let attacker = stack.session().await;
    let mut victim_watch = stack.subscriber(&victim).await;
    let mut victim_browser = stack.browser().await;
    let image = png_data_url(40, 30);
    let mut sent = BTreeSet::new();
    let mut next_frame = 1u64;
    // The victim streams throughout; every step of the attack happens between its frames.
    macro_rules! victim_frame {
        () => {{
            let f = next_frame;
            next_frame += 1;
            sent.insert(f);
            send(&mut victim_browser, &victim.stimulus(f, &image)).await;
        }};
    }
    victim_frame!();

    // 1. Guessing: random ids with random tokens, and with the attacker's own token.
    let relay_sub = format!("ws://{}/ws/subscribe", stack.relay.addr);
    let mut guesser = connect(&relay_sub, &[]).await.unwrap();
    for i in 0..12 {
        let id = random_id();
        let token = if i % 2 == 0 { format!("{:064x}", rand::random::<u128>()) } else { attacker.token.clone() };
        send(&mut guesser, &subscribe(&id, &token)).await;
        let e = expect_error(&mut guesser, "unauthorized", "POST /api/sessions").await;
        assert_eq!(e["session_id"], id.as_str());
    }
    victim_frame!();

    // 2. Replaying the victim's id with the attacker's own (valid) token, and with a
    //    token of the right form for no session.
    let mut replayer = connect(&relay_sub, &[]).await.unwrap();
    send(&mut replayer, &subscribe(&victim.id, &attacker.token)).await;
    let e = expect_error(&mut replayer, "unauthorized", &victim.id).await;
    assert_eq!(e["session_id"], victim.id.as_str());
    send(&mut replayer, &subscribe(&victim.id, &"0".repeat(64))).await;
    expect_error(&mut replayer, "unauthorized", &victim.id).await;
    // Its own session works on the same connection: the refusal was about the token.
    send(&mut replayer, &subscribe(&attacker.id, &attacker.token)).await;
    assert_eq!(expect_type(&mut replayer, "subscribed").await["session_id"], attacker.id.as_str());
    victim_frame!();

    // 3. Stimuli and streams into the victim's session with a borrowed or no token.
    let mut intruder = stack.browser().await;
    let (s, t) = (&victim.id, &attacker.token);
    let intrusions = [
        format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{t}","frame_id":9001,"image":"{image}"}}"#),
        format!(r#"{{"type":"stimulus","session_id":"{s}","token":"","frame_id":9002,"source":"random"}}"#),
        format!(r#"{{"type":"stimulus","session_id":"{s}","token":"{}","frame_id":9003,"source":"random"}}"#, "f".repeat(64)),
        format!(r#"{{"type":"start_stream","session_id":"{s}","token":"{t}","source":"recorded","fps":30}}"#),
    ];
    for text in &intrusions {
        send(&mut intruder, text).await;
        let e = expect_error(&mut intruder, "unauthorized", s).await;
        assert_eq!(e["session_id"], s.as_str());
    }
    // stop_stream needs no token, but only stops this connection's own streams: the
    // victim's frames keep coming.
    send(&mut intruder, &victim.stop_stream()).await;
    victim_frame!();

    // 4. The relay's ingest without the shared secret: refused at the upgrade, so no
    //    latent can be injected into the victim's buffer.
    let ingest = format!("ws://{}/ws/ingest", stack.relay.addr);
    assert_eq!(connect(&ingest, &[]).await.err(), Some(401));
    assert_eq!(connect(&ingest, &[("authorization", &format!("Bearer {}", attacker.token))]).await.err(), Some(401));
    assert_eq!(connect(&ingest, &[("authorization", &format!("Bearer {}", victim.token))]).await.err(), Some(401));
    assert_eq!(connect(&ingest, &[("authorization", "Bearer ")]).await.err(), Some(401));
    let (status, _, body) = http(stack.relay.addr, "GET", "/ws/ingest", &[]).await;
    assert_eq!(status, 401, "{body}");
    for _ in 0..3 {
        victim_frame!();
    }

    // The victim received each of its frames exactly once, and nothing else.
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let m = expect_type(&mut victim_watch, "reconstructed_image").await;
        assert_eq!(m["session_id"], victim.id.as_str());
        got.push(m["frame_id"].as_u64().unwrap());
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), next_json(&mut victim_watch)).await.is_err(),
        "the victim received something more"
    );
    got.sort();
    assert_eq!(got, sent.iter().copied().collect::<Vec<_>>());
    let mut responses = 0;
    while responses < sent.len() {
        let m = next_json(&mut victim_browser).await.unwrap();
        assert_eq!(m["session_id"], victim.id.as_str(), "{}", short(&m));
        if m["type"] == "response" {
            responses += 1;
        } else {
            assert_eq!(m["type"], "delivered", "{}", short(&m));
        }
    }

    // None of the attacker's sockets saw a victim image (or anything else).
    for (name, ws) in [("guesser", &mut guesser), ("replayer", &mut replayer), ("intruder", &mut intruder)] {
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), next_json(ws)).await {
            panic!("the {name} received {}", short(&m));
        }
    }
    // The victim's buffer holds only its own frames: a late subscriber sees exactly them.
    let mut late = stack.subscriber(&victim).await;
    let mut replay = Vec::new();
    for _ in 0..sent.len() {
        let m = expect_type(&mut late, "reconstructed_image").await;
        replay.push(m["frame_id"].as_u64().unwrap());
    }
    assert_eq!(replay, sent.iter().copied().collect::<Vec<_>>());
    stack.stop().await;
}
