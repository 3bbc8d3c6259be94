//! Binding, serving and graceful shutdown, the same for both services.
//!
//! [`serve`] runs a router until the shutdown future resolves or the service's
//! cancellation token is cancelled, cancels the token (sockets stop reading and drain),
//! stops accepting connections, then waits up to a drain timeout for the tracked tasks
//! (WebSocket connections are not tracked by the HTTP server itself).
//!
//! Connections are served with hyper directly rather than `axum::serve`, which has no
//! header-read timeout and no connection caps: a client that opens connections and
//! never finishes a request, or opens thousands, would otherwise hold them forever.
//! [`NetLimits`] bounds both; a connection over a cap is answered `503` at once and
//! closed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, info, warn};

/// Limits on the connections a service holds, each one configurable (see the services'
/// `--max-connections`, `--max-connections-per-address`, `--header-read-timeout-secs`
/// and `--idle-timeout-secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetLimits {
    /// Open TCP connections (HTTP and WebSocket) at once.
    pub max_connections: usize,
    /// Open connections from one client address at once.
    pub max_connections_per_address: usize,
    /// Time a client has to send a request's headers, on a new connection and between
    /// requests of a kept-alive one.
    pub header_read_timeout: Duration,
    /// A WebSocket that sends nothing (not even the pong to the service's ping) for this
    /// long is closed. The service pings every third of it, and browsers answer pings
    /// by themselves, so an open page never reaches it.
    pub idle_timeout: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_address: 256,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The command-line flags of [`NetLimits`], the same for both services (flattened into
/// each binary's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct NetArgs {
    /// Open connections (HTTP and WebSocket) at once; more are answered 503.
    #[arg(long, env = "V1_MAX_CONNECTIONS", default_value_t = NetLimits::default().max_connections)]
    pub max_connections: usize,
    /// Open connections from one client address at once; more are answered 503.
    #[arg(long, env = "V1_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = NetLimits::default().max_connections_per_address)]
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long, env = "V1_HEADER_READ_TIMEOUT_SECS", default_value_t = NetLimits::default().header_read_timeout.as_secs())]
    pub header_read_timeout_secs: u64,
    /// Seconds a WebSocket may stay silent (no message, no pong) before it is closed.
    #[arg(long, env = "V1_IDLE_TIMEOUT_SECS", default_value_t = NetLimits::default().idle_timeout.as_secs())]
    pub idle_timeout_secs: u64,
}

impl From<&NetArgs> for NetLimits {
    fn from(a: &NetArgs) -> Self {
        Self {
            max_connections: a.max_connections,
            max_connections_per_address: a.max_connections_per_address,
            header_read_timeout: Duration::from_secs(a.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(a.idle_timeout_secs),
        }
    }
}

impl NetLimits {
    /// Each setting with its accepted range, for the services' configuration checks:
    /// (name, value, min, max).
    pub fn ranges(&self) -> [(&'static str, u64, u64, u64); 4] {
        [
            ("max connections", self.max_connections as u64, 1, 1_000_000),
            ("max connections per address", self.max_connections_per_address as u64, 1, 1_000_000),
            ("header read timeout seconds", self.header_read_timeout.as_secs(), 1, 3600),
            ("idle timeout seconds", self.idle_timeout.as_secs(), 3, 24 * 3600),
        ]
    }
}

/// Why a listener could not be opened; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}: the address is already in use. Stop the other process, or choose another address with --bind (or {env})")]
    AddrInUse { addr: SocketAddr, env: &'static str },
    #[error("cannot listen on {addr}: {source}. Choose another address with --bind (or {env})")]
    Bind { addr: SocketAddr, env: &'static str, source: std::io::Error },
}

/// Binds `addr`, turning the usual failures into advice; `env` names the variable that
/// sets the address.
pub async fn bind(addr: SocketAddr, env: &'static str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => BindError::AddrInUse { addr, env },
        _ => BindError::Bind { addr, env, source },
    })
}

/// What shutdown cancels and waits for.
#[derive(Debug, Clone)]
pub struct Drain {
    /// Cancelled when shutdown begins.
    pub token: CancellationToken,
    /// Connections and background tasks to wait for.
    pub tasks: TaskTracker,
    /// How long to wait for them.
    pub timeout: Duration,
}

/// Serves `router` (with the peer address as `ConnectInfo`) until `shutdown` resolves or
/// `drain.token` is cancelled, then drains. `name` and `what` go into the logs ("relay",
/// "connections").
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: &Drain,
    limits: &NetLimits,
    name: &'static str,
    what: &'static str,
) -> std::io::Result<()> {
    let token = drain.token.clone();
    let signal = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = token.cancelled() => {}
        }
        info!("{name} shutting down: draining in-flight frames");
        token.cancel();
    };
    tokio::pin!(signal);
    let gate = Gate::new(*limits);
    // Connections end their HTTP work gracefully when `stop` changes; `open` closes
    // once every connection task has dropped its receiver.
    let (stop, stopped) = watch::channel(false);
    let (open, _) = watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let pass = match gate.enter(peer.ip()) {
            Ok(pass) => pass,
            Err(refusal) => {
                if let Some(suppressed) = REFUSAL_LOG.check() {
                    warn!(client = %peer.ip(), suppressed, "refused a connection: {}", refusal.message());
                }
                tokio::spawn(refuse(stream, refusal));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Counted { stream, _pass: pass });
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let mut stopped = stopped.clone();
        let open = open.subscribe();
        let header_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(io, service)
                .with_upgrades();
            tokio::pin!(conn);
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            debug!(client = %peer, "connection ended: {e}");
                        }
                        break;
                    }
                    changed = stopped.changed() => {
                        conn.as_mut().graceful_shutdown();
                        if changed.is_err() {
                            // Keep serving what is in flight; nothing more will change.
                            let _ = (&mut conn).await;
                            break;
                        }
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // HTTP requests in flight finish; idle kept-alive connections close at once.
    if tokio::time::timeout(drain.timeout, open.closed()).await.is_err() {
        warn!(timeout = ?drain.timeout, "some HTTP requests did not finish in time");
    }
    drain.tasks.close();
    if tokio::time::timeout(drain.timeout, drain.tasks.wait()).await.is_err() {
        warn!(timeout = ?drain.timeout, "some {what} did not finish draining in time");
    }
    Ok(())
}

