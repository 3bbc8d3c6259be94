//! Neural data for the V1 system: everything between files on disk and training-ready
//! arrays. It knows nothing of networks or services.
//!
//! # Layout
//! - [`mat`]: a focused reader and writer for MATLAB Level-5 MAT files.
//! - [`pvc1`]: the CRCNS pvc-1 tree (`crcns-ringach-data/`): in-memory model, reader, writer.
//! - [`sim`]: a simulated macaque V1 that writes a complete dataset in the pvc-1 layout,
//!   with its noise-free ground truth beside it.
//! - [`build`]: turns a pvc-1 tree into training-ready pairs (frame crop, response) and
//!   writes them as a compact cache ([`cache`]).
//! - [`rf`]: receptive-field footprints and latency from spike-triggered averages.
//! - [`progress`]: the progress bars of the long batch jobs (here and in training).
//! - [`stats`]: how much a tree looks like real V1 (reliability, rates, bursts, latency,
//!   luminance signal, movie statistics), beside the real pvc-1 values.

pub mod build;
pub mod cache;
pub mod error;
pub mod mat;
pub mod progress;
pub mod pvc1;
pub mod rf;
pub mod sim;
pub mod stats;

pub use build::BuildConfig;
pub use error::DataError;
