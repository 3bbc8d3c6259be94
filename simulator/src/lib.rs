//! A simulated macaque V1 that writes a complete dataset in the CRCNS pvc-1 layout, with
//! its noise-free ground truth beside it.
//!
//! [`simulate`] writes `out/crcns-ringach-data/` (movie frames and `.mat` recordings that
//! a pvc-1 loader cannot tell from the real tree) and `out/ground_truth/` (the planted
//! latency, RFs, unit parameters and noise-free rates). Everything is a pure function of
//! the seed: every (movie, segment, file, trial) draws from its own ChaCha stream, so
//! segments are simulated in parallel and the bytes are the same for the same seed.
//!
//! Nothing half-written is ever visible: the dataset is built in `out/.partial-<pid>/`
//! and moved into place at the end, `ground_truth/` (with its `COMPLETE` marker) last. A
//! failed run removes its staging folder; a killed one leaves it behind (it is never
//! read, and can be deleted).
//!
//! # Layout
//! - [`params`]: [`PopulationParams`], every number of the model with its source;
//! - [`population`]: the array, retinotopy, pinwheel orientation map and units;
//! - [`stimuli`]: dead-leaves movies, or pans and zooms over the user's photographs;
//! - [`response`]: frames -> noise-free rates (Gabor filters, normalisation,
//!   Naka–Rushton, biphasic temporal kernel, softplus), and rate calibration;
//! - [`spikes`]: rates -> modulated-Poisson spikes, noise crossings and snippets;
//! - [`session`]: which files, electrodes, conditions and trial times;
//! - [`truth`]: `truth.json`, `rates.safetensors` and [`GroundTruth::load`];
//! - [`rng`]: the seeded streams.

pub mod error;
pub mod params;
pub mod population;
pub mod response;
pub mod rng;
pub mod session;
pub mod spikes;
pub mod stimuli;
pub mod truth;
pub mod wide;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use error::SimError;
pub use params::PopulationParams;
pub use population::Population;
pub use truth::{GroundTruth, SegmentRates, Truth};
pub use wide::WideField;

use neural_data::progress::progress_bar;
use neural_data::pvc1::{
    recording_to_mat, write_segment_frames, Condition, ConditionKind, ElectrodeEvents, Recording, Trial, DATA_DIR_NAME,
    FRAME_HEIGHT, FRAME_RATE_HZ, FRAME_WIDTH, NEURODATA_DIR, PEPANA,
};
use v1_mat::atomic::write_atomically;
use v1_mat::{write_mat_bytes, Compression, Variable};
use error::io;
use session::{PlanSpec, PlannedCondition, SessionPlan};
use stimuli::{PhotoLibrary, StimulusSource};

/// Named configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// For tests: 2 movies x 3 segments of 60 frames, 4 single-trial files and a repeat
    /// file over movies 0–1 x segments 0–1. A few seconds in release.
    Small,
    /// The default dataset: all 4 movies x 30 segments (the 120 folders of pvc-1) of 600
    /// frames, 5 single-trial files and a repeat file over movies 0–1 x segments 0–9.
    Default,
    /// A wide-field population ([`WideField`]): 16 arrays of 10x10 whose RFs tile the
    /// whole frame, each recorded in its own `neurodata/ac{k}/` folder like the default
    /// preset's one array (5 single-trial files and a repeat file of all 100 electrodes
    /// each), over 4 movies x 30 segments of 300 frames.
    Wide,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Small => "small",
            Preset::Default => "default",
            Preset::Wide => "wide",
        }
    }
}

