//! Helpers for the end-to-end tests: both real services on ephemeral ports with the
//! real fixture model and dataset (`models::testing::tiny_fixture`), real WebSocket
//! clients, a minimal HTTP client and test images.

#![allow(dead_code)]

use std::io::Cursor;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use relay_service::store::Store;
use serde_json::Value;
pub use service_kit::testing::{close_code, connect, expect_type, next_json, send, short, Running, Ws, WAIT};
use shared_protocol::{DataUrl, ImageKind, OriginPolicy, SessionId, SharedSecret};
use simulation_service::{AppState as SimState, Limits as SimLimits, SimConfig};

pub const SECRET: &str = "e2e-secret-0123456789abcdef0123456789";

pub fn secret() -> SharedSecret {
    SharedSecret::new(SECRET).unwrap()
}

/// The fixture model and data root, built once per test binary.
pub struct Fixture {
    pub model_dir: PathBuf,
    pub data_root: PathBuf,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Inside target/: kept for inspection after a failure, rebuilt on each run.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("simulation-service-e2e-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (model_dir, data_root) = models::testing::tiny_fixture(&dir).unwrap();
        Fixture { model_dir, data_root }
    })
}

pub fn load_model() -> models::V1Model {
    models::V1Model::load(&fixture().model_dir).unwrap()
}

/// Channels of the wide-field fixture without a receptive-field centre (its second array).
pub const WIDE_UNPLACED: usize = 5;

/// A second population for the tests of `population: "wide"`, written once per test
/// binary: the fixture model's channels with a centre each (array `wide-a`) plus
/// [`WIDE_UNPLACED`] channels without one (array `wide-b`), the whole 320x240 frame as
/// its crop window, and weights of another seed. Made through the same public API as
/// any model (`V1Model::new`, `save`).
pub fn wide_model_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("simulation-service-wide-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        let base = load_model().info().clone();
        let n = base.n_channels();
        let side = base.image_size as f32;
        let mut channels: Vec<models::ChannelInfo> = base
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| models::ChannelInfo {
                file: "wide-a".into(),
                rf_centre: Some([side * ((i % 10) as f32 + 0.5) / 10.0, side * ((i / 10) as f32 + 0.5) / 10.0]),
                ..c.clone()
            })
            .collect();
        channels.extend((0..WIDE_UNPLACED).map(|i| models::ChannelInfo {
            file: "wide-b".into(),
            electrode: i as u16 + 1,
            row: 0,
            col: i as u8,
            rf_centre: None,
        }));
        let total = channels.len();
        // Lag-major statistics: each lag's values of the base channels, then the new ones.
        let per_lag = |values: &[f32]| -> Vec<f32> {
            (0..base.n_lags()).flat_map(|l| (0..total).map(move |c| values[l * n + c % n])).collect()
        };
        let info = models::ModelInfo {
            response_mean: per_lag(&base.response_mean),
            response_std: per_lag(&base.response_std),
            channels,
            crop_window: models::CropWindow { x: 0, y: 0, width: 320, height: 240 },
            ..base
        };
        let arch = models::testing::fixture_config().model;
        let model = models::V1Model::new(info, arch, 11, &candle_core::Device::Cpu).unwrap();
        model.save(&dir).unwrap();
        dir
    })
}

pub fn load_wide_model() -> models::V1Model {
    models::V1Model::load(wide_model_dir()).unwrap()
}

pub fn relay_config() -> relay_service::RelayConfig {
    relay_service::RelayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        model_dir: fixture().model_dir.clone(),
        wide_model_dir: None,
        device: models::DeviceChoice::Cpu,
        static_dir: PathBuf::from("/nonexistent-frontend"),
        secret: secret(),
        origins: OriginPolicy::default(),
        workers: 2,
        jpeg_quality: 90,
        display_size: 192,
        drain_timeout: Duration::from_secs(10),
        limits: relay_service::Limits::default(),
    }
}

/// Starts the relay on `addr` (port 0 for any).
pub async fn start_relay(addr: SocketAddr) -> Running<relay_service::AppState> {
    start_relay_with(addr, false).await
}

