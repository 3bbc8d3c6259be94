//! Writer -> reader round trips of every value kind, compressed and not, plus a check of
//! the written bytes that parses the header and first tags by hand (no shared code with
//! the reader), and the atomic-write behaviour.

use std::io::Read;

use v1_mat::{
    read_mat_bytes, read_mat_file, write_mat_bytes, write_mat_file, Compression, MatArray,
    MatClass, MatData, MatError, NumericData, StructArray, Variable,
};

fn every_kind() -> Vec<Variable> {
    let numeric = vec![
        MatArray::new(
            vec![2, 3],
            MatData::Numeric(NumericData::F64(vec![
                1.0,
                -2.5,
                3.25,
                f64::MAX,
                f64::MIN_POSITIVE,
                -0.0,
            ])),
        ),
        MatArray::new(
            vec![1, 2],
            MatData::Numeric(NumericData::F32(vec![1.5, -3.0e30])),
        ),
        MatArray::new(
            vec![1, 3],
            MatData::Numeric(NumericData::I8(vec![-128, 0, 127])),
        ),
        MatArray::new(
            vec![3, 1],
            MatData::Numeric(NumericData::U8(vec![0, 7, 255])),
        ),
        MatArray::new(
            vec![1, 2],
            MatData::Numeric(NumericData::I16(vec![i16::MIN, i16::MAX])),
        ),
        MatArray::new(
            vec![1, 2],
            MatData::Numeric(NumericData::U16(vec![0, u16::MAX])),
        ),
        MatArray::new(
            vec![1, 2],
            MatData::Numeric(NumericData::I32(vec![i32::MIN, 5])),
        ),
        MatArray::new(
            vec![1, 1],
            MatData::Numeric(NumericData::U32(vec![u32::MAX])),
        ),
        MatArray::new(
            vec![1, 2],
            MatData::Numeric(NumericData::I64(vec![i64::MIN, i64::MAX])),
        ),
        MatArray::new(
            vec![1, 1],
            MatData::Numeric(NumericData::U64(vec![u64::MAX])),
        ),
        MatArray::new(
            vec![2, 2, 2],
            MatData::Numeric(NumericData::F64((0..8).map(f64::from).collect())),
        ),
    ];
    let snippets: Vec<i8> = (0..48 * 3).map(|i| (i % 200 - 100) as i8).collect();
    let record = MatArray::struct_scalar(vec![
        ("times".to_string(), MatArray::row_f64(vec![0.1, 0.2, 0.3])),
        ("snips".to_string(), MatArray::matrix_i8(48, 3, snippets)),
        ("none".to_string(), MatArray::row_f64(vec![])),
        ("none48".to_string(), MatArray::matrix_i8(48, 0, vec![])),
    ]);
    let struct_array = MatArray::new(
        vec![1, 2],
        MatData::Struct(StructArray {
            class_name: None,
            field_names: vec!["a".into(), "long_field_name_of_more_than_31_chars".into()],
            values: vec![
                MatArray::scalar(1.0),
                MatArray::string("x"),
                MatArray::scalar(2.0),
                MatArray::empty(),
            ],
        }),
    );
    vec![
        Variable::new("numbers", MatArray::cell_row(numeric)),
        Variable::new("scalar", MatArray::scalar(42.0)),
        Variable::new("empty", MatArray::empty()),
        Variable::new("ascii", MatArray::string("movie_id")),
        Variable::new("unicode", MatArray::string("µm – ∆t 😀")),
        Variable::new("empty_text", MatArray::string("")),
        Variable::new(
            "mask",
            MatArray::new(vec![2, 2], MatData::Logical(vec![true, false, false, true])),
        ),
        Variable::new("rec", record),
        Variable::new("records", struct_array),
        Variable::new("no_fields", MatArray::struct_scalar(vec![])),
        Variable::new(
            "obj",
            MatArray::object_scalar(
                "pepmodule",
                vec![
                    ("elec_list".to_string(), MatArray::row_f64(vec![5.0, 6.0])),
                    (
                        "inner".to_string(),
                        MatArray::object_scalar(
                            "peplooper",
                            vec![("k".to_string(), MatArray::scalar(3.0))],
                        ),
                    ),
                ],
            ),
        ),
        Variable::new("empty_cell", MatArray::cell_row(vec![])),
        Variable::new(
            "nested",
            MatArray::cell_row(vec![MatArray::cell_row(vec![MatArray::cell_row(vec![
                MatArray::string("deep"),
            ])])]),
        ),
    ]
}

