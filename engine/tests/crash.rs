//! Crash images and corruption: what survives on disk after a crash is the checkpointed
//! prefix of `storage.dat` plus whatever torn tail the kernel happened to write. Reopening
//! must recover exactly the checkpointed state, and damage inside the durable region must
//! be reported with file and offset, never skipped.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use proptest::prelude::*;
use sutra_engine::*;

struct Image {
    /// Concepts as of the checkpoint.
    durable: std::collections::BTreeMap<String, Concept>,
    durable_len: u64,
    live_len: u64,
    data: Vec<u8>,
    checkpoint: Vec<u8>,
}

/// Writes, checkpoints, writes more, and captures the files as a crash would leave them
/// (the un-checkpointed tail is present, as if the kernel had flushed it).
fn make_image(seed: u64) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    for i in 0..40 {
        let c = with_embedding(
            concept(
                &format!("k{:02}", (i * 7 + seed) % 23),
                &"x".repeat(i as usize),
            ),
            [i as f32, 1.0, 2.0, 3.0],
        );
        apply(&engine, vec![put(c)]);
        if i % 5 == 0 && i > 0 {
            apply(
                &engine,
                vec![edge(
                    &format!("k{:02}", (i * 7 + seed) % 23),
                    &format!("k{:02}", (i * 7 + seed) % 23),
                    "self",
                    1.0,
                )],
            );
        }
    }
    let durable_len = engine.checkpoint().unwrap().data_len;
    let durable = all_concepts(&engine);
    for i in 0..30 {
        apply(&engine, vec![put(concept(&format!("late{i}"), "tail"))]);
        apply(
            &engine,
            vec![WriteOp::DeleteConcept {
                id: format!("k{:02}", i % 23),
                expected_version: None,
            }],
        );
    }
    let live_len = engine.stats().data_bytes;
    drop(engine);
    Image {
        durable,
        durable_len,
        live_len,
        data: fs::read(dir.path().join("storage.dat")).unwrap(),
        checkpoint: fs::read(dir.path().join("checkpoint")).unwrap(),
    }
}

fn write_image(dir: &Path, data: &[u8], checkpoint: &[u8]) {
    fs::write(dir.join("storage.dat"), data).unwrap();
    fs::write(dir.join("checkpoint"), checkpoint).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Cut anywhere past the durable length, append garbage: exactly the checkpointed
    /// state comes back, nothing invented.
    #[test]
    fn torn_tail_recovers_checkpointed_state(seed in 0u64..5, cut in 0.0f64..=1.0, garbage in prop::collection::vec(any::<u8>(), 0..600)) {
        let img = make_image(seed);
        prop_assert!(img.live_len > img.durable_len);
        let cut_at = img.durable_len + ((img.live_len - img.durable_len) as f64 * cut) as u64;
        let mut data = img.data[..cut_at as usize].to_vec();
        data.extend_from_slice(&garbage);
        let dir = tempfile::tempdir().unwrap();
        write_image(dir.path(), &data, &img.checkpoint);
        let engine = open(dir.path());
        prop_assert_eq!(all_concepts(&engine), img.durable.clone());
        prop_assert_eq!(engine.stats().data_bytes, img.durable_len);
        // The store keeps working after recovery.
        apply(&engine, vec![put(concept("after", "crash"))]);
        drop(engine);
        let engine = open(dir.path());
        prop_assert!(engine.get("after").unwrap().is_none(), "not checkpointed, so not durable");
    }

    /// A single flipped byte anywhere in the durable records is reported as corruption
    /// of `storage.dat` at the offset of the record that holds it.
    #[test]
    fn flipped_byte_in_durable_region_is_reported(seed in 0u64..5, at in 0.0f64..1.0, bit in 0u8..8) {
        let img = make_image(seed);
        let pos = 64 + ((img.durable_len - 64) as f64 * at) as usize;
        let mut data = img.data.clone();
        data[pos] ^= 1 << bit;
        let dir = tempfile::tempdir().unwrap();
        write_image(dir.path(), &data, &img.checkpoint);
        match Engine::open(dir.path(), config()) {
            Err(Error::Corrupted { file, offset, .. }) => {
                prop_assert!(file.ends_with("storage.dat"), "file {}", file.display());
                prop_assert!(offset <= pos as u64 && pos as u64 - offset < 4096, "offset {offset}, flipped {pos}");
                prop_assert_eq!(offset % 8, 0);
            }
            other => prop_assert!(false, "expected corruption, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn truncated_durable_region_is_corruption() {
    let img = make_image(1);
    let dir = tempfile::tempdir().unwrap();
    write_image(
        dir.path(),
        &img.data[..img.durable_len as usize - 8],
        &img.checkpoint,
    );
    let err = Engine::open(dir.path(), config()).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, Error::Corrupted { ref file, .. } if file.ends_with("storage.dat")),
        "{err}"
    );
}

#[test]
fn damaged_header_and_checkpoint_are_reported() {
    let img = make_image(2);
    for at in [0usize, 13, 40] {
        let dir = tempfile::tempdir().unwrap();
        let mut data = img.data.clone();
        data[at] ^= 0xff;
        write_image(dir.path(), &data, &img.checkpoint);
        let err = Engine::open(dir.path(), config()).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, Error::Corrupted { ref file, .. } if file.ends_with("storage.dat")),
            "header byte {at}: {err}"
        );
    }
    for at in [0usize, 20, img.checkpoint.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        let mut ck = img.checkpoint.clone();
        ck[at] ^= 0xff;
        write_image(dir.path(), &img.data, &ck);
        let err = Engine::open(dir.path(), config()).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, Error::Corrupted { ref file, .. } if file.ends_with("checkpoint")),
            "checkpoint byte {at}: {err}"
        );
        assert!(
            err.to_string().contains("checkpoint"),
            "message names the file: {err}"
        );
    }
}

#[test]
fn missing_checkpoint_with_data_is_not_silently_reset() {
    let img = make_image(3);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("storage.dat"), &img.data).unwrap();
    let err = Engine::open(dir.path(), config()).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
}

#[test]
fn other_vector_dimension_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let mut cfg = config();
    cfg.params.vector_dimension = DIM + 1;
    let err = Engine::open(dir.path(), cfg).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
}

#[test]
fn second_open_of_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _engine = open(dir.path());
    let err = Engine::open(dir.path(), config()).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
}
