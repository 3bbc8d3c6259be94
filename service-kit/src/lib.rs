//! Service plumbing shared by the relay-service and the simulation-service, so that both
//! behave the same at their edges: the bounded inference worker pool ([`pool`]), the
//! WebSocket connection handling — writer task, reader with size and rate limits,
//! upgrade ([`ws`]) — the plain HTTP pieces (error bodies, Origin check, CORS,
//! `/metrics` and `/healthz` responses: [`http`]), logging client-controlled values
//! without letting a flood fill the disk ([`log_limit`]), Prometheus helpers ([`telemetry`]),
//! binding and serving with a graceful drain ([`serve`]), the binaries' start-up and
//! logging ([`binary`]), range checks of the settings ([`config`]), the shared secret kept in an owner-only file ([`secret_file`]),
//! and, with the `testing` feature, the clients of the integration tests (module
//! `testing`).
//!
//! What a service does with a message (the protocol's semantics, the model, sessions)
//! stays in the service; this crate knows the wire format only through
//! `shared-protocol`.

pub mod binary;
pub mod config;
pub mod http;
pub mod log_limit;
pub mod telemetry;
pub mod pool;
pub mod secret_file;
pub mod serve;
#[cfg(feature = "testing")]
pub mod testing;
pub mod ws;

/// Declares a service's state handle: a cheap-to-clone `Arc` of the state every handler
/// shares, dereferencing to it, as axum's `State` wants. The service adds its own
/// constructors in an `impl` block of the same module.
///
/// ```
/// pub struct Shared {
///     pub name: String,
/// }
/// service_kit::state_handle! {
///     /// Cheap-to-clone handle to [`Shared`].
///     pub struct AppState(Shared);
/// }
/// let state = AppState(std::sync::Arc::new(Shared { name: "relay".into() }));
/// assert_eq!(state.clone().name, "relay");
/// ```
#[macro_export]
macro_rules! state_handle {
    ($(#[$meta:meta])* $vis:vis struct $name:ident($shared:ty);) => {
        $(#[$meta])*
        #[derive(Clone)]
        $vis struct $name(::std::sync::Arc<$shared>);

        impl ::std::ops::Deref for $name {
            type Target = $shared;
            fn deref(&self) -> &$shared {
                &self.0
            }
        }
    };
}
