//! A follower's relayed writes, batched: the writes its clients send while earlier ones
//! are on the way to the leader go together in one `RaftService/ForwardWrites` call
//! instead of one call each, as etcd batches the proposals it forwards. A write that
//! finds a free slot goes at once, alone: batching adds no wait at low load.
//!
//! Each write keeps its own exactly-once identity and gets its own answer, the one a
//! `ForwardWrite` of it alone would get. A leader that does not know `ForwardWrites`
//! (an older version, during a rolling upgrade) is sent each write on its own.

use std::sync::Arc;

use sutra_raft::CommandResponse;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::node::Node;
use crate::status::ServiceError;

/// Batches on the way to the leader at once; a write that arrives while all are out
/// waits for the next batch.
const IN_FLIGHT: usize = 2;
/// Most writes in one batch.
const MAX_WRITES: usize = 128;
/// Most bytes of commands in one batch (far below the peer channel's message limit); a
/// single larger write still goes, alone.
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
    /// Starts relaying for `node`; the task runs until the node is gone (a second start
    /// finds the queue set and its task ends at once).
    pub fn start(node: &Arc<Node>) -> tokio::task::JoinHandle<()> {
        let (queue, rx) = mpsc::unbounded_channel();
        let _ = node.relay.set(Relay { queue });
        tokio::spawn(run(Arc::downgrade(node), rx))
    }

    /// Relays an encoded command with the next batch and waits for its answer.
    pub async fn relay(&self, command: Vec<u8>) -> Result<CommandResponse, ServiceError> {
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
    // A write that would have taken its batch over MAX_BYTES starts the next one.
    let mut carried: Option<Pending> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let (batch, rest) = fill(first, &mut rx);
        carried = rest;
        let Some(node) = node.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            send(&node, batch).await;
            drop(slot);
        });
    }
}

/// A batch starting with `first` and taking what is queued behind it, up to the limits;
/// also the queued write that would have taken it over [`MAX_BYTES`], if any.
fn fill(
    first: Pending,
    rx: &mut mpsc::UnboundedReceiver<Pending>,
) -> (Vec<Pending>, Option<Pending>) {
    let mut bytes = first.command.len();
    let mut batch = vec![first];
    while batch.len() < MAX_WRITES {
        let Ok(p) = rx.try_recv() else { break };
        if bytes + p.command.len() > MAX_BYTES {
            return (batch, Some(p));
        }
        bytes += p.command.len();
        batch.push(p);
    }
    (batch, None)
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

    fn pending(bytes: usize) -> Pending {
        Pending {
            command: vec![0; bytes],
            reply: oneshot::channel().0,
        }
    }

    fn sizes(batch: &[Pending]) -> Vec<usize> {
        batch.iter().map(|p| p.command.len()).collect()
    }

    #[test]
    fn a_batch_takes_what_is_queued_up_to_its_limits() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Only what is already queued: nothing queued, a batch of one.
        let (batch, rest) = fill(pending(10), &mut rx);
        assert_eq!((sizes(&batch), rest.is_none()), (vec![10], true));

        for _ in 0..MAX_WRITES + 5 {
            tx.send(pending(1)).unwrap();
        }
        let (batch, rest) = fill(pending(1), &mut rx);
        assert_eq!(batch.len(), MAX_WRITES);
        assert!(rest.is_none());
        assert_eq!(rx.len(), 6, "the rest waits for the next batch");
        while rx.try_recv().is_ok() {}

        // A write that would take the batch over MAX_BYTES starts the next one; a write
        // larger than MAX_BYTES still goes, alone.
        tx.send(pending(MAX_BYTES / 2)).unwrap();
        tx.send(pending(MAX_BYTES)).unwrap();
        tx.send(pending(3)).unwrap();
        let (batch, rest) = fill(pending(MAX_BYTES / 4), &mut rx);
        assert_eq!(sizes(&batch), vec![MAX_BYTES / 4, MAX_BYTES / 2]);
        let big = rest.expect("the write over the limit is carried");
        assert_eq!(big.command.len(), MAX_BYTES);
        let (batch, rest) = fill(big, &mut rx);
        assert_eq!(sizes(&batch), vec![MAX_BYTES]);
        assert_eq!(rest.map(|p| p.command.len()), Some(3));
    }

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
