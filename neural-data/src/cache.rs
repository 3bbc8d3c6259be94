//! The training-ready dataset: (frame crop, response) pairs with their splits, written
//! once as a safetensors file so that training never decodes JPEGs twice.
//!
//! Tensors (all row-major):
//! - `crops`      u8  [N, S, S]     grayscale crop of the RF footprint, resized to S
//! - `full`       u8  [N, FH, FW]   the whole (de-interlaced) frame, downsampled
//! - `responses`  f32 [N, L, C]     spike counts in the L lag bins after each frame
//! - `truth`      f32 [N, L, C]     noise-free expected counts (simulated data only)
//! - `index`      u16 [N, 3]        (movie, segment, frame) of each sample
//! - `split`      u8  [N]           0 train, 1 validation, 2 test
//! - `repeats`    f32 [R, M, L, C]  repeated trials of M test samples: counts in the L lag
//!   bins (NaN where the repeat file lacks a channel)
//! - `repeat_samples` u32 [M]       sample index of each repeated sample
//!
//! Everything else (channels, lags, crop window, estimates, the build config) is JSON in
//! the file's metadata under the key `meta`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::build::BuildConfig;
use crate::error::{io_err, DataError};
use crate::rf::RfEstimate;

/// The split a sample belongs to. Whole (movie, segment) pairs go to one split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train = 0,
    Validation = 1,
    Test = 2,
}

impl Split {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Split::Train),
            1 => Some(Split::Validation),
            2 => Some(Split::Test),
            _ => None,
        }
    }
}

/// One recording channel of the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Recording file stem (e.g. `ac1_u004_000`).
    pub file: String,
    /// Sub-folder of `neurodata/` (e.g. `ac1`): channels of one sub-folder share an array.
    pub subdir: String,
    /// Electrode id (1..=100).
    pub electrode: u16,
}

/// Everything about a cache that is not a big array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheMeta {
    /// Format version of this cache layout.
    pub version: u32,
    /// The dataset root the cache was built from.
    pub source: PathBuf,
    /// Fingerprint of the source tree (file names and sizes) and build config.
    pub fingerprint: String,
    pub config: BuildConfig,
    pub channels: Vec<Channel>,
    pub lags: Vec<u32>,
    pub image_size: usize,
    /// Crop window in 320x240 frame pixels [x, y, width, height].
    pub crop_window: [u32; 4],
    /// Size [width, height] of the `full` frames.
    pub full_size: [u32; 2],
    pub rf: RfEstimate,
    /// Grid cell of the RF estimate, in frame pixels.
    pub rf_cell_px: u32,
    /// Planted values from the simulator's ground truth, when present.
    pub truth_latency_frames: Option<u32>,
    pub truth_peak_lag_frames: Option<u32>,
    /// (movie, segment) pairs of each split.
    pub segments: HashMap<String, Vec<[u16; 2]>>,
    /// What was skipped and why.
    pub warnings: Vec<String>,
}

/// The whole dataset in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub meta: CacheMeta,
    pub n: usize,
    pub crops: Vec<u8>,
    pub full: Vec<u8>,
    pub responses: Vec<f32>,
    pub truth: Option<Vec<f32>>,
    pub index: Vec<[u16; 3]>,
    pub split: Vec<Split>,
    pub n_repeats: usize,
    pub repeats: Vec<f32>,
    pub repeat_samples: Vec<u32>,
}

/// Version 2: repeats count with the single-trial channel's spike/noise threshold.
/// Version 3: repeats keep their lag bins (repeat-averaged responses for the decoders).
pub const CACHE_VERSION: u32 = 3;

