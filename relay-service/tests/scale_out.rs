//! Two relays sharing one real Redis (Debian's `redis-server`, started here on a free
//! port in a temporary folder): images decoded by one reach the subscribers of the
//! other, a frame re-sent to the other relay is acknowledged without a second image, a
//! subscriber that loses its relay gets the whole buffer from the survivor, and a Redis
//! outage gives `unavailable` errors and heals by itself. Real servers on ephemeral
//! ports, real WebSocket clients.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use relay_service::{AppState, RedisConfig, StartError, StoreConfig};
use serde_json::Value;
use service_kit::testing::short;
use shared_protocol::SessionId;

/// A `redis-server` of this test only: a free port, no persistence, a temporary folder;
/// killed when dropped.
struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, None)
    }

    /// Starts on `port` (a free one when None) in `dir`.
    fn start_in(mut dir: tempfile::TempDir, port: Option<u16>) -> Self {
        match Command::new("redis-server").arg("--version").stdout(Stdio::null()).status() {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed, and the scale-out tests need a real one: run scripts/install-deps.sh \
                 (it installs Debian's redis-server), or `apt-get install redis-server`"
            ),
            Err(e) => panic!("cannot run redis-server: {e}"),
        }
        // Redis has no `--port 0`: take a free port from the OS, release it, and try
        // another if something grabbed it meanwhile.
        let attempts = if port.is_some() { 1 } else { 5 };
        let mut last = String::new();
        for _ in 0..attempts {
            let port = port.unwrap_or_else(|| StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
            let log = dir.path().join(format!("redis-{port}.log"));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--daemonize", "no", "--loglevel", "warning"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning redis-server");
            let mut server = Self { child, port, dir };
            if server.wait_for_ping(Duration::from_secs(10)) {
                return server;
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
            last = format!("port {port}: {}", std::fs::read_to_string(&log).unwrap_or_default());
            dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
        }
        panic!("redis-server did not answer PING; its log ({last})")
    }

    /// True once the server answers PING; false if it exited or the time ran out.
    fn wait_for_ping(&mut self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = StdStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok() && matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG")) {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (an outage), keeping its port and folder for [`Self::restart`].
    fn kill(mut self) -> (tempfile::TempDir, u16) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.port)
    }

    fn restart(dir: tempfile::TempDir, port: u16) -> Self {
        Self::start_in(dir, Some(port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running relay on the shared Redis.
struct Node(Running<AppState>);

impl std::ops::Deref for Node {
    type Target = Running<AppState>;
    fn deref(&self) -> &Running<AppState> {
        &self.0
    }
}

impl Node {
    fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    async fn ingest(&self) -> Ws {
        connect(&self.ws_url("/ws/ingest"), &[("authorization", &format!("Bearer {SECRET}"))]).await.unwrap()
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

async fn redis_relay(redis_url: &str, tweak: impl FnOnce(&mut relay_service::RelayConfig)) -> Node {
    let mut c = config(PathBuf::from("/nonexistent-frontend"));
    tweak(&mut c);
    let store = StoreConfig::Redis(RedisConfig { url: redis_url.to_owned(), prefix: "v1test:".into() });
    let state = AppState::with_store(c, seed_model(), &store).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Node(Running::start(listener, state, |listener, state, stop| {
        relay_service::run(listener, state, async move {
            let _ = stop.await;
        })
    }))
}

fn latent(session: &str, frame: u64) -> String {
    format!(r#"{{"type":"waveform_latent","session_id":"{session}","payload":[0.5,1.0,{}],"frame_id":{frame}}}"#, frame as f32 / 10.0)
}

/// `POST /api/sessions` on `addr`: (session id, token).
async fn new_session(addr: SocketAddr) -> (String, String) {
    let (status, _, body) = http(addr, "POST", "/api/sessions", &[JSON]).await;
    assert_eq!(status, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    (v["session_id"].as_str().unwrap().to_owned(), v["token"].as_str().unwrap().to_owned())
}

async fn subscribe(relay: &Node, session: &str, token: &str) -> Ws {
    let mut ws = connect(&relay.ws_url("/ws/subscribe"), &[]).await.unwrap();
    send(&mut ws, &format!(r#"{{"type":"subscribe","session_id":"{session}","token":"{token}"}}"#)).await;
    ws
}

/// Reads `n` images, returning their frame ids in arrival order.
async fn images(ws: &mut Ws, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(expect_type(ws, "reconstructed_image").await["frame_id"].as_u64().unwrap());
    }
    ids
}

/// Nothing more arrives within a short while.
async fn quiet(ws: &mut Ws) {
    if let Ok(m) = tokio::time::timeout(Duration::from_millis(400), next_json(ws)).await {
        panic!("expected nothing more, got {}", m.map(|v| short(&v)).unwrap_or_else(|| "a close".into()));
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse::<f64>().ok()))
        .unwrap_or_else(|| panic!("no {name} in\n{text}")) as u64
}

#[tokio::test]
async fn images_decoded_on_relay_b_reach_a_subscriber_on_relay_a_and_survive_the_loss_of_a() {
    let redis = RedisServer::start();
    let a = redis_relay(&redis.url(), |_| {}).await;
    let b = redis_relay(&redis.url(), |_| {}).await;
    // Issued by B, valid on A: the token is an HMAC of the shared secret.
    let (session, token) = new_session(b.addr).await;
    let mut on_a = subscribe(&a, &session, &token).await;
    assert_eq!(expect_type(&mut on_a, "subscribed").await["buffered"], 0);

    let mut ingest_b = b.ingest().await;
    for f in 1..=5 {
        send(&mut ingest_b, &latent(&session, f)).await;
        expect_type(&mut ingest_b, "reconstructed_image").await;
    }
    let mut got = images(&mut on_a, 5).await;
    got.sort();
    assert_eq!(got, vec![1, 2, 3, 4, 5], "A's subscriber gets each of B's images once");

    // A re-send to A of a frame B accepted (a simulation-service that failed over) is
    // acknowledged, not reconstructed again, on either relay.
    let mut ingest_a = a.ingest().await;
    send(&mut ingest_a, &latent(&session, 3)).await;
    let ack = expect_type(&mut ingest_a, "ack").await;
    assert_eq!((ack["session_id"].as_str(), ack["frame_id"].as_u64()), (Some(session.as_str()), Some(3)));
    send(&mut ingest_b, &latent(&session, 5)).await;
    expect_type(&mut ingest_b, "ack").await;
    quiet(&mut on_a).await;
    let metrics_a = http(a.addr, "GET", "/metrics", &[]).await.2;
    assert_eq!(metric(&metrics_a, "v1_relay_frames_in_total"), 0, "A reconstructed nothing");
    assert_eq!(metric(&metrics_a, "v1_relay_duplicate_frames_total"), 1);
    assert_eq!(metric(&metrics_a, "v1_relay_frames_out_total"), 5, "A pushed B's five images");

    // Frames A decodes reach A's own subscriber too (through Redis, once).
    send(&mut ingest_a, &latent(&session, 6)).await;
    expect_type(&mut ingest_a, "reconstructed_image").await;
    assert_eq!(images(&mut on_a, 1).await, vec![6]);
    for f in 7..=8 {
        send(&mut ingest_b, &latent(&session, f)).await;
        expect_type(&mut ingest_b, "reconstructed_image").await;
    }
    assert_eq!(images(&mut on_a, 2).await.len(), 2);
    let health: Value = serde_json::from_str(&http(a.addr, "GET", "/healthz", &[]).await.2).unwrap();
    assert_eq!(health["session_store"], "redis");

    // Relay A goes away; the browser subscribes on B with the same session and token and
    // gets everything that was buffered, in frame order, nothing twice.
    drop(ingest_a);
    a.stop().await;
    assert_eq!(close_code(&mut on_a).await, Some(1001));
    let mut on_b = subscribe(&b, &session, &token).await;
    assert_eq!(expect_type(&mut on_b, "subscribed").await["buffered"], 8);
    assert_eq!(images(&mut on_b, 8).await, (1..=8).collect::<Vec<u64>>());
    send(&mut ingest_b, &latent(&session, 9)).await;
    expect_type(&mut ingest_b, "reconstructed_image").await;
    assert_eq!(images(&mut on_b, 1).await, vec![9]);
    quiet(&mut on_b).await;
    b.stop().await;
}

/// A subscriber that joins on A while B is publishing gets every image from its replay
/// on exactly once: the replay-then-live hand-over has no gap and no duplicate.
#[tokio::test]
async fn a_subscription_started_mid_stream_has_no_gap_and_no_duplicate() {
    let redis = RedisServer::start();
    let a = redis_relay(&redis.url(), |_| {}).await;
    let b = redis_relay(&redis.url(), |_| {}).await;
    let session = "mid-stream";
    let token = secret().token_for(&SessionId::parse(session).unwrap());
    let total = 40u64;
    let mut ingest_b = b.ingest().await;
    let sender = tokio::spawn(async move {
        for f in 1..=total {
            send(&mut ingest_b, &latent(session, f)).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for _ in 1..=total {
            expect_type(&mut ingest_b, "reconstructed_image").await;
        }
        ingest_b
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut on_a = subscribe(&a, session, &token).await;
    let buffered = expect_type(&mut on_a, "subscribed").await["buffered"].as_u64().unwrap();
    let _ingest_b = sender.await.unwrap();
    let ids = images(&mut on_a, total as usize).await;
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no image twice: {ids:?} (replayed {buffered})");
    assert_eq!(unique, (1..=total).collect::<HashSet<u64>>(), "every image, replayed or live");
    quiet(&mut on_a).await;
    a.stop().await;
    b.stop().await;
}

/// Redis going away gives `unavailable` errors (never a crash); when it is back, the
/// relays reconnect and frames flow again, subscribers included.
#[tokio::test]
async fn a_redis_outage_gives_unavailable_errors_and_heals() {
    let redis = RedisServer::start();
    let url = redis.url();
    let relay = redis_relay(&url, |c| c.limits.session_idle = Duration::from_secs(2)).await;
    let token = secret().token_for(&SessionId::parse("outage").unwrap());
    let mut watcher = subscribe(&relay, "outage", &token).await;
    expect_type(&mut watcher, "subscribed").await;
    let mut ingest = relay.ingest().await;
    send(&mut ingest, &latent("outage", 1)).await;
    expect_type(&mut ingest, "reconstructed_image").await;
    assert_eq!(images(&mut watcher, 1).await, vec![1]);

    let (dir, port) = redis.kill();
    // The subscriber hears that the live link broke.
    let notice = expect_type(&mut watcher, "error").await;
    assert_eq!(notice["code"], "unavailable", "{notice}");
    send(&mut ingest, &latent("outage", 2)).await;
    let e = expect_type(&mut ingest, "error").await;
    assert_eq!((e["code"].as_str(), e["frame_id"].as_u64()), (Some("unavailable"), Some(2)), "{e}");
    assert!(e["message"].as_str().unwrap().contains("session store"), "{e}");
    let (status, _, body) = http(relay.addr, "POST", "/api/sessions", &[JSON]).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("unavailable"), "{body}");

    let _redis = RedisServer::restart(dir, port);
    // Frame 2 was refused, so a re-send is reconstructed now, once Redis answers again.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        send(&mut ingest, &latent("outage", 2)).await;
        let reply = next_json(&mut ingest).await.unwrap();
        if reply["type"] == "reconstructed_image" {
            break;
        }
        assert_eq!(reply["code"], "unavailable", "{reply}");
        assert!(Instant::now() < until, "the relay did not reconnect to Redis");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The relay re-subscribed: the subscriber (which kept its subscription) gets new
    // images live again, and a fresh subscription replays what Redis now holds.
    let mut again = subscribe(&relay, "outage", &token).await;
    assert_eq!(expect_type(&mut again, "subscribed").await["buffered"], 1, "the restarted Redis holds frame 2 only");
    assert_eq!(images(&mut again, 1).await, vec![2]);
    send(&mut ingest, &latent("outage", 3)).await;
    expect_type(&mut ingest, "reconstructed_image").await;
    assert_eq!(images(&mut again, 1).await, vec![3]);
    let mut seen = Vec::new();
    while seen.last() != Some(&3) {
        let m = next_json(&mut watcher).await.unwrap();
        if m["type"] == "reconstructed_image" {
            seen.push(m["frame_id"].as_u64().unwrap());
        }
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_relay_told_to_use_an_absent_redis_does_not_start_and_says_why() {
    let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = StoreConfig::Redis(RedisConfig { url: format!("redis://127.0.0.1:{port}/"), prefix: "v1:".into() });
    let c = config(PathBuf::from("/nonexistent-frontend"));
    let Err(err) = AppState::with_store(c, seed_model(), &store).await else {
        panic!("the relay started without its Redis");
    };
    assert!(matches!(err, StartError::Store(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("--redis-url"), "{text}");
}

/// A frame accepted by a relay that is lost before publishing its image is reconstructed
/// by the relay its re-send reaches (once the frame's lease has passed), and a re-send of
/// a frame that another, live relay publishes meanwhile is acknowledged without a second
/// image.
#[tokio::test]
async fn frames_in_flight_on_a_lost_relay_are_handed_over_and_finished_ones_acknowledged() {
    use relay_service::store::{Admission, Store, Text};

    let redis = RedisServer::start();
    let a = redis_relay(&redis.url(), |_| {}).await;
    let b = redis_relay(&redis.url(), |_| {}).await;
    let session = "handover";
    let sid = SessionId::parse(session).unwrap();
    let token = secret().token_for(&sid);
    let mut watcher = subscribe(&b, session, &token).await;
    expect_type(&mut watcher, "subscribed").await;

    // Relay A accepts frame 7 (as its ingest does) and is lost before publishing it.
    assert_eq!(a.state.sessions.admit(&sid, Some(7), Instant::now()).await.unwrap(), Admission::New);
    let lease = a.state.sessions.pending_wait().lease;
    let accepted = Instant::now();
    a.stop().await;
    let mut ingest_b = b.ingest().await;
    send(&mut ingest_b, &latent(session, 7)).await;
    let reply = expect_type(&mut ingest_b, "reconstructed_image").await;
    assert_eq!(reply["frame_id"], 7);
    assert!(accepted.elapsed() >= lease - Duration::from_millis(500), "handed over only after the lease");
    assert_eq!(images(&mut watcher, 1).await, vec![7]);

    // Relay C accepts frame 8 and publishes it while B holds a re-send of it: B answers
    // the re-send with an ack once the image is there.
    let c = redis_relay(&redis.url(), |_| {}).await;
    assert_eq!(c.state.sessions.admit(&sid, Some(8), Instant::now()).await.unwrap(), Admission::New);
    send(&mut ingest_b, &latent(session, 8)).await;
    assert!(tokio::time::timeout(Duration::from_millis(300), next_json(&mut ingest_b)).await.is_err(), "no answer while in flight");
    let image = format!(r#"{{"type":"reconstructed_image","session_id":"{session}","image_base64":"data:image/jpeg;base64,/9j/","frame_id":8}}"#);
    c.state.sessions.publish(&sid, Some(8), Text::from(image), Instant::now()).await.unwrap();
    let ack = expect_type(&mut ingest_b, "ack").await;
    assert_eq!(ack["frame_id"], 8);
    assert_eq!(images(&mut watcher, 1).await, vec![8]);
    quiet(&mut watcher).await;
    let metrics_b = http(b.addr, "GET", "/metrics", &[]).await.2;
    assert_eq!(metric(&metrics_b, "v1_relay_frames_in_total"), 1, "B reconstructed frame 7 only");
    c.stop().await;
    b.stop().await;
}

/// A session that a subscription brings into a relay's table (issued by another relay, or
/// forgotten here) counts against the subscriber's address there, as in the in-memory
/// store: tokens from elsewhere do not lift the per-client limit.
#[tokio::test]
async fn sessions_brought_in_by_subscribing_count_against_the_address() {
    let redis = RedisServer::start();
    let a = redis_relay(&redis.url(), |_| {}).await;
    let b = redis_relay(&redis.url(), |c| c.limits.max_sessions_per_client = 2).await;
    let (s1, t1) = new_session(a.addr).await;
    let (s2, t2) = new_session(a.addr).await;
    let mut ws = subscribe(&b, &s1, &t1).await;
    expect_type(&mut ws, "subscribed").await;
    assert_eq!(http(b.addr, "POST", "/api/sessions", &[JSON]).await.0, 201);
    let (status, _, body) = http(b.addr, "POST", "/api/sessions", &[JSON]).await;
    assert_eq!(status, 429, "the session brought in by subscribing was not counted: {body}");
    send(&mut ws, &format!(r#"{{"type":"subscribe","session_id":"{s2}","token":"{t2}"}}"#)).await;
    let e = expect_type(&mut ws, "error").await;
    assert_eq!(e["session_id"], s2.as_str());
    assert!(e["message"].as_str().unwrap().contains("max-sessions-per-client"), "{e}");
    // Relay a issued them and still has room: the limit counts per relay.
    assert_eq!(http(a.addr, "POST", "/api/sessions", &[JSON]).await.0, 201);
    a.stop().await;
    b.stop().await;
}
