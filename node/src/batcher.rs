//! Batching of the calls a follower makes to its leader on behalf of its clients: what
//! arrives while earlier batches are on the way goes together in the next call, with at
//! most a few calls out at once. An item that finds a free slot goes at once, alone:
//! batching adds no wait at low load. The relayed writes ([`crate::relay`]) and the read
//! indexes of LINEARIZABLE reads ([`crate::read_index`]) are batched this way.
//!
//! An item is queued before the call that carries it starts, so whatever the leader
//! answers it answered after the item arrived: a read index from a batch is as fresh as
//! one asked for that read alone.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use crate::status::ServiceError;

/// How batches are cut.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Batches on the way at once; an item that arrives while all are out waits for the
    /// next batch.
    pub in_flight: usize,
    /// Most items in one batch.
    pub max_items: usize,
    /// Most bytes in one batch (by the batcher's measure); a single larger item still
    /// goes, alone.
    pub max_bytes: usize,
}

/// The queue of one kind of batched call (see the module).
#[derive(Debug)]
pub(crate) struct Batcher<T> {
    queue: mpsc::UnboundedSender<T>,
}

impl<T: Send + 'static> Batcher<T> {
    /// Starts the task that cuts batches from the queue and hands each to `send`, at most
    /// `limits.in_flight` at once. `bytes` measures an item. The task ends when `send`
    /// returns `None` (the node is gone) or every queue handle is dropped.
    pub fn start<F, Fut>(
        limits: Limits,
        bytes: fn(&T) -> usize,
        send: F,
    ) -> (Self, tokio::task::JoinHandle<()>)
    where
        F: Fn(Vec<T>) -> Option<Fut> + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(limits, bytes, rx, send));
        (Self { queue }, task)
    }

    /// Queues an item for the next batch.
    pub fn push(&self, item: T) -> Result<(), ServiceError> {
        self.queue
            .send(item)
            .map_err(|_| ServiceError::Unavailable("this node is shutting down".into()))
    }
}

/// Takes the items queued since the last batch left, up to the limits, and sends them
/// while a slot is free.
async fn run<T, F, Fut>(
    limits: Limits,
    bytes: fn(&T) -> usize,
    mut rx: mpsc::UnboundedReceiver<T>,
    send: F,
) where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.in_flight));
    // An item that would have taken its batch over max_bytes starts the next one.
    let mut carried: Option<T> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let (batch, rest) = fill(limits, bytes, first, &mut rx);
        carried = rest;
        let Some(call) = send(batch) else {
            return;
        };
        tokio::spawn(async move {
            call.await;
            drop(slot);
        });
    }
}

/// A batch starting with `first` and taking what is queued behind it, up to the limits;
/// also the queued item that would have taken it over `max_bytes`, if any.
fn fill<T>(
    limits: Limits,
    bytes: fn(&T) -> usize,
    first: T,
    rx: &mut mpsc::UnboundedReceiver<T>,
) -> (Vec<T>, Option<T>) {
    let mut total = bytes(&first);
    let mut batch = vec![first];
    while batch.len() < limits.max_items {
        let Ok(item) = rx.try_recv() else { break };
        if total + bytes(&item) > limits.max_bytes {
            return (batch, Some(item));
        }
        total += bytes(&item);
        batch.push(item);
    }
    (batch, None)
}

