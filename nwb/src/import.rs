//! NWB files written by [`crate::export_tree`] -> the dataset builder's input, the same
//! [`TreeInput`] the pvc-1 reader gives for the tree they came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdf5::{File, Group};
use neural_data::build::{SegmentSource, TreeInput};
use neural_data::pvc1::{
    Condition, ConditionKind, ElectrodeEvents, Recording, Trial, SAMPLE_RATE_HZ, SNIPPET_LEN,
};

use crate::export::FrameRef;
use crate::h5;
use crate::{NwbError, FRAMES};

/// True when `path` is an `.nwb` file, or a folder that holds `.nwb` files and no pvc-1
/// tree.
pub fn is_nwb_input(path: &Path) -> bool {
    if path.is_file() {
        return path.extension().is_some_and(|x| x == "nwb");
    }
    !path.join(neural_data::pvc1::DATA_DIR_NAME).exists()
        && !nwb_files(path).unwrap_or_default().is_empty()
}

fn nwb_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "nwb"))
        .collect();
    v.sort();
    Ok(v)
}

/// Reads one `.nwb` file or every `.nwb` file of a folder. Caches built from it go to
/// `<folder>/cache/`.
pub fn read_input(path: &Path) -> Result<TreeInput, NwbError> {
    let (root, files) = if path.is_dir() {
        let files = nwb_files(path).map_err(|e| NwbError::Io {
            path: path.to_owned(),
            action: "listing NWB files",
            source: e,
        })?;
        if files.is_empty() {
            return Err(NwbError::Input(format!(
                "{}: no .nwb files here; export some with `v1 export nwb --data TREE --out {}`",
                path.display(),
                path.display()
            )));
        }
        (path.to_owned(), files)
    } else if path.is_file() {
        (
            path.parent()
                .map(Path::to_owned)
                .unwrap_or_else(|| PathBuf::from(".")),
            vec![path.to_owned()],
        )
    } else {
        return Err(NwbError::Input(format!(
            "{}: no such file or folder",
            path.display()
        )));
    };
    let mut recordings = Vec::new();
    let mut segments: BTreeMap<(u16, u16), SegmentSource> = BTreeMap::new();
    let mut listed = Vec::new();
    for f in &files {
        let (rec, segs) = read_file(f)?;
        recordings.push(rec);
        for s in segs {
            segments.entry((s.movie, s.segment)).or_insert(s);
        }
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        listed.push((name, f.metadata().map(|m| m.len()).unwrap_or(0)));
    }
    for s in segments.values() {
        let size: u64 = s
            .frame_paths
            .iter()
            .filter_map(|p| p.metadata().ok())
            .map(|m| m.len())
            .sum();
        listed.push((format!("movie{:03}_{:03}", s.movie, s.segment), size));
    }
    listed.sort();
    Ok(TreeInput {
        root,
        segments: segments.into_values().collect(),
        recordings,
        warnings: Vec::new(),
        files: listed,
    })
}

fn open(path: &Path) -> Result<File, NwbError> {
    let mut magic = [0u8; 8];
    let ok =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
    if let Err(e) = ok {
        return Err(NwbError::Io {
            path: path.to_owned(),
            action: "reading",
            source: e,
        });
    }
    if &magic != b"\x89HDF\r\n\x1a\n" {
        return Err(NwbError::NotNwb {
            path: path.to_owned(),
            reason: "it is not an HDF5 file (no HDF5 signature)".into(),
        });
    }
    let file = File::open(path).map_err(|e| NwbError::NotNwb {
        path: path.to_owned(),
        reason: format!("HDF5 cannot open it: {e}"),
    })?;
    match h5::read_attr_str(&file, "neurodata_type") {
        Ok(t) if t == "NWBFile" => {}
        Ok(t) => {
            return Err(NwbError::NotNwb {
                path: path.to_owned(),
                reason: format!("its root is a {t}, not an NWBFile"),
            })
        }
        Err(_) => {
            return Err(NwbError::NotNwb {
                path: path.to_owned(),
                reason: "an HDF5 file without NWB's root attributes (neurodata_type = NWBFile)"
                    .into(),
            })
        }
    }
    let version = h5::read_attr_str(&file, "nwb_version").map_err(|_| NwbError::Missing {
        path: path.to_owned(),
        what: "the nwb_version attribute".into(),
    })?;
    if !version.starts_with("2.") {
        return Err(NwbError::Version {
            path: path.to_owned(),
            found: version,
        });
    }
    Ok(file)
}

