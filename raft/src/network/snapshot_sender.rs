//! Sending a snapshot: one client-streaming InstallSnapshot call.
//!
//! ```text
//!  blocking task: Snapshot::read_at(offset, chunk) ─▶ bounded channel (2 chunks) ─▶ stream
//!  stream = header { vote, meta, total size, crc32c } · data { offset, bytes } …
//!  watchdog: fails the transfer when the receiver takes no chunk for the idle timeout, or
//!            does not answer within the install timeout after the last one
//! ```
//!
//! Memory stays at a few chunks: the reader blocks on the full channel, and tonic pulls
//! from the stream only as HTTP/2 flow control lets it send.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use openraft::error::{ReplicationClosed, StreamingError};
use openraft::network::RPCOption;
use openraft::raft::SnapshotResponse;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::SnapshotOf;
use openraft::{OptionalSend, RPCTypes};
use parking_lot::Mutex;
use sutra_proto::raft as pb;
use sutra_proto::raft::snapshot_chunk::Kind;

use super::client::PeerClient;
use super::rpc_error;
use crate::pb::{FromProto, IntoProto, snapshot_meta_to_proto};
use crate::snapshot::SnapshotData;
use crate::types::{SnapshotMeta, StorageError, TypeConfig, Vote};

/// Chunks read ahead of the network.
const READ_AHEAD_CHUNKS: usize = 2;

/// When the receiver last took a chunk, and whether it has taken them all.
#[derive(Debug)]
struct Progress {
    last: Instant,
    all_sent: bool,
}

impl PeerClient {
    pub(super) async fn send_snapshot(
        &self,
        vote: Vote,
        snapshot: SnapshotOf<TypeConfig, SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let meta = snapshot.meta;
        let snap = match snapshot.snapshot {
            SnapshotData::Local(snap) => snap,
            SnapshotData::Received(_) => {
                // The state machine only ever hands out local snapshots for sending.
                return Err(StreamingError::StorageError(StorageError::read_snapshot(
                    None,
                    TypeConfig::err_from_string("snapshot to send is not readable"),
                )));
            }
        };
        let mut client = self.client()?;
        let cfg = &self.shared.config;
        let (id, target) = (self.shared.id, self.target);
        let (size, crc32c) = (snap.meta().size, snap.meta().crc32c);
        let snapshot_id = snapshot_id(&meta, crc32c);
        tracing::info!(
            event = "snapshot_send_started",
            target_node = target,
            snapshot_id,
            size,
            "sending snapshot"
        );

        let header = pb::SnapshotChunk {
            kind: Some(Kind::Header(pb::SnapshotHeader {
                vote: Some(vote.into_proto()),
                meta: Some(snapshot_meta_to_proto(&meta, &snapshot_id)),
                total_size_bytes: size,
                crc32c,
            })),
        };

        // The reader stops when the channel closes, i.e. when the call is dropped.
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::SnapshotChunk>(READ_AHEAD_CHUNKS);
        let chunk_bytes = cfg.snapshot_chunk_bytes;
        let _reader = tokio::task::spawn_blocking(move || {
            let mut offset = 0u64;
            loop {
                let mut buf = vec![0u8; chunk_bytes];
                let n = snap.read_at(offset, &mut buf);
                if n == 0 {
                    return;
                }
                buf.truncate(n);
                let chunk = pb::SnapshotChunk {
                    kind: Some(Kind::Data(pb::SnapshotData { offset, data: buf })),
                };
                if tx.blocking_send(chunk).is_err() {
                    return;
                }
                offset += n as u64;
            }
        });

        let progress = Arc::new(Mutex::new(Progress {
            last: Instant::now(),
            all_sent: false,
        }));
        let data = {
            let progress = progress.clone();
            futures_util::stream::unfold(rx, move |mut rx| {
                let progress = progress.clone();
                async move {
                    // tonic asks for the next item once it could pass the previous one on.
                    progress.lock().last = Instant::now();
                    let next = rx.recv().await;
                    let mut p = progress.lock();
                    p.last = Instant::now();
                    p.all_sent = next.is_none();
                    drop(p);
                    next.map(|chunk| (chunk, rx))
                }
            })
        };
        let stream = futures_util::stream::once(std::future::ready(header)).chain(data);

        let idle = cfg.snapshot_idle_timeout(&option);
        let install = cfg.snapshot_install_timeout;
        let tick = (idle.min(install) / 4).max(Duration::from_millis(10));
        let call = client.install_snapshot(tonic::Request::new(stream));
        tokio::pin!(call, cancel);
        let result = loop {
            tokio::select! {
                r = &mut call => break r,
                reason = &mut cancel => return Err(StreamingError::Closed(reason)),
                _ = tokio::time::sleep(tick) => {
                    let p = progress.lock();
                    let limit = if p.all_sent { install } else { idle };
                    if p.last.elapsed() > limit {
                        tracing::warn!(target_node = target, snapshot_id, all_sent = p.all_sent, ?limit, "snapshot transfer stalled");
                        return Err(rpc_error::timeout(RPCTypes::InstallSnapshot, id, target, limit).into());
                    }
                }
            }
        };
        match result {
            Ok(resp) => {
                let resp = SnapshotResponse::from_proto(resp.into_inner())
                    .map_err(|e| StreamingError::from(rpc_error::malformed(&e)))?;
                if let Some(observer) = &self.shared.observer {
                    observer.snapshot_sent();
                }
                tracing::info!(event = "snapshot_sent", target_node = target, snapshot_id, vote = %resp.vote, "snapshot sent");
                Ok(resp)
            }
            Err(status) => {
                tracing::warn!(event = "snapshot_send_failed", target_node = target, snapshot_id, code = ?status.code(), message = status.message(), "snapshot transfer failed");
                Err(
                    rpc_error::from_status(status, RPCTypes::InstallSnapshot, id, target, idle)
                        .into(),
                )
            }
        }
    }
}

/// Names a transfer in logs on both sides: the last log id and the data checksum.
fn snapshot_id(meta: &SnapshotMeta, crc32c: u32) -> String {
    match &meta.last_log_id {
        Some(id) => format!("{id}-{crc32c:08x}"),
        None => format!("empty-{crc32c:08x}"),
    }
}
