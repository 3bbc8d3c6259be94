//! Neural data for the V1 system: everything between files on disk and training-ready
//! arrays. It knows nothing of networks or services.
//!
//! The MAT Level-5 format it reads and writes lives below it, in `v1-mat`; the simulated
//! V1 that writes pvc-1 trees lives above it, in `v1-sim`.
//!
//! # Layout
//! - [`pvc1`]: the CRCNS pvc-1 tree (`crcns-ringach-data/`): in-memory model, reader, writer.
//! - [`build`]: turns a pvc-1 tree into training-ready pairs (frame crop, response) and
//!   writes them as a compact cache ([`cache`]).
//! - [`rf`]: receptive-field footprints and latency from spike-triggered averages.
//! - [`progress`]: the progress bars of the long batch jobs (here, in the simulator and in
//!   training).
//! - [`stats`]: how much a tree looks like real V1 (reliability, rates, bursts, latency,
//!   luminance signal, movie statistics), beside the real pvc-1 values.
//! - [`truth_layout`]: where a simulated dataset keeps the ground truth of each array.

pub mod build;
pub mod cache;
pub mod error;
pub mod progress;
pub mod pvc1;
pub mod rf;
pub mod stats;
pub mod truth_layout;

pub use build::BuildConfig;
pub use error::DataError;
