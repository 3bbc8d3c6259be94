//! What the NWB tests share: a small simulated tree exported to NWB.

use std::path::{Path, PathBuf};

use neural_data::build::{read_input, TreeInput};
use v1_nwb::{export_tree, ExportOptions, ExportSummary};
use v1_sim::{simulate, GroundTruth, Preset, SimConfig};

pub struct Exported {
    pub tree_dir: PathBuf,
    pub nwb_dir: PathBuf,
    pub tree: TreeInput,
    pub summary: ExportSummary,
}

/// Simulates the small preset with `seed` under `dir/tree` and exports it to `dir/nwb`.
pub fn small_export(dir: &Path, seed: u64) -> Exported {
    let tree_dir = dir.join("tree");
    let nwb_dir = dir.join("nwb");
    let mut cfg = SimConfig::preset(Preset::Small, seed);
    cfg.progress = false;
    simulate(&tree_dir, &cfg).unwrap();
    let tree = read_input(&tree_dir, true).unwrap();
    let summary = export(&tree, &tree_dir, &nwb_dir, false).unwrap();
    Exported { tree_dir, nwb_dir, tree, summary }
}

pub fn export(tree: &TreeInput, tree_dir: &Path, nwb_dir: &Path, overwrite: bool) -> Result<ExportSummary, v1_nwb::NwbError> {
    let truth = GroundTruth::load(tree_dir).unwrap();
    export_tree(tree, Some(&truth), nwb_dir, &ExportOptions { overwrite, progress: false })
}
