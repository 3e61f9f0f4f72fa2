//! Turning a backup's payload into a store: [`install`] for a restore, [`verify`] into a
//! scratch directory to prove a file end to end (checksums, then the content hash the
//! store recomputes as it loads, against the manifest's).

use std::path::Path;

use sutra_engine::{ContentDigest, Engine, EngineConfig, StoreParams};

use crate::file::BackupReader;
use crate::{Error, Result};

/// What installing a backup produced.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// The content digest the installed store computed (equal to the manifest's).
    pub digest: ContentDigest,
    /// The applied position the backup's stream carried.
    pub position: Vec<u8>,
}

/// Installs the backup read by `reader` as the store in `dir`, which must hold no store
/// yet, with `position` as its applied position instead of the backup's when given (a
/// restore into a new cluster). Every frame is checked as it streams; the store checks
/// the stream's length and CRC32C and every record before it is swapped in; then its
/// content hash and version must equal the manifest's. Returns the open store.
pub fn install(
    reader: &BackupReader,
    dir: &Path,
    position: Option<Vec<u8>>,
) -> Result<(Engine, InstallReport)> {
    let config = EngineConfig {
        params: StoreParams::UNSET,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir, config)?;
    if engine.applied().0 != 0 {
        return Err(Error::Mismatch {
            path: dir.to_path_buf(),
            what: "the directory already holds a store".into(),
        });
    }
    let mut installer = engine.begin_install()?;
    if let Some(p) = position {
        installer.replace_position(p);
    }
    let mut offset = 0u64;
    reader.read_payload(|bytes| {
        installer.write(offset, bytes)?;
        offset += bytes.len() as u64;
        Ok(())
    })?;
    let m = reader.manifest();
    let staged = installer.finish(m.snapshot_bytes, m.snapshot_crc32c)?;
    let original = staged.position().to_vec();
    engine.install_snapshot(staged)?;
    let digest = engine.content_digest();
    if digest.to_hex() != m.content_hash || digest.version != m.applied_index {
        return Err(Error::Mismatch {
            path: reader.path().to_path_buf(),
            what: format!(
                "the payload holds content {} at index {}; the manifest says {} at {}",
                digest.to_hex(),
                digest.version,
                m.content_hash,
                m.applied_index
            ),
        });
    }
    tracing::info!(
        index = digest.version,
        concepts = digest.concepts,
        edges = digest.edges,
        dir = %dir.display(),
        "backup installed"
    );
    Ok((
        engine,
        InstallReport {
            digest,
            position: original,
        },
    ))
}

/// Proves the backup read by `reader`: installs it into a scratch directory under
/// `scratch` (removed after) and checks everything [`install`] checks.
pub fn verify(reader: &BackupReader, scratch: &Path) -> Result<InstallReport> {
    let dir = tempfile::Builder::new()
        .prefix("sutra-backup-verify-")
        .tempdir_in(scratch)
        .map_err(|e| Error::Io {
            op: "create a scratch directory in",
            path: scratch.to_path_buf(),
            source: e,
        })?;
    let (engine, report) = install(reader, &dir.path().join("store"), None)?;
    drop(engine);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackupWriter, FORMAT_VERSION, Manifest};
    use sutra_engine::{ApplyContext, Concept, WriteBatch, WriteOp};

    fn store_with_data(dir: &Path) -> Engine {
        let engine = Engine::open(dir, EngineConfig::default()).unwrap();
        for i in 0..50u64 {
            let batch = WriteBatch {
                session: None,
                ops: vec![WriteOp::PutConcept {
                    concept: Concept {
                        id: format!("c{i}"),
                        content: format!("content {i}").into_bytes(),
                        ..Concept::default()
                    },
                    expected_version: None,
                }],
            };
            engine
                .apply(
                    &batch,
                    ApplyContext {
                        version: i + 1,
                        position: b"pos",
                        time_ms: 0,
                    },
                )
                .unwrap();
        }
        engine
    }

    fn backup_of(engine: &Engine, path: &Path) {
        let (snap, digest) = engine.snapshot_with_digest().unwrap();
        let mut w = BackupWriter::create(path).unwrap();
        for (_, chunk) in snap.chunks(100_000) {
            w.write(&chunk).unwrap();
        }
        w.finish(Manifest {
            format: FORMAT_VERSION,
            cluster_id: "c".into(),
            source_node: 1,
            applied_index: digest.version,
            term: 1,
            membership: serde_json::json!({}),
            last_log_id: serde_json::json!(null),
            cluster_state: serde_json::json!({}),
            binary_version: "0".into(),
            binary_commit: "0".into(),
            created_unix_s: 0,
            concepts: digest.concepts,
            edges: digest.edges,
            sessions: digest.sessions,
            content_hash: digest.to_hex(),
            snapshot_bytes: snap.meta().size,
            snapshot_crc32c: snap.meta().crc32c,
            payload_sha256: String::new(),
        })
        .unwrap();
    }

    #[test]
    fn a_backup_installs_to_the_same_content_and_can_take_a_new_position() {
        let dir = tempfile::tempdir().unwrap();
        let source = store_with_data(&dir.path().join("src"));
        let file = dir.path().join("b");
        backup_of(&source, &file);
        let reader = BackupReader::open(&file).unwrap();
        let report = verify(&reader, dir.path()).unwrap();
        assert_eq!(report.digest, source.content_digest());
        assert_eq!(report.position, b"pos");

        let (restored, _) =
            install(&reader, &dir.path().join("dst"), Some(b"new".to_vec())).unwrap();
        assert_eq!(restored.applied(), (50, b"new".to_vec()));
        assert_eq!(restored.content_digest(), source.content_digest());
        assert_eq!(restored.get("c7").unwrap().unwrap().content, b"content 7");
    }

    #[test]
    fn a_manifest_whose_content_hash_differs_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        let source = store_with_data(&dir.path().join("src"));
        let file = dir.path().join("b");
        backup_of(&source, &file);
        // Rewrite with a wrong hash through the writer (so every checksum holds).
        let reader = BackupReader::open(&file).unwrap();
        let mut m = reader.manifest().clone();
        m.content_hash = "0".repeat(32);
        let other = dir.path().join("c");
        let mut w = BackupWriter::create(&other).unwrap();
        reader.read_payload(|b| w.write(b)).unwrap();
        w.finish(m).unwrap();
        let err = verify(&BackupReader::open(&other).unwrap(), dir.path()).unwrap_err();
        assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    }
}
