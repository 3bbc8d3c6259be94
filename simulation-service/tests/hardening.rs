//! Clients that try to take more than their share of the simulation-service: a ping
//! flood that never reads its pongs, images that cost far more to decode than their bytes
//! suggest, too many connections, requests whose headers never finish, sockets left
//! silent. Each is bounded, and a normal session next to it keeps its frame rate.
//!
//! The tests of this file take turns (a lock): two of them at once on two cores would
//! measure each other.

#[allow(unused_imports)]
mod common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use shared_protocol::{DataUrl, ImageKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A client that pings as fast as it can and never reads: closed with 1008 once past the
/// message rate, and the service's memory stays where it was.
#[tokio::test]
async fn a_ping_flood_from_a_client_that_never_reads_is_closed_and_costs_no_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let relay = start_relay("127.0.0.1:0".parse().unwrap()).await;
    let sim = SimProcess::spawn(relay.addr).await;
    // Warm up with a few real frames.
    let session = Session::named("pingwarm");
    let mut browser = connect(&format!("ws://{}/ws", sim.addr), &[]).await.unwrap();
    let image = png_data_url(64, 48);
    for f in 1..=20 {
        send(&mut browser, &session.stimulus(f, &image)).await;
        expect_type(&mut browser, "response").await;
    }
    let before = service_kit::testing::rss_kib(sim.child.id());
    let flood = service_kit::testing::ping_flood(&format!("ws://{}/ws", sim.addr), &[], Duration::from_secs(10)).await;
    let after = service_kit::testing::rss_kib(sim.child.id());
    eprintln!(
        "ping flood on /ws: {} pings in {:.1} s, closed with {:?}; RSS {:.1} -> {:.1} MiB",
        flood.pings,
        flood.elapsed.as_secs_f64(),
        flood.close_code,
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    assert!(flood.ended_by_server, "the service let the flood run for {:?}", flood.elapsed);
    assert!(flood.elapsed < Duration::from_secs(5), "the flood ran {:?} before it was stopped", flood.elapsed);
    assert!(matches!(flood.close_code, None | Some(1008)), "closed with {:?}", flood.close_code);
    assert!(after < before + 16 * 1024, "RSS grew from {before} to {after} KiB under a ping flood");
    // A client that reads, pinging past the rate (60/s): the close frame says why.
    let storm = service_kit::testing::ping_storm(&format!("ws://{}/ws", sim.addr), &[], 200, WAIT).await;
    assert_eq!(storm, Some(1008), "pings past the rate are closed as a policy violation");
    // The normal connection is untouched.
    send(&mut browser, &session.stimulus(21, &image)).await;
    assert_eq!(expect_type(&mut browser, "response").await["frame_id"], 21);
    sim.kill();
    relay.stop().await;
}

/// A PNG of `w` x `h` 16-bit RGBA pixels, nearly flat: small on the wire (it compresses
/// to little), 8 bytes a pixel once decoded.
fn png16_data_url(w: u32, h: u32) -> String {
    let img = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(w, h, |x, y| {
        image::Rgba([((x / 500) * 4000) as u16, ((y / 500) * 4000) as u16, 30_000, 65_535])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba16(img).write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    DataUrl::encode(ImageKind::Png, &bytes)
}

/// A `side` x `side` JPEG with detail everywhere (slow to decode), within the pixel budget.
fn detailed_jpeg_data_url(side: u32) -> String {
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        let v = ((x * 7 + y * 13) ^ (x * y / 97)) % 256;
        image::Rgb([v as u8, (v / 2 + 60) as u8, (255 - v) as u8])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut Cursor::new(&mut bytes), 60)
        .encode_image(&image::DynamicImage::ImageRgb8(img))
        .unwrap();
    DataUrl::encode(ImageKind::Jpeg, &bytes)
}

/// Per-frame latencies of a normal session sending a 320x240 JPEG at 30 frames/s for
/// `seconds`, waiting for each response; (frames answered, latencies in ms).
async fn normal_session(sim: std::net::SocketAddr, seconds: u64) -> (usize, Vec<f64>) {
    let session = Session::named("normal");
    let mut ws = connect(&format!("ws://{sim}/ws"), &[]).await.unwrap();
    let image = jpeg_data_url(320, 240);
    let period = Duration::from_micros(33_333);
    let start = tokio::time::Instant::now();
    let frames = seconds * 30;
    let mut latencies = Vec::new();
    for f in 1..=frames {
        tokio::time::sleep_until(start + period * (f as u32 - 1)).await;
        let sent = Instant::now();
        send(&mut ws, &session.stimulus(f, &image)).await;
        loop {
            let m = next_json(&mut ws).await.expect("the normal session's connection closed");
            if m["type"] == "response" && m["frame_id"] == f {
                latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                break;
            }
            assert_ne!(m["type"], "error", "the normal session got {}", short(&m));
        }
    }
    (latencies.len(), latencies)
}

fn p99(latencies: &[f64]) -> f64 {
    let mut v = latencies.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * 0.99).ceil() as usize).saturating_sub(1).min(v.len() - 1)]
}

/// Floods `/ws` with `image` at 30 per second from its own connection (reading the
/// answers on a task of its own) until `stop`; returns the answers by type and code.
async fn flood_images(sim: std::net::SocketAddr, image: String, stop: tokio::sync::watch::Receiver<bool>) -> Vec<String> {
    let session = Session::named("flooder");
    let ws = connect(&format!("ws://{sim}/ws"), &[]).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move {
        let mut answers = Vec::new();
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                answers.push(format!("{}:{}", v["type"].as_str().unwrap_or(""), v["code"].as_str().unwrap_or("")));
            }
        }
        answers
    });
    let mut tick = tokio::time::interval(Duration::from_micros(33_333));
    let mut f = 0u64;
    while !*stop.borrow() {
        tick.tick().await;
        f += 1;
        if sink.send(Message::Text(session.stimulus(f, &image).into())).await.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
    tokio::time::timeout(WAIT, reader).await.unwrap().unwrap()
}

