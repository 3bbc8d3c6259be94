//! pvc-1 write -> read round trips: recordings (movie and `rseed` conditions, empty
//! electrodes, 10 repeats), whole trees with frames, and the variants of the real files
//! the reader must tolerate (objects, squeezed `repeat`, other field order and extra
//! fields, other empty shapes, a single snippet as a vector, snippets stored as double).

use std::path::Path;

use image::{Rgb, RgbImage};
use neural_data::pvc1::{
    read_recording, read_tree, recording_to_mat, segment_dir_name, write_recording,
    write_segment_frames, Condition, ConditionKind, ElectrodeEvents, Recording, Trial,
    DATA_DIR_NAME, SNIPPET_LEN,
};
use v1_mat::{write_mat_file, Compression, MatArray, MatData, NumericData, Variable};

fn snippet(seed: usize) -> [i8; SNIPPET_LEN] {
    let mut s = [0i8; SNIPPET_LEN];
    for (i, v) in s.iter_mut().enumerate() {
        // a trough near sample 10, different per event
        *v = if i == 10 {
            -90 + (seed % 30) as i8
        } else {
            ((i * 5 + seed) % 40) as i8 - 20
        };
    }
    s
}

fn events(n: usize, seed: usize) -> ElectrodeEvents {
    ElectrodeEvents {
        times: (0..n)
            .map(|k| ((k * 1013 + seed * 7) as f64) / 30_000.0)
            .collect(),
        snippets: (0..n).map(|k| snippet(seed + k)).collect(),
    }
}

fn trial(r: usize, n_elec: usize, seed: usize) -> Trial {
    Trial {
        tzero: 1000.0 + 35.0 * r as f64,
        time_tag: r as f64,
        electrodes: (0..n_elec)
            .map(|e| match (e + r) % 4 {
                0 => ElectrodeEvents::default(),
                1 => events(1, seed + e),
                _ => events(3 + e, seed + e),
            })
            .collect(),
    }
}

pub fn single_trial_recording(name: &str) -> Recording {
    let electrodes = vec![5, 6, 10, 13, 15];
    let mut conditions: Vec<Condition> = (0..4)
        .map(|k| Condition {
            kind: ConditionKind::Movie {
                movie: k / 2,
                segment: k % 2,
            },
            condition: k as f64 + 1.0,
            repeats: vec![trial(k as usize, electrodes.len(), k as usize * 11)],
        })
        .collect();
    conditions.push(Condition {
        kind: ConditionKind::Other {
            symbols: vec!["rseed".into(), "contrast".into()],
            values: vec![4711.0, 0.5],
        },
        condition: 5.0,
        repeats: vec![trial(9, electrodes.len(), 3)],
    });
    Recording {
        subdir: "ac1".into(),
        name: name.into(),
        electrodes,
        conditions,
    }
}

fn repeat_recording() -> Recording {
    let electrodes = vec![22, 23, 26];
    let conditions = (0..2)
        .map(|s| Condition {
            kind: ConditionKind::Movie {
                movie: 0,
                segment: s,
            },
            condition: s as f64 + 1.0,
            repeats: (0..10)
                .map(|r| trial(r, electrodes.len(), r + s as usize * 100))
                .collect(),
        })
        .collect();
    Recording {
        subdir: "ac1".into(),
        name: "ac1_u007_010".into(),
        electrodes,
        conditions,
    }
}

#[test]
fn recordings_round_trip_compressed_and_uncompressed() {
    let dir = tempfile::tempdir().unwrap();
    for rec in [single_trial_recording("ac1_u004_000"), repeat_recording()] {
        for compression in [Compression::Zlib, Compression::None] {
            let path = write_recording(dir.path(), &rec, compression).unwrap();
            assert_eq!(
                path,
                dir.path()
                    .join("neurodata/ac1")
                    .join(format!("{}.mat", rec.name))
            );
            assert_eq!(read_recording(&path).unwrap(), rec);
        }
    }
}

#[test]
fn recording_with_no_electrodes_and_no_conditions_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for rec in [
        Recording {
            subdir: "x".into(),
            name: "none".into(),
            electrodes: vec![],
            conditions: vec![],
        },
        Recording {
            subdir: "x".into(),
            name: "silent".into(),
            electrodes: vec![1, 100],
            conditions: vec![Condition {
                kind: ConditionKind::Movie {
                    movie: 3,
                    segment: 29,
                },
                condition: 0.0,
                repeats: vec![Trial {
                    tzero: 0.0,
                    time_tag: 0.0,
                    electrodes: vec![ElectrodeEvents::default(); 2],
                }],
            }],
        },
    ] {
        let path = write_recording(dir.path(), &rec, Compression::Zlib).unwrap();
        assert_eq!(read_recording(&path).unwrap(), rec);
    }
}