impl Dataset {
    pub fn n_channels(&self) -> usize {
        self.meta.channels.len()
    }
    pub fn n_lags(&self) -> usize {
        self.meta.lags.len()
    }
    /// Values per response: lags x channels.
    pub fn response_len(&self) -> usize {
        self.n_lags() * self.n_channels()
    }
    pub fn crop_len(&self) -> usize {
        self.meta.image_size * self.meta.image_size
    }
    pub fn full_len(&self) -> usize {
        (self.meta.full_size[0] * self.meta.full_size[1]) as usize
    }
    /// Sample indices of one split, in order.
    pub fn indices(&self, split: Split) -> Vec<usize> {
        (0..self.n).filter(|&i| self.split[i] == split).collect()
    }
    pub fn crop(&self, i: usize) -> &[u8] {
        &self.crops[i * self.crop_len()..][..self.crop_len()]
    }
    pub fn full_frame(&self, i: usize) -> &[u8] {
        &self.full[i * self.full_len()..][..self.full_len()]
    }
    pub fn response(&self, i: usize) -> &[f32] {
        &self.responses[i * self.response_len()..][..self.response_len()]
    }
    pub fn truth_response(&self, i: usize) -> Option<&[f32]> {
        let n = self.response_len();
        self.truth.as_ref().map(|t| &t[i * n..][..n])
    }
    /// For every sample and every frame offset, the sample showing that frame of the same
    /// segment: `[n][offsets.len()]`, row-major. Where the segment has no such sample (its
    /// first frames were dropped as the onset transient, or its last ones lack the later
    /// response bins) the nearest frame towards the sample's own is used, as if the
    /// picture had been held. This is how a model sees a short clip around each frame.
    pub fn clip_table(&self, offsets: &[i32]) -> Vec<u32> {
        let by_frame: HashMap<[u16; 3], u32> = self.index.iter().enumerate().map(|(i, k)| (*k, i as u32)).collect();
        let mut out = Vec::with_capacity(self.n * offsets.len());
        for (i, &[m, s, f]) in self.index.iter().enumerate() {
            for &o in offsets {
                let mut found = i as u32;
                // Walk from the requested offset back towards 0 until a frame exists.
                let mut k = o;
                while k != 0 {
                    let frame = f as i64 + k as i64;
                    if let Ok(frame) = u16::try_from(frame) {
                        if let Some(&j) = by_frame.get(&[m, s, frame]) {
                            found = j;
                            break;
                        }
                    }
                    k -= k.signum();
                }
                out.push(found);
            }
        }
        out
    }
    /// Repeat r of repeated sample m: per channel, the count summed over the lag bins
    /// (NaN for channels the repeat file did not record).
    pub fn repeat_response(&self, r: usize, m: usize) -> Vec<f32> {
        let (l, c) = (self.n_lags(), self.n_channels());
        let lagged = self.repeat_response_lagged(r, m);
        (0..c).map(|ch| (0..l).map(|k| lagged[k * c + ch]).sum()).collect()
    }

    /// Repeat r of repeated sample m in the layout of [`Dataset::response`]: [L, C].
    pub fn repeat_response_lagged(&self, r: usize, m: usize) -> &[f32] {
        let lc = self.n_lags() * self.n_channels();
        &self.repeats[(r * self.repeat_samples.len() + m) * lc..][..lc]
    }

