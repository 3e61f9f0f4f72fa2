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
use tokio::sync::oneshot;

use crate::batcher::{Batcher, Limits, share};
use crate::node::Node;
use crate::status::ServiceError;

/// Two batches on the way at once, each of at most 128 writes or 4 MiB of commands (far
/// below the peer channel's message limit).
const LIMITS: Limits = Limits {
    in_flight: 2,
    max_items: 128,
    max_bytes: 4 << 20,
};

/// One write waiting to be relayed, and where its answer goes.
struct Pending {
    command: Vec<u8>,
    reply: oneshot::Sender<Result<CommandResponse, ServiceError>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("bytes", &self.command.len())
            .finish()
    }
}

/// The queue of writes this node relays (see the module).
#[derive(Debug)]
pub struct Relay {
    batcher: Batcher<Pending>,
}

impl Relay {
    /// Starts relaying for `node`; the task runs until the node is gone (a second start
    /// finds the queue set and its task ends at once).
    pub fn start(node: &Arc<Node>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(node);
        let (batcher, task) = Batcher::start(
            LIMITS,
            |p: &Pending| p.command.len(),
            move |batch| {
                let node = weak.upgrade()?;
                Some(async move { send(&node, batch).await })
            },
        );
        let _ = node.relay.set(Relay { batcher });
        task
    }

    /// Relays an encoded command with the next batch and waits for its answer.
    pub async fn relay(&self, command: Vec<u8>) -> Result<CommandResponse, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.batcher.push(Pending { command, reply })?;
        answer
            .await
            .map_err(|_| ServiceError::Unavailable("this node is shutting down".into()))?
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
                let _ = reply.send(Err(share(&e)));
            }
        }
    }
}
