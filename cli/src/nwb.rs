//! `v1 export nwb` and NWB files as `--data`, when `v1` is built with the `nwb` feature
//! (the default; it links libhdf5). Without it both say how to get it.

use std::path::Path;

use anyhow::Result;

#[cfg(feature = "nwb")]
pub fn export(data: &Path, out: &Path, overwrite: bool) -> Result<()> {
    use anyhow::Context;
    let input = neural_data::build::read_input(data, true)?;
    // One array's ground truth, or one per array of a wide-field dataset.
    let truths = if data.join(v1_sim::truth::TRUTH_DIR).exists() {
        v1_sim::GroundTruth::load_arrays(data)
            .with_context(|| format!("reading the ground truth of {}", data.display()))?
    } else {
        (Vec::new(), None)
    };
    let (arrays, layout) = &truths;
    let summary = v1_nwb::export_tree_with(
        &input,
        |subdir| match layout {
            None => arrays.first().map(|(_, t)| t),
            Some(_) => arrays.iter().find(|(s, _)| s == subdir).map(|(_, t)| t),
        },
        out,
        &v1_nwb::ExportOptions {
            overwrite,
            progress: true,
        },
    )?;
    for f in &summary.files {
        eprintln!(
            "{}: {} electrodes, {} trials, {} spikes, {} frames, {:.1} MB",
            f.path.display(),
            f.electrodes,
            f.trials,
            f.spikes,
            f.frames,
            f.bytes as f64 / 1e6
        );
    }
    eprintln!(
        "exported {} recordings to {} in {:.1} s ({:.1} MB{})",
        summary.files.len(),
        out.display(),
        summary.seconds,
        summary.bytes() as f64 / 1e6,
        if !arrays.is_empty() {
            ", with the simulated ground truth"
        } else {
            ""
        }
    );
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// The builder's input from `data`: a pvc-1 tree, or NWB files (one, or a folder of them).
pub fn read_tree(data: &Path, strict: bool) -> Result<neural_data::build::TreeInput> {
    Ok(match read_input(data)? {
        Some(input) => input,
        None => neural_data::build::read_input(data, strict)?,
    })
}

/// The builder's input from NWB files, or None when `data` is not NWB.
#[cfg(feature = "nwb")]
fn read_input(data: &Path) -> Result<Option<neural_data::build::TreeInput>> {
    Ok(if v1_nwb::is_nwb_input(data) {
        Some(v1_nwb::read_input(data)?)
    } else {
        None
    })
}

#[cfg(not(feature = "nwb"))]
const MISSING: &str = "this `v1` was built without NWB support (the `nwb` feature, which links libhdf5); install libhdf5-dev (`make deps`) and build with `cargo build --release -p v1-cli`";

#[cfg(not(feature = "nwb"))]
pub fn export(_data: &Path, _out: &Path, _overwrite: bool) -> Result<()> {
    anyhow::bail!("{MISSING}")
}

#[cfg(not(feature = "nwb"))]
fn read_input(data: &Path) -> Result<Option<neural_data::build::TreeInput>> {
    let is_nwb = data.extension().is_some_and(|x| x == "nwb")
        || std::fs::read_dir(data)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.path().extension().is_some_and(|x| x == "nwb"))
            })
            .unwrap_or(false);
    if is_nwb && !data.join(neural_data::pvc1::DATA_DIR_NAME).exists() {
        anyhow::bail!("{}: NWB input: {MISSING}", data.display());
    }
    Ok(None)
}