fn frame(k: usize) -> RgbImage {
    RgbImage::from_fn(320, 240, |x, y| {
        Rgb([(x / 2) as u8, (y + k as u32 * 20) as u8, 128])
    })
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as i64 - y as i64).unsigned_abs())
        .sum();
    s as f64 / a.as_raw().len() as f64
}

pub fn write_tree(root: &Path) -> Vec<Recording> {
    let data = root.join(DATA_DIR_NAME);
    for (m, s, n) in [(1u16, 0u16, 2usize), (0, 1, 3), (0, 0, 4)] {
        let frames: Vec<RgbImage> = (0..n).map(frame).collect();
        let dir = write_segment_frames(&data, m, s, &frames).unwrap();
        assert_eq!(dir, data.join("movie_frames").join(segment_dir_name(m, s)));
    }
    let mut other = single_trial_recording("bc2_u001_000");
    other.subdir = "bc2".into();
    let recs = vec![
        single_trial_recording("ac1_u004_000"),
        repeat_recording(),
        other,
    ];
    for r in &recs {
        write_recording(&data, r, Compression::Zlib).unwrap();
    }
    recs
}

#[test]
fn tree_round_trips_from_the_parent_or_the_data_folder() {
    let root = tempfile::tempdir().unwrap();
    let recs = write_tree(root.path());
    for start in [root.path().to_path_buf(), root.path().join(DATA_DIR_NAME)] {
        let tree = read_tree(&start).unwrap();
        assert_eq!(tree.root, root.path().join(DATA_DIR_NAME));
        assert!(tree.problems.is_empty());
        let segs: Vec<_> = tree
            .segments
            .iter()
            .map(|s| (s.movie, s.segment, s.nframes))
            .collect();
        assert_eq!(segs, vec![(0, 0, 4), (0, 1, 3), (1, 0, 2)]);
        // sorted by path: ac1/ac1_u004_000, ac1/ac1_u007_010, bc2/bc2_u001_000
        assert_eq!(tree.recordings, recs);
        let seg = tree.segment(0, 1).unwrap();
        assert_eq!(seg.frame_path(2), seg.dir.join("movie000_001_002.jpeg"));
        assert_eq!(seg.frame_paths().len(), 3);
        for k in 0..3 {
            let img = seg.load_frame(k).unwrap();
            assert_eq!(img.dimensions(), (320, 240));
            let d = mean_abs_diff(&img, &frame(k));
            assert!(d < 3.0, "frame {k}: mean abs diff {d}");
        }
        assert!(seg
            .load_frame(3)
            .unwrap_err()
            .to_string()
            .contains("segment has 3 frames"));
    }
}

#[test]
fn written_frames_are_baseline_jpeg_and_nframes_is_a_plain_integer() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_segment_frames(root.path(), 2, 29, &[frame(0), frame(1)]).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("nframes")).unwrap(), "2\n");
    let jpeg = std::fs::read(dir.join("movie002_029_001.jpeg")).unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "SOI");
    // a baseline frame header (SOF0 = FFC0), no progressive SOF2 (FFC2)
    assert!(jpeg.windows(2).any(|w| w == [0xFF, 0xC0]));
    assert!(!jpeg.windows(2).any(|w| w == [0xFF, 0xC2]));
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names,
        vec!["movie002_029_000.jpeg", "movie002_029_001.jpeg", "nframes"],
        "no temp files left"
    );
    // Rewriting with fewer frames updates nframes.
    write_segment_frames(root.path(), 2, 29, &[frame(5)]).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("nframes")).unwrap(), "1\n");
}

// ---- tolerance of the variants of real files ----

fn field_mut<'a>(a: &'a mut MatArray, name: &str) -> &'a mut MatArray {
    match &mut a.data {
        MatData::Struct(s) => {
            let i = s.field_names.iter().position(|n| n == name).unwrap();
            &mut s.values[i]
        }
        _ => panic!("not a struct"),
    }
}

fn cell_mut(a: &mut MatArray, i: usize) -> &mut MatArray {
    match &mut a.data {
        MatData::Cell(items) => &mut items[i],
        _ => panic!("not a cell"),
    }
}