/// The same failure for another item of a batch whose call failed as a whole (the leader
/// unreachable or replaced): only these kinds come from the call itself.
pub(crate) fn share(e: &ServiceError) -> ServiceError {
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
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    const LIMITS: Limits = Limits {
        in_flight: 2,
        max_items: 128,
        max_bytes: 1000,
    };

    #[allow(clippy::ptr_arg)] // the batcher's measure of a `Vec<u8>` item
    fn len(v: &Vec<u8>) -> usize {
        v.len()
    }

    fn sizes(batch: &[Vec<u8>]) -> Vec<usize> {
        batch.iter().map(Vec::len).collect()
    }

    #[test]
    fn a_batch_takes_what_is_queued_up_to_its_limits() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Only what is already queued: nothing queued, a batch of one.
        let (batch, rest) = fill(LIMITS, len, vec![0; 10], &mut rx);
        assert_eq!((sizes(&batch), rest.is_none()), (vec![10], true));

        for _ in 0..LIMITS.max_items + 5 {
            tx.send(vec![0; 1]).unwrap();
        }
        let (batch, rest) = fill(LIMITS, len, vec![0; 1], &mut rx);
        assert_eq!(batch.len(), LIMITS.max_items);
        assert!(rest.is_none());
        assert_eq!(rx.len(), 6, "the rest waits for the next batch");
        while rx.try_recv().is_ok() {}

        // An item that would take the batch over max_bytes starts the next one; an item
        // larger than max_bytes still goes, alone.
        let max = LIMITS.max_bytes;
        tx.send(vec![0; max / 2]).unwrap();
        tx.send(vec![0; max]).unwrap();
        tx.send(vec![0; 3]).unwrap();
        let (batch, rest) = fill(LIMITS, len, vec![0; max / 4], &mut rx);
        assert_eq!(sizes(&batch), vec![max / 4, max / 2]);
        let big = rest.expect("the item over the limit is carried");
        assert_eq!(big.len(), max);
        let (batch, rest) = fill(LIMITS, len, big, &mut rx);
        assert_eq!(sizes(&batch), vec![max]);
        assert_eq!(rest.map(|p| p.len()), Some(3));
    }

    /// Items pushed while both slots are taken by calls that have not returned go
    /// together in one batch once a slot frees; a lone item goes at once.
    #[tokio::test]
    async fn what_arrives_while_the_slots_are_out_goes_in_one_batch() {
        let (release_tx, release_rx) = tokio::sync::watch::channel(false);
        let batches = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let seen = batches.clone();
        let (batcher, task) = Batcher::start(
            LIMITS,
            |_: &u8| 1,
            move |batch: Vec<u8>| {
                seen.lock().unwrap().push(batch);
                let mut release = release_rx.clone();
                Some(async move {
                    let _ = release.wait_for(|r| *r).await;
                })
            },
        );
        let sent = |n: usize| {
            let batches = batches.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(10), async {
                    while batches.lock().unwrap().len() < n {
                        tokio::task::yield_now().await;
                    }
                })
                .await
                .expect("batches sent");
            }
        };
        batcher.push(1).unwrap();
        sent(1).await;
        batcher.push(2).unwrap();
        sent(2).await;
        // Both slots are out: these wait, then go as one.
        for i in 3..=6 {
            batcher.push(i).unwrap();
        }
        tokio::task::yield_now().await;
        assert_eq!(batches.lock().unwrap().len(), 2, "no slot is free");
        release_tx.send(true).unwrap();
        sent(3).await;
        assert_eq!(
            *batches.lock().unwrap(),
            vec![vec![1], vec![2], vec![3, 4, 5, 6]]
        );
        drop(batcher);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task ends with its queue")
            .unwrap();
    }

    #[test]
    fn a_failed_batch_fails_each_item_the_same_way() {
        let hint = sutra_proto::LeaderHint {
            id: 2,
            addr: Some("127.0.0.1:1".into()),
        };
        match share(&ServiceError::NotLeader(Some(hint.clone()))) {
            ServiceError::NotLeader(Some(h)) => assert_eq!(h, hint),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            share(&ServiceError::Unavailable("x".into())),
            ServiceError::Unavailable(m) if m == "x"
        ));
        assert!(matches!(
            share(&ServiceError::ResourceExhausted("full".into())),
            ServiceError::ResourceExhausted(m) if m == "full"
        ));
        assert!(matches!(
            share(&ServiceError::DataLoss("crc".into())),
            ServiceError::Internal(m) if m.contains("crc")
        ));
    }
}
