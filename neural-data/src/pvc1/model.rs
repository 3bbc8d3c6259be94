//! The in-memory form of a pvc-1 tree: what the reader returns and the writer takes.
//!
//! It mirrors the `pepANA` struct of the real files (see `docs/pvc1-format.md`) with the
//! MATLAB nesting flattened into Rust types. Field meanings:
//!
//! ```text
//! pepANA.elec_list            -> Recording::electrodes
//! pepANA.listOfResults{c}     -> Recording::conditions[c]
//!   .symbols/.values          -> Condition::kind (movie/segment, or another condition)
//!   .condition                -> Condition::condition
//!   .repeat{r}                -> Condition::repeats[r]
//!     .tzero, .timeTag        -> Trial::tzero, Trial::time_tag
//!     .data{e}{1}, .data{e}{2}-> Trial::electrodes[e].times, .snippets
//! ```
//!
//! The reader finds these fields by name, whatever their order and whatever else is in
//! the struct; the writer puts them in the real files' positions (see
//! [`super::writer`]).

/// Samples per waveform snippet: 1.6 ms at 30 kHz.
pub const SNIPPET_LEN: usize = 48;
/// Sampling rate of the event times and snippets (Hz).
pub const SAMPLE_RATE_HZ: f64 = 30_000.0;
/// Movie frame rate (Hz): frame k is on screen during [k/30, (k+1)/30) s.
pub const FRAME_RATE_HZ: f64 = 30.0;
/// Frame size of the pvc-1 movies.
pub const FRAME_WIDTH: u32 = 320;
pub const FRAME_HEIGHT: u32 = 240;

/// One `neurodata/<subdir>/<name>.mat` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Sub-folder of `neurodata/`, e.g. `ac1`.
    pub subdir: String,
    /// File stem, e.g. `ac1_u004_000`.
    pub name: String,
    /// Electrode ids on the 10x10 array (1..=100), in the order of every `data` cell.
    pub electrodes: Vec<u16>,
    pub conditions: Vec<Condition>,
}

impl Recording {
    /// The movie conditions, as (movie, segment, condition); other conditions are skipped.
    pub fn movie_conditions(&self) -> impl Iterator<Item = (u16, u16, &Condition)> {
        self.conditions.iter().filter_map(|c| match c.kind {
            ConditionKind::Movie { movie, segment } => Some((movie, segment, c)),
            ConditionKind::Other { .. } => None,
        })
    }
}

/// What was shown in one condition.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionKind {
    /// A natural-movie segment: `symbols = {'movie_id','segment_id'}`, values 0-based.
    Movie { movie: u16, segment: u16 },
    /// Anything else (e.g. `symbols{1} = 'rseed'`): kept so a writer can reproduce it,
    /// skipped by the dataset builder.
    Other { symbols: Vec<String>, values: Vec<f64> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub kind: ConditionKind,
    /// The `condition` field (numeric id); 0.0 when the file has none.
    pub condition: f64,
    /// One entry per repeat (`noRepeats` of them).
    pub repeats: Vec<Trial>,
}

/// One presentation of a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Trial start on the session clock (s).
    pub tzero: f64,
    /// 0-based trial number.
    pub time_tag: f64,
    /// One entry per electrode, in `Recording::electrodes` order.
    pub electrodes: Vec<ElectrodeEvents>,
}

/// Threshold crossings of one electrode in one trial.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ElectrodeEvents {
    /// Crossing times in seconds from segment onset, ascending, multiples of 1/30000.
    pub times: Vec<f64>,
    /// One snippet per crossing (48 samples at 30 kHz, int8 units).
    pub snippets: Vec<[i8; SNIPPET_LEN]>,
}

/// Position of an electrode id (1..=100) on the 10x10 array as (row, col), row-major.
/// pvc-1 publishes no array map; this numbering is the convention of the whole system.
pub fn electrode_position(id: u16) -> Option<(u8, u8)> {
    if (1..=100).contains(&id) {
        let i = id - 1;
        Some(((i / 10) as u8, (i % 10) as u8))
    } else {
        None
    }
}
