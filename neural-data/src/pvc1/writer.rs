//! Writing recordings and movie frames in the pvc-1 layout.
//!
//! The `.mat` files hold one variable `pepANA` with the fields and types of the real data
//! (see `pvc1-format.md`): plain structs, `repeat` always a 1xR cell, `data{e}` a 1x2 cell
//! `{1xN double, 48xN int8}`, empty electrodes as 1x0 and 48x0. Frames are baseline JPEG.
//! Every file is written atomically, and a segment's `nframes` file is written last (and
//! removed first when a folder is rewritten), so a folder without `nframes` is known to be
//! incomplete.
//!
//! Fields are also in the real files' positions, because public readers index them by
//! position as well as by name (`loadmat(f)['pepANA'][0,0][6]` is `listOfResults`):
//!
//! ```text
//! pepANA            config module looper imaging experiment no_conditions listOfResults elec_list
//! listOfResults{c}  values symbols noRepeats condition repeat
//! repeat{r}         timeTag tzero sync period data
//! ```
//!
//! That is: `listOfResults` 7th and `elec_list` last in `pepANA`, `values` first and
//! `repeat` 5th in a condition, `data` 5th in a repeat. Fields this crate has no content
//! for are empty `[]` placeholders that only hold those positions (see [`PEPANA_FIELDS`]
//! and [`REPEAT_FIELDS`]). Whole-number doubles (`noRepeats`, `values`, `condition`,
//! `no_conditions`, `elec_list`, `timeTag`) are stored as small integers, as MATLAB
//! stores them (see [`v1_mat::writer`]), so scipy's `loadmat` returns integers.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;

use super::{
    frame_file_name, segment_dir_name, ConditionKind, Pvc1Error, Recording, MOVIE_FRAMES_DIR,
    NEURODATA_DIR, NFRAMES_FILE, PEPANA, SNIPPET_LEN,
};
use v1_mat::atomic::write_atomically;
use v1_mat::{write_mat_file, Compression, MatArray, Variable};

/// JPEG quality of written frames: visually clean at 320x240, ~10-15 kB a frame.
pub const JPEG_QUALITY: u8 = 85;

/// Field order of `pepANA`. `config`, `module`, `looper` and `imaging` are `pepANA` fields
/// that public analysis code for the same acquisition software ("pep") reads (`module`
/// and `looper` are probably the `pepmodule`/`peplooper` objects of the real files);
/// `experiment`, a name of this crate's, fills the one remaining slot before
/// `listOfResults`. Their real content is unknown and no pvc-1 reader uses it, so they
/// are written as empty `[]` placeholders.
pub const PEPANA_FIELDS: [&str; 8] = [
    "config",
    "module",
    "looper",
    "imaging",
    "experiment",
    "no_conditions",
    "listOfResults",
    "elec_list",
];
/// Field order of each `listOfResults{c}`.
pub const RESULT_FIELDS: [&str; 5] = ["values", "symbols", "noRepeats", "condition", "repeat"];
/// Field order of each `repeat{r}`. `sync` and `period` are placeholders named after the
/// per-repeat accessors of the pep software (`pepgetsync`, `pepgetperiod`); their real
/// content is unknown, so they are written as empty `[]`.
pub const REPEAT_FIELDS: [&str; 5] = ["timeTag", "tzero", "sync", "period", "data"];

fn field(name: &str, value: MatArray) -> (String, MatArray) {
    (name.to_string(), value)
}

/// A field that only holds its position: its real content is unknown.
fn placeholder(name: &str) -> (String, MatArray) {
    field(name, MatArray::empty())
}

/// A folder or file name component: non-empty, no separators, not `.`/`..`.
fn check_component(rec: &Recording, what: &str, s: &str) -> Result<(), Pvc1Error> {
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']) {
        return Err(Pvc1Error::InvalidRecording {
            name: rec.name.clone(),
            detail: format!("{what} {s:?} is not a usable file name"),
        });
    }
    Ok(())
}

