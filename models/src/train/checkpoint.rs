//! The checkpoint beside a run's output (`checkpoint/`): the current weights, the best
//! weights of the running phase and the state of its epoch loop, written after every
//! epoch so that `--resume` continues where a run stopped; and the in-memory copy of the
//! best weights that a phase restores when it ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::phase::Phase;
use crate::error::{io_err, ModelError, Result};
use crate::pipeline::{write_atomic, V1Model};

/// Checkpoint state beside the weights (`state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CheckpointState {
    pub phase: Phase,
    /// Epochs completed in `phase`.
    pub epoch: usize,
    pub best_val: f64,
    pub bad_epochs: usize,
    pub done: bool,
    /// The learning rate after the plateau decays so far (absent: the configured one).
    #[serde(default)]
    pub lr: Option<f64>,
}

impl CheckpointState {
    /// The state before the first epoch of `phase`.
    pub fn start(phase: Phase) -> Self {
        Self { phase, epoch: 0, best_val: f64::INFINITY, bad_epochs: 0, done: false, lr: None }
    }
}

/// The checkpoint folder of one run.
pub(super) struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    pub fn new(out: &Path) -> Self {
        Self { dir: out.join("checkpoint") }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn best_path(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }

    /// The saved model and state, when a checkpoint exists.
    pub fn load(&self, device: &Device) -> Result<Option<(V1Model, CheckpointState)>> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(None);
        }
        let model = V1Model::load_on(&self.dir, device)?;
        let text = std::fs::read_to_string(&path).map_err(io_err("reading checkpoint state"))?;
        let state = serde_json::from_str(&text).map_err(|e| ModelError::BadFile { path, message: e.to_string() })?;
        Ok(Some((model, state)))
    }

    /// The best weights of `phase` saved so far, in the order of [`Phase::vars`]; None
    /// when the state has no best validation loss yet or the file is missing.
    pub fn best_weights(&self, model: &V1Model, phase: Phase, state: &CheckpointState, device: &Device) -> Result<Option<Vec<Tensor>>> {
        if !state.best_val.is_finite() || !self.best_path().exists() {
            return Ok(None);
        }
        let saved = candle_core::safetensors::load(self.best_path(), device)?;
        let weights = var_names(model, phase)
            .iter()
            .map(|n| saved.get(n).cloned().ok_or_else(|| ModelError::Invalid(format!("checkpoint lacks {n}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(weights))
    }

    /// After an epoch: the current weights, the best weights of `phase` and the state.
    pub fn save_epoch(&self, model: &V1Model, phase: Phase, best: &[Tensor], state: &CheckpointState) -> Result<()> {
        model.save(&self.dir)?;
        self.save_best(model, phase, best)?;
        self.save_state(state)
    }

    /// After a phase: its final weights and its (done) state.
    pub fn save_phase_end(&self, model: &V1Model, state: &CheckpointState) -> Result<()> {
        model.save(&self.dir)?;
        self.save_state(state)
    }

    /// A finished run needs no checkpoint.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn save_state(&self, state: &CheckpointState) -> Result<()> {
        write_atomic(&self.state_path(), serde_json::to_string(state).unwrap_or_default().as_bytes())
    }

    fn save_best(&self, model: &V1Model, phase: Phase, best: &[Tensor]) -> Result<()> {
        let map: HashMap<String, Tensor> = var_names(model, phase).into_iter().zip(best.iter().cloned()).collect();
        let tmp = self.dir.join("best.safetensors.tmp");
        candle_core::safetensors::save(&map, &tmp)?;
        std::fs::rename(&tmp, self.best_path()).map_err(io_err("renaming best.safetensors"))?;
        Ok(())
    }
}

/// The names of the variables `phase` trains, sorted as [`Phase::vars`] orders them.
fn var_names(model: &V1Model, phase: Phase) -> Vec<String> {
    let nets = phase.networks();
    let data = match model.varmap().data().lock() {
        Ok(d) => d,
        Err(p) => p.into_inner(),
    };
    let mut names: Vec<String> = data.keys().filter(|k| nets.iter().any(|n| k.starts_with(&format!("{n}.")))).cloned().collect();
    names.sort();
    names
}

/// A copy of the variables' current values.
pub(super) fn snapshot(vars: &[Var]) -> Result<Vec<Tensor>> {
    Ok(vars.iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<Vec<_>>>()?)
}

/// Sets the variables back to `saved` (from [`snapshot`]).
pub(super) fn restore(vars: &[Var], saved: &[Tensor]) -> Result<()> {
    for (v, t) in vars.iter().zip(saved) {
        v.set(t)?;
    }
    Ok(())
}
