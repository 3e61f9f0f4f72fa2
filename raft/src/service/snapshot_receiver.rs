//! Receiving an InstallSnapshot stream into the engine, then installing it through openraft.
//!
//! The stream must be: one header, then data chunks whose offsets run contiguously from 0,
//! each 1..=1 MiB, together exactly `total_size_bytes`, which must not exceed
//! `max_snapshot_bytes`. Chunks go to a blocking writer task through a channel of two, so
//! memory stays at a few chunks; each chunk must arrive within the per-chunk deadline and
//! the last one within the whole stream's deadline, so one sender can hold the engine's
//! install slot and its disk only so long and so much. Only a stream whose length,
//! checksum and position all check out reaches `Raft::install_full_snapshot`; anything
//! else fails the call and installs nothing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::raft::SnapshotResponse;
use sutra_proto::limits::MAX_SNAPSHOT_CHUNK_BYTES;
use sutra_proto::raft as pb;
use sutra_proto::raft::snapshot_chunk::Kind;
use tonic::Streaming;

use super::status::ServiceError;
use super::{Caller, RaftGrpcService};
use crate::pb::{ProtoError, required, snapshot_meta_from_proto};
use crate::snapshot::{SnapshotData, SnapshotReceiver};
use crate::snapshot_builder::Snapshot;
use crate::state_machine::check_staged;
use crate::types::{TypeConfig, Vote};

/// Chunks queued between the network and the disk writer.
const WRITE_QUEUE_CHUNKS: usize = 2;

/// The parsed header of a stream.
struct Header {
    vote: Vote,
    meta: crate::types::SnapshotMeta,
    snapshot_id: String,
    total: u64,
    crc32c: u32,
}

impl RaftGrpcService {
    pub(super) async fn receive_snapshot(
        &self,
        caller: Caller,
        mut stream: Streaming<pb::SnapshotChunk>,
    ) -> Result<SnapshotResponse<TypeConfig>, ServiceError> {
        let deadline = tokio::time::Instant::now() + self.inner.config.snapshot_receive_timeout;
        let header = match self.next_chunk(&mut stream, deadline).await? {
            Some(Kind::Header(h)) => parse_header(h)?,
            Some(Kind::Data(_)) => {
                return Err(ServiceError::Protocol(
                    "the first item must be the header".into(),
                ));
            }
            None => {
                return Err(ServiceError::Protocol(
                    "stream ended before the header".into(),
                ));
            }
        };
        self.check_caller(caller, header.vote.leader_id.node_id)?;
        let Header {
            vote,
            meta,
            snapshot_id,
            total,
            crc32c,
        } = header;
        tracing::info!(event = "snapshot_receive_started", snapshot_id, %vote, last_log_id = ?meta.last_log_id, total, "receiving snapshot");

        // A stale leader's snapshot would be refused after the whole transfer; answer now.
        let my_vote = self.inner.raft.metrics().borrow_watched().vote;
        if my_vote > vote {
            tracing::info!(snapshot_id, %my_vote, "snapshot from a lower vote: answered without data");
            return Ok(SnapshotResponse::new(my_vote));
        }
        check_size(total, self.inner.config.max_snapshot_bytes)?;

        let engine = self.inner.engine.clone();
        let receiver = tokio::task::spawn_blocking(move || SnapshotReceiver::begin(&engine))
            .await
            .map_err(task_failed("begin snapshot receive"))?
            .map_err(ServiceError::SnapshotBusy)?;

        // The writer owns the receiver; if this call is dropped, the channel closes, the
        // writer returns and the receiver (with the engine's install slot) is released.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Vec<u8>)>(WRITE_QUEUE_CHUNKS);
        let writer = tokio::task::spawn_blocking(move || {
            let mut receiver = receiver;
            while let Some((offset, data)) = rx.blocking_recv() {
                receiver.write(offset, &data)?;
            }
            Ok::<_, crate::Error>(receiver)
        });

        let mut received = 0u64;
        let streamed: Result<(), ServiceError> = async {
            while let Some(kind) = self.next_chunk(&mut stream, deadline).await? {
                let data = match kind {
                    Kind::Data(d) => d,
                    Kind::Header(_) => {
                        return Err(ServiceError::Protocol("a second header".into()));
                    }
                };
                check_chunk(&data, received, total)?;
                let len = data.data.len() as u64;
                self.inner
                    .counters
                    .snapshot_bytes_received
                    .fetch_add(len, Ordering::Relaxed);
                if tx.send((data.offset, data.data)).await.is_err() {
                    // The writer stopped on an error; awaiting it below reports the error.
                    break;
                }
                received += len;
            }
            Ok(())
        }
        .await;
        // Whatever happened to the stream, wait for the writer to finish and release the
        // engine's install slot before answering: a sender that retries at once must not
        // find the slot still taken by this failed transfer.
        drop(tx);
        let written = writer.await.map_err(task_failed("write snapshot"));
        streamed?;
        let receiver = written?.map_err(data_error)?;
        if received != total {
            return Err(ServiceError::BadSnapshot(format!(
                "stream ended after {received} of {total} bytes"
            )));
        }

        let check_meta = meta.clone();
        let data = tokio::task::spawn_blocking(move || {
            let data = receiver.finish(total, crc32c).map_err(data_error)?;
            if let SnapshotData::Received(staged) = &data {
                check_staged(staged, &check_meta).map_err(ServiceError::SnapshotMismatch)?;
            }
            Ok::<_, ServiceError>(data)
        })
        .await
        .map_err(task_failed("finish snapshot receive"))??;

        self.inner
            .counters
            .snapshots_received
            .fetch_add(1, Ordering::Relaxed);
        let resp = self
            .inner
            .raft
            .install_full_snapshot(
                vote,
                Snapshot {
                    meta,
                    snapshot: data,
                },
            )
            .await?;
        tracing::info!(event = "snapshot_received", snapshot_id, vote = %resp.vote, "snapshot received and handed to raft");
        Ok(resp)
    }

