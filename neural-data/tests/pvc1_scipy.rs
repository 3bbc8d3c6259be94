//! scipy's `loadmat` reads the `pepANA` struct we write as the pvc-1 format describes
//! (through the `pepana` mode of `v1-mat`'s `tests/scipy_check.py`).
//!
//! Without scipy this test prints "skipped: scipy not installed" and passes, unless the
//! environment variable `V1_REQUIRE_SCIPY` is set (CI sets it and installs scipy), in
//! which case it fails.

#[path = "../../mat/tests/common/mod.rs"]
mod common;

use neural_data::pvc1::{
    write_recording, Condition, ConditionKind, ElectrodeEvents, Recording, Trial, PEPANA_FIELDS,
    REPEAT_FIELDS, RESULT_FIELDS, SNIPPET_LEN,
};
use v1_mat::Compression;

use common::{as_f64s, run_script, scipy_available, shape};

fn snippet(seed: i32) -> [i8; SNIPPET_LEN] {
    let mut s = [0i8; SNIPPET_LEN];
    for (i, v) in s.iter_mut().enumerate() {
        *v = ((i as i32 * 7 + seed * 13) % 256 - 128) as i8;
    }
    s
}

fn events(n: usize, seed: i32) -> ElectrodeEvents {
    ElectrodeEvents {
        times: (0..n)
            .map(|k| (k as f64 * 997.0 + seed as f64) / 30_000.0)
            .collect(),
        snippets: (0..n).map(|k| snippet(seed + k as i32)).collect(),
    }
}

fn sample_recording() -> Recording {
    let electrodes = vec![5, 6, 22];
    let trial = |r: usize, seed: i32| Trial {
        tzero: 100.0 + r as f64 * 31.5,
        time_tag: r as f64,
        electrodes: vec![
            events(3, seed),
            ElectrodeEvents::default(),
            events(1, seed + 50),
        ],
    };
    Recording {
        subdir: "ac1".into(),
        name: "ac1_u004_000".into(),
        electrodes,
        conditions: vec![
            Condition {
                kind: ConditionKind::Movie {
                    movie: 1,
                    segment: 7,
                },
                condition: 1.0,
                repeats: (0..3).map(|r| trial(r, r as i32)).collect(),
            },
            Condition {
                kind: ConditionKind::Other {
                    symbols: vec!["rseed".into()],
                    values: vec![17.0],
                },
                condition: 2.0,
                repeats: vec![trial(0, 9)],
            },
        ],
    }
}
#[test]
fn scipy_reads_our_pepana_as_the_pvc1_format_describes() {
    if !scipy_available("scipy_reads_our_pepana_as_the_pvc1_format_describes") {
        return;
    }
    let rec = sample_recording();
    for compression in [Compression::Zlib, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let path = write_recording(dir.path(), &rec, compression).unwrap();
        let j = run_script("pepana", &path);
        assert_eq!(j["variables"], serde_json::json!(["pepANA"]));
        assert!(j["header"]
            .as_str()
            .unwrap()
            .starts_with("MATLAB 5.0 MAT-file, Platform: "));
        assert_eq!(j["pepANA"]["kind"], "struct");
        assert_eq!(shape(&j["pepANA"]["shape"]), vec![1, 1]);
        assert_eq!(j["pepANA"]["fields"], serde_json::json!(PEPANA_FIELDS));
        assert_eq!(as_f64s(&j["no_conditions"]), vec![2.0]);
        // Whole-number doubles come back in the integer type they are stored in, as on
        // files MATLAB wrote.
        assert_eq!(j["elec_list"]["dtype"], "uint8");
        assert_eq!(shape(&j["elec_list"]["shape"]), vec![1, 3]);
        assert_eq!(as_f64s(&j["elec_list"]["values"]), vec![5.0, 6.0, 22.0]);
        assert_eq!(j["listOfResults"]["kind"], "cell");
        assert_eq!(shape(&j["listOfResults"]["shape"]), vec![1, 2]);

        for (c, jc) in rec
            .conditions
            .iter()
            .zip(j["conditions"].as_array().unwrap())
        {
            assert_eq!(jc["fields"], serde_json::json!(RESULT_FIELDS));
            assert_eq!(as_f64s(&jc["noRepeats"]), vec![c.repeats.len() as f64]);
            let (symbols, values) = match &c.kind {
                ConditionKind::Movie { movie, segment } => (
                    vec!["movie_id".to_string(), "segment_id".to_string()],
                    vec![*movie as f64, *segment as f64],
                ),
                ConditionKind::Other { symbols, values } => (symbols.clone(), values.clone()),
            };
            let jsyms: Vec<String> = jc["symbols"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            assert_eq!(jsyms, symbols);
            assert_eq!(shape(&jc["symbols_shape"]), vec![1, symbols.len() as u64]);
            let jvals: Vec<Vec<f64>> = jc["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(as_f64s)
                .collect();
            assert_eq!(jvals, values.iter().map(|v| vec![*v]).collect::<Vec<_>>());
            assert_eq!(as_f64s(&jc["condition"]), vec![c.condition]);
            assert_eq!(jc["repeat"]["kind"], "cell");
            assert_eq!(
                shape(&jc["repeat"]["shape"]),
                vec![1, c.repeats.len() as u64]
            );
            for (t, jt) in c.repeats.iter().zip(jc["repeats"].as_array().unwrap()) {
                assert_eq!(jt["fields"], serde_json::json!(REPEAT_FIELDS));
                assert_eq!(as_f64s(&jt["tzero"]), vec![t.tzero]);
                assert_eq!(as_f64s(&jt["timeTag"]), vec![t.time_tag]);
                assert_eq!(jt["data"]["kind"], "cell");
                assert_eq!(shape(&jt["data"]["shape"]), vec![1, 3]);
                for (e, je) in t
                    .electrodes
                    .iter()
                    .zip(jt["electrodes"].as_array().unwrap())
                {
                    let n = e.times.len() as u64;
                    assert_eq!(shape(&je["cell_shape"]), vec![1, 2]);
                    assert_eq!(je["times_dtype"], "float64");
                    assert_eq!(shape(&je["times_shape"]), vec![1, n]);
                    assert_eq!(as_f64s(&je["times"]), e.times);
                    assert_eq!(je["snippets_dtype"], "int8");
                    assert_eq!(shape(&je["snippets_shape"]), vec![48, n]);
                    let flat: Vec<f64> = e
                        .snippets
                        .iter()
                        .flat_map(|s| s.iter().map(|&v| v as f64))
                        .collect();
                    assert_eq!(as_f64s(&je["snippets"]), flat);
                }
            }
        }
    }
}
