//! Reading a pvc-1 tree: segment folders (checked against their `nframes` file) and the
//! `neurodata/*/*.mat` recordings, parsed from `pepANA` by field name.
//!
//! The reader is tolerant where the real files are uncertain (field order, extra fields,
//! objects vs structs, a 1-repeat `repeat` stored as a struct instead of a cell, empty
//! arrays of any empty shape, a single snippet stored as a 48-vector) and strict about
//! consistency (one `data` entry per electrode, one snippet per event time), because an
//! inconsistent file would silently misalign responses with electrodes.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::{
    frame_file_name, Condition, ConditionKind, ElectrodeEvents, PepLocation, Pvc1Error, Recording,
    Trial, DATA_DIR_NAME, MOVIE_FRAMES_DIR, NEURODATA_DIR, NFRAMES_FILE, PEPANA, SNIPPET_LEN,
};
use v1_mat::{Level5Reader, MatClass, MatFile, MatReader, MatRef};

/// How to treat a broken segment folder or recording file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeOptions {
    /// `true`: the first problem is an error. `false`: skip the broken folder or file and
    /// record it in [`Pvc1Tree::problems`].
    pub strict: bool,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions { strict: true }
    }
}

impl TreeOptions {
    pub fn lenient() -> Self {
        TreeOptions { strict: false }
    }
}

/// A movie segment folder with all of its frames present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovieSegment {
    /// 0-based movie number (`MMM`).
    pub movie: u16,
    /// 0-based segment number (`SSS`).
    pub segment: u16,
    /// Frame count from the `nframes` file.
    pub nframes: usize,
    /// The `movie{MMM}_{SSS}.images` folder.
    pub dir: PathBuf,
}

impl MovieSegment {
    /// Path of frame `k` (whether or not `k < nframes`).
    pub fn frame_path(&self, k: usize) -> PathBuf {
        self.dir.join(frame_file_name(self.movie, self.segment, k))
    }

    /// Paths of frames `0..nframes`.
    pub fn frame_paths(&self) -> Vec<PathBuf> {
        (0..self.nframes).map(|k| self.frame_path(k)).collect()
    }

    /// Decodes frame `k` as 8-bit RGB.
    pub fn load_frame(&self, k: usize) -> Result<RgbImage, Pvc1Error> {
        if k >= self.nframes {
            return Err(Pvc1Error::FrameOutOfRange {
                dir: self.dir.clone(),
                index: k,
                nframes: self.nframes,
            });
        }
        load_jpeg_rgb(&self.frame_path(k))
    }
}