/// The `pepANA` value for `rec`, after checking that its parts agree with each other.
pub fn recording_to_mat(rec: &Recording) -> Result<MatArray, Pvc1Error> {
    let invalid = |detail: String| Pvc1Error::InvalidRecording {
        name: rec.name.clone(),
        detail,
    };
    if let Some(id) = rec.electrodes.iter().find(|&&id| !(1..=100).contains(&id)) {
        return Err(invalid(format!("electrode id {id} is outside 1..=100")));
    }
    let n_elec = rec.electrodes.len();
    let mut results = Vec::with_capacity(rec.conditions.len());
    for (ci, c) in rec.conditions.iter().enumerate() {
        let (symbols, values) = match &c.kind {
            ConditionKind::Movie { movie, segment } => (
                vec!["movie_id".to_string(), "segment_id".to_string()],
                vec![f64::from(*movie), f64::from(*segment)],
            ),
            ConditionKind::Other { symbols, values } => (symbols.clone(), values.clone()),
        };
        let mut repeats = Vec::with_capacity(c.repeats.len());
        for (ri, t) in c.repeats.iter().enumerate() {
            if t.electrodes.len() != n_elec {
                return Err(invalid(format!(
                    "condition {} repeat {} has {} electrodes, the recording has {n_elec}",
                    ci + 1,
                    ri + 1,
                    t.electrodes.len()
                )));
            }
            let mut data = Vec::with_capacity(n_elec);
            for (ev, id) in t.electrodes.iter().zip(&rec.electrodes) {
                let n = ev.times.len();
                if ev.snippets.len() != n {
                    return Err(invalid(format!(
                        "condition {} repeat {} electrode {id}: {n} times but {} snippets",
                        ci + 1,
                        ri + 1,
                        ev.snippets.len()
                    )));
                }
                let snippets: Vec<i8> =
                    ev.snippets.iter().flat_map(|s| s.iter().copied()).collect();
                data.push(MatArray::cell_row(vec![
                    MatArray::row_f64(ev.times.clone()),
                    MatArray::matrix_i8(SNIPPET_LEN, n, snippets),
                ]));
            }
            // In REPEAT_FIELDS order.
            repeats.push(MatArray::struct_scalar(vec![
                field("timeTag", MatArray::scalar(t.time_tag)),
                field("tzero", MatArray::scalar(t.tzero)),
                placeholder("sync"),
                placeholder("period"),
                field("data", MatArray::cell_row(data)),
            ]));
        }
        // In RESULT_FIELDS order.
        results.push(MatArray::struct_scalar(vec![
            field(
                "values",
                MatArray::cell_row(values.into_iter().map(MatArray::scalar).collect()),
            ),
            field(
                "symbols",
                MatArray::cell_row(symbols.iter().map(|s| MatArray::string(s)).collect()),
            ),
            field("noRepeats", MatArray::scalar(c.repeats.len() as f64)),
            field("condition", MatArray::scalar(c.condition)),
            field("repeat", MatArray::cell_row(repeats)),
        ]));
    }
    // In PEPANA_FIELDS order.
    Ok(MatArray::struct_scalar(vec![
        placeholder("config"),
        placeholder("module"),
        placeholder("looper"),
        placeholder("imaging"),
        placeholder("experiment"),
        field(
            "no_conditions",
            MatArray::scalar(rec.conditions.len() as f64),
        ),
        field("listOfResults", MatArray::cell_row(results)),
        field(
            "elec_list",
            MatArray::row_f64(rec.electrodes.iter().map(|&e| f64::from(e)).collect()),
        ),
    ]))
}

