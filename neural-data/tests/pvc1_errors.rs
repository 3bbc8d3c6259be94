//! Bad pvc-1 input gives errors that name the file and what is wrong; lenient reading
//! skips broken parts and lists them; the writer refuses inconsistent recordings.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use neural_data::pvc1::{
    read_recording, read_tree, read_tree_with, recording_to_mat, write_recording,
    write_segment_frames, Condition, ConditionKind, ElectrodeEvents, Pvc1Error, Recording,
    TreeOptions, Trial, DATA_DIR_NAME,
};
use v1_mat::{write_mat_file, Compression, MatArray, MatData, MatError, Variable};

fn ev(n: usize) -> ElectrodeEvents {
    ElectrodeEvents {
        times: (0..n).map(|k| k as f64 * 0.01).collect(),
        snippets: vec![[-30; 48]; n],
    }
}

fn rec(name: &str) -> Recording {
    Recording {
        subdir: "ac1".into(),
        name: name.into(),
        electrodes: vec![5, 6],
        conditions: vec![
            Condition {
                kind: ConditionKind::Movie {
                    movie: 0,
                    segment: 0,
                },
                condition: 1.0,
                repeats: vec![Trial {
                    tzero: 0.0,
                    time_tag: 0.0,
                    electrodes: vec![ev(2), ev(0)],
                }],
            },
            Condition {
                kind: ConditionKind::Movie {
                    movie: 0,
                    segment: 1,
                },
                condition: 2.0,
                repeats: vec![Trial {
                    tzero: 30.0,
                    time_tag: 1.0,
                    electrodes: vec![ev(1), ev(3)],
                }],
            },
        ],
    }
}

fn frames(n: usize) -> Vec<RgbImage> {
    (0..n)
        .map(|k| RgbImage::from_pixel(32, 24, Rgb([k as u8 * 40, 90, 200])))
        .collect()
}

/// A tree with segments (0,0) x3 frames and (0,1) x3 frames and two recordings.
fn tree(root: &Path) -> PathBuf {
    let data = root.join(DATA_DIR_NAME);
    write_segment_frames(&data, 0, 0, &frames(3)).unwrap();
    write_segment_frames(&data, 0, 1, &frames(3)).unwrap();
    write_recording(&data, &rec("ac1_u001_000"), Compression::Zlib).unwrap();
    write_recording(&data, &rec("ac1_u002_000"), Compression::Zlib).unwrap();
    data
}

fn seg_dir(data: &Path, s: u16) -> PathBuf {
    data.join(format!("movie_frames/movie000_{s:03}.images"))
}

#[test]
fn no_tree_at_all() {
    let root = tempfile::tempdir().unwrap();
    let err = read_tree(root.path()).unwrap_err();
    assert!(matches!(err, Pvc1Error::NoTree { .. }), "{err}");
    assert!(err.to_string().contains("crcns-ringach-data"), "{err}");
    std::fs::create_dir_all(root.path().join("movie_frames")).unwrap();
    let err = read_tree(root.path()).unwrap_err().to_string();
    assert!(err.contains("no neurodata/ folder"), "{err}");
}

#[test]
fn missing_nframes() {
    let root = tempfile::tempdir().unwrap();
    let data = tree(root.path());
    std::fs::remove_file(seg_dir(&data, 1).join("nframes")).unwrap();
    let err = read_tree(root.path()).unwrap_err();
    assert!(matches!(err, Pvc1Error::MissingNframes { .. }), "{err}");
    assert!(
        err.to_string().contains("movie000_001.images") && err.to_string().contains("nframes"),
        "{err}"
    );
}

#[test]
fn unparseable_nframes() {
    let root = tempfile::tempdir().unwrap();
    let data = tree(root.path());
    for bad in ["", "three", "3 frames", "-3", "0"] {
        std::fs::write(seg_dir(&data, 0).join("nframes"), bad).unwrap();
        let err = read_tree(root.path()).unwrap_err();
        assert!(
            matches!(err, Pvc1Error::BadNframes { .. }),
            "{bad:?}: {err}"
        );
        assert!(
            err.to_string().contains("movie000_000.images/nframes"),
            "{err}"
        );
    }
    // surrounding whitespace and a newline are fine
    std::fs::write(seg_dir(&data, 0).join("nframes"), " 3\r\n").unwrap();
    assert_eq!(read_tree(root.path()).unwrap().segments[0].nframes, 3);
}