/// Decodes the JPEG at `path` as 8-bit RGB.
pub fn load_jpeg_rgb(path: &Path) -> Result<RgbImage, Pvc1Error> {
    let bytes = std::fs::read(path).map_err(|source| Pvc1Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .map(|img| img.to_rgb8())
        .map_err(|e| Pvc1Error::FrameDecode {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Something the lenient reader skipped.
#[derive(Debug)]
pub struct TreeProblem {
    /// The segment folder or recording file that was skipped.
    pub path: PathBuf,
    pub error: Pvc1Error,
}

impl fmt::Display for TreeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped {}: {}", self.path.display(), self.error)
    }
}

/// A pvc-1 tree as read from disk.
#[derive(Debug)]
pub struct Pvc1Tree {
    /// The `crcns-ringach-data` folder (or the folder given, when it is the tree itself).
    pub root: PathBuf,
    /// Complete segment folders, sorted by (movie, segment).
    pub segments: Vec<MovieSegment>,
    /// Recordings, sorted by file path.
    pub recordings: Vec<Recording>,
    /// What lenient reading skipped (always empty in strict mode).
    pub problems: Vec<TreeProblem>,
}

impl Pvc1Tree {
    pub fn segment(&self, movie: u16, segment: u16) -> Option<&MovieSegment> {
        self.segments
            .iter()
            .find(|s| s.movie == movie && s.segment == segment)
    }
}

/// The tree folder for `root`: `root/crcns-ringach-data` if it exists, else `root` itself
/// when it has `movie_frames/` or `neurodata/`.
pub fn resolve_data_dir(root: &Path) -> Result<PathBuf, Pvc1Error> {
    let nested = root.join(DATA_DIR_NAME);
    if nested.is_dir() {
        return Ok(nested);
    }
    if root.join(MOVIE_FRAMES_DIR).is_dir() || root.join(NEURODATA_DIR).is_dir() {
        return Ok(root.to_path_buf());
    }
    Err(Pvc1Error::NoTree {
        root: root.to_path_buf(),
        detail: format!(
            "neither {}/ nor {MOVIE_FRAMES_DIR}/ or {NEURODATA_DIR}/ is in this folder; pass the folder that \
             holds {DATA_DIR_NAME}/ or that folder itself",
            DATA_DIR_NAME
        ),
    })
}

/// Reads the tree under `root` strictly: any broken folder or file is an error.
pub fn read_tree(root: &Path) -> Result<Pvc1Tree, Pvc1Error> {
    read_tree_with(root, &TreeOptions::default())
}

pub fn read_tree_with(root: &Path, opts: &TreeOptions) -> Result<Pvc1Tree, Pvc1Error> {
    let dir = resolve_data_dir(root)?;
    for sub in [MOVIE_FRAMES_DIR, NEURODATA_DIR] {
        if !dir.join(sub).is_dir() {
            return Err(Pvc1Error::NoTree {
                root: dir.clone(),
                detail: format!("the tree has no {sub}/ folder"),
            });
        }
    }
    let mut problems = Vec::new();
    let mut keep_or_skip = |path: PathBuf, error: Pvc1Error| -> Result<(), Pvc1Error> {
        if opts.strict {
            Err(error)
        } else {
            tracing::warn!("skipping {}: {error}", path.display());
            problems.push(TreeProblem { path, error });
            Ok(())
        }
    };

    let mut found = Vec::new();
    let frames_dir = dir.join(MOVIE_FRAMES_DIR);
    for path in sorted_entries(&frames_dir)? {
        let Some((movie, segment)) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_segment_dir)
        else {
            continue;
        };
        if !path.is_dir() {
            continue;
        }
        found.push((movie, segment, path));
    }
    found.sort_by_key(|(m, s, _)| (*m, *s));
    let mut segments = Vec::with_capacity(found.len());
    for (movie, segment, path) in found {
        match read_segment(&path, movie, segment) {
            Ok(s) => segments.push(s),
            Err(e) => keep_or_skip(path, e)?,
        }
    }

    let mut mat_files = Vec::new();
    for sub in sorted_entries(&dir.join(NEURODATA_DIR))? {
        if !sub.is_dir() {
            continue;
        }
        for f in sorted_entries(&sub)? {
            if f.extension().is_some_and(|e| e == "mat") && f.is_file() {
                mat_files.push(f);
            }
        }
    }
    mat_files.sort();
    let mut recordings = Vec::with_capacity(mat_files.len());
    for f in mat_files {
        match read_recording(&f) {
            Ok(r) => recordings.push(r),
            Err(e) => keep_or_skip(f, e)?,
        }
    }
    Ok(Pvc1Tree {
        root: dir,
        segments,
        recordings,
        problems,
    })
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, Pvc1Error> {
    let io = |source| Pvc1Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        out.push(entry.map_err(io)?.path());
    }
    out.sort();
    Ok(out)
}

/// `movie{MMM}_{SSS}.images` -> (MMM, SSS).
fn parse_segment_dir(name: &str) -> Option<(u16, u16)> {
    let rest = name.strip_prefix("movie")?.strip_suffix(".images")?;
    let (m, s) = rest.split_once('_')?;
    let digits = |x: &str| x.len() == 3 && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(m) || !digits(s) {
        return None;
    }
    Some((m.parse().ok()?, s.parse().ok()?))
}

/// Checks one segment folder: `nframes` present and parseable, frames 0..nframes present.
pub fn read_segment(dir: &Path, movie: u16, segment: u16) -> Result<MovieSegment, Pvc1Error> {
    let nf_path = dir.join(NFRAMES_FILE);
    let raw = match std::fs::read(&nf_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Pvc1Error::MissingNframes {
                dir: dir.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(Pvc1Error::Io {
                path: nf_path,
                source,
            })
        }
    };
    let content = String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned();
    let bad = |reason: &str| Pvc1Error::BadNframes {
        path: nf_path.clone(),
        content: content.clone(),
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(&raw).map_err(|_| bad("not ASCII text"))?;
    let nframes: usize = text
        .trim()
        .parse()
        .map_err(|_| bad("expected one non-negative integer"))?;
    if nframes == 0 {
        return Err(bad("a segment needs at least one frame"));
    }

    // One directory listing instead of a stat per frame.
    let mut names: HashSet<OsString> = HashSet::new();
    for entry in std::fs::read_dir(dir).map_err(|source| Pvc1Error::Io {
        path: dir.to_path_buf(),
        source,
    })? {
        let entry = entry.map_err(|source| Pvc1Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        names.insert(entry.file_name());
    }
    let prefix = format!("movie{movie:03}_{segment:03}_");
    let found = names
        .iter()
        .filter(|n| {
            n.to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".jpeg"))
        })
        .count();
    for k in 0..nframes {
        let file = frame_file_name(movie, segment, k);
        if !names.contains(std::ffi::OsStr::new(&file)) {
            return Err(Pvc1Error::MissingFrame {
                dir: dir.to_path_buf(),
                index: k,
                file,
                nframes,
                found,
            });
        }
    }
    Ok(MovieSegment {
        movie,
        segment,
        nframes,
        dir: dir.to_path_buf(),
    })
}

/// Reads one recording file with the default MAT reader. `subdir` and `name` come from
/// the path (`neurodata/<subdir>/<name>.mat`).
pub fn read_recording(path: &Path) -> Result<Recording, Pvc1Error> {
    read_recording_with(&Level5Reader::default(), path)
}

pub fn read_recording_with(reader: &dyn MatReader, path: &Path) -> Result<Recording, Pvc1Error> {
    let file = reader.read(path)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let subdir = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    recording_from_mat(&file, &subdir, &name)
}

/// Builds a [`Recording`] from the `pepANA` variable of a parsed MAT file.
pub fn recording_from_mat(
    file: &MatFile,
    subdir: &str,
    name: &str,
) -> Result<Recording, Pvc1Error> {
    let pep = file.variable(PEPANA).map_err(|_| Pvc1Error::NoPepAna {
        path: file.path.clone(),
        found: file.variable_names(),
    })?;
    let cx = Cx { path: &file.path };
    let elec_ref = pep.field("elec_list")?;
    let mut electrodes = Vec::new();
    for (i, v) in elec_ref.as_f64_vec()?.into_iter().enumerate() {
        if v.fract() != 0.0 || !(1.0..=100.0).contains(&v) {
            return Err(cx.invalid(
                PepLocation::default(),
                format!(
                    "elec_list({}) = {v}: electrode ids are integers 1..=100 on the 10x10 array",
                    i + 1
                ),
            ));
        }
        electrodes.push(v as u16);
    }

    let results = pep.field("listOfResults")?.as_list()?;
    if let Some(nc) = pep.field_opt("no_conditions")? {
        let nc = nc.as_f64_scalar()?;
        if nc != results.len() as f64 {
            return Err(cx.invalid(
                PepLocation::default(),
                format!(
                    "no_conditions is {nc} but listOfResults has {} entries",
                    results.len()
                ),
            ));
        }
    }
    let mut conditions = Vec::with_capacity(results.len());
    for (ci, c) in results.iter().enumerate() {
        conditions.push(cx.condition(c, ci, &electrodes)?);
    }
    Ok(Recording {
        subdir: subdir.to_string(),
        name: name.to_string(),
        electrodes,
        conditions,
    })
}

/// Context for the content parser: the file, for error messages.
struct Cx<'a> {
    path: &'a Path,
}

