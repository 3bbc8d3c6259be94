//! Validation against an independent reader and writer: scipy's `loadmat`/`savemat`,
//! through `tests/scipy_check.py`.
//!
//! Without scipy these tests print "skipped: scipy not installed" and pass, unless the
//! environment variable `V1_REQUIRE_SCIPY` is set (CI sets it and installs scipy), in
//! which case they fail.

mod common;

use std::process::Command;

use v1_mat::{
    read_mat_file, write_mat_file, Compression, MatArray, MatData, NumericData, StructArray,
    Variable,
};

use common::{as_f64s, run_script, scipy_available, scipy_script, shape};

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
        .arg(scipy_script())
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
