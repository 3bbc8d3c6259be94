//! Sessions, tokens, logs and the secret under abuse: a foreign page filling a user's
//! session quota, requests that a browser could send without a preflight, expired and
//! renewed tokens, old tokens used to exceed the per-client limit, a flood of refused
//! upgrades with huge headers against the log, and the generated secret kept out of it.

// Not every shared helper is used here.
#[allow(unused_imports)]
mod common;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use common::*;
use relay_service::store::Store;
use serde_json::Value;
use service_kit::testing::WAIT;
use shared_protocol::{unix_now, SessionId, SharedSecret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request with a body: (status, headers, body).
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Vec<(String, String)>, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = sender.send_request(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned())).collect();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (status, _, body) = request(addr, "POST", path, headers, body).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("POST {path} answered {status} with a body that is not JSON ({e}): {body}"));
    (status, v)
}

/// A new session: (id, token, expires_at).
async fn new_session(addr: SocketAddr) -> (String, String, u64) {
    let (status, v) = post(addr, "/api/sessions", &[JSON], "").await;
    assert_eq!(status, 201, "{v}");
    (v["session_id"].as_str().unwrap().to_owned(), v["token"].as_str().unwrap().to_owned(), v["expires_at"].as_u64().unwrap())
}

async fn subscribe_with(ws: &mut Ws, session: &str, token: &str) -> Value {
    send(ws, &format!(r#"{{"type":"subscribe","session_id":"{session}","token":"{token}"}}"#)).await;
    next_json(ws).await.expect("the relay closed the subscriber connection")
}

/// The value of a counter line of `/metrics` (0 when absent).
async fn metric(addr: SocketAddr, line_prefix: &str) -> u64 {
    let (status, _, text) = http(addr, "GET", "/metrics", &[]).await;
    assert_eq!(status, 200);
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse::<f64>().unwrap() as u64)
}

#[tokio::test]
async fn a_foreign_page_cannot_take_sessions_and_an_allowed_one_must_preflight() {
    let relay = Relay::seed(|_| {}).await;
    let evil = ("origin", "https://evil.example");
    for body in ["", "{}"] {
        let (status, v) = post(relay.addr, "/api/sessions", &[evil, JSON], body).await;
        assert_eq!(status, 403, "{v}");
        assert_eq!(v["code"], "unauthorized");
        assert!(v["message"].as_str().unwrap().contains("--allowed-origins"), "{v}");
    }
    // The bodiless POST a foreign page can send without a preflight is refused too.
    assert_eq!(post(relay.addr, "/api/sessions", &[evil], "").await.0, 403);
    assert_eq!(relay.state.sessions.len(), 0, "a refused POST issued a session");
    // Renewal follows the same rule.
    let (id, token, _) = new_session(relay.addr).await;
    let (status, _) = post(relay.addr, &format!("/api/sessions/{id}/renew"), &[evil, JSON], &format!(r#"{{"token":"{token}"}}"#)).await;
    assert_eq!(status, 403);
    // An allowed page (and a program without Origin) gets its session.
    let (status, v) = post(relay.addr, "/api/sessions", &[("origin", "http://localhost:5173"), JSON], "{}").await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(relay.state.sessions.len(), 2);

    // The preflight: allowed origins may send the JSON content type, others get no CORS
    // grant, so their browser never sends the POST.
    let preflight = |origin: &'static str| {
        let addr = relay.addr;
        async move {
            let headers = [("origin", origin), ("access-control-request-method", "POST"), ("access-control-request-headers", "content-type")];
            request(addr, "OPTIONS", "/api/sessions", &headers, "").await
        }
    };
    let (status, headers, _) = preflight("http://localhost:5173").await;
    assert_eq!(status, 200);
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.to_ascii_lowercase());
    assert_eq!(header("access-control-allow-origin").as_deref(), Some("http://localhost:5173"));
    assert!(header("access-control-allow-headers").is_some_and(|v| v.contains("content-type")), "{headers:?}");
    assert!(header("access-control-allow-methods").is_some_and(|v| v.contains("post")), "{headers:?}");
    let (_, headers, _) = preflight("https://evil.example").await;
    assert!(!headers.iter().any(|(k, _)| k == "access-control-allow-origin"), "{headers:?}");
    assert_eq!(metric(relay.addr, "v1_relay_refusals_total{reason=\"origin\"}").await, 4);
    relay.stop().await;
}

#[tokio::test]
async fn session_posts_need_the_json_content_type_and_at_most_an_empty_object() {
    let relay = Relay::seed(|_| {}).await;
    for headers in [vec![], vec![("content-type", "text/plain")], vec![("content-type", "application/x-www-form-urlencoded")]] {
        let (status, v) = post(relay.addr, "/api/sessions", &headers, "").await;
        assert_eq!(status, 415, "{headers:?}: {v}");
        assert_eq!(v["code"], "bad_message");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("Content-Type: application/json"), "{message}");
    }
    assert_eq!(relay.state.sessions.len(), 0, "a refused POST issued a session");
    assert_eq!(metric(relay.addr, "v1_relay_refusals_total{reason=\"content_type\"}").await, 3);
    for ok in ["", "{}", " { } ", "\n"] {
        assert_eq!(post(relay.addr, "/api/sessions", &[("content-type", "application/json; charset=utf-8")], ok).await.0, 201, "{ok:?}");
    }
    for (bad, needle) in [("[]", "JSON object"), ("{\"ttl\":5}", "takes no fields"), ("{", "not JSON")] {
        let (status, v) = post(relay.addr, "/api/sessions", &[JSON], bad).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{bad}: {v}");
    }
    let (id, token, _) = new_session(relay.addr).await;
    let (status, v) = post(relay.addr, &format!("/api/sessions/{id}/renew"), &[], &format!(r#"{{"token":"{token}"}}"#)).await;
    assert_eq!(status, 415, "{v}");
    relay.stop().await;
}

#[tokio::test]
async fn renewal_gives_a_later_token_and_the_old_one_works_until_its_expiry() {
    let relay = Relay::seed(|c| c.limits.token_ttl = Duration::from_secs(600)).await;
    let (id, first, expires_at) = new_session(relay.addr).await;
    let now = unix_now();
    assert!((now + 595..=now + 600).contains(&expires_at), "issued for --token-ttl-secs: {expires_at} at {now}");
    // An older token of the same session (as a page holds it after a while).
    let session = SessionId::parse(&id).unwrap();
    let old = secret().token_expiring_at(&session, now + 100);
    let renew_path = format!("/api/sessions/{id}/renew");
    let (status, v) = post(relay.addr, &renew_path, &[JSON], &format!(r#"{{"token":"{old}"}}"#)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["session_id"], id.as_str());
    let renewed = v["token"].as_str().unwrap().to_owned();
    assert_ne!(renewed, old);
    assert!(v["expires_at"].as_u64().unwrap() >= expires_at, "{v}");
    assert!((595..=600).contains(&v["expires_in"].as_u64().unwrap()), "{v}");
    // The token may also come as a bearer header.
    let (status, v) = post(relay.addr, &renew_path, &[JSON, ("authorization", &format!("Bearer {first}"))], "").await;
    assert_eq!(status, 200, "{v}");
    // Every token stays valid until its own expiry.
    let mut ws = connect(&relay.ws_url("/ws/subscribe"), &[]).await.unwrap();
    for token in [&old, &first, &renewed] {
        let m = subscribe_with(&mut ws, &id, token).await;
        assert_eq!(m["type"], "subscribed", "{m}");
    }
    // Refusals, each saying what was wrong.
    let expired = secret().token_expiring_at(&session, now - 1);
    let other = SessionId::parse("someone-else").unwrap();
    let cases: Vec<(String, String, u16, &str)> = vec![
        (renew_path.clone(), format!(r#"{{"token":"{expired}"}}"#), 401, "expired"),
        (renew_path.clone(), format!(r#"{{"token":"{}"}}"#, secret().token_for(&other)), 401, "token is missing or wrong"),
        (renew_path.clone(), String::new(), 401, "no token"),
        (renew_path.clone(), r#"{"token":7}"#.into(), 400, "\"token\""),
        (renew_path.clone(), format!(r#"{{"token":"{first}","ttl":99999}}"#), 400, "takes only"),
        ("/api/sessions/bad%20id/renew".into(), format!(r#"{{"token":"{first}"}}"#), 400, "session"),
    ];
    for (path, body, want, needle) in cases {
        let (status, v) = post(relay.addr, &path, &[JSON], &body).await;
        assert_eq!(status, want, "{path} {body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{path} {body}: {v}");
    }
    // A token signed by another secret cannot be renewed.
    let foreign = SharedSecret::new("another-secret-0123456789abcdef").unwrap().token_for(&session);
    assert_eq!(post(relay.addr, &renew_path, &[JSON], &format!(r#"{{"token":"{foreign}"}}"#)).await.0, 401);
    relay.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_on_subscribe_with_how_to_renew() {
    let relay = Relay::seed(|_| {}).await;
    let session = SessionId::parse("late").unwrap();
    let expired = secret().token_expiring_at(&session, unix_now() - 1);
    let mut ws = connect(&relay.ws_url("/ws/subscribe"), &[]).await.unwrap();
    let m = subscribe_with(&mut ws, "late", &expired).await;
    assert_eq!((m["type"].as_str(), m["code"].as_str(), m["session_id"].as_str()), (Some("error"), Some("unauthorized"), Some("late")), "{m}");
    let message = m["message"].as_str().unwrap();
    assert!(message.contains("expired") && message.contains("/api/sessions/late/renew") && message.contains("POST /api/sessions"), "{message}");
    // A wrong token is told apart from an expired one.
    let m = subscribe_with(&mut ws, "late", &format!("{}.{}", unix_now() + 60, "0".repeat(64))).await;
    assert!(!m["message"].as_str().unwrap().contains("expired"), "{m}");
    // The connection stays usable, and nothing was created for the refused session.
    let m = subscribe_with(&mut ws, "late", &secret().token_for(&session)).await;
    assert_eq!(m["type"], "subscribed", "{m}");
    assert_eq!(metric(relay.addr, "v1_relay_refusals_total{reason=\"expired_token\"}").await, 1);
    assert_eq!(metric(relay.addr, "v1_relay_refusals_total{reason=\"token\"}").await, 1);
    relay.stop().await;
}

#[tokio::test]
async fn old_tokens_do_not_lift_the_per_client_limit() {
    let relay = Relay::seed(|c| {
        c.limits.max_sessions_per_client = 2;
        c.limits.session_idle = Duration::from_secs(1);
    })
    .await;
    let (a, a_token, _) = new_session(relay.addr).await;
    let (b, b_token, _) = new_session(relay.addr).await;
    assert_eq!(post(relay.addr, "/api/sessions", &[JSON], "").await.0, 429);
    // Both are forgotten while idle; their tokens stay valid.
    let deadline = Instant::now() + WAIT;
    while !relay.state.sessions.is_empty() {
        assert!(Instant::now() < deadline, "idle sessions were never forgotten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (c, c_token, _) = new_session(relay.addr).await;
    let mut ws = connect(&relay.ws_url("/ws/subscribe"), &[]).await.unwrap();
    // Subscribed sessions are never idle, so the count below cannot change by itself.
    assert_eq!(subscribe_with(&mut ws, &c, &c_token).await["type"], "subscribed");
    // Subscribing to a forgotten session recreates it, counted against this address.
    assert_eq!(subscribe_with(&mut ws, &a, &a_token).await["type"], "subscribed");
    let (status, v) = post(relay.addr, "/api/sessions", &[JSON], "").await;
    assert_eq!(status, 429, "the recreated session was not counted: {v}");
    // At its limit, the client cannot exceed it by recreating another old session.
    let m = subscribe_with(&mut ws, &b, &b_token).await;
    assert_eq!((m["type"].as_str(), m["session_id"].as_str()), (Some("error"), Some(b.as_str())), "{m}");
    assert!(m["message"].as_str().unwrap().contains("max-sessions-per-client"), "{m}");
    assert_eq!(relay.state.sessions.len(), 2);
    // Subscribing again to a session it holds is not a new session.
    assert_eq!(subscribe_with(&mut ws, &a, &a_token).await["type"], "subscribed");
    relay.stop().await;
}

/// The relay binary on a free port with the seed model, its log (stderr) in a file.
struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _model: tempfile::TempDir,
}

impl RelayProcess {
    async fn spawn(dir: &Path, name: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let model = tempfile::tempdir().unwrap();
        seed_model().save(model.path()).unwrap();
        let addr = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_relay-service"))
            .args(["--bind", &addr.to_string(), "--model", model.path().to_str().unwrap()])
            .args(["--static-dir", "/nonexistent-frontend"])
            .args(args)
            .env_remove("V1_SHARED_SECRET")
            .env_remove("V1_SHARED_SECRET_FILE")
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut relay = Self { child, addr, log, _model: model };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = relay.child.try_wait() {
                panic!("the relay exited with {status}: {}", relay.log_text());
            }
            assert!(Instant::now() < deadline, "the relay never became healthy: {}", relay.log_text());
            if TcpStream::connect(addr).await.is_ok() && http(addr, "GET", "/healthz", &[]).await.0 == 200 {
                return relay;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_text()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `count` WebSocket upgrades of `/ws/subscribe` with `origin` on `workers`
/// keep-alive connections (reconnecting when the relay closes one) and returns how many
/// were answered 403.
async fn refused_upgrades(addr: SocketAddr, origin: &str, count: usize, workers: usize) -> usize {
    let request = format!(
        "GET /ws/subscribe HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let per_worker = count.div_ceil(workers);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let request = request.clone();
        let n = per_worker.min(count - w * per_worker);
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            let mut stream: Option<TcpStream> = None;
            let mut buf = Vec::with_capacity(4096);
            let mut done = 0;
            while done < n {
                let s = match stream.as_mut() {
                    Some(s) => s,
                    None => stream.insert(TcpStream::connect(addr).await.unwrap()),
                };
                if s.write_all(request.as_bytes()).await.is_err() {
                    stream = None;
                    continue;
                }
                match read_response(s, &mut buf).await {
                    Some((status, keep_alive)) => {
                        done += 1;
                        if status == 403 {
                            refused += 1;
                        }
                        if !keep_alive {
                            stream = None;
                        }
                    }
                    None => stream = None,
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    refused
}

/// Reads one HTTP response (head and `content-length` body): (status, whether the
/// connection stays open). None when the connection ended first.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, bool)> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((status, !head.contains("connection: close")))
}

/// 20,000 refused upgrades with a 4 KB Origin each once wrote 82 MB of log in a second:
/// now the Origin is cut and the line rate-limited, every refusal is still counted.
#[tokio::test]
async fn a_flood_of_refused_upgrades_with_huge_origins_writes_a_bounded_log() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn(dir.path(), "flood", &[("V1_SHARED_SECRET", SECRET), ("RUST_LOG", "info")], &[]).await;
    let before = std::fs::metadata(&relay.log).unwrap().len();
    // A header cannot carry a newline (HTTP refuses it), but it can carry a tab.
    let origin = format!("https://\tevil.{}.example", "a".repeat(4096));
    const FLOOD: usize = 20_000;
    let started = Instant::now();
    let refused = refused_upgrades(relay.addr, &origin, FLOOD, 16).await;
    let took = started.elapsed();
    assert_eq!(refused, FLOOD);
    // One more, a second later: its line reports the refusals that were not logged.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(refused_upgrades(relay.addr, &origin, 1, 1).await, 1);
    assert_eq!(metric(relay.addr, "v1_relay_refusals_total{reason=\"origin\"}").await, FLOOD as u64 + 1);
    let log = relay.stop();
    let written = log.len() as u64 - before;
    eprintln!("{FLOOD} refused upgrades in {:.1} s wrote {written} bytes of log", took.as_secs_f64());
    assert!(written < 200_000, "{written} bytes of log for {FLOOD} refusals");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("another origin")).collect();
    assert!(!lines.is_empty(), "no refusal was logged at all: {log}");
    // At most one line per second (and the first one), plus the late one.
    assert!(lines.len() as f64 <= took.as_secs_f64() + 3.0, "{} lines in {:.1} s", lines.len(), took.as_secs_f64());
    for line in &lines {
        assert!(!line.contains(&"a".repeat(65)), "the Origin was logged beyond 64 characters: {line:.200}");
        assert!(!line.contains('\t') && line.contains("\\tevil"), "the tab was not escaped: {line:.200}");
    }
    // Every refusal is accounted for: the lines stand for themselves and the ones they
    // report as not logged.
    let suppressed: u64 = lines
        .iter()
        .map(|l| l.split("suppressed=").nth(1).and_then(|v| v.split(' ').next()).and_then(|v| v.parse::<u64>().ok()).expect(l))
        .sum();
    assert_eq!(lines.len() as u64 + suppressed, FLOOD as u64 + 1, "{lines:?}");
}

#[tokio::test]
async fn a_generated_secret_stays_out_of_the_log_in_an_owner_only_file_reused_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets").join("relay-secret");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let file_arg = file.to_str().unwrap();
    let debug = [("RUST_LOG", "debug")];
    let relay = RelayProcess::spawn(dir.path(), "first", &debug, &["--shared-secret-file", file_arg]).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let value = text.trim().to_owned();
    assert_eq!(value.len(), 64, "{text:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The file's secret is the relay's: its tokens and bearer work.
    let secret = SharedSecret::new(value.clone()).unwrap();
    let token = secret.token_for(&SessionId::parse("mine").unwrap());
    let mut ws = connect(&format!("ws://{}/ws/subscribe", relay.addr), &[]).await.unwrap();
    assert_eq!(subscribe_with(&mut ws, "mine", &token).await["type"], "subscribed");
    let ingest = connect(&format!("ws://{}/ws/ingest", relay.addr), &[("authorization", &secret.bearer_header())]).await;
    assert!(ingest.is_ok(), "the file's secret is not the ingest bearer");
    drop(ws);
    let first_log = relay.stop();
    assert!(!first_log.contains(&value), "the secret was logged");
    assert!(!first_log.contains(&value[..16]), "part of the secret was logged");
    assert!(first_log.contains(file_arg), "the log does not say where the secret is: {first_log}");

    // A restart reuses the file (the tokens issued before stay valid) and leaves it as is.
    let relay = RelayProcess::spawn(dir.path(), "second", &debug, &["--shared-secret-file", file_arg]).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    let mut ws = connect(&format!("ws://{}/ws/subscribe", relay.addr), &[]).await.unwrap();
    assert_eq!(subscribe_with(&mut ws, "mine", &token).await["type"], "subscribed");
    drop(ws);
    let second_log = relay.stop();
    assert!(!second_log.contains(&value[..16]), "the secret was logged on restart");
    assert!(second_log.contains("read the shared secret"), "{second_log}");

    // The default path is in the working directory; a given secret writes no file.
    let relay = RelayProcess::spawn(dir.path(), "default", &[], &[]).await;
    assert!(dir.path().join(".v1-shared-secret").is_file());
    drop(relay);
    let given = tempfile::tempdir().unwrap();
    let relay = RelayProcess::spawn(given.path(), "given", &[("V1_SHARED_SECRET", SECRET)], &[]).await;
    assert!(!given.path().join(".v1-shared-secret").exists());
    let log = relay.stop();
    assert!(!log.contains(SECRET), "a given secret was logged");

    // The published example secret is refused off loopback, naming the way out.
    let output = Command::new(env!("CARGO_BIN_EXE_relay-service"))
        .args(["--bind", "0.0.0.0:0", "--model", "/nonexistent-model"])
        .env("V1_SHARED_SECRET", shared_protocol::auth::PUBLIC_SECRETS[0])
        .current_dir(given.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("published example") && stderr.contains("openssl rand -hex 32"), "{stderr}");
    assert!(!stderr.contains(shared_protocol::auth::PUBLIC_SECRETS[0]), "{stderr}");
}
