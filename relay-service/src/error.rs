//! Start-up errors: each says what failed and what to do about it.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot load the model from {dir}: {source}")]
    Model { dir: PathBuf, source: models::ModelError },
    #[error("cannot listen on {addr}: the address is already in use. Stop the other process, or choose another address with --bind (or {env})")]
    AddrInUse { addr: SocketAddr, env: &'static str },
    #[error("cannot listen on {addr}: {source}. Choose another address with --bind (or {env})")]
    Bind { addr: SocketAddr, env: &'static str, source: std::io::Error },
}

/// Binds `addr`, turning the usual failures into advice.
pub async fn bind(addr: SocketAddr, env: &'static str) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => StartError::AddrInUse { addr, env },
        _ => StartError::Bind { addr, env, source },
    })
}
