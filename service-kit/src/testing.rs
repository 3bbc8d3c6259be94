//! Clients for the services' integration tests (feature `testing`): real WebSocket
//! connections with extra headers, reading JSON messages and close codes with a
//! timeout, a minimal HTTP/1.1 client, and a handle to a server running on a test
//! listener. Test helpers fail loudly (panic) on anything unexpected: that is the test
//! failing.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for a message, a close or a drain: generous for a release build on a
/// busy 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// A server started by a test, stopped by [`Running::stop`].
pub struct Running<S> {
    pub addr: SocketAddr,
    pub state: S,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl<S: Clone> Running<S> {
    /// Serves `state` on `listener` with a service's `run(listener, state, shutdown)`.
    pub fn start<R, Fut>(listener: tokio::net::TcpListener, state: S, run: R) -> Self
    where
        R: FnOnce(tokio::net::TcpListener, S, oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(run(listener, state.clone(), rx));
        Self { addr, state, stop: Some(tx), handle: Some(handle) }
    }
}

impl<S> Running<S> {
    /// Shuts down and waits for the drain to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(WAIT, h).await.unwrap().unwrap().unwrap();
        }
    }
}

/// A WebSocket connection with extra request headers; the HTTP status on refusal.
pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    let mut request = url.into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("connecting to {url}: {e}"),
    }
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// The next text message as JSON (skipping pings), or None when the socket closed.
pub async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next()).await.expect("timed out waiting for a message")?;
        match m {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The next message, which must be JSON of `type`.
pub async fn expect_type(ws: &mut Ws, ty: &str) -> Value {
    let v = next_json(ws).await.unwrap_or_else(|| panic!("socket closed while waiting for {ty}"));
    assert_eq!(v["type"], ty, "expected {ty}, got {}", short(&v));
    v
}

/// A message with long strings and arrays cut, for assertion messages.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 400 {
        format!("{}...", &s[..400])
    } else {
        s
    }
}

/// The close code the server sent, waiting for it.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("timed out waiting for close")? {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// What a ping flood got from the server.
#[derive(Debug)]
pub struct PingFlood {
    /// Pings the socket took before the flood stopped.
    pub pings: u64,
    /// The server ended the connection before the flood's time was up.
    pub ended_by_server: bool,
    /// The close code the client read, if the close frame reached it: a server closing a
    /// socket with unread pings still queued resets the connection, and the reset can
    /// overtake its close frame.
    pub close_code: Option<u16>,
    /// How long the flood ran.
    pub elapsed: Duration,
}

/// Connects to `url` and sends pings as fast as the socket takes them, never reading, for
/// at most `limit` or until the connection breaks; then reads what the server sent (its
/// pongs, then its close frame) to find out how it ended.
pub async fn ping_flood(url: &str, headers: &[(&str, &str)], limit: Duration) -> PingFlood {
    let ws = connect(url, headers).await.unwrap_or_else(|status| panic!("{url} refused the flood with HTTP {status}"));
    let (mut sink, mut stream) = ws.split();
    let started = std::time::Instant::now();
    let mut pings = 0u64;
    let mut ended_by_server = false;
    'flood: while started.elapsed() < limit {
        for _ in 0..256 {
            if sink.feed(Message::Ping(Default::default())).await.is_err() {
                ended_by_server = true;
                break 'flood;
            }
            pings += 1;
        }
        if let Ok(Err(_)) = tokio::time::timeout(Duration::from_secs(1), sink.flush()).await {
            ended_by_server = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    let mut close_code = None;
    let reading = async {
        while let Some(m) = stream.next().await {
            match m {
                Ok(Message::Close(frame)) => {
                    close_code = frame.map(|f| u16::from(f.code));
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(WAIT, reading).await;
    PingFlood { pings, ended_by_server, close_code, elapsed }
}

/// Pings `url` `per_second` times a second, reading between pings, until the server
/// closes the connection (or `limit` passes); the close code it sent.
pub async fn ping_storm(url: &str, headers: &[(&str, &str)], per_second: u32, limit: Duration) -> Option<u16> {
    let mut ws = connect(url, headers).await.unwrap_or_else(|status| panic!("{url} refused the pings with HTTP {status}"));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    let until = tokio::time::Instant::now() + limit;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return None,
            _ = tick.tick() => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    return close_code(&mut ws).await;
                }
            }
            m = ws.next() => match m {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            },
        }
    }
}

/// Resident memory of process `pid` in KiB (VmRSS from /proc).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// An HTTP response as a test reads it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (lower case), or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every header as "name: value" lines.
    pub fn head(&self) -> String {
        self.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n")
    }
}

/// One HTTP/1.1 request with an empty body.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let stream = TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(io).await.unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = sender.send_request(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 24).await.unwrap();
    HttpResponse { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}