    /// The next item of the stream within the per-chunk deadline and the whole stream's
    /// `deadline`; `None` at its end.
    async fn next_chunk(
        &self,
        stream: &mut Streaming<pb::SnapshotChunk>,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Kind>, ServiceError> {
        let config = &self.inner.config;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (limit, expired) = next_wait(
            config.snapshot_chunk_timeout,
            left,
            config.snapshot_receive_timeout,
        );
        match tokio::time::timeout(limit, stream.message()).await {
            Err(_elapsed) => Err(expired),
            Ok(Err(status)) => Err(ServiceError::Stream(status)),
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(pb::SnapshotChunk { kind: Some(kind) }))) => Ok(Some(kind)),
            Ok(Ok(Some(pb::SnapshotChunk { kind: None }))) => {
                Err(ServiceError::Protocol("an item with no kind".into()))
            }
        }
    }
}

fn parse_header(h: pb::SnapshotHeader) -> Result<Header, ServiceError> {
    let vote: Vote = required(h.vote, "header.vote")?;
    let meta = h.meta.ok_or_else(|| ProtoError::missing("header.meta"))?;
    let (meta, snapshot_id) =
        snapshot_meta_from_proto(meta).map_err(|e| e.within("header.meta"))?;
    Ok(Header {
        vote,
        meta,
        snapshot_id,
        total: h.total_size_bytes,
        crc32c: h.crc32c,
    })
}

/// How long to wait for the next item, and the error if it does not come: the per-chunk
/// timeout, or what is `left` of the whole stream's `total` bound if that is shorter.
fn next_wait(chunk: Duration, left: Duration, total: Duration) -> (Duration, ServiceError) {
    if left < chunk {
        (left, ServiceError::ReceiveTimeout(total))
    } else {
        (chunk, ServiceError::ChunkTimeout(chunk))
    }
}

/// A header may announce at most `max` bytes. Chunks are then held to the announced
/// total ([`check_chunk`]), so no stream writes more than `max` either.
fn check_size(announced: u64, max: u64) -> Result<(), ServiceError> {
    if announced > max {
        return Err(ServiceError::SnapshotTooLarge { announced, max });
    }
    Ok(())
}

/// A data chunk must continue exactly where the previous one ended, carry 1..=1 MiB and
/// stay within the announced total.
fn check_chunk(data: &pb::SnapshotData, received: u64, total: u64) -> Result<(), ServiceError> {
    let len = data.data.len();
    if data.offset != received {
        return Err(ServiceError::Protocol(format!(
            "chunk at offset {}, expected {received}",
            data.offset
        )));
    }
    if !(1..=MAX_SNAPSHOT_CHUNK_BYTES).contains(&len) {
        return Err(ServiceError::Protocol(format!(
            "chunk of {len} bytes; expected 1..={MAX_SNAPSHOT_CHUNK_BYTES}"
        )));
    }
    if received + len as u64 > total {
        return Err(ServiceError::BadSnapshot(format!(
            "stream is longer than the announced {total} bytes"
        )));
    }
    Ok(())
}

/// The engine refusing the bytes (format, length, checksum) is data loss on the way;
/// anything else (I/O) is a local storage failure.
fn data_error(e: crate::Error) -> ServiceError {
    match &e {
        crate::Error::Engine {
            source: sutra_engine::Error::BadSnapshot { .. },
            ..
        } => ServiceError::BadSnapshot(e.to_string()),
        _ => ServiceError::Storage(e),
    }
}

fn task_failed(op: &'static str) -> impl FnOnce(tokio::task::JoinError) -> ServiceError {
    move |e| {
        ServiceError::Storage(crate::Error::Task {
            op,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: u64, len: usize) -> pb::SnapshotData {
        pb::SnapshotData {
            offset,
            data: vec![7; len],
        }
    }

    #[test]
    fn a_header_announcing_more_than_the_maximum_is_refused() {
        assert!(check_size(1 << 20, 1 << 20).is_ok());
        let e = check_size((1 << 20) + 1, 1 << 20).unwrap_err();
        assert!(matches!(e, ServiceError::SnapshotTooLarge { .. }), "{e}");
        assert_eq!(
            tonic::Status::from(e).code(),
            tonic::Code::ResourceExhausted
        );
    }

    #[test]
    fn a_stream_never_writes_past_the_announced_total() {
        assert!(check_chunk(&chunk(0, 10), 0, 20).is_ok());
        assert!(check_chunk(&chunk(10, 10), 10, 20).is_ok());
        let e = check_chunk(&chunk(20, 1), 20, 20).unwrap_err();
        assert!(e.to_string().contains("longer than the announced"), "{e}");
    }

    #[test]
    fn the_whole_stream_deadline_cuts_the_chunk_wait_short() {
        let chunk = Duration::from_secs(10);
        let total = Duration::from_secs(60);
        let (wait, e) = next_wait(chunk, Duration::from_secs(50), total);
        assert_eq!(wait, chunk);
        assert!(matches!(e, ServiceError::ChunkTimeout(_)), "{e}");
        let (wait, e) = next_wait(chunk, Duration::from_secs(3), total);
        assert_eq!(wait, Duration::from_secs(3));
        assert!(
            matches!(e, ServiceError::ReceiveTimeout(t) if t == total),
            "{e}"
        );
        let (wait, _) = next_wait(chunk, Duration::ZERO, total);
        assert_eq!(wait, Duration::ZERO, "an expired stream waits no more");
    }
}