impl Cx<'_> {
    fn invalid(&self, at: PepLocation, detail: String) -> Pvc1Error {
        Pvc1Error::Invalid {
            path: self.path.to_path_buf(),
            at,
            detail,
        }
    }

    fn condition(&self, c: &MatRef, ci: usize, electrodes: &[u16]) -> Result<Condition, Pvc1Error> {
        let at = PepLocation {
            condition: Some(ci),
            ..Default::default()
        };
        let repeats = c.field("repeat")?;
        // An empty `repeat` ([] or a 1x0 cell) means no trials.
        let trials = if repeats.is_empty() {
            Vec::new()
        } else {
            repeats.as_list()?
        };
        if let Some(n) = c.field_opt("noRepeats")? {
            let n = n.as_f64_scalar()?;
            if n != trials.len() as f64 {
                return Err(self.invalid(
                    at,
                    format!("noRepeats is {n} but repeat has {} entries", trials.len()),
                ));
            }
        }
        let symbols = match c.field_opt("symbols")? {
            Some(s) => strings(&s)?,
            None => Vec::new(),
        };
        let values = match c.field_opt("values")? {
            Some(v) => numbers(&v)?,
            None => Vec::new(),
        };
        let condition = match c.field_opt("condition")? {
            Some(v) if v.is_empty() => 0.0,
            Some(v) => v.as_f64_scalar()?,
            None => 0.0,
        };
        let kind =
            movie_kind(&symbols, &values).unwrap_or(ConditionKind::Other { symbols, values });
        let mut repeats = Vec::with_capacity(trials.len());
        for (ri, t) in trials.iter().enumerate() {
            repeats.push(self.trial(
                t,
                PepLocation {
                    repeat: Some(ri),
                    ..at.clone()
                },
                electrodes,
            )?);
        }
        Ok(Condition {
            kind,
            condition,
            repeats,
        })
    }

    fn trial(&self, t: &MatRef, at: PepLocation, electrodes: &[u16]) -> Result<Trial, Pvc1Error> {
        let data = t.field("data")?;
        let cells = if data.is_empty() {
            Vec::new()
        } else {
            data.as_cell()?
        };
        if cells.len() != electrodes.len() {
            return Err(self.invalid(
                at,
                format!(
                    "data has {} entries but elec_list has {} electrodes",
                    cells.len(),
                    electrodes.len()
                ),
            ));
        }
        let tzero = t.field("tzero")?.as_f64_scalar()?;
        let time_tag = t.field("timeTag")?.as_f64_scalar()?;
        let mut events = Vec::with_capacity(cells.len());
        for (ei, (d, &id)) in cells.iter().zip(electrodes).enumerate() {
            events.push(self.events(
                d,
                PepLocation {
                    electrode: Some((ei, id)),
                    ..at.clone()
                },
            )?);
        }
        Ok(Trial {
            tzero,
            time_tag,
            electrodes: events,
        })
    }

    fn events(&self, d: &MatRef, at: PepLocation) -> Result<ElectrodeEvents, Pvc1Error> {
        if d.is_empty() {
            return Ok(ElectrodeEvents::default());
        }
        let parts = d.as_cell()?;
        let [times_ref, snip_ref] = parts.as_slice() else {
            return Err(self.invalid(
                at,
                format!(
                    "expected a 1x2 cell {{times, snippets}}, found {}",
                    d.describe()
                ),
            ));
        };
        if !times_ref.is_empty() && times_ref.dims().iter().filter(|&&x| x != 1).count() > 1 {
            return Err(self.invalid(
                at,
                format!(
                    "event times should be a vector, found {}",
                    times_ref.describe()
                ),
            ));
        }
        let times = times_ref.as_f64_vec()?;
        if let Some((i, t)) = times.iter().enumerate().find(|(_, t)| !t.is_finite()) {
            return Err(self.invalid(at, format!("event time {} is {t}", i + 1)));
        }
        let n = times.len();
        if n == 0 {
            if !snip_ref.is_empty() {
                return Err(self.invalid(
                    at,
                    format!("no event times but snippets are {}", snip_ref.describe()),
                ));
            }
            return Ok(ElectrodeEvents::default());
        }
        let (rows, cols, data) = snippet_matrix(snip_ref)?;
        let shape_ok = ((rows == SNIPPET_LEN && cols == n)
            || (n == 1 && rows.checked_mul(cols) == Some(SNIPPET_LEN)))
            && data.len() == SNIPPET_LEN * n;
        if !shape_ok {
            return Err(self.invalid(
                at,
                format!("{n} event times but snippets are {rows}x{cols}; expected {SNIPPET_LEN}x{n} (one column per event)"),
            ));
        }
        let snippets = data
            .chunks_exact(SNIPPET_LEN)
            .map(|c| {
                let mut s = [0i8; SNIPPET_LEN];
                s.copy_from_slice(c);
                s
            })
            .collect();
        Ok(ElectrodeEvents { times, snippets })
    }
}