#[test]
fn every_value_kind_round_trips_uncompressed_and_compressed() {
    let vars = every_kind();
    for compression in [Compression::None, Compression::Zlib] {
        let bytes = write_mat_bytes(&vars, compression).expect("write");
        let file = read_mat_bytes(&bytes, "memory.mat").expect("read back");
        assert_eq!(file.variables, vars, "{compression:?}");
        assert!(
            file.header_text
                .starts_with("MATLAB 5.0 MAT-file, Platform: "),
            "{}",
            file.header_text
        );
    }
}

#[test]
fn compression_makes_repetitive_data_smaller() {
    let vars = vec![Variable::new("z", MatArray::row_f64(vec![0.5; 10_000]))];
    let plain = write_mat_bytes(&vars, Compression::None).expect("write");
    let zipped = write_mat_bytes(&vars, Compression::Zlib).expect("write");
    assert!(
        zipped.len() * 20 < plain.len(),
        "{} vs {}",
        zipped.len(),
        plain.len()
    );
}

#[test]
fn accessors_read_values_and_name_the_path_in_errors() {
    let bytes = write_mat_bytes(&every_kind(), Compression::Zlib).expect("write");
    let file = read_mat_bytes(&bytes, "acc.mat").expect("read");
    let rec = file.variable("rec").expect("rec");
    assert_eq!(
        rec.field("times").unwrap().as_f64_vec().unwrap(),
        vec![0.1, 0.2, 0.3]
    );
    let (rows, cols, data) = rec.field("snips").unwrap().as_i8_matrix().unwrap();
    assert_eq!((rows, cols, data.len()), (48, 3, 144));
    assert_eq!(rec.field("none48").unwrap().dims(), &[48, 0]);
    assert_eq!(
        file.variable("ascii").unwrap().as_string().unwrap(),
        "movie_id"
    );
    assert_eq!(
        file.variable("unicode").unwrap().as_string().unwrap(),
        "µm – ∆t 😀"
    );
    let obj = file.variable("obj").unwrap();
    assert_eq!(obj.object_class(), Some("pepmodule"));
    assert_eq!(obj.class(), MatClass::Object);
    assert_eq!(
        obj.field("inner")
            .unwrap()
            .field("k")
            .unwrap()
            .as_f64_scalar()
            .unwrap(),
        3.0
    );
    let numbers = file.variable("numbers").unwrap().as_cell().unwrap();
    assert_eq!(numbers.len(), 11);
    assert_eq!(numbers[2].path(), "numbers{3}");
    assert_eq!(numbers[2].as_f64_vec().unwrap(), vec![-128.0, 0.0, 127.0]);
    assert_eq!(numbers[10].dims(), &[2, 2, 2]);
    assert_eq!(numbers[10].numel(), 8);
    // A 1x2 struct array lists as two 1x1 structs.
    let records = file.variable("records").unwrap().as_list().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].path(), "records(2)");
    assert_eq!(records[1].field("a").unwrap().as_f64_scalar().unwrap(), 2.0);
    assert_eq!(
        file.variable("mask").unwrap().as_f64_vec().unwrap(),
        vec![1.0, 0.0, 0.0, 1.0]
    );

    let err = rec.field("spikes").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MatError::NoSuchField { .. }), "{msg}");
    assert!(
        msg.contains("acc.mat") && msg.contains("`rec`") && msg.contains("spikes"),
        "{msg}"
    );
    assert!(msg.contains("times, snips, none, none48"), "{msg}");

    let err = numbers[2].as_string().unwrap_err().to_string();
    assert!(
        err.contains("numbers{3}") && err.contains("1x3 int8"),
        "{err}"
    );
    let err = rec
        .field("times")
        .unwrap()
        .as_i8_matrix()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rec.times") && err.contains("int8") && err.contains("double"),
        "{err}"
    );
    let err = file
        .variable("records")
        .unwrap()
        .field("a")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1x1 struct") && err.contains("1x2 struct"),
        "{err}"
    );
    let err = file.variable("pepANA").unwrap_err().to_string();
    assert!(
        err.contains("no variable `pepANA`") && err.contains("numbers, scalar, empty"),
        "{err}"
    );
}

