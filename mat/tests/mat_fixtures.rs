//! Hand-built byte fixtures for the parts of the format our writer never produces but
//! real files contain: packed small elements, big-endian files, old-style objects (class
//! 3), function handles (class 16), squeezed/1-D shapes, data stored in a smaller type
//! than the class, empty `miMATRIX` elements, and v7.3 files. Plus a file written by
//! scipy's `savemat`, embedded as bytes so the check runs without Python.

use v1_mat::{read_mat_bytes, MatClass, MatData, MatError, NumericData};

#[derive(Clone, Copy, PartialEq)]
enum E {
    Le,
    Be,
}

fn u16b(e: E, v: u16) -> [u8; 2] {
    if e == E::Le {
        v.to_le_bytes()
    } else {
        v.to_be_bytes()
    }
}
fn u32b(e: E, v: u32) -> [u8; 4] {
    if e == E::Le {
        v.to_le_bytes()
    } else {
        v.to_be_bytes()
    }
}

fn header(e: E, text: &str) -> Vec<u8> {
    let mut h = vec![0u8; 116];
    h[..text.len()].copy_from_slice(text.as_bytes());
    h.extend_from_slice(&[b' '; 8]);
    h.extend_from_slice(&u16b(e, 0x0100));
    h.extend_from_slice(if e == E::Le { b"IM" } else { b"MI" });
    h
}

/// A normal element: 8-byte tag, data, zero padding to 8 bytes.
fn el(e: E, ty: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&u32b(e, ty));
    v.extend_from_slice(&u32b(e, data.len() as u32));
    v.extend_from_slice(data);
    while v.len() % 8 != 0 {
        v.push(0);
    }
    v
}

/// A small data element: size and type packed in one word, data in the next 4 bytes.
fn small(e: E, ty: u32, data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 4);
    let mut v = u32b(e, (data.len() as u32) << 16 | ty).to_vec();
    v.extend_from_slice(data);
    v.resize(8, 0);
    v
}

fn i32s(e: E, xs: &[i32]) -> Vec<u8> {
    xs.iter().flat_map(|&x| u32b(e, x as u32)).collect()
}
fn f64s(e: E, xs: &[f64]) -> Vec<u8> {
    xs.iter()
        .flat_map(|&x| {
            if e == E::Le {
                x.to_le_bytes()
            } else {
                x.to_be_bytes()
            }
        })
        .collect()
}
fn i16s(e: E, xs: &[i16]) -> Vec<u8> {
    xs.iter().flat_map(|&x| u16b(e, x as u16)).collect()
}

/// An miMATRIX element: array flags, dims, name (small element when it fits), body.
fn matrix(e: E, flags: u32, dims: &[i32], name: &str, body: &[Vec<u8>]) -> Vec<u8> {
    let mut content = el(e, 6, &[u32b(e, flags), [0; 4]].concat());
    content.extend(el(e, 5, &i32s(e, dims)));
    content.extend(if !name.is_empty() && name.len() <= 4 {
        small(e, 1, name.as_bytes())
    } else {
        el(e, 1, name.as_bytes())
    });
    for b in body {
        content.extend_from_slice(b);
    }
    el(e, 14, &content)
}

fn field_names(e: E, names: &[&str]) -> Vec<Vec<u8>> {
    let mut packed = vec![0u8; 32 * names.len()];
    for (i, n) in names.iter().enumerate() {
        packed[i * 32..i * 32 + n.len()].copy_from_slice(n.as_bytes());
    }
    vec![small(e, 5, &u32b(e, 32)), el(e, 1, &packed)]
}

fn file(e: E, elements: &[Vec<u8>]) -> Vec<u8> {
    let mut f = header(
        e,
        "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Tue Mar  6 10:00:00 2007",
    );
    for x in elements {
        f.extend_from_slice(x);
    }
    f
}

