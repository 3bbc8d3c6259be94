//! Helpers for the relay's integration tests: a real relay on an ephemeral port with a
//! real (small, seeded) model, real WebSocket clients, and a minimal HTTP client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use futures_util::{SinkExt, StreamExt};
use models::{ArchConfig, ChannelInfo, CropWindow, ModelInfo, V1Model};
use relay_service::{AppState, Limits, RelayConfig};
use serde_json::Value;
use shared_protocol::{OriginPolicy, SessionId, SharedSecret};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";
/// Long enough for a debug-free release build on a busy 2-core machine.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn secret() -> SharedSecret {
    SharedSecret::new(SECRET).unwrap()
}

/// A model whose responses are 1 lag x 3 channels, so the seed's three-value payload
/// is exactly what it reads.
pub fn seed_model() -> V1Model {
    let channels = (1..=3u16)
        .map(|e| ChannelInfo { file: "seed".into(), electrode: e, row: 0, col: (e - 1) as u8 })
        .collect();
    let info = ModelInfo {
        channels,
        lags: vec![1],
        image_size: 16,
        crop_window: CropWindow { x: 0, y: 0, width: 16, height: 16 },
        pixel_mean: 0.5,
        pixel_std: 0.25,
        response_mean: vec![0.0; 3],
        response_std: vec![1.0; 3],
    };
    let arch = ArchConfig { latent_channels: 4, encoder_channels: [4, 8], readout_features: 4, waveform_hidden: 32, decoder_channels: [8, 4] };
    V1Model::new(info, arch, 7, &candle_core::Device::Cpu).unwrap()
}

pub fn config(static_dir: PathBuf) -> RelayConfig {
    RelayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        model_dir: PathBuf::from("(in memory)"),
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

/// A running relay.
pub struct Relay {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl Relay {
    pub async fn start(model: V1Model, config: RelayConfig) -> Self {
        let state = AppState::new(config, model).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(relay_service::run(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Self { addr, state, stop: Some(tx), handle: Some(handle) }
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
    assert_eq!(v["type"], ty, "expected {ty}, got {v}");
    v
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

/// Decodes a `data:image/jpeg;base64,` URL into an image, checking it is a JPEG.
pub fn decode_jpeg(url: &str) -> image::DynamicImage {
    let data = shared_protocol::DataUrl::parse(url, "image_base64", 1 << 24).unwrap();
    assert_eq!(data.kind, shared_protocol::ImageKind::Jpeg);
    assert_eq!(&data.bytes[..2], &[0xff, 0xd8], "JPEG SOI marker");
    image::load_from_memory_with_format(&data.bytes, image::ImageFormat::Jpeg).unwrap()
}

/// One HTTP/1.1 request; (status, content type, body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
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
    let ctype = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 24).await.unwrap();
    (status, ctype, String::from_utf8_lossy(&bytes).into_owned())
}