#[test]
fn writer_rejects_inconsistent_values_with_the_path() {
    let bad = MatArray::struct_scalar(vec![(
        "list".to_string(),
        MatArray::cell_row(vec![
            MatArray::scalar(1.0),
            MatArray::new(vec![2, 2], MatData::Numeric(NumericData::F64(vec![1.0]))),
        ]),
    )]);
    let err = write_mat_bytes(&[Variable::new("v", bad)], Compression::None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`v`") && err.contains("v.list{2}") && err.contains("1 values"),
        "{err}"
    );

    let err = write_mat_bytes(
        &[Variable::new("1abc", MatArray::scalar(1.0))],
        Compression::None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a MATLAB identifier"), "{err}");
    let bad_field = MatArray::struct_scalar(vec![("has space".to_string(), MatArray::scalar(1.0))]);
    let err = write_mat_bytes(&[Variable::new("s", bad_field)], Compression::None).unwrap_err();
    assert!(err.to_string().contains("field name `has space`"), "{err}");
    let unsupported = MatArray::new(
        vec![1, 1],
        MatData::Unsupported {
            class: 5,
            what: "sparse array".into(),
        },
    );
    let err = write_mat_bytes(&[Variable::new("s", unsupported)], Compression::None).unwrap_err();
    assert!(
        err.to_string().contains("sparse array cannot be written"),
        "{err}"
    );
}

/// Reads the written bytes with nothing but this test's own code: the 128-byte header,
/// the first tag (miCOMPRESSED), the inflated first tag (miMATRIX), the array-flags class
/// and the variable name.
#[test]
fn written_file_has_the_documented_byte_layout() {
    let pep = MatArray::struct_scalar(vec![(
        "elec_list".to_string(),
        MatArray::row_f64(vec![5.0, 6.0]),
    )]);
    let obj = MatArray::object_scalar("pepmodule", vec![("x".to_string(), MatArray::scalar(1.0))]);
    for (value, class) in [(pep, 2u32), (obj, 3u32)] {
        let bytes = write_mat_bytes(&[Variable::new("pepANA", value)], Compression::Zlib).unwrap();
        let text = std::str::from_utf8(&bytes[..116]).unwrap();
        assert!(
            text.starts_with("MATLAB 5.0 MAT-file, Platform: "),
            "{text}"
        );
        assert!(text.contains("Created on: "), "{text}");
        assert_eq!(&bytes[116..124], &[0u8; 8], "no subsystem data");
        assert_eq!(u16::from_le_bytes([bytes[124], bytes[125]]), 0x0100);
        assert_eq!(&bytes[126..128], b"IM");
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        assert_eq!(u32_at(&bytes, 128), 15, "miCOMPRESSED");
        let n = u32_at(&bytes, 132) as usize;
        assert_eq!(
            bytes.len(),
            136 + n,
            "one compressed element fills the file"
        );
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[136..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(u32_at(&inflated, 0), 14, "miMATRIX");
        assert_eq!(u32_at(&inflated, 4) as usize, inflated.len() - 8);
        // array flags: tag miUINT32 (6), 8 bytes; class in the low byte of the first word
        assert_eq!((u32_at(&inflated, 8), u32_at(&inflated, 12)), (6, 8));
        assert_eq!(u32_at(&inflated, 16) & 0xff, class);
        // dimensions: miINT32 (5), 8 bytes, 1x1
        assert_eq!((u32_at(&inflated, 24), u32_at(&inflated, 28)), (5, 8));
        assert_eq!((u32_at(&inflated, 32), u32_at(&inflated, 36)), (1, 1));
        // name: miINT8 (1), 6 bytes "pepANA", padded to 8
        assert_eq!((u32_at(&inflated, 40), u32_at(&inflated, 44)), (1, 6));
        assert_eq!(&inflated[48..54], b"pepANA");
        if class == 2 {
            // field name length as a small element: type 5, 4 bytes, value 32
            assert_eq!(u32_at(&inflated, 56), 5 | (4 << 16));
            assert_eq!(u32_at(&inflated, 60), 32);
        } else {
            // the class name precedes the fields
            assert_eq!((u32_at(&inflated, 56), u32_at(&inflated, 60)), (1, 9));
            assert_eq!(&inflated[64..73], b"pepmodule");
        }
    }
}

#[test]
fn file_writes_are_atomic_and_leave_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mat");
    write_mat_file(&path, &every_kind(), Compression::Zlib).unwrap();
    let first = read_mat_file(&path).unwrap();
    assert_eq!(first.variables, every_kind());
    assert_eq!(first.path, path);
    // Overwrite with different content: the file is replaced whole.
    let other = vec![Variable::new("only", MatArray::scalar(1.0))];
    write_mat_file(&path, &other, Compression::None).unwrap();
    assert_eq!(read_mat_file(&path).unwrap().variables, other);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("out.mat")]);

    // A failed write (no such folder) leaves nothing behind and says where.
    let missing = dir.path().join("no/such/dir/x.mat");
    let err = write_mat_file(&missing, &other, Compression::None).unwrap_err();
    assert!(
        matches!(err, MatError::Write { .. }) && err.to_string().contains("no/such/dir/x.mat"),
        "{err}"
    );
}