fn numeric(f: &v1_mat::MatFile, name: &str) -> NumericData {
    match &f
        .variables
        .iter()
        .find(|v| v.name == name)
        .expect(name)
        .value
        .data
    {
        MatData::Numeric(n) => n.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn packed_small_elements_for_name_dims_and_data() {
    let e = E::Le;
    // double class holding the value 7 stored as one miUINT8 byte in a small element
    let x = matrix(e, 6, &[1, 1], "x", &[small(e, 2, &[7])]);
    // small element dims (one dimension, 4 bytes) -> a 1-D shape, read as 3x1
    let mut content = el(e, 6, &[u32b(e, 6), [0; 4]].concat());
    content.extend(small(e, 5, &i32s(e, &[3])));
    content.extend(small(e, 1, b"v"));
    content.extend(small(e, 2, &[1, 2, 3]));
    let v = el(e, 14, &content);
    let f = read_mat_bytes(&file(e, &[x, v]), "small.mat").unwrap();
    assert_eq!(numeric(&f, "x"), NumericData::F64(vec![7.0]));
    assert_eq!(f.variables[1].value.dims, vec![3, 1]);
    assert_eq!(numeric(&f, "v"), NumericData::F64(vec![1.0, 2.0, 3.0]));
}

#[test]
fn big_endian_file_reads_like_little_endian() {
    for e in [E::Le, E::Be] {
        let a = matrix(e, 6, &[1, 3], "", &[el(e, 3, &i16s(e, &[-1, 300, 2]))]);
        let b = matrix(
            e,
            4,
            &[1, 2],
            "",
            &[small(
                e,
                4,
                &[u16b(e, b'h' as u16), u16b(e, b'i' as u16)].concat(),
            )],
        );
        let c = matrix(e, 6, &[1, 2], "", &[el(e, 9, &f64s(e, &[0.25, -1e300]))]);
        let s = matrix(
            e,
            2,
            &[1, 1],
            "s",
            &[field_names(e, &["a", "b", "c"]), vec![a, b, c]].concat(),
        );
        let f = read_mat_bytes(&file(e, &[s]), "endian.mat").unwrap();
        let s = f.variable("s").unwrap();
        assert_eq!(
            s.field("a").unwrap().as_f64_vec().unwrap(),
            vec![-1.0, 300.0, 2.0]
        );
        assert_eq!(s.field("b").unwrap().as_string().unwrap(), "hi");
        assert_eq!(
            s.field("c").unwrap().as_f64_vec().unwrap(),
            vec![0.25, -1e300]
        );
    }
}

#[test]
fn old_style_objects_read_like_structs_with_a_class_name() {
    let e = E::Le;
    let elec = matrix(e, 6, &[1, 2], "", &[small(e, 2, &[5, 6])]);
    let inner_body = [
        vec![el(e, 1, b"peplooper")],
        field_names(e, &["k"]),
        vec![matrix(e, 6, &[1, 1], "", &[small(e, 2, &[9])])],
    ]
    .concat();
    let inner = matrix(e, 3, &[1, 1], "", &inner_body);
    let results = matrix(e, 1, &[1, 1], "", &[inner]);
    let body = [
        vec![el(e, 1, b"pepmodule")],
        field_names(e, &["elec_list", "listOfResults"]),
        vec![elec, results],
    ]
    .concat();
    let pep = matrix(e, 3, &[1, 1], "pepANA", &body);
    let f = read_mat_bytes(&file(e, &[pep]), "obj.mat").unwrap();
    let p = f.variable("pepANA").unwrap();
    assert_eq!(p.class(), MatClass::Object);
    assert_eq!(p.object_class(), Some("pepmodule"));
    assert_eq!(
        p.field_names().unwrap(),
        &["elec_list".to_string(), "listOfResults".to_string()]
    );
    assert_eq!(
        p.field("elec_list").unwrap().as_f64_vec().unwrap(),
        vec![5.0, 6.0]
    );
    let looper = &p.field("listOfResults").unwrap().as_cell().unwrap()[0];
    assert_eq!(looper.object_class(), Some("peplooper"));
    assert_eq!(looper.field("k").unwrap().as_f64_scalar().unwrap(), 9.0);
}

#[test]
fn function_handles_sparse_and_complex_are_skipped_not_fatal() {
    let e = E::Le;
    // class 16 (function handle): contents are not parsed, the element is skipped whole
    let fh = matrix(e, 16, &[1, 1], "fh", &[el(e, 1, b"anything at all")]);
    // class 5 (sparse) and a complex double (flag 0x0800)
    let sp = matrix(
        e,
        5,
        &[2, 2],
        "sp",
        &[
            el(e, 5, &i32s(e, &[0])),
            el(e, 5, &i32s(e, &[0, 1, 1])),
            el(e, 9, &f64s(e, &[1.0])),
        ],
    );
    let cx = matrix(
        e,
        6 | 0x0800,
        &[1, 1],
        "cx",
        &[el(e, 9, &f64s(e, &[1.0])), el(e, 9, &f64s(e, &[2.0]))],
    );
    let ok = matrix(e, 6, &[1, 1], "ok", &[el(e, 9, &f64s(e, &[4.0]))]);
    let f = read_mat_bytes(&file(e, &[fh, sp, cx, ok]), "skip.mat").unwrap();
    assert_eq!(f.variable("ok").unwrap().as_f64_scalar().unwrap(), 4.0);
    for (name, what) in [
        ("fh", "function handle"),
        ("sp", "sparse array"),
        ("cx", "complex array"),
    ] {
        let v = f.variable(name).unwrap();
        let err = v.as_f64_vec().unwrap_err().to_string();
        assert!(
            err.contains(what) && err.contains("skip.mat") && err.contains(name),
            "{err}"
        );
    }
}

#[test]
fn empty_matrix_elements_and_empty_shapes() {
    let e = E::Le;
    // MATLAB writes [] inside cells as a zero-byte miMATRIX
    let empty = el(e, 14, &[]);
    let e48 = matrix(e, 8, &[48, 0], "", &[el(e, 1, &[])]);
    let e10 = matrix(e, 6, &[1, 0], "", &[el(e, 9, &[])]);
    let c = matrix(e, 1, &[1, 3], "c", &[empty, e48, e10]);
    let f = read_mat_bytes(&file(e, &[c]), "empty.mat").unwrap();
    let items = f.variable("c").unwrap().as_cell().unwrap();
    assert_eq!(items[0].dims(), &[0, 0]);
    assert_eq!(items[0].class(), MatClass::Double);
    assert_eq!(items[1].as_i8_matrix().unwrap(), (48, 0, &[][..]));
    assert_eq!(items[2].dims(), &[1, 0]);
    assert!(items.iter().all(|i| i.is_empty()));
}

#[test]
fn data_stored_in_a_smaller_type_is_converted_to_the_class() {
    let e = E::Le;
    let d = matrix(e, 6, &[1, 3], "d", &[el(e, 3, &i16s(e, &[-2, 0, 30000]))]);
    let i8_from_i16 = matrix(e, 8, &[1, 3], "i", &[el(e, 3, &i16s(e, &[-300, 5, 300]))]);
    let u8_from_i16 = matrix(e, 9, &[1, 2], "u", &[small(e, 3, &i16s(e, &[-1, 256]))]);
    let single = matrix(e, 7, &[1, 1], "s", &[small(e, 1, &[0xfe])]);
    let i64v = matrix(e, 14, &[1, 1], "l", &[el(e, 13, &u64::MAX.to_le_bytes())]);
    let logical = matrix(e, 9 | 0x0200, &[1, 3], "b", &[small(e, 2, &[1, 0, 2])]);
    let f = read_mat_bytes(
        &file(e, &[d, i8_from_i16, u8_from_i16, single, i64v, logical]),
        "narrow.mat",
    )
    .unwrap();
    assert_eq!(numeric(&f, "d"), NumericData::F64(vec![-2.0, 0.0, 30000.0]));
    // values outside the class range saturate, as MATLAB's conversions do
    assert_eq!(numeric(&f, "i"), NumericData::I8(vec![-128, 5, 127]));
    assert_eq!(numeric(&f, "u"), NumericData::U8(vec![0, 255]));
    assert_eq!(numeric(&f, "s"), NumericData::F32(vec![-2.0]));
    assert_eq!(numeric(&f, "l"), NumericData::I64(vec![i64::MAX]));
    assert!(matches!(&f.variables[5].value.data, MatData::Logical(b) if b == &[true, false, true]));
}

#[test]
fn char_encodings() {
    let e = E::Le;
    let utf8 = matrix(e, 4, &[1, 3], "a", &[el(e, 16, "µm∆".as_bytes())]);
    let latin = matrix(e, 4, &[1, 5], "b", &[el(e, 2, b"rseed")]);
    let utf32 = matrix(
        e,
        4,
        &[1, 2],
        "c",
        &[el(
            e,
            18,
            &[u32b(e, 'é' as u32), u32b(e, '😀' as u32)].concat(),
        )],
    );
    let empty = matrix(e, 4, &[0, 0], "d", &[]);
    let f = read_mat_bytes(&file(e, &[utf8, latin, empty]), "chars.mat").unwrap();
    assert_eq!(f.variable("a").unwrap().as_string().unwrap(), "µm∆");
    assert_eq!(f.variable("b").unwrap().as_string().unwrap(), "rseed");
    assert_eq!(f.variable("d").unwrap().as_string().unwrap(), "");
    // 'é' + an astral char = 3 UTF-16 units for dims 1x2: a count mismatch is an error
    let err = read_mat_bytes(&file(e, &[utf32]), "chars.mat")
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 characters for dimensions [1, 2]"), "{err}");
}

#[test]
fn compressed_and_plain_variables_mix_and_headers_are_free_text() {
    use std::io::Write;
    let e = E::Le;
    let a = matrix(e, 6, &[1, 1], "a", &[el(e, 9, &f64s(e, &[1.5]))]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&a).unwrap();
    let z = z.finish().unwrap();
    let mut compressed = u32b(e, 15).to_vec();
    compressed.extend_from_slice(&u32b(e, z.len() as u32));
    compressed.extend_from_slice(&z); // not padded, as MATLAB writes it
    let b = matrix(e, 6, &[1, 1], "b", &[el(e, 9, &f64s(e, &[2.5]))]);
    let mut bytes = header(e, "");
    bytes.extend(compressed);
    bytes.extend(b);
    let f = read_mat_bytes(&bytes, "mixed.mat").unwrap();
    assert_eq!(f.header_text, "");
    assert_eq!(f.variable("a").unwrap().as_f64_scalar().unwrap(), 1.5);
    assert_eq!(f.variable("b").unwrap().as_f64_scalar().unwrap(), 2.5);
}

#[test]
fn v73_files_are_detected_and_explained() {
    let mut by_text = header(
        E::Le,
        "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: x HDF5 schema 1.00 .",
    );
    by_text.resize(600, 0);
    by_text[512..520].copy_from_slice(b"\x89HDF\r\n\x1a\n");
    let mut plain_hdf5 = b"\x89HDF\r\n\x1a\n".to_vec();
    plain_hdf5.resize(100, 0);
    let mut userblock = vec![0u8; 1024];
    userblock[512..520].copy_from_slice(b"\x89HDF\r\n\x1a\n");
    for bytes in [by_text, plain_hdf5, userblock] {
        let err = read_mat_bytes(&bytes, "v73.mat").unwrap_err();
        assert!(matches!(err, MatError::V73 { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("v73.mat")
                && msg.contains("v7.3")
                && msg.contains("-v7")
                && msg.contains("scipy"),
            "{msg}"
        );
    }
}

#[test]
fn non_mat_input_is_rejected_clearly() {
    let err = read_mat_bytes(b"hello", "short.mat")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("short.mat") && err.contains("128-byte header"),
        "{err}"
    );
    let mut level4 = vec![0u8; 200];
    level4[0] = 0; // a Level-4 header starts with a numeric type word
    let err = read_mat_bytes(&level4, "l4.mat").unwrap_err().to_string();
    assert!(
        err.contains("endian indicator") && err.contains("Level-4"),
        "{err}"
    );
    let mut bad_version = header(E::Le, "MATLAB 5.0 MAT-file");
    bad_version[124] = 2;
    let err = read_mat_bytes(&bad_version, "ver.mat")
        .unwrap_err()
        .to_string();
    assert!(err.contains("version") && err.contains("0x0100"), "{err}");
}

#[test]
fn malformed_elements_name_the_offset() {
    let e = E::Le;
    // data element claims more bytes than the file has
    let mut v = matrix(e, 6, &[1, 1], "a", &[el(e, 9, &f64s(e, &[1.0]))]);
    v.truncate(v.len() - 4);
    let err = read_mat_bytes(&file(e, &[v]), "t.mat").unwrap_err();
    assert!(matches!(err, MatError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("byte 128"), "{err}");
    // numeric count disagrees with the dims
    let v = matrix(e, 6, &[2, 2], "a", &[el(e, 9, &f64s(e, &[1.0]))]);
    let err = read_mat_bytes(&file(e, &[v]), "n.mat")
        .unwrap_err()
        .to_string();
    // header 128 + matrix tag 8 + flags 16 + dims 16 + packed name 8 = the data tag at 176
    assert!(
        err.contains("1 values for dimensions [2, 2]") && err.contains("byte 176"),
        "{err}"
    );
    // a cell claiming 2^31 elements in a few bytes is refused before allocating
    let v = matrix(e, 1, &[1 << 15, 1 << 16], "c", &[]);
    let err = read_mat_bytes(&file(e, &[v]), "c.mat")
        .unwrap_err()
        .to_string();
    assert!(err.contains("2147483648 cell elements"), "{err}");
    // unknown class
    let v = matrix(e, 42, &[1, 1], "q", &[]);
    let err = read_mat_bytes(&file(e, &[v]), "q.mat")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown array class 42"), "{err}");
}

#[test]
fn deep_nesting_is_refused() {
    let e = E::Le;
    let mut v = matrix(e, 6, &[1, 1], "", &[el(e, 9, &f64s(e, &[1.0]))]);
    for _ in 0..100 {
        v = matrix(e, 1, &[1, 1], "", &[v]);
    }
    let top = matrix(e, 1, &[1, 1], "deep", &[v]);
    let err = read_mat_bytes(&file(e, &[top]), "deep.mat").unwrap_err();
    assert!(matches!(err, MatError::TooDeep { limit: 64, .. }), "{err}");
}

/// Written by scipy 1.17 `savemat(..., do_compression=True)` via
/// `tests/scipy_check.py write`: header "MATLAB 5.0 MAT-file Platform: posix, ..."
/// (no comma after "MAT-file"), objects `pepmodule`/`peplooper`, a logical.
const SCIPY_FILE_HEX: &[&str] = &[
    "4d41544c414220352e30204d41542d66696c6520506c6174666f726d3a20706f7369782c2043726561746564206f6e3a",
    "20546875204e6f762032362030363a32323a353620323032360000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000001494d0f000000fb000000789ce36300026606",
    "063620c5016182012b94cf8884416a0a520b1cfd1c217c4e083f373fa5342715ae8f85810baa5e0e8853735293e37332",
    "8b4b184a12d38b216a72f2f30b528b206c3e20f66040d8cf86c57e6628cd00b553820106441c20b40494567100997703",
    "c93c983e5ce681d45b20a967c1a21ed91c01283f37bf2c33353e3305a4df008ffb6100d9fd307b91f57163b19711491f",
    "0b0313033b545f002371f105b3171a4fc8c10e8e2736a83c0f10a724962432309454a516e5c3ddb782403832a185a303",
    "9e704057cf090d4b0878600fa1bfd8a3870b079a394c68e63002fdc1c8fcef0f7a3c62b31f395c381990e347d30100d9",
    "3324f80f0000002a000000789ce36360603000623620e600624e2606306085f2198198094cb330a4e524a63301792031",
    "00243b020c",
];

fn scipy_file() -> Vec<u8> {
    let hex: String = SCIPY_FILE_HEX.concat();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn reads_a_compressed_file_written_by_scipy() {
    let f = read_mat_bytes(&scipy_file(), "scipy.mat").unwrap();
    assert!(
        f.header_text
            .starts_with("MATLAB 5.0 MAT-file Platform: posix, Created on: "),
        "{}",
        f.header_text
    );
    let pep = f.variable("pepANA").unwrap();
    assert_eq!(pep.object_class(), Some("pepmodule"));
    assert_eq!(
        pep.field("elec_list").unwrap().as_f64_vec().unwrap(),
        vec![5.0, 6.0, 10.0]
    );
    let tags = pep.field("tags").unwrap().as_cell().unwrap();
    assert_eq!(tags[0].as_string().unwrap(), "movie_id");
    assert_eq!(tags[1].dims(), &[0, 0]);
    assert_eq!(tags[2].class(), MatClass::UInt16);
    let looper = pep.field("looper").unwrap();
    assert_eq!(looper.object_class(), Some("peplooper"));
    let data = looper.field("data").unwrap().as_cell().unwrap();
    assert_eq!(
        data[1].as_i8_matrix().unwrap(),
        (2, 2, &[1i8, 3, -2, -4][..])
    );
    assert!(
        matches!(&f.variable("flag").unwrap().array().unwrap().data, MatData::Logical(b) if b == &[true, false])
    );
}