fn group(file: &File, path: &Path, name: &str) -> Result<Group, NwbError> {
    file.group(name).map_err(|_| NwbError::Missing {
        path: path.to_owned(),
        what: format!("the {name} table"),
    })
}

fn col<T: hdf5::H5Type>(g: &Group, path: &Path, name: &str) -> Result<Vec<T>, NwbError> {
    h5::read_vec::<T>(g, name).map_err(|e| match g.dataset(name) {
        Err(_) => NwbError::Missing {
            path: path.to_owned(),
            what: format!("column {} of {}", name, g.name()),
        },
        Ok(_) => NwbError::hdf5(path, format!("reading {}/{}", g.name(), name), e),
    })
}

fn strs(g: &Group, path: &Path, name: &str) -> Result<Vec<String>, NwbError> {
    h5::read_strings(g, name).map_err(|_| NwbError::Missing {
        path: path.to_owned(),
        what: format!("column {} of {}", name, g.name()),
    })
}

fn invalid(path: &Path, message: impl Into<String>) -> NwbError {
    NwbError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Row ranges of a ragged column from its index.
fn ranges(
    ends: &[u64],
    len: usize,
    path: &Path,
    what: &str,
) -> Result<Vec<std::ops::Range<usize>>, NwbError> {
    let mut out = Vec::with_capacity(ends.len());
    let mut start = 0usize;
    for &e in ends {
        let e = e as usize;
        if e < start || e > len {
            return Err(invalid(
                path,
                format!("{what}: index {e} out of order or past the column's {len} rows"),
            ));
        }
        out.push(start..e);
        start = e;
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<(Recording, Vec<SegmentSource>), NwbError> {
    let file = open(path)?;
    let general = group(&file, path, "general")?;
    let name = h5::read_str(&general, "session_id").map_err(|_| NwbError::Missing {
        path: path.to_owned(),
        what: "general/session_id (the pvc-1 recording's name)".into(),
    })?;
    let subdir = general
        .group("subject")
        .and_then(|g| h5::read_str(&g, "subject_id"))
        .map_err(|_| NwbError::Missing {
            path: path.to_owned(),
            what: "general/subject/subject_id (the pvc-1 sub-folder)".into(),
        })?;

    let electrodes_t = group(&file, path, "general/extracellular_ephys/electrodes")?;
    let electrode_ids: Vec<i32> = col(&electrodes_t, path, "electrode_id")?;
    let electrodes: Vec<u16> = electrode_ids
        .iter()
        .map(|&e| {
            u16::try_from(e)
                .ok()
                .filter(|e| (1..=100).contains(e))
                .ok_or_else(|| invalid(path, format!("electrode_id {e} is not 1..100")))
        })
        .collect::<Result<_, _>>()?;

    // Trials.
    let trials_t = group(&file, path, "intervals/trials")?;
    let start: Vec<f64> = col(&trials_t, path, "start_time")?;
    let movie: Vec<i32> = col(&trials_t, path, "movie")?;
    let segment: Vec<i32> = col(&trials_t, path, "segment")?;
    let repeat: Vec<i32> = col(&trials_t, path, "repeat")?;
    let condition: Vec<f64> = col(&trials_t, path, "condition")?;
    let cidx: Vec<i32> = col(&trials_t, path, "condition_index")?;
    let time_tag: Vec<f64> = col(&trials_t, path, "time_tag")?;
    let symbols = strs(&trials_t, path, "symbols")?;
    let values = strs(&trials_t, path, "values")?;
    let refs: Vec<FrameRef> = col(&trials_t, path, "timeseries")?;
    let n = start.len();
    for (what, len) in [
        ("movie", movie.len()),
        ("segment", segment.len()),
        ("repeat", repeat.len()),
        ("condition", condition.len()),
        ("condition_index", cidx.len()),
        ("time_tag", time_tag.len()),
        ("symbols", symbols.len()),
        ("values", values.len()),
        ("timeseries", refs.len()),
    ] {
        if len != n {
            return Err(invalid(
                path,
                format!("trials: column {what} has {len} rows, start_time {n}"),
            ));
        }
    }
    if start.windows(2).any(|w| w[1] < w[0]) {
        return Err(invalid(path, "trials are not in time order"));
    }

    // Frames.
    let frames_g = group(&file, path, &format!("stimulus/presentation/{FRAMES}"))?;
    let external = strs(&frames_g, path, "external_file")?;
    // Every trial's frame reference must point at this group.
    let frames_path = frames_g.name();
    let base = path.parent().unwrap_or(Path::new("."));

    // Conditions, in listOfResults order; repeats by index.
    let n_cond = cidx
        .iter()
        .map(|&c| c.max(0) as usize + 1)
        .max()
        .unwrap_or(0);
    let mut conds: Vec<Option<Condition>> = vec![None; n_cond];
    let mut segs: BTreeMap<(u16, u16), SegmentSource> = BTreeMap::new();
    let mut slot: Vec<(usize, usize)> = Vec::with_capacity(n);
    for i in 0..n {
        let ci = usize::try_from(cidx[i])
            .map_err(|_| invalid(path, format!("trial {i}: condition_index {} < 0", cidx[i])))?;
        let ri = usize::try_from(repeat[i])
            .map_err(|_| invalid(path, format!("trial {i}: repeat {} < 0", repeat[i])))?;
        let kind = if movie[i] >= 0 {
            let m = u16::try_from(movie[i])
                .map_err(|_| invalid(path, format!("trial {i}: movie {}", movie[i])))?;
            let s = u16::try_from(segment[i])
                .map_err(|_| invalid(path, format!("trial {i}: segment {}", segment[i])))?;
            ConditionKind::Movie {
                movie: m,
                segment: s,
            }
        } else {
            let sy: Vec<String> = serde_json::from_str(&symbols[i])
                .map_err(|e| invalid(path, format!("trial {i}: symbols {:?}: {e}", symbols[i])))?;
            let va: Vec<f64> = serde_json::from_str(&values[i])
                .map_err(|e| invalid(path, format!("trial {i}: values {:?}: {e}", values[i])))?;
            ConditionKind::Other {
                symbols: sy,
                values: va,
            }
        };
        let c = conds[ci].get_or_insert_with(|| Condition {
            kind: kind.clone(),
            condition: condition[i],
            repeats: Vec::new(),
        });
        if c.kind != kind {
            return Err(invalid(
                path,
                format!("trial {i}: condition_index {ci} is given two different conditions"),
            ));
        }
        if c.repeats.len() <= ri {
            c.repeats.resize(
                ri + 1,
                Trial {
                    tzero: f64::NAN,
                    time_tag: f64::NAN,
                    electrodes: Vec::new(),
                },
            );
        }
        c.repeats[ri] = Trial {
            tzero: start[i],
            time_tag: time_tag[i],
            electrodes: vec![ElectrodeEvents::default(); electrodes.len()],
        };
        slot.push((ci, ri));
        let r = &refs[i];
        if let (ConditionKind::Movie { movie, segment }, true) =
            (&kind, r.idx_start >= 0 && r.count > 0)
        {
            let target = match file.dereference(&r.timeseries) {
                Ok(hdf5::ReferencedObject::Group(g)) => Some(g.name()),
                _ => None,
            };
            if target.as_deref() != Some(frames_path.as_str())
            {
                return Err(invalid(
                    path,
                    format!("trial {i}: its timeseries reference is not {FRAMES}"),
                ));
            }
            let (a, b) = (
                r.idx_start as usize,
                r.idx_start as usize + r.count as usize,
            );
            if b > external.len() {
                return Err(invalid(
                    path,
                    format!(
                        "trial {i}: frames {a}..{b} past the {} frames of {FRAMES}",
                        external.len()
                    ),
                ));
            }
            segs.entry((*movie, *segment))
                .or_insert_with(|| SegmentSource {
                    movie: *movie,
                    segment: *segment,
                    nframes: b - a,
                    frame_paths: external[a..b].iter().map(|f| base.join(f)).collect(),
                });
        }
    }
    let conditions: Vec<Condition> = conds
        .into_iter()
        .enumerate()
        .map(|(ci, c)| c.ok_or_else(|| invalid(path, format!("no trial of condition_index {ci}"))))
        .collect::<Result<_, _>>()?;
    if let Some((ci, _)) = conditions
        .iter()
        .enumerate()
        .find(|(_, c)| c.repeats.iter().any(|t| t.tzero.is_nan()))
    {
        return Err(invalid(
            path,
            format!("condition_index {ci} is missing a repeat"),
        ));
    }
    let mut conditions = conditions;

    // Units: one per electrode, spikes back into their trials by time.
    let units = group(&file, path, "units")?;
    let times: Vec<f64> = col(&units, path, "spike_times")?;
    let t_ends: Vec<u64> = col(&units, path, "spike_times_index")?;
    let unit_el: Vec<i64> = col(&units, path, "electrodes")?;
    let unit_el_ends: Vec<u64> = col(&units, path, "electrodes_index")?;
    let waves: Vec<i8> = col(&units, path, "waveforms")?;
    let w_idx: Vec<u64> = col(&units, path, "waveforms_index")?;
    let w_idx_idx: Vec<u64> = col(&units, path, "waveforms_index_index")?;
    let spikes_of = ranges(&t_ends, times.len(), path, "spike_times_index")?;
    let el_of = ranges(&unit_el_ends, unit_el.len(), path, "electrodes_index")?;
    let per_unit_waves = ranges(&w_idx_idx, w_idx.len(), path, "waveforms_index_index")?;
    if !waves.len().is_multiple_of(SNIPPET_LEN) {
        return Err(invalid(
            path,
            format!(
                "waveforms: {} values are not rows of {SNIPPET_LEN} samples",
                waves.len()
            ),
        ));
    }
    let wave_rows = ranges(&w_idx, waves.len() / SNIPPET_LEN, path, "waveforms_index")?;
    if spikes_of.len() != el_of.len() || spikes_of.len() != per_unit_waves.len() {
        return Err(invalid(
            path,
            "units: spike_times, electrodes and waveforms have different numbers of units",
        ));
    }
    for (u, spikes) in spikes_of.iter().enumerate() {
        let els = &unit_el[el_of[u].clone()];
        let [e] = els else {
            return Err(invalid(
                path,
                format!(
                    "unit {u} has {} electrodes; pvc-1 units have one",
                    els.len()
                ),
            ));
        };
        let e = usize::try_from(*e)
            .ok()
            .filter(|&e| e < electrodes.len())
            .ok_or_else(|| invalid(path, format!("unit {u}: electrode row {e} out of range")))?;
        let wr = &per_unit_waves[u];
        if wr.len() != spikes.len() {
            return Err(invalid(
                path,
                format!(
                    "unit {u}: {} spikes but {} waveform entries",
                    spikes.len(),
                    wr.len()
                ),
            ));
        }
        for (k, &t) in times[spikes.clone()].iter().enumerate() {
            let i = start.partition_point(|&s| s <= t);
            if i == 0 {
                return Err(invalid(
                    path,
                    format!("unit {u}: a spike at {t} s before the first trial"),
                ));
            }
            let (ci, ri) = slot[i - 1];
            let trial = &mut conditions[ci].repeats[ri];
            // Times in pvc-1 are whole samples at 30 kHz: undo the rounding of adding the
            // trial start so binning sees the very value of the .mat file.
            let rel = t - start[i - 1];
            let k30 = (rel * SAMPLE_RATE_HZ).round();
            let rel = if (rel * SAMPLE_RATE_HZ - k30).abs() < 1e-3 {
                k30 / SAMPLE_RATE_HZ
            } else {
                rel
            };
            let rows = &wave_rows[wr.start + k];
            let mut snip = [0i8; SNIPPET_LEN];
            if let Some(r) = rows.clone().next() {
                snip.copy_from_slice(&waves[r * SNIPPET_LEN..(r + 1) * SNIPPET_LEN]);
            }
            let ev = &mut trial.electrodes[e];
            ev.times.push(rel);
            ev.snippets.push(snip);
        }
    }
    let rec = Recording {
        subdir,
        name,
        electrodes,
        conditions,
    };
    Ok((rec, segs.into_values().collect()))
}