    /// Writes the cache atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let s = self.meta.image_size;
        let (fw, fh) = (self.meta.full_size[0] as usize, self.meta.full_size[1] as usize);
        let (l, c) = (self.n_lags(), self.n_channels());
        let m = self.repeat_samples.len();
        let index_bytes: Vec<u8> = self.index.iter().flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes())).collect();
        let split_bytes: Vec<u8> = self.split.iter().map(|s| *s as u8).collect();
        let responses = f32_bytes(&self.responses);
        let truth = self.truth.as_ref().map(|t| f32_bytes(t));
        let repeats = f32_bytes(&self.repeats);
        let repeat_samples: Vec<u8> = self.repeat_samples.iter().flat_map(|x| x.to_le_bytes()).collect();
        let bad = |e: safetensors::SafeTensorError| DataError::Cache { path: path.to_owned(), message: e.to_string() };
        let mut tensors: Vec<(&str, TensorView<'_>)> = vec![
            ("crops", TensorView::new(Dtype::U8, vec![self.n, s, s], &self.crops).map_err(bad)?),
            ("full", TensorView::new(Dtype::U8, vec![self.n, fh, fw], &self.full).map_err(bad)?),
            ("responses", TensorView::new(Dtype::F32, vec![self.n, l, c], &responses).map_err(bad)?),
            ("index", TensorView::new(Dtype::U16, vec![self.n, 3], &index_bytes).map_err(bad)?),
            ("split", TensorView::new(Dtype::U8, vec![self.n], &split_bytes).map_err(bad)?),
            ("repeats", TensorView::new(Dtype::F32, vec![self.n_repeats, m, l, c], &repeats).map_err(bad)?),
            ("repeat_samples", TensorView::new(Dtype::U32, vec![m], &repeat_samples).map_err(bad)?),
        ];
        if let Some(t) = &truth {
            tensors.push(("truth", TensorView::new(Dtype::F32, vec![self.n, l, c], t).map_err(bad)?));
        }
        let meta = serde_json::to_string(&self.meta).map_err(|e| DataError::Cache {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let metadata: HashMap<String, String> = [("meta".to_string(), meta)].into_iter().collect();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        safetensors::serialize_to_file(tensors, Some(metadata), &tmp).map_err(bad)?;
        // Readable by everyone, like files written with the default umask: services often
        // run as another user (e.g. in a container) than the one who built the cache.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
                .map_err(io_err(format!("setting permissions of {}", tmp.display())))?;
        }
        std::fs::rename(&tmp, path).map_err(io_err(format!("renaming {} into place", tmp.display())))?;
        Ok(())
    }

    /// Reads a cache written by [`Dataset::save`], checking every shape.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(io_err(format!("reading {}", path.display())))?;
        let err = |message: String| DataError::Cache { path: path.to_owned(), message };
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| err(e.to_string()))?;
        let meta_json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("meta"))
            .ok_or_else(|| err("no `meta` entry in the metadata".into()))?;
        let meta: CacheMeta = serde_json::from_str(meta_json).map_err(|e| err(format!("bad meta: {e}")))?;
        if meta.version != CACHE_VERSION {
            return Err(err(format!("cache version {} but this program reads {CACHE_VERSION}", meta.version)));
        }
        let st = SafeTensors::deserialize(&bytes).map_err(|e| err(e.to_string()))?;
        let get = |name: &str, dtype: Dtype| -> Result<(Vec<usize>, &[u8]), DataError> {
            let t = st.tensor(name).map_err(|e| err(format!("tensor `{name}`: {e}")))?;
            if t.dtype() != dtype {
                return Err(err(format!("tensor `{name}` is {:?}, expected {dtype:?}", t.dtype())));
            }
            Ok((t.shape().to_vec(), t.data()))
        };
        let (shape, crops) = get("crops", Dtype::U8)?;
        let n = shape.first().copied().unwrap_or(0);
        let s = meta.image_size;
        let (l, c) = (meta.lags.len(), meta.channels.len());
        let expect = |name: &str, got: &[usize], want: &[usize]| -> Result<(), DataError> {
            if got != want {
                return Err(err(format!("tensor `{name}` has shape {got:?}, expected {want:?}")));
            }
            Ok(())
        };
        expect("crops", &shape, &[n, s, s])?;
        let (shape, full) = get("full", Dtype::U8)?;
        expect("full", &shape, &[n, meta.full_size[1] as usize, meta.full_size[0] as usize])?;
        let (shape, responses) = get("responses", Dtype::F32)?;
        expect("responses", &shape, &[n, l, c])?;
        let (shape, index) = get("index", Dtype::U16)?;
        expect("index", &shape, &[n, 3])?;
        let (shape, split) = get("split", Dtype::U8)?;
        expect("split", &shape, &[n])?;
        let (rshape, repeats) = get("repeats", Dtype::F32)?;
        let (mshape, repeat_samples) = get("repeat_samples", Dtype::U32)?;
        let m = mshape.first().copied().unwrap_or(0);
        let n_repeats = rshape.first().copied().unwrap_or(0);
        expect("repeats", &rshape, &[n_repeats, m, l, c])?;
        let truth = match st.tensor("truth") {
            Ok(_) => {
                let (shape, t) = get("truth", Dtype::F32)?;
                expect("truth", &shape, &[n, l, c])?;
                Some(f32_from_bytes(t))
            }
            Err(_) => None,
        };
        let split = split
            .iter()
            .map(|v| Split::from_u8(*v).ok_or_else(|| err(format!("split value {v} is not 0, 1 or 2"))))
            .collect::<Result<Vec<_>, _>>()?;
        let index = index
            .chunks_exact(6)
            .map(|ch| {
                [
                    u16::from_le_bytes([ch[0], ch[1]]),
                    u16::from_le_bytes([ch[2], ch[3]]),
                    u16::from_le_bytes([ch[4], ch[5]]),
                ]
            })
            .collect();
        let repeat_samples: Vec<u32> = repeat_samples
            .chunks_exact(4)
            .map(|ch| u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]))
            .collect();
        if repeat_samples.iter().any(|&i| i as usize >= n) {
            return Err(err("repeat_samples refers to a sample past the end".into()));
        }
        Ok(Self {
            meta,
            n,
            crops: crops.to_vec(),
            full: full.to_vec(),
            responses: f32_from_bytes(responses),
            truth,
            index,
            split,
            n_repeats,
            repeats: f32_from_bytes(repeats),
            repeat_samples,
        })
    }
}