#[test]
fn missing_frame_reports_the_first_one() {
    let root = tempfile::tempdir().unwrap();
    let data = tree(root.path());
    std::fs::remove_file(seg_dir(&data, 1).join("movie000_001_001.jpeg")).unwrap();
    let err = read_tree(root.path()).unwrap_err();
    match &err {
        Pvc1Error::MissingFrame {
            index,
            file,
            nframes,
            found,
            ..
        } => {
            assert_eq!(
                (*index, file.as_str(), *nframes, *found),
                (1, "movie000_001_001.jpeg", 3, 2)
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .contains("frame 1 (`movie000_001_001.jpeg`) is missing"),
        "{err}"
    );
}

#[test]
fn fewer_frames_than_nframes() {
    let root = tempfile::tempdir().unwrap();
    let data = tree(root.path());
    std::fs::write(seg_dir(&data, 0).join("nframes"), "900\n").unwrap();
    let err = read_tree(root.path()).unwrap_err().to_string();
    assert!(
        err.contains("frame 3 (`movie000_000_003.jpeg`) is missing")
            && err.contains("says 900 frames and 3 frame files"),
        "{err}"
    );
}

#[test]
fn corrupt_jpeg_names_the_file() {
    let root = tempfile::tempdir().unwrap();
    let data = tree(root.path());
    let bad = seg_dir(&data, 0).join("movie000_000_002.jpeg");
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&bad, &bytes[..20]).unwrap();
    let t = read_tree(root.path()).unwrap(); // existence is checked, not content
    let seg = t.segment(0, 0).unwrap();
    assert!(seg.load_frame(0).is_ok());
    let err = seg.load_frame(2).unwrap_err();
    assert!(matches!(err, Pvc1Error::FrameDecode { .. }), "{err}");
    assert!(err.to_string().contains("movie000_000_002.jpeg"), "{err}");
}

#[test]
fn truncated_mat_file() {
    let root = tempfile::tempdir().unwrap();
    let data = tree(root.path());
    let path = data.join("neurodata/ac1/ac1_u002_000.mat");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = read_recording(&path).unwrap_err();
    assert!(
        matches!(err, Pvc1Error::Mat(MatError::Truncated { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("ac1_u002_000.mat") && err.to_string().contains("truncated"),
        "{err}"
    );
    assert!(read_tree(root.path()).is_err());
}

#[test]
fn v73_file() {
    let root = tempfile::tempdir().unwrap();
    let data = tree(root.path());
    let path = data.join("neurodata/ac1/ac1_u001_000.mat");
    let mut bytes = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".to_vec();
    bytes.resize(512, b' ');
    bytes.extend_from_slice(b"\x89HDF\r\n\x1a\n");
    bytes.resize(2048, 0);
    std::fs::write(&path, bytes).unwrap();
    let err = read_recording(&path).unwrap_err();
    assert!(matches!(err, Pvc1Error::Mat(MatError::V73 { .. })), "{err}");
    assert!(err.to_string().contains("v7.3 (HDF5)"), "{err}");
}

#[test]
fn wrong_variable_name_lists_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mat");
    let vars = vec![
        Variable::new("pepana", MatArray::scalar(1.0)),
        Variable::new("notes", MatArray::string("hi")),
    ];
    write_mat_file(&path, &vars, Compression::None).unwrap();
    let err = read_recording(&path).unwrap_err();
    assert!(matches!(err, Pvc1Error::NoPepAna { .. }), "{err}");
    assert!(
        err.to_string().contains("[pepana, notes]") && err.to_string().contains("x.mat"),
        "{err}"
    );
}

/// Writes `rec` after `edit` changed its pepANA, and reads it back.
fn read_edited(rec: &Recording, edit: impl FnOnce(&mut MatArray)) -> Result<Recording, Pvc1Error> {
    let mut pep = recording_to_mat(rec).unwrap();
    edit(&mut pep);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.mat");
    write_mat_file(&path, &[Variable::new("pepANA", pep)], Compression::None).unwrap();
    read_recording(&path)
}

fn get<'a>(a: &'a mut MatArray, path: &[&str]) -> &'a mut MatArray {
    let mut cur = a;
    for step in path {
        cur = match (&mut cur.data, step.parse::<usize>()) {
            (MatData::Cell(items), Ok(i)) => &mut items[i],
            (MatData::Struct(s), _) => {
                let i = s.field_names.iter().position(|n| n == step).unwrap();
                &mut s.values[i]
            }
            _ => panic!("bad path step {step}"),
        };
    }
    cur
}

#[test]
fn times_and_snippets_disagree() {
    let err = read_edited(&rec("r"), |pep| {
        let times = get(
            pep,
            &["listOfResults", "1", "repeat", "0", "data", "1", "0"],
        );
        *times = MatArray::row_f64(vec![0.1, 0.2]); // 3 snippets stay
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Pvc1Error::Invalid { .. }), "{msg}");
    assert!(msg.contains("edited.mat"), "{msg}");
    assert!(
        msg.contains("pepANA.listOfResults{2}.repeat{1}.data{2}"),
        "{msg}"
    );
    assert!(msg.contains("condition 2, repeat 1, electrode 6"), "{msg}");
    assert!(msg.contains("2 event times but snippets are 48x3"), "{msg}");
}

#[test]
fn data_count_differs_from_elec_list() {
    let err = read_edited(&rec("r"), |pep| {
        let data = get(pep, &["listOfResults", "0", "repeat", "0", "data"]);
        if let MatData::Cell(items) = &mut data.data {
            items.pop();
        }
        data.dims = vec![1, 1];
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("condition 1, repeat 1")
            && err.contains("data has 1 entries but elec_list has 2"),
        "{err}"
    );
}

#[test]
fn counts_that_disagree_with_their_lists() {
    let err = read_edited(&rec("r"), |pep| {
        *get(pep, &["no_conditions"]) = MatArray::scalar(3.0)
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no_conditions is 3 but listOfResults has 2"),
        "{err}"
    );
    let err = read_edited(&rec("r"), |pep| {
        *get(pep, &["listOfResults", "0", "noRepeats"]) = MatArray::scalar(10.0)
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("condition 1") && err.contains("noRepeats is 10 but repeat has 1"),
        "{err}"
    );
    let err = read_edited(&rec("r"), |pep| {
        *get(pep, &["elec_list"]) = MatArray::row_f64(vec![5.0, 101.0])
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("elec_list(2) = 101"), "{err}");
}

#[test]
fn missing_and_mistyped_fields_name_the_node() {
    let err = read_edited(&rec("r"), |pep| {
        if let MatData::Struct(s) = &mut get(pep, &["listOfResults", "1", "repeat", "0"]).data {
            let i = s.field_names.iter().position(|f| f == "tzero").unwrap();
            s.field_names[i] = "t0".into();
        }
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("pepANA.listOfResults{2}.repeat{1}")
            && err.contains("no field `tzero`")
            && err.contains("timeTag, t0, sync, period, data"),
        "{err}"
    );
    let err = read_edited(&rec("r"), |pep| {
        *get(
            pep,
            &["listOfResults", "0", "repeat", "0", "data", "0", "1"],
        ) = MatArray::string("oops")
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("pepANA.listOfResults{1}.repeat{1}.data{1}{2}") && err.contains("char"),
        "{err}"
    );
}

#[test]
fn empty_electrodes_are_accepted() {
    let mut r = rec("r");
    for c in &mut r.conditions {
        for t in &mut c.repeats {
            t.electrodes = vec![ElectrodeEvents::default(); 2];
        }
    }
    let back = read_edited(&r, |_| {}).unwrap();
    assert_eq!(back.conditions, r.conditions);
    assert_eq!(back.electrodes, r.electrodes);
}

#[test]
fn lenient_mode_skips_and_lists_problems_strict_mode_fails() {
    let root = tempfile::tempdir().unwrap();
    let data = tree(root.path());
    std::fs::remove_file(seg_dir(&data, 0).join("nframes")).unwrap();
    std::fs::write(
        data.join("neurodata/ac1/ac1_u001_000.mat"),
        b"not a mat file",
    )
    .unwrap();
    // unrelated entries are ignored
    std::fs::write(data.join("movie_frames/README"), b"x").unwrap();
    std::fs::create_dir_all(data.join("movie_frames/movie0_0.images")).unwrap();
    std::fs::write(data.join("neurodata/ac1/notes.txt"), b"x").unwrap();

    assert!(read_tree(root.path()).is_err());
    let t = read_tree_with(root.path(), &TreeOptions::lenient()).unwrap();
    assert_eq!(
        t.segments
            .iter()
            .map(|s| (s.movie, s.segment))
            .collect::<Vec<_>>(),
        vec![(0, 1)]
    );
    assert_eq!(t.recordings.len(), 1);
    assert_eq!(t.recordings[0].name, "ac1_u002_000");
    assert_eq!(t.problems.len(), 2);
    assert!(t.problems[0].path.ends_with("movie000_000.images"));
    assert!(matches!(
        t.problems[0].error,
        Pvc1Error::MissingNframes { .. }
    ));
    assert!(t.problems[1].path.ends_with("ac1_u001_000.mat"));
    let msg = t.problems[1].to_string();
    assert!(
        msg.starts_with("skipped ") && msg.contains("not a Level-5 MAT file"),
        "{msg}"
    );
}

#[test]
fn writer_refuses_inconsistent_recordings_and_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rec("r");
    r.conditions[1].repeats[0].electrodes.pop();
    let err = write_recording(dir.path(), &r, Compression::Zlib)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("condition 2 repeat 1 has 1 electrodes, the recording has 2"),
        "{err}"
    );
    let mut r = rec("r");
    r.conditions[0].repeats[0].electrodes[0].snippets.pop();
    let err = write_recording(dir.path(), &r, Compression::Zlib)
        .unwrap_err()
        .to_string();
    assert!(err.contains("electrode 5: 2 times but 1 snippets"), "{err}");
    let mut r = rec("r");
    r.electrodes[0] = 0;
    assert!(write_recording(dir.path(), &r, Compression::Zlib)
        .unwrap_err()
        .to_string()
        .contains("outside 1..=100"));
    let mut r = rec("../escape");
    r.subdir = "ac1".into();
    assert!(write_recording(dir.path(), &r, Compression::Zlib)
        .unwrap_err()
        .to_string()
        .contains("not a usable file name"));
    let err = write_segment_frames(dir.path(), 0, 0, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least one frame"), "{err}");
    let err = write_segment_frames(dir.path(), 1000, 0, &frames(1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("three digits"), "{err}");
    // nothing was created by the refused writes
    assert!(!dir.path().join("neurodata").exists() && !dir.path().join("movie_frames").exists());
}
