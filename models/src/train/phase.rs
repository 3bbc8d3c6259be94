//! The two phases of training: which networks each one trains and with which schedule.

use std::fmt;

use candle_core::Var;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::pipeline::V1Model;

/// A [`Schedule`] from a phase's config section: both sections name these settings alike.
macro_rules! schedule {
    ($p:expr) => {{
        let p = $p;
        Schedule {
            max_epochs: p.max_epochs,
            batch_size: p.batch_size,
            learning_rate: p.learning_rate,
            weight_decay: p.weight_decay,
            patience: p.patience,
            lr_decay: p.lr_decay,
            lr_patience: p.lr_patience,
        }
    }};
}

/// One phase of training. Written as its number (1 or 2) in `train_log.jsonl` and in the
/// checkpoint state, so logs and checkpoints keep the format users and tools read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Phase {
    /// Phase 1: the encoding model and the image autoencoder.
    Encoding = 1,
    /// Phase 2: the reconstruction path, with the image encoder frozen.
    Reconstruction = 2,
}

impl Phase {
    /// Both phases, in the order they run.
    pub const ALL: [Phase; 2] = [Phase::Encoding, Phase::Reconstruction];

    /// The phase's number, as the command line and the logs name it.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Position in per-phase arrays (0 or 1).
    pub fn index(self) -> usize {
        usize::from(self.number() - 1)
    }

    /// The networks whose weights this phase trains.
    pub fn networks(self) -> &'static [&'static str] {
        match self {
            Phase::Encoding => &["image_encoder", "waveform_decoder", "image_decoder"],
            Phase::Reconstruction => &["waveform_encoder", "image_decoder"],
        }
    }

    /// The variables this phase trains, in the order of their names.
    pub fn vars(self, model: &V1Model) -> Vec<Var> {
        model.vars_of(self.networks())
    }

    /// This phase's optimiser and stopping settings from the config.
    pub fn schedule(self, cfg: &TrainConfig) -> Schedule {
        match self {
            Phase::Encoding => schedule!(&cfg.phase1),
            Phase::Reconstruction => schedule!(&cfg.phase2),
        }
    }
}

impl From<Phase> for u8 {
    fn from(p: Phase) -> u8 {
        p.number()
    }
}

impl TryFrom<u8> for Phase {
    type Error = String;

    fn try_from(n: u8) -> std::result::Result<Self, String> {
        match n {
            1 => Ok(Phase::Encoding),
            2 => Ok(Phase::Reconstruction),
            _ => Err(format!("phase {n} does not exist: training has phases 1 and 2")),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// The settings of one phase that the epoch loop reads (the phase's config section has
/// its loss weights besides).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub max_epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without improvement of the validation loss before the phase stops.
    pub patience: usize,
    /// Factor on the learning rate after every `lr_patience` epochs without improvement.
    pub lr_decay: f64,
    pub lr_patience: usize,
}

#[cfg(test)]
mod tests {
    use super::Phase;

    #[test]
    fn a_phase_is_written_as_its_number_and_read_back() {
        assert_eq!(serde_json::to_string(&Phase::Reconstruction).unwrap(), "2");
        assert_eq!(serde_json::from_str::<Phase>("1").unwrap(), Phase::Encoding);
        let err = serde_json::from_str::<Phase>("3").unwrap_err().to_string();
        assert!(err.contains("phase 3"), "{err}");
        assert!(Phase::Encoding < Phase::Reconstruction);
    }
}