/// The samples of one split, read from a cache file without the rest of it: what a
/// service that replays the test segments needs (see [`Dataset::load_split`]).
#[derive(Debug, Clone)]
pub struct SplitSamples {
    pub meta: CacheMeta,
    /// (movie, segment, frame) of each sample, in file order.
    pub index: Vec<[u16; 3]>,
    /// Crops, `image_size`² bytes each.
    pub crops: Vec<u8>,
    /// Responses, lags x channels each.
    pub responses: Vec<f32>,
}

/// Where one tensor's bytes lie in a safetensors file.
#[derive(Debug, Deserialize)]
struct TensorSpan {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// A cache file's header: its metadata and where each tensor lies, read with the file's
/// data left on disk. Hand-written because the safetensors crate parses a header only
/// from the whole file in memory, which for a full cache is over a gigabyte.
struct CacheHeader {
    meta: CacheMeta,
    tensors: HashMap<String, TensorSpan>,
    /// Offset of the data section in the file.
    data_start: u64,
}

/// Largest header accepted (the crate's own bound).
const MAX_HEADER_BYTES: u64 = 100_000_000;

impl CacheHeader {
    fn read(file: &mut std::fs::File, path: &Path) -> Result<Self, DataError> {
        use std::io::Read;
        let err = |message: String| DataError::Cache { path: path.to_owned(), message };
        let file_len = file.metadata().map_err(io_err(format!("reading {}", path.display())))?.len();
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|_| err("the file is too short to be a cache (no header)".into()))?;
        let n = u64::from_le_bytes(len);
        if n > MAX_HEADER_BYTES || 8 + n > file_len {
            return Err(err(format!("the header claims {n} bytes in a file of {file_len}; the file is damaged, rebuild it")));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header).map_err(io_err(format!("reading {}", path.display())))?;
        let mut entries: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| err(format!("unreadable header: {e}")))?;
        let meta_json = entries
            .remove("__metadata__")
            .and_then(|m| m.get("meta").and_then(|v| v.as_str()).map(str::to_owned))
            .ok_or_else(|| err("no `meta` entry in the metadata".into()))?;
        let meta: CacheMeta = serde_json::from_str(&meta_json).map_err(|e| err(format!("bad meta: {e}")))?;
        if meta.version != CACHE_VERSION {
            return Err(err(format!("cache version {} but this program reads {CACHE_VERSION}", meta.version)));
        }
        let data_start = 8 + n;
        let mut tensors = HashMap::new();
        for (name, value) in entries {
            let span: TensorSpan = serde_json::from_value(value).map_err(|e| err(format!("tensor `{name}`: {e}")))?;
            let [begin, end] = span.data_offsets;
            if begin > end || data_start + end > file_len {
                return Err(err(format!("tensor `{name}` lies outside the file; the file is damaged, rebuild it")));
            }
            tensors.insert(name, span);
        }
        Ok(Self { meta, tensors, data_start })
    }

    /// The span of tensor `name`, checked to be `dtype` ("U8", "F32", …) of `shape`.
    fn span(&self, name: &str, dtype: &str, shape: &[usize], path: &Path) -> Result<&TensorSpan, DataError> {
        let err = |message: String| DataError::Cache { path: path.to_owned(), message };
        let span = self.tensors.get(name).ok_or_else(|| err(format!("no tensor `{name}`")))?;
        if span.dtype != dtype {
            return Err(err(format!("tensor `{name}` is {}, expected {dtype}", span.dtype)));
        }
        if span.shape != shape {
            return Err(err(format!("tensor `{name}` has shape {:?}, expected {shape:?}", span.shape)));
        }
        let elem = match dtype {
            "U8" => 1,
            "U16" => 2,
            _ => 4,
        };
        let want = shape.iter().product::<usize>() as u64 * elem;
        if span.data_offsets[1] - span.data_offsets[0] != want {
            return Err(err(format!("tensor `{name}` holds {} bytes, its shape needs {want}", span.data_offsets[1] - span.data_offsets[0])));
        }
        Ok(span)
    }

    /// Rows `rows` (each `row_bytes` long) of `span`, one read per run of consecutive rows.
    fn read_rows(&self, file: &mut std::fs::File, span: &TensorSpan, row_bytes: usize, rows: &[usize], path: &Path) -> Result<Vec<u8>, DataError> {
        use std::io::{Read, Seek, SeekFrom};
        let mut out = vec![0u8; rows.len() * row_bytes];
        let mut i = 0;
        while i < rows.len() {
            let mut j = i + 1;
            while j < rows.len() && rows[j] == rows[j - 1] + 1 {
                j += 1;
            }
            let at = self.data_start + span.data_offsets[0] + (rows[i] * row_bytes) as u64;
            file.seek(SeekFrom::Start(at)).map_err(io_err(format!("reading {}", path.display())))?;
            file.read_exact(&mut out[i * row_bytes..j * row_bytes]).map_err(io_err(format!("reading {}", path.display())))?;
            i = j;
        }
        Ok(out)
    }
}