/// Writes `data_root/neurodata/<subdir>/<name>.mat` (folders created as needed) and
/// returns its path. `data_root` is the `crcns-ringach-data` folder.
pub fn write_recording(
    data_root: &Path,
    rec: &Recording,
    compression: Compression,
) -> Result<PathBuf, Pvc1Error> {
    check_component(rec, "subdir", &rec.subdir)?;
    check_component(rec, "name", &rec.name)?;
    let pep = recording_to_mat(rec)?;
    let dir = data_root.join(NEURODATA_DIR).join(&rec.subdir);
    std::fs::create_dir_all(&dir).map_err(|source| Pvc1Error::Io {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(format!("{}.mat", rec.name));
    write_mat_file(&path, &[Variable::new(PEPANA, pep)], compression)?;
    Ok(path)
}

/// Writes the frames of one movie segment as baseline JPEGs plus the `nframes` file
/// (last) into `data_root/movie_frames/movie{MMM}_{SSS}.images/`, and returns the folder.
/// pvc-1 frames are 320x240 RGB; other sizes are written as given.
pub fn write_segment_frames(
    data_root: &Path,
    movie: u16,
    segment: u16,
    frames: &[RgbImage],
) -> Result<PathBuf, Pvc1Error> {
    let invalid = |detail: String| Pvc1Error::InvalidFrames {
        movie,
        segment,
        detail,
    };
    if frames.is_empty() {
        return Err(invalid("a segment needs at least one frame".to_string()));
    }
    if movie > 999 || segment > 999 {
        return Err(invalid(
            "movie and segment numbers have three digits (0..=999)".to_string(),
        ));
    }
    let dir = data_root
        .join(MOVIE_FRAMES_DIR)
        .join(segment_dir_name(movie, segment));
    std::fs::create_dir_all(&dir).map_err(|source| Pvc1Error::Io {
        path: dir.clone(),
        source,
    })?;
    // Mark the folder incomplete before touching any frame.
    let nframes_path = dir.join(NFRAMES_FILE);
    match std::fs::remove_file(&nframes_path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Pvc1Error::Io {
                path: nframes_path,
                source,
            })
        }
    }
    let mut buf = Vec::new();
    for (k, frame) in frames.iter().enumerate() {
        if frame.width() == 0 || frame.height() == 0 {
            return Err(invalid(format!(
                "frame {k} is empty ({}x{})",
                frame.width(),
                frame.height()
            )));
        }
        buf.clear();
        JpegEncoder::new_with_quality(&mut buf, JPEG_QUALITY)
            .encode_image(frame)
            .map_err(|e| invalid(format!("frame {k}: JPEG encoding failed: {e}")))?;
        let path = dir.join(frame_file_name(movie, segment, k));
        // Frames are not synced one by one (that would cost a disk flush per frame); the
        // synced `nframes` written after them is what marks the folder complete.
        write_atomically(&path, &buf, false).map_err(|source| Pvc1Error::Io { path, source })?;
    }
    write_atomically(
        &nframes_path,
        format!("{}\n", frames.len()).as_bytes(),
        true,
    )
    .map_err(|source| Pvc1Error::Io {
        path: nframes_path,
        source,
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1_mat::{MatData, StructArray};
    use crate::pvc1::{Condition, ElectrodeEvents, Trial};

    fn names(a: &MatArray) -> Vec<&str> {
        match &a.data {
            MatData::Struct(StructArray { field_names, .. }) => {
                field_names.iter().map(String::as_str).collect()
            }
            other => panic!("expected a struct, found {other:?}"),
        }
    }

    fn get<'a>(a: &'a MatArray, name: &str) -> &'a MatArray {
        let MatData::Struct(s) = &a.data else {
            panic!("expected a struct")
        };
        let i = s.field_names.iter().position(|f| f == name).unwrap();
        &s.values[i]
    }

    fn first_cell(a: &MatArray) -> &MatArray {
        match &a.data {
            MatData::Cell(items) => &items[0],
            other => panic!("expected a cell, found {other:?}"),
        }
    }

    #[test]
    fn fields_are_in_the_documented_positions() {
        let rec = Recording {
            subdir: "ac1".into(),
            name: "x".into(),
            electrodes: vec![3],
            conditions: vec![Condition {
                kind: ConditionKind::Movie {
                    movie: 0,
                    segment: 2,
                },
                condition: 1.0,
                repeats: vec![Trial {
                    tzero: 0.5,
                    time_tag: 0.0,
                    electrodes: vec![ElectrodeEvents::default()],
                }],
            }],
        };
        let pep = recording_to_mat(&rec).unwrap();
        assert_eq!(names(&pep), PEPANA_FIELDS);
        assert_eq!(PEPANA_FIELDS[6], "listOfResults");
        assert_eq!(PEPANA_FIELDS.last(), Some(&"elec_list"));
        let result = first_cell(get(&pep, "listOfResults"));
        assert_eq!(names(result), RESULT_FIELDS);
        assert_eq!((RESULT_FIELDS[0], RESULT_FIELDS[4]), ("values", "repeat"));
        let repeat = first_cell(get(result, "repeat"));
        assert_eq!(names(repeat), REPEAT_FIELDS);
        assert_eq!(REPEAT_FIELDS[4], "data");
        for placeholder in ["config", "module", "looper", "imaging", "experiment"] {
            assert_eq!(get(&pep, placeholder), &MatArray::empty(), "{placeholder}");
        }
        for placeholder in ["sync", "period"] {
            assert_eq!(
                get(repeat, placeholder),
                &MatArray::empty(),
                "{placeholder}"
            );
        }
    }
}