fn to_object(a: &mut MatArray, class: &str) {
    if let MatData::Struct(s) = &mut a.data {
        s.class_name = Some(class.into());
    }
}

fn write_pep(
    dir: &Path,
    name: &str,
    pep: MatArray,
    compression: Compression,
) -> std::path::PathBuf {
    let sub = dir.join("neurodata/ac1");
    std::fs::create_dir_all(&sub).unwrap();
    let path = sub.join(format!("{name}.mat"));
    write_mat_file(&path, &[Variable::new("pepANA", pep)], compression).unwrap();
    path
}

#[test]
fn objects_squeezed_repeats_reordered_and_extra_fields_are_read() {
    let rec = single_trial_recording("odd");
    let mut pep = recording_to_mat(&rec).unwrap();
    to_object(&mut pep, "pepmodule");
    // reorder pepANA's fields and add extra ones
    if let MatData::Struct(s) = &mut pep.data {
        s.field_names.reverse();
        s.values.reverse();
        s.field_names.push("comment".into());
        s.values.push(MatArray::string("extra"));
    }
    let n_cond = rec.conditions.len();
    for c in 0..n_cond {
        let cond = cell_mut(field_mut(&mut pep, "listOfResults"), c);
        to_object(cond, "peplooper");
        // squeeze the 1x1 repeat cell to the struct it holds
        let repeat = field_mut(cond, "repeat");
        let inner = cell_mut(repeat, 0).clone();
        *repeat = inner;
        if let MatData::Struct(s) = &mut cond.data {
            s.field_names.insert(0, "lastTrial".into());
            s.values.insert(0, MatArray::scalar(-1.0));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_pep(dir.path(), "odd", pep, Compression::None);
    assert_eq!(read_recording(&path).unwrap(), rec);
}

#[test]
fn other_empty_shapes_single_vectors_and_double_snippets_are_read() {
    let mut rec = single_trial_recording("shapes");
    // condition 1, repeat 1: electrode 1 empty (the generator made (e + r) % 4 == 0 empty)
    let mut pep = recording_to_mat(&rec).unwrap();
    {
        let data = field_mut(
            cell_mut(
                field_mut(cell_mut(field_mut(&mut pep, "listOfResults"), 0), "repeat"),
                0,
            ),
            "data",
        );
        // electrode 1 (empty): 0x0 times and 0x0 snippets
        *cell_mut(data, 0) = MatArray::cell_row(vec![MatArray::empty(), MatArray::empty()]);
        // electrode 2 (one event): snippet as a 1x48 row
        let e2 = cell_mut(data, 1);
        let snip = match &cell_mut(e2, 1).data {
            MatData::Numeric(NumericData::I8(v)) => v.clone(),
            other => panic!("{other:?}"),
        };
        *cell_mut(e2, 1) = MatArray::matrix_i8(1, 48, snip);
        // electrode 3: snippets stored as double, times as a column
        let e3 = cell_mut(data, 2);
        let (times, snips) = match (&cell_mut(e3, 0).data.clone(), &cell_mut(e3, 1).data.clone()) {
            (MatData::Numeric(NumericData::F64(t)), MatData::Numeric(NumericData::I8(s))) => {
                (t.clone(), s.clone())
            }
            other => panic!("{other:?}"),
        };
        let n = times.len();
        *cell_mut(e3, 0) = MatArray::matrix_f64(n, 1, times);
        *cell_mut(e3, 1) = MatArray::matrix_f64(48, n, snips.iter().map(|&v| v as f64).collect());
        // electrode 4: the whole data{e} entry is [] (no events)
        *cell_mut(data, 3) = MatArray::empty();
    }
    rec.conditions[0].repeats[0].electrodes[3] = ElectrodeEvents::default();
    // values as a numeric vector instead of a cell; symbols order swapped
    {
        let cond = cell_mut(field_mut(&mut pep, "listOfResults"), 1);
        *field_mut(cond, "values") = MatArray::row_f64(vec![1.0, 0.0]);
        *field_mut(cond, "symbols") = MatArray::cell_row(vec![
            MatArray::string("segment_id"),
            MatArray::string("movie_id"),
        ]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_pep(dir.path(), "shapes", pep, Compression::Zlib);
    assert_eq!(read_recording(&path).unwrap(), rec);
}

/// The fuzz seeds are pepANA files written by scipy's savemat (see
/// `mat/fuzz/make_seeds.py`): plain structs and `pepmodule`/`peplooper` objects,
/// compressed and not. They read as the same recording, without Python.
#[test]
fn pepana_files_written_by_scipy_are_read() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mat/fuzz/seeds/mat_reader");
    let mut seen = 0;
    for name in [
        "pepana_struct_plain",
        "pepana_struct_zlib",
        "pepana_obj_plain",
        "pepana_obj_zlib",
    ] {
        let r = read_recording(&seeds.join(format!("{name}.mat"))).unwrap();
        assert_eq!((r.subdir.as_str(), r.name.as_str()), ("mat_reader", name));
        assert_eq!(r.electrodes, vec![5, 6]);
        assert_eq!(r.conditions.len(), 2);
        assert_eq!(
            r.conditions[0].kind,
            ConditionKind::Movie {
                movie: 0,
                segment: 3
            }
        );
        assert_eq!(
            r.conditions[1].kind,
            ConditionKind::Other {
                symbols: vec!["rseed".into()],
                values: vec![7.0]
            }
        );
        let t = &r.conditions[0].repeats[0];
        assert_eq!((t.tzero, t.time_tag), (12.5, 0.0));
        assert_eq!(t.electrodes[0].times, vec![0.01, 0.5]);
        // column 2 of the 48x2 snippet matrix starts at element 48: 48 % 120 - 60
        assert_eq!(t.electrodes[0].snippets[1][0], -12);
        assert_eq!(t.electrodes[1], ElectrodeEvents::default());
        seen += 1;
    }
    assert_eq!(seen, 4);
}

// ---- trees written by earlier versions of this crate ----

/// A recording file as earlier versions of this writer wrote it: `pepANA` with only
/// `no_conditions, elec_list, listOfResults`; conditions `noRepeats, symbols, values,
/// condition, repeat`; repeats `data, tzero, timeTag`; every number stored as miDOUBLE;
/// zlib-compressed. Simulated trees on disk keep that layout until they are regenerated.
/// It holds [`former_layout_recording`].
const FORMER_LAYOUT_FILE_HEX: &[&str] = &[
    "4d41544c414220352e30204d41542d66696c652c20506c6174666f726d3a2073696d756c617465642056312c20437265",
    "61746564206f6e3a20736565642037202020202020202020202020202020202020202020202020202020202020202020",
    "202020202020202020202020202020202020202000000000000000000001494d0f000000fe020000789ced56494f1441",
    "147e3d9bc3a8e320a8a8a8e00a6e800ba21e66b8184f98100e921899ad980c992dd30d460f5cfc03245e3c198c817824",
    "21241e386022e3881b8a0aee022e232e20b88e8a76f5b44cdb74f7d8d3e3440c2fa954d7abfa5ebff755d5ab67045ab2",
    "007474a7a79b0a62a265c704a7e135011428af28c7f31ac863f556baf9fc350ebfcfe9a6dc7e1f09d3057990a3c6e326",
    "2910163c75a0b61291f51e4a086fa45b19c4fdd449f8892583d5b362c1f8fd09f06a1e3e670a9e6d89f5a56c5fcdd80b",
    "67c6ed1102f6541c3d5e3f60f8339e63fa38bfcd80f9ad44016413e4060b79d46bf77bc466011a6c9e7a243e0d539b27",
    "321f64fe2e8e4fc5feb4813c3eb9ffd308ace7da31b163afbfc18d6adc4e8cb724c01b78783c2691cb8b7c146d21eec7",
    "59057ecbe369ccac0c9f6b49c5ff4d7a79f1ea35c99d7b2bdd9c36ca0612421d4341bfd4bcdb8baa6c2ed179ec5f4425",
    "1d8f9a178f8590177f3279e7b8213f1aeeaa329f76b58f901d2de623c33da180bd83e1bf8b634fcfb357ccb387fb26ba",
    "75f75cbf75f7d170e4cdf8a76f846eae69d1b2556b0bb76e2f13d387afdeec7f30f8fcd5d887e80f4d86312b67c5ea0d",
    "9b4b4af78ae92ff7debef7f8e9cbb7139fbfabe6cccb5cbc3c6fddc6a21dbb43627a1cc74990c76371021e81c7a3104e",
    "882f10c0635c2ffcfd7b1d6daceba44e1c64f6d59ac04f82e727d6856412afecfe172acc1f2cafea7f3b1fb4c9cc077a",
    "99f9c002d2fc71d763fef0db1398686fccab3d648e4cf6b79e1a6f61ce4b13489f17ae9d5ffc5dbc72e3cefd27cf4646",
    "df7f9954ebe72f5c929bbf7e53f1ce3d627a9969a33b5df786a123d79af4bd919bdf6642be4afe5eee4b495d704e375b",
    "df4af1d30ca9ad6fb5f07b7d8ac7411221274c3f479a04fe9ae82f1fa4bb9e2d5178eeaa95be470c1e34d2f112bc78ff",
    "b7f72b1df9bac87786e8d4da93ced797aef50d3c1c7af1faddc7afa0352cc85eba724dc1966dbb2e88e96742be4e47dd",
    "5057101eca1c7598fb068de70f57b4265d37c8ad03643eaf6145f7d854a5380ffc0413be9d47",
];

fn former_layout_recording() -> Recording {
    let ev = |n: usize, seed: i32| ElectrodeEvents {
        times: (0..n)
            .map(|k| (k as f64 * 1234.0 + seed as f64 * 7.0 + 31.0) / 30_000.0)
            .collect(),
        snippets: (0..n)
            .map(|k| {
                let mut s = [0i8; SNIPPET_LEN];
                for (i, v) in s.iter_mut().enumerate() {
                    *v = ((i as i32 * 5 + k as i32 * 3 + seed) % 120 - 60) as i8;
                }
                s
            })
            .collect(),
    };
    let trial = |tzero: f64, time_tag: f64, electrodes| Trial {
        tzero,
        time_tag,
        electrodes,
    };
    Recording {
        subdir: "ac1".into(),
        name: "ac1_u004_000".into(),
        electrodes: vec![5, 22, 100],
        conditions: vec![
            Condition {
                kind: ConditionKind::Movie {
                    movie: 1,
                    segment: 7,
                },
                condition: 1.0,
                repeats: vec![
                    trial(12.5, 0.0, vec![ev(3, 1), ev(0, 0), ev(1, 2)]),
                    trial(44.0, 1.0, vec![ev(2, 3), ev(1, 4), ev(0, 0)]),
                ],
            },
            Condition {
                kind: ConditionKind::Other {
                    symbols: vec!["rseed".into(), "n".into()],
                    values: vec![17.0, 100.0],
                },
                condition: 2.0,
                repeats: vec![trial(80.25, 2.0, vec![ev(1, 5), ev(0, 0), ev(2, 6)])],
            },
        ],
    }
}

#[test]
fn files_in_the_former_field_order_with_double_storage_still_read() {
    use v1_mat::{read_mat_bytes, MatClass};
    let hex: String = FORMER_LAYOUT_FILE_HEX.concat();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    // It is the layout it claims to be (so this test cannot pass on a new-layout file).
    let file = read_mat_bytes(&bytes, "former.mat").unwrap();
    let pep = file.variable("pepANA").unwrap();
    assert_eq!(
        pep.field_names().unwrap(),
        ["no_conditions", "elec_list", "listOfResults"]
    );
    assert_eq!(pep.field("elec_list").unwrap().class(), MatClass::Double);

    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("neurodata/ac1");
    std::fs::create_dir_all(&sub).unwrap();
    let path = sub.join("ac1_u004_000.mat");
    std::fs::write(&path, &bytes).unwrap();
    let rec = read_recording(&path).unwrap();
    assert_eq!(rec, former_layout_recording());

    // The current writer stores the same recording in the new layout; both read the same,
    // value for value (bit for bit: -0.0 and 0.0 would compare equal).
    let path_new = write_recording(&dir.path().join("new"), &rec, Compression::Zlib).unwrap();
    let rec_new = read_recording(&path_new).unwrap();
    assert_eq!(rec_new, rec);
    let bits = |r: &Recording| -> Vec<u64> {
        let mut v: Vec<u64> = r.electrodes.iter().map(|&e| u64::from(e)).collect();
        for c in &r.conditions {
            v.push(c.condition.to_bits());
            if let ConditionKind::Other { values, .. } = &c.kind {
                v.extend(values.iter().map(|x| x.to_bits()));
            }
            for t in &c.repeats {
                v.extend([t.tzero.to_bits(), t.time_tag.to_bits()]);
                for e in &t.electrodes {
                    v.extend(e.times.iter().map(|x| x.to_bits()));
                }
            }
        }
        v
    };
    assert_eq!(bits(&rec_new), bits(&rec));
}