/// Another client floods 30 images a second that cost far more to decode than their
/// bytes: 4000x4000 16-bit RGBA PNGs (refused from the header by the pixel budget), then
/// 2048x2048 detailed JPEGs (within the budget, tens of milliseconds each, served one at
/// a time in the flooder's own lane). The normal session keeps 30 frames/s with p99
/// under 100 ms through both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_floods_do_not_starve_a_normal_session() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::start(|_| {}).await;
    let bomb = png16_data_url(4000, 4000);
    let heavy = detailed_jpeg_data_url(2048);
    eprintln!("flood images: 4000x4000 16-bit PNG {} KB, 2048x2048 JPEG {} KB", bomb.len() / 1024, heavy.len() / 1024);
    for (name, image, expect) in [("16-bit 4000x4000 PNG", bomb, "error:too_large"), ("2048x2048 JPEG", heavy, "response:")] {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let flooder = tokio::spawn(flood_images(stack.sim.addr, image, stop_rx));
        // Let the flood fill the service first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let (answered, latencies) = normal_session(stack.sim.addr, 5).await;
        let fps = answered as f64 / started.elapsed().as_secs_f64();
        stop_tx.send(true).unwrap();
        let answers = flooder.await.unwrap();
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for a in &answers {
            *counts.entry(a.as_str()).or_default() += 1;
        }
        let p99 = p99(&latencies);
        eprintln!("{name} flood: normal session {answered} frames, {fps:.1} frames/s, p99 {p99:.1} ms; flooder got {counts:?}");
        assert_eq!(answered, 150);
        assert!(fps >= 29.0, "{name} flood: the normal session got {fps:.1} frames/s");
        assert!(p99 < 100.0, "{name} flood: the normal session's p99 was {p99:.1} ms");
        assert!(counts.get(expect).copied().unwrap_or(0) > 0, "{name} flood: the flooder never got {expect}: {counts:?}");
    }
    stack.stop().await;
}

/// Connection caps: past the per-address cap a connection is answered 503 with the flag
/// to change, and a place comes back when a connection closes.
#[tokio::test]
async fn connections_past_the_cap_are_refused_with_503_until_one_closes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::start(|c| c.limits.net.max_connections_per_address = 3).await;
    let url = format!("ws://{}/ws", stack.sim.addr);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&url, &[]).await.unwrap());
    }
    assert_eq!(connect(&url, &[]).await.err(), Some(503));
    let refused = service_kit::testing::request(stack.sim.addr, "GET", "/healthz", &[]).await;
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("--max-connections-per-address"), "{}", refused.body);
    let mut closing = held.pop().unwrap();
    closing.close(None).await.unwrap();
    while closing.next().await.is_some() {}
    let deadline = Instant::now() + WAIT;
    let mut again = loop {
        match connect(&url, &[]).await {
            Ok(ws) => break ws,
            Err(503) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(status) => panic!("no place came back: {status}"),
        }
    };
    let session = Session::named("capped");
    send(&mut again, &session.stimulus(1, &png_data_url(32, 32))).await;
    assert_eq!(expect_type(&mut again, "response").await["frame_id"], 1);
    drop(held);
    stack.stop().await;
}

/// A request whose headers never finish is closed after the header-read timeout; a
/// WebSocket that answers nothing (not even pings) is closed after the idle timeout,
/// while one that answers pings stays open.
#[tokio::test]
async fn half_sent_requests_and_silent_sockets_are_timed_out() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::start(|c| {
        c.limits.net.header_read_timeout = Duration::from_secs(1);
        c.limits.net.idle_timeout = Duration::from_secs(3);
    })
    .await;
    // Half a request.
    let mut slow = tokio::net::TcpStream::connect(stack.sim.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "a half-sent request was still open after 10 s");
    let after = started.elapsed();
    assert!(after < Duration::from_secs(4), "closed only after {after:?}");
    eprintln!("half-sent request closed after {:.1} s", after.as_secs_f64());

    // A socket that never reads, so never answers the service's pings, and one that does.
    let url = format!("ws://{}/ws", stack.sim.addr);
    let mut silent = connect(&url, &[]).await.unwrap();
    let mut live = connect(&url, &[]).await.unwrap();
    let listening = tokio::spawn(async move {
        // Reading answers pings; nothing else arrives on an idle connection.
        let until = tokio::time::Instant::now() + Duration::from_secs(6);
        while let Ok(Some(m)) = tokio::time::timeout_at(until, live.next()).await {
            assert!(matches!(m, Ok(Message::Ping(_))), "unexpected {m:?}");
        }
        live
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut live = listening.await.unwrap();
    // The service let go of the silent one only.
    assert_eq!(stack.sim.state.metrics.connections.get(), 1, "the silent socket is still held, or the live one was dropped");
    // What the silent one reads: the pings it never answered, then the close (the reset of
    // a socket the service already closed may overtake the close frame).
    let mut close = None;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(WAIT, silent.next()).await {
        if let Message::Close(frame) = m {
            close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            break;
        }
    }
    if let Some((code, reason)) = close {
        assert_eq!(code, 1000);
        assert!(reason.contains("idle"), "{reason}");
    }
    let session = Session::named("alive");
    send(&mut live, &session.stimulus(1, &png_data_url(32, 32))).await;
    assert_eq!(expect_type(&mut live, "response").await["frame_id"], 1);
    stack.stop().await;
}
