//! Feeds arbitrary bytes to the Level-5 MAT reader, and whatever parses to the pvc-1
//! `pepANA` parser, which walks the same values. Any panic, overflow or runaway
//! allocation is a bug: the reader must answer every input with a value or an error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use v1_mat::{read_mat_bytes_with, ReadOptions};

fuzz_target!(|data: &[u8]| {
    // A small inflate cap keeps each execution fast and within libFuzzer's RSS limit.
    let opts = ReadOptions {
        max_inflated_bytes: 16 << 20,
        ..ReadOptions::default()
    };
    if let Ok(file) = read_mat_bytes_with(data, "fuzz.mat", &opts) {
        let _ = neural_data::pvc1::recording_from_mat(&file, "fuzz", "fuzz");
    }
});
