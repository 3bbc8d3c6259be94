//! The simulation-service's replay set is read from the dataset cache one split at a time
//! (the header, then runs of rows): it must equal the same split of the whole cache read
//! at once, and a damaged file must be refused with a message saying so.

use models::recorded::{find_cache, RecordedSet};
use neural_data::cache::{Dataset, Split};

#[test]
fn a_split_read_alone_equals_the_same_split_of_the_whole_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (model_dir, data_root) = models::testing::tiny_fixture(dir.path()).unwrap();
    let model = models::V1Model::load(&model_dir).unwrap();
    let path = find_cache(&data_root, model.info()).unwrap();
    let whole = Dataset::load(&path).unwrap();
    for split in [Split::Train, Split::Validation, Split::Test] {
        let alone = Dataset::load_split(&path, split).unwrap();
        let rows = whole.indices(split);
        assert!(!rows.is_empty(), "{split:?} is empty in the fixture; the comparison would test nothing");
        assert_eq!(alone.meta, whole.meta);
        assert_eq!(alone.index, rows.iter().map(|&i| whole.index[i]).collect::<Vec<_>>(), "{split:?} index");
        assert_eq!(alone.crops, rows.iter().flat_map(|&i| whole.crop(i).to_vec()).collect::<Vec<_>>(), "{split:?} crops");
        let responses: Vec<f32> = rows.iter().flat_map(|&i| whole.response(i).to_vec()).collect();
        assert_eq!(alone.responses.len(), responses.len());
        assert!(alone.responses.iter().zip(&responses).all(|(a, b)| a.to_bits() == b.to_bits()), "{split:?} responses");
    }
    // What the service replays: the same segments, frames, crops and responses.
    let replay = RecordedSet::load(&data_root, model.info()).unwrap();
    let reference = RecordedSet::from_dataset(&whole, Split::Test);
    assert_eq!(replay.segments.len(), reference.segments.len());
    assert_eq!(replay.n_frames(), reference.n_frames());
    for (a, b) in replay.segments.iter().zip(&reference.segments) {
        assert_eq!((a.movie, a.segment, a.frames.len()), (b.movie, b.segment, b.frames.len()));
        for (fa, fb) in a.frames.iter().zip(&b.frames) {
            assert_eq!(fa.frame, fb.frame);
            assert_eq!(fa.crop.pixels, fb.crop.pixels);
            assert_eq!(fa.response, fb.response);
        }
    }
}

#[test]
fn a_damaged_cache_is_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.safetensors");
    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    let e = Dataset::load_split(&path, Split::Test).unwrap_err().to_string();
    assert!(e.contains("too short"), "{e}");
    // A header that claims more than the file holds.
    let mut bytes = 1_000_000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, &bytes).unwrap();
    let e = Dataset::load_split(&path, Split::Test).unwrap_err().to_string();
    assert!(e.contains("damaged"), "{e}");
    // A header without the cache's metadata.
    let header = br#"{"split":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[2, 2]);
    std::fs::write(&path, &bytes).unwrap();
    let e = Dataset::read_meta(&path).unwrap_err().to_string();
    assert!(e.contains("meta"), "{e}");
}
