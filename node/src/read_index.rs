//! A follower's read indexes, batched: the LINEARIZABLE reads its clients send while
//! earlier `RaftService/ReadIndex` calls are on the way share the next call instead of
//! making one each. Every read in a batch was queued before its call started, so the
//! leader confirmed its leadership and named its commit index after the read arrived:
//! the answer is as fresh as a call of the read's own (see [`crate::batcher`]).

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::batcher::{Batcher, Limits, share};
use crate::node::Node;
use crate::status::ServiceError;

/// Two calls on the way at once; a batch can hold every read of a busy node (an item
/// weighs nothing).
const LIMITS: Limits = Limits {
    in_flight: 2,
    max_items: 4096,
    max_bytes: usize::MAX,
};

type Reply = oneshot::Sender<Result<u64, ServiceError>>;

/// The queue of the read indexes this node asks its leader for (see the module).
#[derive(Debug)]
pub struct ReadIndexes {
    batcher: Batcher<Reply>,
}

impl ReadIndexes {
    /// Starts batching for `node`; the task runs until the node is gone (a second start
    /// finds the queue set and its task ends at once).
    pub fn start(node: &Arc<Node>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(node);
        let (batcher, task) = Batcher::start(
            LIMITS,
            |_: &Reply| 0,
            move |replies: Vec<Reply>| {
                let node = weak.upgrade()?;
                Some(async move {
                    let answer = node.leader_read_index().await;
                    for reply in replies {
                        let _ = reply.send(answer.as_ref().map(|i| *i).map_err(share));
                    }
                })
            },
        );
        let _ = node.read_indexes.set(ReadIndexes { batcher });
        task
    }

    /// The leader's read index, from a call that starts after this one was made.
    pub async fn read_index(&self) -> Result<u64, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.batcher.push(reply)?;
        answer
            .await
            .map_err(|_| ServiceError::Unavailable("this node is shutting down".into()))?
    }
}