/// What to simulate and how to write it. Build one with [`SimConfig::preset`] and adjust
/// fields; [`simulate`] validates it before doing any work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub seed: u64,
    /// Recorded in `truth.json` (`small`, `default`, or any label for a custom config).
    pub preset: String,
    /// Movies 0..movies and segments 0..segments of each (pvc-1: 4 x 30).
    pub movies: u16,
    pub segments: u16,
    /// Frames per segment (pvc-1: ~900; `nframes` in each folder says how many).
    pub frames_per_segment: usize,
    /// Planted response latency (frames): the rate in bin t depends on frames
    /// t - latency - j, j = 0.. (2 frames ~ 67 ms, as in pvc-1 analyses).
    pub latency_frames: u32,
    /// Single-trial files; their electrode lists partition the 100 electrodes, so each
    /// holds 100 / n (5–33 like pvc-1, hence 4..=20 files).
    pub single_trial_files: usize,
    /// The repeat file: electrodes, repeats per condition (0 = no repeat file), and the
    /// movies x segments it covers (0..repeat_movies x 0..repeat_segments).
    pub repeat_electrodes: usize,
    pub repeats: usize,
    pub repeat_movies: u16,
    pub repeat_segments: u16,
    /// Photographs to make the movies from; None = procedural dead leaves.
    pub images_dir: Option<PathBuf>,
    /// zlib-compress the `.mat` files (MATLAB's `-v7` default).
    pub compress: bool,
    /// Replace an existing dataset in `out`.
    pub overwrite: bool,
    /// Worker threads; 0 = all cores.
    pub threads: usize,
    /// Show a progress bar (only ever drawn on a terminal).
    pub progress: bool,
    pub population: PopulationParams,
    /// Many arrays tiling the whole frame instead of the one array of pvc-1; absent = one
    /// array (the pvc-1 layout with `neurodata/ac1/` only).
    #[serde(default)]
    pub wide: Option<WideField>,
}

impl SimConfig {
    pub fn preset(preset: Preset, seed: u64) -> SimConfig {
        let base = SimConfig {
            seed,
            preset: preset.name().to_string(),
            movies: 4,
            segments: 30,
            // Two thirds of pvc-1's ~900 (20 s of each 30 s segment, 1.5 GB): the encoding
            // model is limited by how much it sees. With 150 frames per segment it reached
            // r 0.77 against the noise-free rates, with 600 0.87 (models/default/training).
            frames_per_segment: 600,
            latency_frames: 3,
            single_trial_files: 5,
            repeat_electrodes: 23,
            repeats: 10,
            repeat_movies: 2,
            repeat_segments: 10,
            images_dir: None,
            compress: true,
            overwrite: false,
            threads: 0,
            progress: true,
            population: PopulationParams::default(),
            wide: None,
        };
        match preset {
            Preset::Default => base,
            Preset::Small => SimConfig {
                movies: 2,
                segments: 3,
                frames_per_segment: 60,
                single_trial_files: 4,
                repeat_segments: 2,
                ..base
            },
            Preset::Wide => SimConfig {
                // Half the default's frames: sixteen arrays make every frame cost more to
                // simulate, to store and to train on.
                frames_per_segment: 300,
                repeat_electrodes: 100,
                wide: Some(WideField::default()),
                ..base
            },
        }
    }

    /// Checks every field before any work starts; the error names the field, what was
    /// expected and what was given.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field: &str, message: String| Err(SimError::Config { field: field.to_string(), message });
        if !(1..=1000).contains(&self.movies) {
            return bad("movies", format!("expected 1..=1000 (folder names have 3 digits), got {}", self.movies));
        }
        if !(1..=1000).contains(&self.segments) {
            return bad("segments", format!("expected 1..=1000 (folder names have 3 digits), got {}", self.segments));
        }
        if !(1..=100_000).contains(&self.frames_per_segment) {
            return bad("frames_per_segment", format!("expected 1..=100000, got {}", self.frames_per_segment));
        }
        if self.latency_frames > 30 {
            return bad("latency_frames", format!("expected 0..=30 frames (1 s), got {}", self.latency_frames));
        }
        if !(4..=20).contains(&self.single_trial_files) {
            return bad(
                "single_trial_files",
                format!("the files partition 100 electrodes into lists of 5–33 like pvc-1, so expected 4..=20 files, got {}", self.single_trial_files),
            );
        }
        if self.repeats == 1 || self.repeats > 100 {
            return bad("repeats", format!("expected 0 (no repeat file) or 2..=100, got {}", self.repeats));
        }
        if self.repeats > 0 {
            if !(1..=100).contains(&self.repeat_electrodes) {
                return bad("repeat_electrodes", format!("expected 1..=100, got {}", self.repeat_electrodes));
            }
            if !(1..=self.movies).contains(&self.repeat_movies) {
                return bad("repeat_movies", format!("expected 1..={} (the simulated movies), got {}", self.movies, self.repeat_movies));
            }
            if !(1..=self.segments).contains(&self.repeat_segments) {
                return bad("repeat_segments", format!("expected 1..={} (the simulated segments), got {}", self.segments, self.repeat_segments));
            }
        }
        if let Some(w) = &self.wide {
            w.validate().map_err(|(field, message)| SimError::Config { field: format!("wide.{field}"), message })?;
        }
        self.population
            .validate()
            .map_err(|(field, message)| SimError::Config { field: format!("population.{field}"), message })
    }

    /// The `neurodata/` sub-folders of the arrays, in order.
    pub fn array_subdirs(&self) -> Vec<String> {
        match &self.wide {
            None => vec![session::SUBDIR.to_string()],
            Some(w) => (0..w.count()).map(WideField::subdir).collect(),
        }
    }
}