impl Dataset {
    /// The metadata of a cache file, without reading its arrays.
    pub fn read_meta(path: &Path) -> Result<CacheMeta, DataError> {
        let mut file = std::fs::File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        Ok(CacheHeader::read(&mut file, path)?.meta)
    }

    /// The crops, responses and index of the samples of `split` only, read a run of rows
    /// at a time: memory stays at what that split holds, whatever the size of the file.
    pub fn load_split(path: &Path, split: Split) -> Result<SplitSamples, DataError> {
        let mut file = std::fs::File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        let header = CacheHeader::read(&mut file, path)?;
        let err = |message: String| DataError::Cache { path: path.to_owned(), message };
        let split_span = header.tensors.get("split").ok_or_else(|| err("no tensor `split`".into()))?;
        let n = split_span.shape.first().copied().unwrap_or(0);
        let meta = &header.meta;
        let (s, l, c) = (meta.image_size, meta.lags.len(), meta.channels.len());
        let split_span = header.span("split", "U8", &[n], path)?;
        let crops = header.span("crops", "U8", &[n, s, s], path)?;
        let responses = header.span("responses", "F32", &[n, l, c], path)?;
        let index = header.span("index", "U16", &[n, 3], path)?;
        let all: Vec<usize> = (0..n).collect();
        let splits = header.read_rows(&mut file, split_span, 1, &all, path)?;
        let mut rows = Vec::new();
        for (i, v) in splits.iter().enumerate() {
            let v = Split::from_u8(*v).ok_or_else(|| err(format!("split value {v} is not 0, 1 or 2")))?;
            if v == split {
                rows.push(i);
            }
        }
        let index = header
            .read_rows(&mut file, index, 6, &rows, path)?
            .chunks_exact(6)
            .map(|ch| [u16::from_le_bytes([ch[0], ch[1]]), u16::from_le_bytes([ch[2], ch[3]]), u16::from_le_bytes([ch[4], ch[5]])])
            .collect();
        let crops = header.read_rows(&mut file, crops, s * s, &rows, path)?;
        let responses = f32_from_bytes(&header.read_rows(&mut file, responses, l * c * 4, &rows, path)?);
        Ok(SplitSamples { meta: header.meta, index, crops, responses })
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
