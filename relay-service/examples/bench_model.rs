//! Writes a model with the default architecture (48 px crops, 3 lags, 96 channels) and
//! seeded, untrained weights, for load tests of the services: inference costs the same
//! as for a trained model, and no dataset or training run is needed.
//!
//! `cargo run --release -p relay-service --example bench_model -- <dir>`

use std::path::PathBuf;

use models::{ArchConfig, ChannelInfo, CropWindow, ModelInfo, V1Model};

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "out/bench-model".into()));
    let channels: Vec<ChannelInfo> = (1..=96u16)
        .map(|e| ChannelInfo { file: "bench".into(), electrode: e, row: ((e - 1) / 10) as u8, col: ((e - 1) % 10) as u8, rf_centre: None })
        .collect();
    let n = channels.len() * 3;
    let info = ModelInfo {
        channels,
        lags: vec![2, 3, 4],
        response_onset: Some(2),
        image_size: 48,
        crop_window: CropWindow { x: 100, y: 60, width: 120, height: 120 },
        pixel_mean: 0.45,
        pixel_std: 0.22,
        response_mean: vec![0.3; n],
        response_std: vec![0.6; n],
    };
    let model = V1Model::new(info, ArchConfig::default(), 1, &candle_core::Device::Cpu)?;
    model.save(&dir)?;
    println!("wrote {}", dir.display());
    Ok(())
}
