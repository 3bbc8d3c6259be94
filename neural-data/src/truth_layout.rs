//! Where a simulated dataset keeps its ground truth: `ground_truth/` of a one-array
//! dataset holds the array's truth itself; a multi-array (wide-field) dataset has one
//! sub-folder per array, listed in `ground_truth/arrays.json` under `arrays[].subdir`.
//! Shared by everything that reads the truth back (the dataset builder, the simulator's
//! loader, the evaluation).

use std::path::Path;

/// The layout file of a multi-array dataset, in `ground_truth/`.
pub const ARRAYS_JSON: &str = "arrays.json";

/// Whether `name` can be an array's folder: non-empty, ASCII letters, digits and `_` only
/// (so that joining it to a path can never leave `ground_truth/`).
pub fn is_plain_folder_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The array sub-folders that `truth_dir/arrays.json` lists, in order; `None` when there
/// is no such file (a one-array dataset). An unreadable file, or a list that is empty or
/// names something other than a plain folder, is an error saying so.
pub fn array_subdirs(truth_dir: &Path) -> Result<Option<Vec<String>>, String> {
    let path = truth_dir.join(ARRAYS_JSON);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let layout: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let subdirs: Vec<String> = layout
        .get("arrays")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|e| e.get("subdir").and_then(|s| s.as_str()).map(str::to_string)).collect())
        .unwrap_or_default();
    if subdirs.is_empty() || !subdirs.iter().all(|s| is_plain_folder_name(s)) {
        return Err(format!("{}: expected \"arrays\": a list of {{\"subdir\": folder name}} entries", path.display()));
    }
    Ok(Some(subdirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_plain_folders_and_refuses_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(array_subdirs(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(ARRAYS_JSON), r#"{"arrays": [{"subdir": "ac1"}, {"subdir": "ac2"}]}"#).unwrap();
        assert_eq!(array_subdirs(dir.path()).unwrap(), Some(vec!["ac1".to_string(), "ac2".to_string()]));
        std::fs::write(dir.path().join(ARRAYS_JSON), r#"{"arrays": [{"subdir": "../x"}]}"#).unwrap();
        assert!(array_subdirs(dir.path()).unwrap_err().contains("folder name"));
        std::fs::write(dir.path().join(ARRAYS_JSON), "not json").unwrap();
        assert!(array_subdirs(dir.path()).is_err());
    }
}