/// What [`simulate`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimSummary {
    pub out: PathBuf,
    pub segments: usize,
    pub frames: usize,
    /// `.mat` recordings written.
    pub recordings: usize,
    /// All files written (frames, `nframes`, recordings, ground truth).
    pub files: usize,
    /// Threshold crossings in all recordings (spikes and noise).
    pub events: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Per-segment output of one array kept in memory until the recordings are written.
struct SegmentOutput {
    counts: Vec<f32>,
    /// (file index, condition index, repeat, events in the file's electrode order)
    trials: Vec<(usize, usize, usize, Vec<ElectrodeEvents>)>,
}

/// One array of the simulated population: its units, encoding model, recording plan and
/// the calibration's mean driven rates.
struct ArraySim {
    seed: u64,
    pop: Population,
    model: response::Model,
    plan: SessionPlan,
    driven_hz: Vec<f64>,
}

/// Simulates the dataset described by `cfg` into `out` (see the module docs). Refuses to
/// replace an existing dataset unless `cfg.overwrite`.
pub fn simulate(out: &Path, cfg: &SimConfig) -> Result<SimSummary, SimError> {
    let started = Instant::now();
    cfg.validate()?;
    let data_dir = out.join(DATA_DIR_NAME);
    let truth_dir = out.join(truth::TRUTH_DIR);
    let complete = truth_dir.join(truth::COMPLETE_MARKER).is_file();
    if !cfg.overwrite {
        if complete {
            return Err(SimError::AlreadyExists { path: out.to_owned() });
        }
        for p in [&data_dir, &truth_dir] {
            if p.exists() {
                return Err(SimError::ForeignData { path: p.clone() });
            }
        }
    }
    let source = match &cfg.images_dir {
        Some(dir) => StimulusSource::Photos(Arc::new(PhotoLibrary::open(dir)?)),
        None => StimulusSource::DeadLeaves,
    };

    // Population, array by array, calibrated on its own dead-leaves movies.
    let calib: Vec<Vec<Vec<f32>>> = stimuli::calibration_scenes(cfg.seed, cfg.population.calibration_scenes, cfg.population.calibration_scene_frames)
        .iter()
        .map(|scene| scene.iter().map(stimuli::luminance).collect())
        .collect();
    let spec = PlanSpec {
        movies: cfg.movies,
        segments: cfg.segments,
        frames_per_segment: cfg.frames_per_segment,
        single_trial_files: cfg.single_trial_files,
        repeat_electrodes: cfg.repeat_electrodes,
        repeats: cfg.repeats,
        repeat_movies: cfg.repeat_movies,
        repeat_segments: cfg.repeat_segments,
    };
    let arrays: Vec<ArraySim> = cfg
        .array_subdirs()
        .into_iter()
        .enumerate()
        .map(|(k, subdir)| {
            let (seed, mut pop) = match &cfg.wide {
                None => (cfg.seed, Population::generate(cfg.seed, &cfg.population)),
                Some(w) => (rng::array_seed(cfg.seed, k), w.population(cfg.seed, &cfg.population, k)),
            };
            let model = response::Model::new(&pop, cfg.latency_frames as usize, FRAME_WIDTH as usize, FRAME_HEIGHT as usize);
            let driven_hz = response::calibrate(&mut pop, &model, &calib);
            let plan = session::plan(seed, &pop, &spec, &subdir);
            ArraySim { seed, pop, model, plan, driven_hz }
        })
        .collect();
    drop(calib);

    std::fs::create_dir_all(out).map_err(io("creating", out))?;
    let staging = out.join(format!(".partial-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io("removing the stale staging folder", &staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io("creating", &staging))?;
    let result = build_in(&staging, cfg, &source, &arrays);
    let (events, recordings) = match result {
        Ok(v) => v,
        Err(e) => {
            // Best effort: the staging folder is ours and useless after a failure.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let (files, bytes) = tree_size(&staging)?;

    // Move into place: old ground truth (and its marker) goes first, new one comes last.
    if cfg.overwrite {
        for p in [&truth_dir, &data_dir] {
            if p.exists() {
                std::fs::remove_dir_all(p).map_err(io("removing the old dataset", p))?;
            }
        }
    }
    std::fs::rename(staging.join(DATA_DIR_NAME), &data_dir).map_err(io("moving the dataset into", &data_dir))?;
    std::fs::rename(staging.join(truth::TRUTH_DIR), &truth_dir).map_err(io("moving the ground truth into", &truth_dir))?;
    std::fs::remove_dir_all(&staging).map_err(io("removing the staging folder", &staging))?;

    let n_seg = cfg.movies as usize * cfg.segments as usize;
    Ok(SimSummary {
        out: out.to_owned(),
        segments: n_seg,
        frames: n_seg * cfg.frames_per_segment,
        recordings,
        files,
        events,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes the whole dataset into `staging`; returns (events, recordings).
fn build_in(staging: &Path, cfg: &SimConfig, source: &StimulusSource, arrays: &[ArraySim]) -> Result<(u64, usize), SimError> {
    let data_root = staging.join(DATA_DIR_NAME);
    let segments: Vec<(u16, u16)> = (0..cfg.movies).flat_map(|m| (0..cfg.segments).map(move |s| (m, s))).collect();
    let outputs: Mutex<Vec<Option<Vec<SegmentOutput>>>> = Mutex::new((0..segments.len()).map(|_| None).collect());
    let first_error: Mutex<Option<SimError>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let bar = progress_bar(cfg.progress, segments.len() as u64, "simulating V1 [{bar:30}] {pos}/{len} segments, {elapsed} (eta {eta})", "");
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        cfg.threads
    }
    .min(segments.len())
    .max(1);

    let worker = || {
        while !stop.load(Ordering::Relaxed) {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(movie, segment)) = segments.get(k) else { break };
            match simulate_segment(&data_root, cfg, source, arrays, movie, segment, k) {
                Ok(o) => {
                    if let Ok(mut slots) = outputs.lock() {
                        slots[k] = Some(o);
                    }
                    bar.inc(1);
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(e);
                    }
                }
            }
        }
    };
    let panicked = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles.into_iter().map(|h| h.join()).filter(|r| r.is_err()).count()
    });
    bar.finish_and_clear();
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    if panicked > 0 {
        return Err(SimError::Worker { message: format!("{panicked} worker thread(s) panicked") });
    }
    let outputs = outputs.into_inner().map_err(|_| SimError::Worker { message: "segment results are poisoned".into() })?;

    // Gather trials per (array, file, condition, repeat) and the truth rates per array and segment.
    let mut trials: HashMap<(usize, usize, usize, usize), Vec<ElectrodeEvents>> = HashMap::new();
    let mut rates: Vec<BTreeMap<(u16, u16), Vec<f32>>> = vec![BTreeMap::new(); arrays.len()];
    for (k, o) in outputs.into_iter().enumerate() {
        let o = o.ok_or_else(|| SimError::Worker { message: format!("segment {:?} produced no result", segments[k]) })?;
        for (a, o) in o.into_iter().enumerate() {
            rates[a].insert(segments[k], o.counts);
            for (f, c, r, ev) in o.trials {
                trials.insert((a, f, c, r), ev);
            }
        }
    }
    let flat = vec![1f32; cfg.frames_per_segment];
    let header = mat_header_text(cfg.seed);
    let mut events = 0u64;
    let mut recordings = 0;
    for (a, arr) in arrays.iter().enumerate() {
        let (pop, plan) = (&arr.pop, &arr.plan);
        // The non-movie condition: spontaneous activity for one segment's duration.
        let spont: Vec<Vec<f32>> = vec![pop.units.iter().map(|u| u.spontaneous_hz as f32).collect(); cfg.frames_per_segment];
        for (fi, f) in plan.files.iter().enumerate() {
            for (ci, c) in f.conditions.iter().enumerate() {
                if let PlannedCondition::Rseed { .. } = c {
                    for r in 0..f.repeats {
                        trials.insert((a, fi, ci, r), spikes::trial_events(pop, &spont, &flat, &f.electrodes, arr.seed, f.key(*c, r)));
                    }
                }
            }
        }

        // Recordings, one file at a time.
        for (fi, f) in plan.files.iter().enumerate() {
            let when: HashMap<(usize, usize), (f64, f64)> =
                f.trials.iter().map(|t| ((t.condition, t.repeat), (t.tzero, t.time_tag as f64))).collect();
            let mut conditions = Vec::with_capacity(f.conditions.len());
            for (ci, c) in f.conditions.iter().enumerate() {
                let kind = match *c {
                    PlannedCondition::Movie { movie, segment } => ConditionKind::Movie { movie, segment },
                    PlannedCondition::Rseed { value } => ConditionKind::Other {
                        symbols: session::RSEED_SYMBOLS.iter().map(|s| s.to_string()).collect(),
                        values: vec![value as f64, 100.0],
                    },
                };
                let mut repeats = Vec::with_capacity(f.repeats);
                for r in 0..f.repeats {
                    let electrodes = trials.remove(&(a, fi, ci, r)).ok_or_else(|| SimError::Worker {
                        message: format!("{}: condition {} repeat {r} was never simulated", f.name, ci + 1),
                    })?;
                    events += electrodes.iter().map(|e| e.times.len() as u64).sum::<u64>();
                    let (tzero, time_tag) = when.get(&(ci, r)).copied().unwrap_or((0.0, 0.0));
                    repeats.push(Trial { tzero, time_tag, electrodes });
                }
                conditions.push(Condition { kind, condition: (ci + 1) as f64, repeats });
            }
            let rec = Recording { subdir: plan.subdir.clone(), name: f.name.clone(), electrodes: f.electrodes.clone(), conditions };
            write_recording_deterministic(&data_root, &rec, cfg.compress, &header)?;
            recordings += 1;
        }
    }

    // Ground truth; COMPLETE is the last file written. One array: `ground_truth/` holds its
    // truth; several: one sub-folder per array, named like its `neurodata/` folder, and
    // `arrays.json` listing them.
    let truth_dir = staging.join(truth::TRUTH_DIR);
    std::fs::create_dir_all(&truth_dir).map_err(io("creating", &truth_dir))?;
    let meta = truth::TruthMeta {
        seed: cfg.seed,
        preset: cfg.preset.clone(),
        stimulus: if cfg.images_dir.is_some() { "photos" } else { "dead_leaves" }.to_string(),
        movies: cfg.movies,
        segments: cfg.segments,
        frames_per_segment: cfg.frames_per_segment,
        latency_frames: cfg.latency_frames,
        frame_size: [FRAME_WIDTH, FRAME_HEIGHT],
        frame_rate_hz: FRAME_RATE_HZ,
    };
    for (arr, rates) in arrays.iter().zip(&rates) {
        let dir = if cfg.wide.is_some() { truth_dir.join(&arr.plan.subdir) } else { truth_dir.clone() };
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let rates_path = dir.join(truth::RATES_FILE);
        let bytes = truth::rates_bytes(rates, arr.pop.electrodes.len()).map_err(|message| SimError::Write { what: rates_path.display().to_string(), message })?;
        write_atomically(&rates_path, &bytes, true).map_err(io("writing", &rates_path))?;
        let truth = Truth::build(&arr.pop, &arr.driven_hz, &arr.plan, &meta);
        let json_path = dir.join(truth::TRUTH_JSON);
        let json = serde_json::to_vec_pretty(&truth).map_err(|e| SimError::Write { what: json_path.display().to_string(), message: e.to_string() })?;
        write_atomically(&json_path, &json, true).map_err(io("writing", &json_path))?;
    }
    if let Some(w) = &cfg.wide {
        let layout = truth::ArrayLayout::new(cfg, w, arrays.iter().map(|a| (&a.pop, a.plan.subdir.as_str())));
        let path = truth_dir.join(truth::ARRAYS_JSON);
        let json = serde_json::to_vec_pretty(&layout).map_err(|e| SimError::Write { what: path.display().to_string(), message: e.to_string() })?;
        write_atomically(&path, &json, true).map_err(io("writing", &path))?;
    }
    let marker = truth_dir.join(truth::COMPLETE_MARKER);
    write_atomically(&marker, format!("seed {}\n", cfg.seed).as_bytes(), true).map_err(io("writing", &marker))?;
    Ok((events, recordings))
}

/// One segment: frames (written once), then per array its rates and every trial of every
/// file that shows the segment.
fn simulate_segment(
    data_root: &Path,
    cfg: &SimConfig,
    source: &StimulusSource,
    arrays: &[ArraySim],
    movie: u16,
    segment: u16,
    global_index: usize,
) -> Result<Vec<SegmentOutput>, SimError> {
    let frames = source.segment(cfg.seed, movie, segment, global_index, cfg.frames_per_segment)?;
    write_segment_frames(data_root, movie, segment, &frames)
        .map_err(|e| SimError::Write { what: format!("frames of movie {movie} segment {segment}"), message: e.to_string() })?;
    let lum: Vec<Vec<f32>> = frames.iter().map(stimuli::luminance).collect();
    drop(frames);
    let cond = PlannedCondition::Movie { movie, segment };
    let mut out = Vec::with_capacity(arrays.len());
    for arr in arrays {
        let (pop, model) = (&arr.pop, &arr.model);
        let drive = model.drive(&lum);
        let mut rates = response::unit_rates(pop, &drive);
        response::add_onset_transient(pop, &mut rates, model.latency());
        let noise_drive = spikes::noise_drive(pop, &drive);
        let counts = response::electrode_counts(pop, &rates, FRAME_RATE_HZ);
        let mut trials = Vec::new();
        for (fi, f) in arr.plan.files.iter().enumerate() {
            let Some(ci) = f.conditions.iter().position(|c| *c == cond) else { continue };
            for r in 0..f.repeats {
                trials.push((fi, ci, r, spikes::trial_events(pop, &rates, &noise_drive, &f.electrodes, arr.seed, f.key(cond, r))));
            }
        }
        out.push(SegmentOutput { counts, trials });
    }
    Ok(out)
}

/// The 116-byte text of a MAT header. MATLAB puts the creation time there; the
/// simulator puts the seed instead, so that the same seed gives the same bytes. Readers
/// treat the text as free-form (only version and endianness are checked).
fn mat_header_text(seed: u64) -> String {
    format!("MATLAB 5.0 MAT-file, Platform: simulated V1, Created on: seed {seed}")
}

/// `pvc1::write_recording` with a fixed header text (see [`mat_header_text`]).
fn write_recording_deterministic(data_root: &Path, rec: &Recording, compress: bool, header: &str) -> Result<PathBuf, SimError> {
    let what = || format!("recording {}", rec.name);
    let pep = recording_to_mat(rec).map_err(|e| SimError::Write { what: what(), message: e.to_string() })?;
    let compression = if compress { Compression::Zlib } else { Compression::None };
    let mut bytes = write_mat_bytes(&[Variable::new(PEPANA, pep)], compression)
        .map_err(|e| SimError::Write { what: what(), message: e.to_string() })?;
    if bytes.len() < 116 {
        return Err(SimError::Write { what: what(), message: format!("MAT writer returned {} bytes, shorter than a header", bytes.len()) });
    }
    let mut text = [b' '; 116];
    let h = header.as_bytes();
    text[..h.len().min(116)].copy_from_slice(&h[..h.len().min(116)]);
    bytes[..116].copy_from_slice(&text);
    let dir = data_root.join(NEURODATA_DIR).join(&rec.subdir);
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let path = dir.join(format!("{}.mat", rec.name));
    write_atomically(&path, &bytes, true).map_err(io("writing", &path))?;
    Ok(path)
}

/// Number of files and bytes under `dir`.
fn tree_size(dir: &Path) -> Result<(usize, u64), SimError> {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io("listing", &d))? {
            let entry = entry.map_err(io("listing", &d))?;
            let meta = entry.metadata().map_err(io("reading metadata of", entry.path()))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}