#[test]
fn reading_a_missing_file_names_it() {
    let err = read_mat_file(std::path::Path::new("/nonexistent/file.mat")).unwrap_err();
    assert!(
        matches!(err, MatError::Io { .. }) && err.to_string().contains("/nonexistent/file.mat"),
        "{err}"
    );
}

#[test]
fn a_fixed_header_text_gives_identical_bytes() {
    use v1_mat::write_mat_bytes_with_header;
    let vars = every_kind();
    let a = write_mat_bytes_with_header(
        &vars,
        Compression::Zlib,
        "MATLAB 5.0 MAT-file, Platform: test, seed 7",
    )
    .unwrap();
    let b = write_mat_bytes_with_header(
        &vars,
        Compression::Zlib,
        "MATLAB 5.0 MAT-file, Platform: test, seed 7",
    )
    .unwrap();
    assert_eq!(a, b);
    let f = read_mat_bytes(&a, "fixed.mat").unwrap();
    assert_eq!(f.header_text, "MATLAB 5.0 MAT-file, Platform: test, seed 7");
    assert_eq!(f.variables, vars);
    // over-long text is cut to the 116-byte field without splitting a character
    let long = "µ".repeat(100);
    let f = read_mat_bytes(
        &write_mat_bytes_with_header(&vars, Compression::None, &long).unwrap(),
        "long.mat",
    )
    .unwrap();
    assert_eq!(f.header_text, "µ".repeat(58));
}

/// MATLAB's `save` stores a double array of whole numbers in the smallest integer type
/// that holds them, class still double; we do the same, and read them back as the same
/// doubles. Checked on the raw bytes (uncompressed), then through the reader.
#[test]
fn whole_number_doubles_are_stored_as_small_integers_and_read_back_exactly() {
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    // (values, stored type, stored bytes)
    let cases: Vec<(Vec<f64>, u32, usize)> = vec![
        (vec![5.0, 6.0], 2, 2),             // miUINT8
        (vec![-5.0, 6.0], 1, 2),            // miINT8
        (vec![1000.0], 4, 2),               // miUINT16
        (vec![-1000.0, 3.0], 3, 4),         // miINT16
        (vec![70_000.0], 6, 4),             // miUINT32
        (vec![-70_000.0, 1.0, 2.0], 5, 12), // miINT32
        (vec![4_294_967_296.0], 9, 8),      // too large: miDOUBLE
        (vec![0.5, 1.0], 9, 16),            // fractional: miDOUBLE
        (vec![-0.0, 1.0], 9, 16),           // -0.0 keeps its sign: miDOUBLE
        (vec![f64::NAN, 1.0], 9, 16),       // NaN: miDOUBLE
        (vec![f64::INFINITY], 9, 8),        // inf: miDOUBLE
        (vec![], 9, 0),                     // nothing to narrow: miDOUBLE
    ];
    for (values, ty, len) in cases {
        let vars = vec![Variable::new("x", MatArray::row_f64(values.clone()))];
        let bytes = write_mat_bytes(&vars, Compression::None).unwrap();
        // header 128, miMATRIX tag 8, array flags 16 (class in the low byte), dims 16,
        // name "x" as a small element 8, then the data element.
        assert_eq!(
            u32_at(&bytes, 144) & 0xff,
            6,
            "{values:?}: class stays double"
        );
        let tag = u32_at(&bytes, 176);
        let (got_ty, got_len) = if tag >> 16 != 0 {
            (tag & 0xffff, (tag >> 16) as usize)
        } else {
            (tag, u32_at(&bytes, 180) as usize)
        };
        assert_eq!((got_ty, got_len), (ty, len), "{values:?}");

        for compression in [Compression::None, Compression::Zlib] {
            let bytes = write_mat_bytes(&vars, compression).unwrap();
            let back = read_mat_bytes(&bytes, "whole.mat").unwrap();
            let a = back.variables[0].value.clone();
            assert_eq!(a.class(), MatClass::Double);
            let MatData::Numeric(NumericData::F64(got)) = a.data else {
                panic!("{values:?} read back as {:?}", a.data)
            };
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&values), "{values:?} {compression:?}");
        }
    }
}
