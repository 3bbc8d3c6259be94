//! Reading a pvc-1 tree into what the builder needs ([`TreeInput`]).

use std::path::{Path, PathBuf};

use crate::error::DataError;

use super::{SegmentSource, TreeInput};

/// Reads a pvc-1 tree for the builder. `root` is the folder that holds
/// `crcns-ringach-data/` (or that folder itself). In lenient mode broken segment folders
/// and files are skipped with a warning; in strict mode they are errors.
pub fn read_input(root: &Path, strict: bool) -> Result<TreeInput, DataError> {
    use crate::pvc1::reader::{read_tree_with, resolve_data_dir, TreeOptions};
    let tree_dir = resolve_data_dir(root).map_err(|_| DataError::NoTree { path: root.to_owned() })?;
    let opts = if strict { TreeOptions::default() } else { TreeOptions::lenient() };
    let tree = read_tree_with(root, &opts).map_err(|e| DataError::Tree(e.to_string()))?;
    let warnings: Vec<String> = tree.problems.iter().map(|p| format!("skipped {}: {}", p.path.display(), p.error)).collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let mut files = Vec::new();
    let rel = |p: &Path| p.strip_prefix(&tree_dir).unwrap_or(p).display().to_string();
    let mut segments = Vec::with_capacity(tree.segments.len());
    for s in &tree.segments {
        let paths = s.frame_paths();
        let size: u64 = paths.iter().filter_map(|p| p.metadata().ok()).map(|m| m.len()).sum();
        files.push((rel(&s.dir), size));
        segments.push(SegmentSource { movie: s.movie, segment: s.segment, nframes: s.nframes, frame_paths: paths });
    }
    let neuro = tree_dir.join("neurodata");
    if let Ok(subdirs) = std::fs::read_dir(&neuro) {
        let mut mats: Vec<PathBuf> = subdirs
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().filter_map(|e| e.ok()).map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "mat"))
            .collect();
        mats.sort();
        for m in mats {
            files.push((rel(&m), m.metadata().map(|x| x.len()).unwrap_or(0)));
        }
    }
    Ok(TreeInput { root: root.to_owned(), segments, recordings: tree.recordings, warnings, files })
}
