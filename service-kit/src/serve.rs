//! Binding, serving and graceful shutdown, the same for both services.
//!
//! [`serve`] runs a router until the shutdown future resolves or the service's
//! cancellation token is cancelled, cancels the token (sockets stop reading and drain),
//! stops accepting connections, then waits up to a drain timeout for the tracked tasks
//! (WebSocket connections are not tracked by the HTTP server itself).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

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
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(signal).await?;
    drain.tasks.close();
    if tokio::time::timeout(drain.timeout, drain.tasks.wait()).await.is_err() {
        warn!(timeout = ?drain.timeout, "some {what} did not finish draining in time");
    }
    Ok(())
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
            async move { serve(listener, Router::new(), std::future::pending(), &drain, "test", "tasks").await }
        });
        drain.token.cancel();
        server.await.unwrap().unwrap();
        // The task finished before serve returned.
        assert!(done_rx.await.is_ok());
        assert!(drain.tasks.is_empty());
    }
}
