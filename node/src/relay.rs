//! A follower's relayed writes, batched: the writes its clients send while earlier ones
//! are on the way to the leader go together in one `RaftService/ForwardWrites` call
//! instead of one call each, as etcd batches the proposals it forwards. A write that
//! finds a free slot goes at once, alone: batching adds no wait at low load.
//!
//! Each write keeps its own exactly-once identity and gets its own answer, the one a
//! `ForwardWrite` of it alone would get. A leader that does not know `ForwardWrites`
//! (an older version, during a rolling upgrade) is sent each write on its own.

use std::sync::Arc;

use sutra_raft::{Command, CommandResponse};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::node::Node;
use crate::status::ServiceError;

/// Batches on the way to the leader at once; a write that arrives while all are out
/// waits for the next batch.
const IN_FLIGHT: usize = 2;
/// Most writes in one batch.
const MAX_WRITES: usize = 128;
/// A batch takes no more writes once it holds this many bytes of commands (far below
/// the peer channel's message limit); a single larger write still goes, alone.
const MAX_BYTES: usize = 4 << 20;

/// One write waiting to be relayed, and where its answer goes.
struct Pending {
    command: Vec<u8>,
    reply: oneshot::Sender<Result<CommandResponse, ServiceError>>,
}

/// The queue of writes this node relays (see the module).
#[derive(Debug)]
pub struct Relay {
    queue: mpsc::UnboundedSender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("bytes", &self.command.len())
            .finish()
    }
}

impl Relay {
    /// Starts relaying for `node`; the task runs until the node is gone.
    pub fn start(node: &Arc<Node>) -> tokio::task::JoinHandle<()> {
        let (queue, rx) = mpsc::unbounded_channel();
        if node.relay.set(Relay { queue }).is_err() {
            tracing::warn!("relaying already started");
        }
        tokio::spawn(run(Arc::downgrade(node), rx))
    }

    /// Relays `cmd` with the next batch and waits for its answer.
    pub async fn relay(&self, cmd: &Command) -> Result<CommandResponse, ServiceError> {
        let command = sutra_raft::pb::encode_command(cmd)
            .map_err(|e| ServiceError::Internal(format!("encoding a write: {e}")))?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { command, reply })
            .map_err(|_| ServiceError::Unavailable("this node is shutting down".into()))?;
        answer
            .await
            .map_err(|_| ServiceError::Unavailable("this node is shutting down".into()))?
    }
}

/// Takes the writes queued since the last batch left, up to the limits, and sends them
/// while a slot is free.
async fn run(node: std::sync::Weak<Node>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut bytes = first.command.len();
        let mut batch = vec![first];
        while batch.len() < MAX_WRITES && bytes < MAX_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.command.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let Some(node) = node.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            send(&node, batch).await;
            drop(slot);
        });
    }
}

/// Sends one batch and hands every write its answer.
async fn send(node: &Node, batch: Vec<Pending>) {
    let (commands, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    match node.forward_writes(commands).await {
        Ok(answers) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(copy(&e)));
            }
        }
    }
}

/// The same failure for another write of a batch that failed as a whole (the leader
/// unreachable or replaced): only these kinds come from the call itself.
fn copy(e: &ServiceError) -> ServiceError {
    match e {
        ServiceError::NotLeader(hint) => ServiceError::NotLeader(hint.clone()),
        ServiceError::Unavailable(m) => ServiceError::Unavailable(m.clone()),
        ServiceError::Deadline(m) => ServiceError::Deadline(m.clone()),
        ServiceError::ResourceExhausted(m) => ServiceError::ResourceExhausted(m.clone()),
        other => ServiceError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_batch_fails_each_write_the_same_way() {
        let hint = sutra_proto::LeaderHint {
            id: 2,
            addr: Some("127.0.0.1:1".into()),
        };
        match copy(&ServiceError::NotLeader(Some(hint.clone()))) {
            ServiceError::NotLeader(Some(h)) => assert_eq!(h, hint),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            copy(&ServiceError::Unavailable("x".into())),
            ServiceError::Unavailable(m) if m == "x"
        ));
        assert!(matches!(
            copy(&ServiceError::ResourceExhausted("full".into())),
            ServiceError::ResourceExhausted(m) if m == "full"
        ));
        assert!(matches!(
            copy(&ServiceError::DataLoss("crc".into())),
            ServiceError::Internal(m) if m.contains("crc")
        ));
    }
}
