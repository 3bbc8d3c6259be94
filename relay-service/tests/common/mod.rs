//! Helpers for the relay's integration tests: a real relay on an ephemeral port with a
//! real (small, seeded) model, real WebSocket clients, and a minimal HTTP client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use models::{ArchConfig, ChannelInfo, CropWindow, ModelInfo, V1Model};
use relay_service::{AppState, Limits, RelayConfig};
use shared_protocol::{OriginPolicy, SessionId, SharedSecret};
pub use service_kit::testing::{close_code, connect, expect_type, next_json, send, Running, Ws};

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";

pub fn secret() -> SharedSecret {
    SharedSecret::new(SECRET).unwrap()
}

/// A model whose responses are 1 lag x 3 channels, so the seed's three-value payload
/// is exactly what it reads.
pub fn seed_model() -> V1Model {
    let channels = (1..=3u16)
        .map(|e| ChannelInfo { file: "seed".into(), electrode: e, row: 0, col: (e - 1) as u8, rf_centre: None })
        .collect();
    let info = ModelInfo {
        channels,
        lags: vec![1],
        response_onset: Some(1),
        image_size: 16,
        crop_window: CropWindow { x: 0, y: 0, width: 16, height: 16 },
        pixel_mean: 0.5,
        pixel_std: 0.25,
        response_mean: vec![0.0; 3],
        response_std: vec![1.0; 3],
    };
    let arch = ArchConfig { clip_frames: 1, latent_channels: 4, encoder_channels: [4, 8], readout_features: 4, waveform_hidden: 32, decoder_channels: [8, 4], ..ArchConfig::default() };
    V1Model::new(info, arch, 7, &candle_core::Device::Cpu).unwrap()
}

pub fn config(static_dir: PathBuf) -> RelayConfig {
    RelayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        model_dir: PathBuf::from("(in memory)"),
        wide_model_dir: None,
        device: models::DeviceChoice::Cpu,
        static_dir,
        secret: secret(),
        origins: OriginPolicy::default(),
        workers: 2,
        jpeg_quality: 90,
        display_size: 64,
        drain_timeout: Duration::from_secs(10),
        limits: Limits::default(),
    }
}

/// A running relay (its `addr` and `state` through [`Running`]).
pub struct Relay(Running<AppState>);

impl Deref for Relay {
    type Target = Running<AppState>;
    fn deref(&self) -> &Running<AppState> {
        &self.0
    }
}

impl Relay {
    pub async fn start(model: V1Model, config: RelayConfig) -> Self {
        let state = AppState::new(config, model).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self(Running::start(listener, state, |listener, state, stop| {
            relay_service::run(listener, state, async move {
                let _ = stop.await;
            })
        }))
    }

    pub async fn seed(tweak: impl FnOnce(&mut RelayConfig)) -> Self {
        let mut c = config(PathBuf::from("/nonexistent-frontend"));
        tweak(&mut c);
        Self::start(seed_model(), c).await
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub async fn ingest(&self) -> Ws {
        connect(&self.ws_url("/ws/ingest"), &[("authorization", &format!("Bearer {SECRET}"))]).await.unwrap()
    }

    pub async fn subscriber(&self, session: &str) -> Ws {
        let mut ws = connect(&self.ws_url("/ws/subscribe"), &[]).await.unwrap();
        let token = secret().token_for(&SessionId::parse(session).unwrap());
        send(&mut ws, &format!(r#"{{"type":"subscribe","session_id":"{session}","token":"{token}"}}"#)).await;
        ws
    }

    /// Shuts down and waits for the drain to finish.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

/// Decodes a `data:image/jpeg;base64,` URL into an image, checking it is a JPEG.
pub fn decode_jpeg(url: &str) -> image::DynamicImage {
    let data = shared_protocol::DataUrl::parse(url, "image_base64", 1 << 24).unwrap();
    assert_eq!(data.kind, shared_protocol::ImageKind::Jpeg);
    assert_eq!(&data.bytes[..2], &[0xff, 0xd8], "JPEG SOI marker");
    image::load_from_memory_with_format(&data.bytes, image::ImageFormat::Jpeg).unwrap()
}

/// The header that `POST /api/sessions` and its renewal need.
pub const JSON: (&str, &str) = ("content-type", "application/json");

/// One HTTP/1.1 request; (status, content type, body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let response = service_kit::testing::request(addr, method, path, headers).await;
    (response.status, response.header("content-type").to_owned(), response.body)
}
