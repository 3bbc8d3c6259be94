//! Delivery between the services when the relay misbehaves, with both services real on
//! loopback (docs/protocol.md, "Retry rule" and "Delivery guarantee"):
//!
//! - a relay that stops (a TCP proxy in between stops forwarding both ways, as a stopped
//!   process would: bytes wait in socket buffers) during a 30 fps stream, then resumes;
//! - a relay killed (its runtime dropped at once) and restarted during a stream;
//! - a relay whose worker queue holds almost nothing, hit by a burst of latents;
//! - a relay with another secret.
//!
//! In each, every frame the simulation-service produced must reach the session's
//! subscriber exactly once, and `/healthz` must tell the truth about the link.

#[allow(unused_imports)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use shared_protocol::{SessionId, SharedSecret, WaveformLatent};
use simulation_service::AppState as SimState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// A killable relay whose session buffer (and so the live queue of each subscriber) is
/// large, so that a subscriber that joins late or reads slowly still sees every image.
async fn start_relay_with(addr: SocketAddr, tweak: impl FnOnce(&mut relay_service::RelayConfig)) -> KillableRelay {
    KillableRelay::start_with(addr, |c| {
        c.limits.buffered_images = 4096;
        tweak(c);
    })
    .await
}


/// A TCP proxy between the simulation-service and the relay that can stop forwarding in
/// both directions: to both ends the peer looks like a stopped process (connections stay
/// open, nothing is read or answered, bytes wait in the socket buffers).
struct Proxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, watching) = watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, watching.clone()));
                tokio::spawn(pump(server_read, client_write, watching.clone()));
            }
        });
        Self { addr, paused, accept }
    }

    fn pause(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies one direction of a proxied connection, reading and writing only while not paused.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut paused: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if paused.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// What a reader task has seen so far.
#[derive(Debug, Default)]
struct Seen {
    /// `response` frame ids (browser) or `reconstructed_image` frame ids (subscriber), in
    /// arrival order.
    frames: Vec<u64>,
    /// `delivered` frame ids (browser with `delivered=true`).
    delivered: Vec<u64>,
    /// Anything else, to fail on.
    other: Vec<Value>,
}

type Shared = Arc<Mutex<Seen>>;

fn snapshot<T>(seen: &Shared, f: impl FnOnce(&Seen) -> T) -> T {
    f(&seen.lock().unwrap())
}

/// Reads a socket into `seen` until it closes.
fn read_into(mut rx: futures_util::stream::SplitStream<Ws>, seen: Shared) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            let mut seen = seen.lock().unwrap();
            match (v["type"].as_str(), v["frame_id"].as_u64()) {
                (Some("response" | "reconstructed_image"), Some(id)) => seen.frames.push(id),
                (Some("delivered"), Some(id)) => seen.delivered.push(id),
                _ => seen.other.push(v),
            }
        }
    })
}

/// A browser on the simulation-service whose messages a task collects.
struct Browser {
    tx: SplitSink<Ws, Message>,
    seen: Shared,
    _reader: tokio::task::JoinHandle<()>,
}

impl Browser {
    async fn connect(sim: SocketAddr, delivered: bool) -> Self {
        let ws = connect(&format!("ws://{sim}/ws?delivered={delivered}"), &[]).await.unwrap();
        let (tx, rx) = ws.split();
        let seen = Shared::default();
        Self { tx, _reader: read_into(rx, seen.clone()), seen }
    }

    async fn send(&mut self, text: &str) {
        self.tx.send(Message::Text(text.into())).await.unwrap();
    }
}