/// Starts the relay on `addr`, with the wide-field fixture model when `wide`.
pub async fn start_relay_with(addr: SocketAddr, wide: bool) -> Running<relay_service::AppState> {
    let mut config = relay_config();
    config.wide_model_dir = wide.then(|| wide_model_dir().clone());
    let state = tokio::task::spawn_blocking(move || relay_service::AppState::load(config)).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    Running::start(listener, state, |listener, state, stop| {
        relay_service::run(listener, state, async move {
            let _ = stop.await;
        })
    })
}

pub fn sim_config(relay: SocketAddr) -> SimConfig {
    SimConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        model_dir: fixture().model_dir.clone(),
        wide_model_dir: None,
        device: models::DeviceChoice::Cpu,
        data_root: Some(fixture().data_root.clone()),
        image_dir: None,
        relay_url: format!("ws://{relay}/ws/ingest"),
        secret: secret(),
        origins: OriginPolicy::default(),
        workers: 2,
        webcam_index: 0,
        drain_timeout: Duration::from_secs(10),
        max_backoff: Duration::from_millis(200),
        limits: SimLimits::default(),
    }
}

/// Starts the simulation-service (loading its sources like the binary does).
pub async fn start_sim(config: SimConfig) -> Running<SimState> {
    let state = tokio::task::spawn_blocking(move || SimState::load(config)).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Running::start(listener, state, |listener, state, stop| {
        simulation_service::run(listener, state, async move {
            let _ = stop.await;
        })
    })
}

/// Both services, wired together.
pub struct Stack {
    pub relay: Running<relay_service::AppState>,
    pub sim: Running<SimState>,
}

impl Stack {
    pub async fn start(tweak: impl FnOnce(&mut SimConfig)) -> Self {
        Self::start_with(false, tweak).await
    }

    /// [`Self::start`] with the wide-field fixture model in the relay when `wide_relay`
    /// (`tweak` gives it to the simulation-service, or not).
    pub async fn start_with(wide_relay: bool, tweak: impl FnOnce(&mut SimConfig)) -> Self {
        let relay = start_relay_with("127.0.0.1:0".parse().unwrap(), wide_relay).await;
        let mut config = sim_config(relay.addr);
        tweak(&mut config);
        let sim = start_sim(config).await;
        wait_until_linked(&sim.state).await;
        Self { relay, sim }
    }

    pub async fn stop(self) {
        self.sim.stop().await;
        self.relay.stop().await;
    }

    pub async fn browser(&self) -> Ws {
        connect(&format!("ws://{}/ws", self.sim.addr), &[]).await.unwrap()
    }