/// At most one log line a second about refused connections.
static REFUSAL_LOG: crate::log_limit::LogLimiter = crate::log_limit::LogLimiter::per_second();

/// Why a connection was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The service holds `max` connections.
    Full { max: usize },
    /// This address holds `max` connections.
    PerAddress { max: usize },
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::Full { max } => format!(
                "the service holds {max} connections (its --max-connections); try again shortly"
            ),
            Refusal::PerAddress { max } => format!(
                "this address holds {max} connections (the service's --max-connections-per-address); close some first"
            ),
        }
    }
}

/// Counts open connections, in total and per client address.
#[derive(Debug, Clone)]
pub struct Gate {
    limits: NetLimits,
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One counted connection; dropping it gives the place back.
#[derive(Debug)]
pub struct Pass {
    counts: Arc<Mutex<Counts>>,
    address: IpAddr,
}

impl Gate {
    pub fn new(limits: NetLimits) -> Self {
        Self { limits, counts: Arc::default() }
    }

    fn counts(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
        // Every update finishes before anything can fail, so a poisoned lock is usable.
        counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for a connection from `address`, or says why there is none.
    pub fn enter(&self, address: IpAddr) -> Result<Pass, Refusal> {
        let mut counts = Self::counts(&self.counts);
        if counts.total >= self.limits.max_connections {
            return Err(Refusal::Full { max: self.limits.max_connections });
        }
        let mine = counts.per_address.entry(address).or_default();
        if *mine >= self.limits.max_connections_per_address {
            return Err(Refusal::PerAddress { max: self.limits.max_connections_per_address });
        }
        *mine += 1;
        counts.total += 1;
        Ok(Pass { counts: self.counts.clone(), address })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        Self::counts(&self.counts).total
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut counts = Gate::counts(&self.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.per_address.remove(&self.address);
            }
        }
    }
}

/// A connection's socket with its place in the [`Gate`]: an upgraded WebSocket keeps the
/// socket, so the place is held for the WebSocket's whole life too.
struct Counted {
    stream: TcpStream,
    _pass: Pass,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Answers a connection over a cap with `503` and the reason, then closes it; a client
/// that does not read the answer within a second is simply dropped.
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    let body = serde_json::json!({"type": "error", "code": "overloaded", "message": refusal.message()}).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_is_reported_with_the_variable_to_change() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(addr, "V1_TEST_BIND").await.unwrap_err();
        assert!(matches!(err, BindError::AddrInUse { .. }), "{err}");
        assert!(err.to_string().contains("V1_TEST_BIND"));
    }

    #[tokio::test]
    async fn cancelling_the_token_stops_serving_and_waits_for_tasks() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let drain = Drain { token: CancellationToken::new(), tasks: TaskTracker::new(), timeout: Duration::from_secs(5) };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let token = drain.token.clone();
        drain.tasks.spawn(async move {
            token.cancelled().await;
            let _ = done_tx.send(());
        });
        let server = tokio::spawn({
            let drain = drain.clone();
            async move { serve(listener, Router::new(), std::future::pending(), &drain, &NetLimits::default(), "test", "tasks").await }
        });
        drain.token.cancel();
        server.await.unwrap().unwrap();
        // The task finished before serve returned.
        assert!(done_rx.await.is_ok());
        assert!(drain.tasks.is_empty());
    }

    #[test]
    fn the_gate_counts_per_address_and_in_all_and_gives_places_back() {
        let limits = NetLimits { max_connections: 3, max_connections_per_address: 2, ..NetLimits::default() };
        let gate = Gate::new(limits);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = gate.enter(a).unwrap();
        let _a2 = gate.enter(a).unwrap();
        assert_eq!(gate.enter(a).unwrap_err(), Refusal::PerAddress { max: 2 });
        let _b1 = gate.enter(b).unwrap();
        assert_eq!(gate.enter(b).unwrap_err(), Refusal::Full { max: 3 });
        assert!(Refusal::Full { max: 3 }.message().contains("--max-connections"));
        assert_eq!(gate.open(), 3);
        drop(a1);
        assert_eq!(gate.open(), 2);
        assert!(gate.enter(a).is_ok(), "the place came back");
    }

    #[test]
    fn net_limits_are_checked_with_their_names() {
        let ranges = NetLimits::default().ranges();
        assert!(ranges.iter().all(|(_, got, min, max)| (min..=max).contains(&got)));
        let zero = NetLimits { idle_timeout: Duration::from_secs(1), ..NetLimits::default() };
        assert!(zero.ranges().iter().any(|(name, got, min, _)| *name == "idle timeout seconds" && got < min));
    }
}
