//! Validation against an independent reader and writer: scipy's `loadmat`/`savemat`,
//! through `tests/scipy_check.py`.
//!
//! Without scipy these tests print "skipped: scipy not installed" and pass, unless the
//! environment variable `V1_REQUIRE_SCIPY` is set (CI sets it and installs scipy), in
//! which case they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use neural_data::mat::{
    read_mat_file, write_mat_file, Compression, MatArray, MatData, NumericData, StructArray,
    Variable,
};
use neural_data::pvc1::{
    write_recording, Condition, ConditionKind, ElectrodeEvents, Recording, Trial, PEPANA_FIELDS,
    REPEAT_FIELDS, RESULT_FIELDS, SNIPPET_LEN,
};
use serde_json::Value;

use common::scipy_available;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scipy_check.py")
}

fn run_script(mode: &str, path: &Path) -> Value {
    let out = Command::new("python3")
        .arg(script())
        .arg(mode)
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "scipy_check.py {mode} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scipy_check.py prints JSON")
}

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

fn as_f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn shape(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("shape")
        .iter()
        .map(|x| x.as_u64().expect("dim"))
        .collect()
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

#[test]
fn scipy_reads_every_value_kind_we_write() {
    if !scipy_available("scipy_reads_every_value_kind_we_write") {
        return;
    }
    let vars = vec![
        Variable::new("d", MatArray::matrix_f64(2, 2, vec![1.0, 2.0, 3.0, 4.5])),
        Variable::new(
            "s",
            MatArray::new(
                vec![1, 2],
                MatData::Numeric(NumericData::F32(vec![1.5, -2.0])),
            ),
        ),
        Variable::new("i8", MatArray::matrix_i8(2, 1, vec![-128, 127])),
        Variable::new(
            "u16",
            MatArray::new(vec![1, 1], MatData::Numeric(NumericData::U16(vec![65535]))),
        ),
        Variable::new(
            "i64",
            MatArray::new(vec![1, 1], MatData::Numeric(NumericData::I64(vec![-5]))),
        ),
        Variable::new(
            "u64",
            MatArray::new(vec![1, 1], MatData::Numeric(NumericData::U64(vec![7]))),
        ),
        // Whole-number doubles, stored like MATLAB stores them.
        Variable::new("wu8", MatArray::row_f64(vec![0.0, 255.0])),
        Variable::new("wi8", MatArray::row_f64(vec![-128.0, 5.0])),
        Variable::new("wu16", MatArray::row_f64(vec![256.0])),
        Variable::new("wi16", MatArray::row_f64(vec![-1.0, 255.0])),
        Variable::new("wu32", MatArray::row_f64(vec![65_536.0])),
        Variable::new("wi32", MatArray::row_f64(vec![-40_000.0, 7.0])),
        Variable::new("wbig", MatArray::row_f64(vec![4_294_967_296.0])),
        Variable::new("wneg0", MatArray::row_f64(vec![-0.0, 1.0])),
        Variable::new("wnan", MatArray::row_f64(vec![f64::NAN, 1.0])),
        Variable::new("t", MatArray::string("movie_id")),
        Variable::new("w", MatArray::string("µm∆")),
        Variable::new(
            "b",
            MatArray::new(vec![1, 3], MatData::Logical(vec![true, false, true])),
        ),
        Variable::new(
            "c",
            MatArray::cell_row(vec![
                MatArray::scalar(1.0),
                MatArray::empty(),
                MatArray::string("x"),
            ]),
        ),
        Variable::new(
            "st",
            MatArray::new(
                vec![1, 2],
                MatData::Struct(StructArray {
                    class_name: None,
                    field_names: vec!["a".into(), "b".into()],
                    values: vec![
                        MatArray::scalar(1.0),
                        MatArray::string("p"),
                        MatArray::scalar(2.0),
                        MatArray::string("q"),
                    ],
                }),
            ),
        ),
        Variable::new(
            "o",
            MatArray::object_scalar(
                "pepmodule",
                vec![
                    ("x".into(), MatArray::scalar(3.0)),
                    ("y".into(), MatArray::empty()),
                ],
            ),
        ),
    ];
    for compression in [Compression::Zlib, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kinds.mat");
        write_mat_file(&path, &vars, compression).unwrap();
        let j = &run_script("generic", &path)["variables"];
        let num = |name: &str, dtype: &str, sh: Vec<u64>, values: Vec<f64>| {
            assert_eq!(j[name]["kind"], "numeric", "{name}");
            assert_eq!(j[name]["dtype"], dtype, "{name}");
            assert_eq!(shape(&j[name]["shape"]), sh, "{name}");
            assert_eq!(as_f64s(&j[name]["values"]), values, "{name}");
        };
        num("d", "float64", vec![2, 2], vec![1.0, 2.0, 3.0, 4.5]);
        num("wu8", "uint8", vec![1, 2], vec![0.0, 255.0]);
        num("wi8", "int8", vec![1, 2], vec![-128.0, 5.0]);
        num("wu16", "uint16", vec![1, 1], vec![256.0]);
        num("wi16", "int16", vec![1, 2], vec![-1.0, 255.0]);
        num("wu32", "uint32", vec![1, 1], vec![65_536.0]);
        num("wi32", "int32", vec![1, 2], vec![-40_000.0, 7.0]);
        num("wbig", "float64", vec![1, 1], vec![4_294_967_296.0]);
        assert_eq!(j["wneg0"]["dtype"], "float64");
        assert_eq!(j["wneg0"]["signbit"], serde_json::json!([true, false]));
        assert_eq!(j["wnan"]["dtype"], "float64");
        num("s", "float32", vec![1, 2], vec![1.5, -2.0]);
        num("i8", "int8", vec![2, 1], vec![-128.0, 127.0]);
        num("u16", "uint16", vec![1, 1], vec![65535.0]);
        num("i64", "int64", vec![1, 1], vec![-5.0]);
        num("u64", "uint64", vec![1, 1], vec![7.0]);
        assert_eq!(j["t"]["kind"], "char");
        assert_eq!(j["t"]["text"], "movie_id");
        assert_eq!(j["w"]["text"], "µm∆");
        // loadmat returns logical arrays as uint8 (it drops the flag that we, like
        // savemat, set); the values and shape are what matter here.
        num("b", "uint8", vec![1, 3], vec![1.0, 0.0, 1.0]);
        assert_eq!(j["c"]["kind"], "cell");
        assert_eq!(shape(&j["c"]["shape"]), vec![1, 3]);
        assert_eq!(shape(&j["c"]["items"][1]["shape"]), vec![0, 0]);
        assert_eq!(j["c"]["items"][2]["text"], "x");
        assert_eq!(j["st"]["kind"], "struct");
        assert_eq!(shape(&j["st"]["shape"]), vec![1, 2]);
        assert_eq!(j["st"]["elements"][1]["b"]["text"], "q");
        assert_eq!(as_f64s(&j["st"]["elements"][1]["a"]["values"]), vec![2.0]);
        assert_eq!(j["o"]["kind"], "object");
        assert_eq!(j["o"]["classname"], "pepmodule");
        assert_eq!(as_f64s(&j["o"]["elements"][0]["x"]["values"]), vec![3.0]);
    }
}

#[test]
fn we_read_a_file_written_by_scipy() {
    if !scipy_available("we_read_a_file_written_by_scipy") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scipy.mat");
    let out = Command::new("python3")
        .arg(script())
        .arg("write")
        .arg(&path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = read_mat_file(&path).expect("read scipy's file");
    // scipy's header text differs from MATLAB's ("MAT-file Platform", no comma).
    assert!(
        file.header_text
            .starts_with("MATLAB 5.0 MAT-file Platform: "),
        "{}",
        file.header_text
    );
    let pep = file.variable("pepANA").unwrap();
    assert_eq!(pep.object_class(), Some("pepmodule"));
    assert_eq!(
        pep.field("elec_list").unwrap().as_f64_vec().unwrap(),
        vec![5.0, 6.0, 10.0]
    );
    let tags = pep.field("tags").unwrap().as_cell().unwrap();
    assert_eq!(tags[0].as_string().unwrap(), "movie_id");
    assert_eq!(tags[1].dims(), &[0, 0]);
    assert_eq!(tags[2].as_f64_scalar().unwrap(), 7.0);
    let looper = pep.field("looper").unwrap();
    assert_eq!(looper.object_class(), Some("peplooper"));
    assert_eq!(
        looper.field("tzero").unwrap().as_f64_scalar().unwrap(),
        12.5
    );
    let data = looper.field("data").unwrap().as_cell().unwrap();
    assert_eq!(data[0].as_f64_vec().unwrap(), vec![0.5, 1.25]);
    let (rows, cols, v) = data[1].as_i8_matrix().unwrap();
    assert_eq!((rows, cols, v.to_vec()), (2, 2, vec![1, 3, -2, -4]));
    let flag = file.variable("flag").unwrap();
    assert!(matches!(flag.array().unwrap().data, MatData::Logical(ref b) if b == &[true, false]));
}
