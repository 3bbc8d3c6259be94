//! Real, small fixtures for tests of this crate and of the services: a simulated dataset
//! (small preset), its cache, and a model with seeded weights that fits it. Everything is
//! produced by the same code paths users run; nothing is mocked.

use std::path::{Path, PathBuf};

use crate::config::{TrainConfig, TrainPreset};
use crate::error::{ModelError, Result};
use crate::pipeline::V1Model;

/// The configuration of the fixtures: the small preset (crop and lags fixed).
pub fn fixture_config() -> TrainConfig {
    TrainConfig::preset(TrainPreset::Small)
}

/// Writes `dir/data` (simulated small dataset + cache) and `dir/model` (an untrained,
/// seeded model that fits it). Returns (model dir, data root). Takes a few seconds.
pub fn tiny_fixture(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let data = dir.join("data");
    let model_dir = dir.join("model");
    let mut sim = v1_sim::SimConfig::preset(v1_sim::Preset::Small, 1);
    sim.progress = false;
    sim.overwrite = true;
    v1_sim::simulate(&data, &sim).map_err(|e| ModelError::Invalid(format!("simulating the fixture: {e}")))?;
    let cfg = fixture_config();
    let input = neural_data::build::read_input(&data, true)?;
    let (ds, _) = neural_data::build::load_or_build(&input, &cfg.data, false)?;
    let model = V1Model::new(crate::data::model_info(&ds), cfg.model.clone(), cfg.seed, &candle_core::Device::Cpu)?;
    model.save(&model_dir)?;
    std::fs::write(model_dir.join("config.toml"), cfg.to_toml()).map_err(|e| ModelError::Io {
        context: format!("writing {}", model_dir.join("config.toml").display()),
        source: e,
    })?;
    Ok((model_dir, data))
}
