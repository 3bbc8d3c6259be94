//! Malformed input never panics: every truncation of small valid files, and random byte
//! flips (deterministic, seeded) of valid files, end in an error or a valid parse. The
//! pvc-1 layer is run on whatever parses, since it walks the same values; that is why
//! these tests of the `v1-mat` reader live here, above both.
//!
//! Crashes found by the fuzzer (`mat/fuzz`) become regression tests here, named after the
//! input's problem.

use neural_data::pvc1::{
    recording_from_mat, recording_to_mat, Condition, ConditionKind, ElectrodeEvents, Recording,
    Trial,
};
use v1_mat::{
    read_mat_bytes, read_mat_bytes_with, write_mat_bytes, Compression, MatError, ReadOptions,
    Variable,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small_recording() -> Recording {
    let ev = |n: usize| ElectrodeEvents {
        times: (0..n).map(|k| k as f64 / 30.0).collect(),
        snippets: (0..n).map(|k| [k as i8 - 40; 48]).collect(),
    };
    Recording {
        subdir: "ac1".into(),
        name: "x".into(),
        electrodes: vec![5, 17],
        conditions: vec![
            Condition {
                kind: ConditionKind::Movie {
                    movie: 0,
                    segment: 3,
                },
                condition: 1.0,
                repeats: vec![Trial {
                    tzero: 1.0,
                    time_tag: 0.0,
                    electrodes: vec![ev(2), ev(0)],
                }],
            },
            Condition {
                kind: ConditionKind::Other {
                    symbols: vec!["rseed".into()],
                    values: vec![3.0],
                },
                condition: 2.0,
                repeats: vec![Trial {
                    tzero: 2.0,
                    time_tag: 1.0,
                    electrodes: vec![ev(1), ev(1)],
                }],
            },
        ],
    }
}

fn valid_files() -> Vec<(&'static str, Vec<u8>)> {
    let pep = vec![Variable::new(
        "pepANA",
        recording_to_mat(&small_recording()).unwrap(),
    )];
    vec![
        (
            "plain.mat",
            write_mat_bytes(&pep, Compression::None).unwrap(),
        ),
        (
            "zlib.mat",
            write_mat_bytes(&pep, Compression::Zlib).unwrap(),
        ),
    ]
}

/// Parses, and when that works, runs the pvc-1 layer over the result too.
fn exercise(bytes: &[u8], name: &str) -> Result<usize, MatError> {
    let opts = ReadOptions {
        max_inflated_bytes: 16 << 20,
        ..ReadOptions::default()
    };
    let f = read_mat_bytes_with(bytes, name, &opts)?;
    let _ = recording_from_mat(&f, "ac1", "x");
    Ok(f.variables.len())
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error_or_a_shorter_valid_file() {
    for (name, bytes) in valid_files() {
        let full = read_mat_bytes(&bytes, name).unwrap();
        assert_eq!(
            recording_from_mat(&full, "ac1", "x").unwrap(),
            small_recording()
        );
        for len in 0..bytes.len() {
            match exercise(&bytes[..len], name) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(name), "{len}: {msg}");
                }
                // Cut exactly at the end of the header: a valid file with no variables.
                Ok(n) => assert_eq!((len, n), (128, 0), "prefix {len} of {name} parsed"),
            }
        }
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_f1195);
    let mut outcomes = [0usize; 2];
    for (name, bytes) in valid_files() {
        for _ in 0..20_000 {
            let mut b = bytes.clone();
            for _ in 0..rng.random_range(1..=4) {
                let i = rng.random_range(0..b.len());
                b[i] = match rng.random_range(0..3) {
                    0 => b[i] ^ (1 << rng.random_range(0..8)),
                    1 => rng.random(),
                    _ => [0x00, 0xff, 0x7f, 0x80][rng.random_range(0..4)],
                };
            }
            outcomes[exercise(&b, name).is_ok() as usize] += 1;
        }
    }
    // Both outcomes occur: the flips reach past the header into the element structure.
    assert!(outcomes[0] > 1000 && outcomes[1] > 1000, "{outcomes:?}");
}

#[test]
fn random_garbage_after_a_valid_header_never_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let header = &valid_files()[0].1[..128];
    for _ in 0..20_000 {
        let mut b = header.to_vec();
        let n = rng.random_range(0..200);
        // mostly small numbers, so that tags look plausible
        b.extend((0..n).map(|_| {
            if rng.random_bool(0.7) {
                rng.random_range(0..20)
            } else {
                rng.random()
            }
        }));
        let _ = exercise(&b, "garbage.mat");
    }
}

#[test]
fn a_zlib_bomb_is_stopped_at_the_inflate_limit() {
    use std::io::Write;
    // 64 MiB of zeros compress to ~64 kB
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        z.write_all(&zeros).unwrap();
    }
    let z = z.finish().unwrap();
    let mut bytes = valid_files()[0].1[..128].to_vec();
    bytes.extend_from_slice(&15u32.to_le_bytes());
    bytes.extend_from_slice(&(z.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&z);
    let opts = ReadOptions {
        max_inflated_bytes: 1 << 20,
        ..ReadOptions::default()
    };
    let err = read_mat_bytes_with(&bytes, "bomb.mat", &opts).unwrap_err();
    assert!(
        matches!(
            err,
            MatError::TooLarge {
                limit: 1_048_576,
                at: 128,
                ..
            }
        ),
        "{err}"
    );
}