    pub async fn subscriber(&self, session: &Session) -> Ws {
        let mut ws = connect(&format!("ws://{}/ws/subscribe", self.relay.addr), &[]).await.unwrap();
        send(&mut ws, &format!(r#"{{"type":"subscribe","session_id":"{}","token":"{}"}}"#, session.id, session.token)).await;
        expect_type(&mut ws, "subscribed").await;
        ws
    }

    /// A session from the relay's `POST /api/sessions`.
    pub async fn session(&self) -> Session {
        let (status, _, body) = http(self.relay.addr, "POST", "/api/sessions", &[("content-type", "application/json")]).await;
        assert_eq!(status, 201, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        Session { id: v["session_id"].as_str().unwrap().to_owned(), token: v["token"].as_str().unwrap().to_owned() }
    }
}

pub async fn wait_until_linked(sim: &SimState) {
    tokio::time::timeout(WAIT, async {
        while !sim.relay.is_connected() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the simulation-service never connected to the relay");
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub token: String,
}

impl Session {
    pub fn named(id: &str) -> Self {
        Self { id: id.into(), token: secret().token_for(&SessionId::parse(id).unwrap()) }
    }

    pub fn stimulus(&self, frame_id: u64, image: &str) -> String {
        format!(
            r#"{{"type":"stimulus","session_id":"{}","token":"{}","frame_id":{frame_id},"image":"{image}"}}"#,
            self.id, self.token
        )
    }

    pub fn start_stream(&self, source: &str, fps: u32) -> String {
        format!(
            r#"{{"type":"start_stream","session_id":"{}","token":"{}","source":"{source}","fps":{fps}}}"#,
            self.id, self.token
        )
    }

    /// An `imagined` message: a response edited in the browser.
    pub fn imagined(&self, frame_id: u64, payload: &[f32]) -> String {
        let values: Vec<String> = payload.iter().map(|v| v.to_string()).collect();
        format!(
            r#"{{"type":"imagined","session_id":"{}","token":"{}","frame_id":{frame_id},"payload":[{}]}}"#,
            self.id,
            self.token,
            values.join(",")
        )
    }

    pub fn stop_stream(&self) -> String {
        format!(r#"{{"type":"stop_stream","session_id":"{}"}}"#, self.id)
    }
}

/// A `w` x `h` PNG with a diagonal gradient, as a data URL.
pub fn png_data_url(w: u32, h: u32) -> String {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 128]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    DataUrl::encode(ImageKind::Png, &bytes)
}

/// A JPEG data URL.
pub fn jpeg_data_url(w: u32, h: u32) -> String {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 60]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg).unwrap();
    DataUrl::encode(ImageKind::Jpeg, &bytes)
}

pub fn decode_image_url(url: &str, kind: ImageKind) -> image::DynamicImage {
    let data = DataUrl::parse(url, "image", 1 << 24).unwrap();
    assert_eq!(data.kind, kind);
    image::load_from_memory(&data.bytes).unwrap()
}

/// One HTTP/1.1 request; (status, headers as "name: value" lines, body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let response = service_kit::testing::request(addr, method, path, headers).await;
    (response.status, response.head(), response.body)
}

/// The simulation-service binary on a free port, linked to `relay`.
pub struct SimProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl SimProcess {
    pub async fn spawn(relay: SocketAddr) -> Self {
        Self::spawn_with(relay, &[]).await
    }

    /// Like [`Self::spawn`], with extra command-line arguments.
    pub async fn spawn_with(relay: SocketAddr, args: &[&str]) -> Self {
        // A free port: bind, read it, let it go (the child binds it a moment later).
        let addr = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_simulation-service"))
            .args(["--bind", &addr.to_string()])
            .args(["--model", fixture().model_dir.to_str().unwrap()])
            .args(["--relay-url", &format!("ws://{relay}/ws/ingest")])
            .args(["--workers", "2", "--max-backoff-secs", "1"])
            .args(args)
            .env("V1_SHARED_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let sim = Self { child, addr };
        // Ready once it answers /healthz with the relay linked.
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "the simulation-service never became ready");
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                let (status, _, body) = http(addr, "GET", "/healthz", &[]).await;
                if status == 200 && body.contains("\"relay_connected\":true") {
                    return sim;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no goodbye, its memory is gone.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A relay on a runtime of its own, so that it can die all at once.
pub struct KillableRelay {
    pub addr: SocketAddr,
    pub state: relay_service::AppState,
    runtime: Option<tokio::runtime::Runtime>,
}

impl KillableRelay {
    /// Starts a relay on `addr` (port 0 for any) with [`relay_config`].
    pub async fn start(addr: SocketAddr) -> Self {
        Self::start_with(addr, |_| {}).await
    }

    /// Like [`Self::start`], with the configuration as `tweak` changes it.
    pub async fn start_with(addr: SocketAddr, tweak: impl FnOnce(&mut relay_service::RelayConfig)) -> Self {
        // The address may still be held for a moment by the relay just killed.
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match StdListener::bind(addr) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot bind {addr} again: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = relay_config();
        tweak(&mut config);
        let model = tokio::task::spawn_blocking(load_model).await.unwrap();
        let state = relay_service::AppState::new(config, model).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let served = state.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            relay_service::run(listener, served, std::future::pending()).await
        });
        Self { addr, state, runtime: Some(runtime) }
    }

    /// Drops every task and socket of the relay at once: no drain, no close frames.
    pub fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for KillableRelay {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Frame ids in a relay's buffer for `session`, read from its (in-memory) store.
pub async fn buffered_frame_ids(state: &relay_service::AppState, session: &Session) -> std::collections::BTreeSet<u64> {
    let id = SessionId::parse(&session.id).unwrap();
    let subscription = state.sessions.subscribe(&id, None, Instant::now()).await.unwrap();
    subscription
        .replay
        .iter()
        .map(|t| serde_json::from_str::<Value>(t.as_str()).unwrap()["frame_id"].as_u64().unwrap())
        .collect()
}