/// A subscriber of `session` on the relay whose images a task collects.
async fn subscribe(relay: SocketAddr, session: &Session) -> (Shared, tokio::task::JoinHandle<()>) {
    let mut ws = connect(&format!("ws://{relay}/ws/subscribe"), &[]).await.unwrap();
    send(&mut ws, &format!(r#"{{"type":"subscribe","session_id":"{}","token":"{}"}}"#, session.id, session.token)).await;
    expect_type(&mut ws, "subscribed").await;
    let (_, rx) = ws.split();
    let seen = Shared::default();
    let reader = read_into(rx, seen.clone());
    (seen, reader)
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn health(sim: SocketAddr) -> Value {
    let (status, _, body) = http(sim, "GET", "/healthz", &[]).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `/healthz` until `want` holds, returning that body.
async fn health_until(sim: SocketAddr, what: &str, within: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let h = health(sim).await;
        if want(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "/healthz never showed {what}; last: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn info_relay_connected(sim: SocketAddr) -> Option<bool> {
    let (_, _, body) = http(sim, "GET", "/api/info", &[]).await;
    serde_json::from_str::<Value>(&body).unwrap()["relay_connected"].as_bool()
}

/// Stops the stream and waits until the simulation-service has nothing left for the
/// relay; returns the frame ids of every `response` the browser got.
async fn finish_stream(browser: &mut Browser, session: &Session, sim: &SimState) -> Vec<u64> {
    browser.send(&session.stop_stream()).await;
    wait_for("the stream stops and the relay settles every latent", WAIT, || {
        sim.metrics.streams.get() == 0 && sim.pool.busy() == 0 && sim.metrics.unacked.get() == 0
    })
    .await;
    // A response queued just before the stop may still be on its way to the browser.
    tokio::time::sleep(Duration::from_millis(300)).await;
    snapshot(&browser.seen, |s| {
        assert!(s.other.is_empty(), "the browser got {} other messages; the first: {}", s.other.len(), short(&s.other[0]));
        s.frames.clone()
    })
}

/// Waits until `seen` holds every id of `want`, then a quiet moment more, so that a late
/// repeat would be seen too; returns the ids in arrival order.
async fn collect(seen: &Shared, want: &BTreeSet<u64>) -> Vec<u64> {
    wait_for("the subscriber has every frame", WAIT, || snapshot(seen, |s| want.iter().all(|f| s.frames.contains(f)))).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    snapshot(seen, |s| {
        assert!(s.other.is_empty(), "the subscriber got {} other messages; the first: {}", s.other.len(), short(&s.other[0]));
        s.frames.clone()
    })
}

fn duplicates(ids: &[u64]) -> Vec<u64> {
    let mut count: BTreeMap<u64, u32> = BTreeMap::new();
    for &id in ids {
        *count.entry(id).or_default() += 1;
    }
    count.into_iter().filter(|&(_, n)| n > 1).map(|(id, _)| id).collect()
}

fn refused(sim: &SimState) -> u64 {
    use shared_protocol::ErrorCode;
    [ErrorCode::Overloaded, ErrorCode::Unavailable, ErrorCode::Internal, ErrorCode::RateLimited]
        .into_iter()
        .map(|c| sim.metrics.latents_refused.get_or_create(&simulation_service::telemetry::CodeLabel::of(c)).get())
        .sum()
}


const STALL: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_stopped_for_5_s_during_a_30_fps_stream_loses_and_duplicates_no_frame() {
    let relay = start_relay_with("127.0.0.1:0".parse().unwrap(), |_| {}).await;
    let proxy = Proxy::start(relay.addr).await;
    let mut config = sim_config(proxy.addr);
    config.limits.relay_stall = Duration::from_secs(1);
    let window = config.limits.relay_window;
    let sim = start_sim(config).await;
    wait_until_linked(&sim.state).await;
    assert_eq!(health(sim.addr).await["status"], "ok");

    let session = Session::named("stopped-relay");
    let (images, _sub) = subscribe(relay.addr, &session).await;
    let mut browser = Browser::connect(sim.addr, false).await;
    browser.send(&session.start_stream("recorded", 30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    proxy.pause(true);
    let stopped = Instant::now();
    // The link notices within the stall timeout and a ping or two.
    let h = health_until(sim.addr, "degraded", Duration::from_secs(4), |h| h["status"] == "degraded").await;
    let noticed = stopped.elapsed();
    assert_eq!((h["relay"]["state"].as_str(), h["relay_connected"].as_bool()), (Some("stalled"), Some(false)), "{h}");
    assert!(h["relay"]["cause"].as_str().is_some_and(|c| c.contains("nothing came from the relay")), "{h}");
    assert_eq!(info_relay_connected(sim.addr).await, Some(false));
    tokio::time::sleep(STALL.saturating_sub(stopped.elapsed())).await;
    let backlog = sim.state.metrics.unacked.get();
    assert!(backlog > window as i64, "the stream went on while the relay was stopped: {backlog} latents wait");
    proxy.pause(false);

    health_until(sim.addr, "ok again", Duration::from_secs(5), |h| h["status"] == "ok" && h["relay"]["state"] == "connected")
        .await;
    assert_eq!(info_relay_connected(sim.addr).await, Some(true));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let responses = finish_stream(&mut browser, &session, &sim.state).await;
    let want: BTreeSet<u64> = responses.iter().copied().collect();
    let got = collect(&images, &want).await;

    let m = &sim.state.metrics;
    eprintln!(
        "relay stopped {} s (noticed after {:.1} s): {} frames sent, {} images received, backlog {backlog} at resume, \
         {} refused, {} lost, {} in the relay",
        STALL.as_secs(),
        noticed.as_secs_f64(),
        responses.len(),
        got.len(),
        refused(&sim.state),
        m.latents_lost.get(),
        relay.state.metrics.frames_in.get()
    );
    assert_eq!(duplicates(&responses), Vec::<u64>::new());
    assert_eq!(duplicates(&got), Vec::<u64>::new(), "the subscriber saw a frame twice");
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), want, "every frame sent, and only those");
    assert_eq!(m.latents_lost.get(), 0);
    assert_eq!(m.latents_acked.get(), responses.len() as u64);
    assert_eq!(relay.state.metrics.frames_in.get(), responses.len() as u64, "each frame reconstructed once");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_and_restarted_during_a_30_fps_stream_loses_and_duplicates_no_frame() {
    let relay = start_relay_with("127.0.0.1:0".parse().unwrap(), |_| {}).await;
    let relay_addr = relay.addr;
    let config = sim_config(relay_addr);
    let window = config.limits.relay_window;
    let sim = start_sim(config).await;
    wait_until_linked(&sim.state).await;
    let session = Session::named("killed-relay");
    let (before, _sub) = subscribe(relay_addr, &session).await;
    let mut browser = Browser::connect(sim.addr, true).await;
    browser.send(&session.start_stream("recorded", 30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let delivered_at_kill: BTreeSet<u64> = snapshot(&browser.seen, |s| s.delivered.iter().copied().collect());
    let first_state = relay.state.clone();
    relay.kill();
    let h = health_until(sim.addr, "unreachable", WAIT, |h| h["relay"]["state"] == "unreachable").await;
    assert_eq!((h["status"].as_str(), h["relay_connected"].as_bool()), (Some("degraded"), Some(false)), "{h}");
    tokio::time::sleep(STALL).await;
    let backlog = sim.state.metrics.unacked.get();
    assert!(backlog > 2 * window as i64, "the stream went on while no relay ran: {backlog} latents wait");

    let relay = start_relay_with(relay_addr, |_| {}).await;
    // Subscribed before or after the re-sends arrive, the replay and the live images
    // together hold each image once.
    let (after, _sub2) = subscribe(relay_addr, &session).await;
    wait_until_linked(&sim.state).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let responses = finish_stream(&mut browser, &session, &sim.state).await;

    // What the first relay had reconstructed into its buffer when it died; a frame it
    // acknowledged is not sent again (its push may have died with it, see
    // docs/protocol.md "Delivery guarantee"), every other frame must reach the new relay.
    let first_buffered = buffered_frame_ids(&first_state, &session).await;
    let want: BTreeSet<u64> = responses.iter().copied().filter(|f| !first_buffered.contains(f)).collect();
    let got = collect(&after, &want).await;
    let pushed_before = snapshot(&before, |s| s.frames.clone());
    let repeated: Vec<u64> = got.iter().copied().filter(|f| first_buffered.contains(f)).collect();
    let m = &sim.state.metrics;
    eprintln!(
        "relay killed for {} s: {} frames sent; the first relay buffered {} (pushed {}), the restarted one pushed {} \
         ({} of them again: in flight at the kill); backlog {backlog} at restart, {} re-sent, {} refused, {} lost",
        STALL.as_secs(),
        responses.len(),
        first_buffered.len(),
        pushed_before.len(),
        got.len(),
        repeated.len(),
        m.latents_resent.get(),
        refused(&sim.state),
        m.latents_lost.get()
    );
    assert_eq!(duplicates(&pushed_before), Vec::<u64>::new(), "the first relay pushed a frame twice");
    assert_eq!(duplicates(&got), Vec::<u64>::new(), "the restarted relay pushed a frame twice");
    let reached: BTreeSet<u64> = first_buffered.iter().chain(&got).copied().collect();
    let lost: Vec<u64> = responses.iter().copied().filter(|f| !reached.contains(f)).collect();
    assert_eq!(lost, Vec::<u64>::new(), "frames that reached no relay");
    assert!(got.iter().all(|f| responses.contains(f)), "the restarted relay pushed a frame nobody sent");
    for f in &repeated {
        assert!(!delivered_at_kill.contains(f), "frame {f} was delivered before the kill and reconstructed again");
    }
    assert_eq!(m.latents_lost.get(), 0);
    assert_eq!(relay.state.metrics.frames_in.get(), got.len() as u64, "the new relay reconstructed each frame once");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_into_a_relay_with_a_tiny_queue_is_refused_retried_and_arrives_once() {
    let relay = start_relay_with("127.0.0.1:0".parse().unwrap(), |c| {
        c.workers = 1;
        c.limits.queue_depth = 1;
    })
    .await;
    let sim = start_sim(sim_config(relay.addr)).await;
    wait_until_linked(&sim.state).await;
    let session = Session::named("tiny-queue");
    let (images, _sub) = subscribe(relay.addr, &session).await;
    let info = relay.state.reconstructor.model().info();
    let len = info.n_lags() * info.n_channels();
    const BURST: u64 = 100;
    for frame in 1..=BURST {
        let latent = WaveformLatent {
            session_id: SessionId::parse(&session.id).unwrap(),
            payload: (0..len).map(|i| ((i as u64 + frame) % 7) as f32 * 0.2).collect(),
            frame_id: Some(frame),
            shape: None,
            sent_at_ms: None,
            source: None,
            population: None,
        };
        assert!(sim.state.relay.send(&latent).await);
    }
    let m = &sim.state.metrics;
    wait_for("every latent is settled", WAIT, || m.latents_acked.get() + m.latents_lost.get() == BURST).await;
    let want: BTreeSet<u64> = (1..=BURST).collect();
    let got = collect(&images, &want).await;
    let refused_overloaded =
        m.latents_refused.get_or_create(&simulation_service::telemetry::CodeLabel::of(shared_protocol::ErrorCode::Overloaded)).get();
    eprintln!(
        "burst of {BURST} into a relay with 1 worker and a queue of 1: {} images received, {} refused as overloaded \
         (each sent again), {} lost",
        got.len(),
        refused_overloaded,
        m.latents_lost.get()
    );
    assert_eq!(duplicates(&got), Vec::<u64>::new());
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), want);
    assert!(refused_overloaded > 0, "the tiny queue refused nothing; the test tests nothing");
    assert_eq!(m.latents_lost.get(), 0);
    assert_eq!(relay.state.metrics.frames_in.get(), BURST, "each frame reconstructed once");
    let (_, _, text) = http(sim.addr, "GET", "/metrics", &[]).await;
    let line = format!("v1_sim_latents_refused_total{{code=\"overloaded\"}} {refused_overloaded}");
    assert!(text.contains(&line), "{line} missing from /metrics:\n{text}");
    assert!(text.contains("v1_sim_latents_lost_total 0"), "{text}");
    sim.stop().await;
}

#[tokio::test]
async fn a_relay_with_another_secret_makes_healthz_degraded_with_the_cause() {
    let relay = start_relay_with("127.0.0.1:0".parse().unwrap(), |c| {
        c.secret = SharedSecret::new("another-secret-0123456789abcdef0123").unwrap();
    })
    .await;
    let sim = start_sim(sim_config(relay.addr)).await;
    let h = health_until(sim.addr, "refused_secret", WAIT, |h| h["relay"]["state"] == "refused_secret").await;
    assert_eq!((h["status"].as_str(), h["relay_connected"].as_bool()), (Some("degraded"), Some(false)), "{h}");
    let cause = h["relay"]["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("401") && cause.contains("V1_SHARED_SECRET"), "{h}");
    assert_eq!(info_relay_connected(sim.addr).await, Some(false));
    sim.stop().await;
}