/// Snippets as (rows, cols, data): int8 as stored, or another numeric class holding
/// integers in the int8 range.
fn snippet_matrix(r: &MatRef) -> Result<(usize, usize, Vec<i8>), Pvc1Error> {
    if let Ok((rows, cols, data)) = r.as_i8_matrix() {
        return Ok((rows, cols, data.to_vec()));
    }
    let values = r.as_f64_vec()?;
    let dims = r.dims();
    let rows = dims.first().copied().unwrap_or(1);
    let cols = dims
        .iter()
        .skip(1)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or(usize::MAX);
    let mut data = Vec::with_capacity(values.len());
    for v in values {
        if v.fract() != 0.0 || !(-128.0..=127.0).contains(&v) {
            return Err(Pvc1Error::Mat(v1_mat::MatError::WrongType {
                path: r.file().to_path_buf(),
                node: r.path().to_string(),
                expected: "int8 waveform samples".to_string(),
                found: format!("{} containing {v}", r.describe()),
            }));
        }
        data.push(v as i8);
    }
    Ok((rows, cols, data))
}

/// A cell of char rows (or a single char row) as strings.
fn strings(r: &MatRef) -> Result<Vec<String>, Pvc1Error> {
    if r.class() == MatClass::Char {
        return Ok(vec![r.as_string()?]);
    }
    r.as_cell()?
        .iter()
        .map(|s| s.as_string().map_err(Pvc1Error::from))
        .collect()
}

/// A cell of numeric scalars (or a numeric vector) as numbers.
fn numbers(r: &MatRef) -> Result<Vec<f64>, Pvc1Error> {
    if r.class() == MatClass::Cell {
        return r
            .as_cell()?
            .iter()
            .map(|v| v.as_f64_scalar().map_err(Pvc1Error::from))
            .collect();
    }
    Ok(r.as_f64_vec()?)
}

/// `{'movie_id','segment_id'}` with two non-negative integer values -> Movie.
fn movie_kind(symbols: &[String], values: &[f64]) -> Option<ConditionKind> {
    if symbols.len() != 2 || values.len() != 2 {
        return None;
    }
    let m = symbols.iter().position(|s| s == "movie_id")?;
    let s = symbols.iter().position(|s| s == "segment_id")?;
    let as_index = |v: f64| (v.fract() == 0.0 && (0.0..=999.0).contains(&v)).then_some(v as u16);
    Some(ConditionKind::Movie {
        movie: as_index(values[m])?,
        segment: as_index(values[s])?,
    })
}
