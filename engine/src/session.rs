//! The client-session table that makes writes exactly-once.
//!
//! For every client it remembers the last sequence applied and that write's outcome.
//! A retry of the last sequence gets the stored outcome; an older sequence is refused.
//! Entries expire by log time (the proposer's clock carried in each entry, never the
//! local clock). The table is part of every checkpoint and snapshot.
//!
//! # Fair eviction
//!
//! The table is bounded (`max_sessions`) and shared fairly between *owners*: the text of
//! a client id before its first `/`, which the node sets to the caller's certificate name
//! (`<owner>/<client_id>`). An id without `/` (unbound, as in insecure mode) is its own
//! owner, so without certificates the table behaves as one plain LRU. "Least recently
//! used" is the smallest `(last seen in log time, client id)`. When a write records a
//! client id the table does not hold yet, of owner `A`:
//!
//! 1. if `A` already holds its share (`max_sessions_per_owner`), `A`'s own least recently
//!    used session is dropped;
//! 2. otherwise, if the table is full, the victim is the least recently used session of
//!    the owner holding the most sessions, counting `A`'s new one (ties: the owner whose
//!    least recently used session is the oldest; a tie with `A` goes to `A`).
//!
//! So a new session of `A` drops another owner's session only if that owner holds more
//! than `A` then will, and keeps at least as many (the one exception: a full table of
//! owners holding one session each, where a newcomer takes the oldest, as a plain LRU
//! would). One writer with any number of client ids therefore cannot push another owner
//! below `min(what it holds, its share)` while the table has room for every active
//! owner's share, and the session being recorded is never the victim.
//! Every decision depends only on the table's content, so all replicas (and a table
//! restored from a checkpoint) evict the same sessions. Each step is O(log n): per-owner
//! LRU sets and an ordered set of owners by size.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::codec::{Put, Reader};
use crate::config::StoreParams;
use crate::digest::{self, MultisetHash};
use crate::error::ValidationError;
use crate::types::{OpResult, Rejection, WriteOutcome};

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    sequence: u64,
    last_seen_ms: u64,
    outcome: WriteOutcome,
}

/// A session's place in LRU order: (last seen in log time, client id).
type LruKey = (u64, Arc<str>);

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SessionTable {
    entries: HashMap<Arc<str>, Entry>,
    /// Every session in LRU order, for expiry and encoding.
    by_time: BTreeSet<LruKey>,
    /// Each owner's sessions in LRU order; owners with none are absent.
    owners: HashMap<Arc<str>, BTreeSet<LruKey>>,
    /// One key per owner: (sessions held, its least recently used session reversed), so
    /// the last key is the owner with the most sessions and, among those, the oldest.
    by_size: BTreeSet<(usize, Reverse<LruKey>)>,
    /// Multiset hash of every entry, kept with the entries (see `digest.rs`).
    digest: MultisetHash,
}

/// The owner of a client id: the text before its first `/`, or the whole id if unbound.
pub(crate) fn owner_of(client: &str) -> &str {
    client.split_once('/').map_or(client, |(owner, _)| owner)
}

/// Hash of one entry for the content digest: its checkpoint encoding.
fn entry_hash(client: &str, e: &Entry) -> u128 {
    let mut buf = Vec::with_capacity(32 + client.len());
    buf.put_str16(client);
    buf.put_u64(e.sequence);
    buf.put_u64(e.last_seen_ms);
    encode_outcome(&mut buf, &e.outcome);
    digest::session_hash(&buf)
}

/// What the table knows about a `(client, sequence)`.
#[derive(Debug)]
pub(crate) enum Seen<'a> {
    New,
    Duplicate(&'a WriteOutcome),
    Stale { last: u64 },
}

impl SessionTable {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Multiset hash of every entry.
    pub(crate) fn digest(&self) -> &MultisetHash {
        &self.digest
    }

    pub(crate) fn check(&self, client: &str, sequence: u64) -> Seen<'_> {
        match self.entries.get(client) {
            None => Seen::New,
            Some(e) if sequence > e.sequence => Seen::New,
            Some(e) if sequence == e.sequence => Seen::Duplicate(&e.outcome),
            Some(e) => Seen::Stale { last: e.sequence },
        }
    }

    /// Remembers `outcome` as `client`'s last write, seen at log time `now_ms`. A client
    /// the table does not hold yet first makes room by the fair-eviction rule (module
    /// docs); the session recorded here is never the one dropped.
    pub(crate) fn record(
        &mut self,
        client: &str,
        sequence: u64,
        outcome: WriteOutcome,
        now_ms: u64,
        params: &StoreParams,
    ) {
        let key = match self.entries.get_key_value(client) {
            Some((key, old)) => {
                let (key, seen) = (key.clone(), old.last_seen_ms);
                self.remove(&(seen, key.clone()));
                key
            }
            None => {
                self.make_room(owner_of(client), params);
                Arc::from(client)
            }
        };
        let entry = Entry {
            sequence,
            last_seen_ms: now_ms,
            outcome,
        };
        self.digest.add(entry_hash(&key, &entry));
        self.entries.insert(key.clone(), entry);
        self.link((now_ms, key));
        debug_assert!(self.entries.len() <= params.session_limits().0 as usize);
    }

    /// Drops sessions until `owner` may add one: below its share, and the table below
    /// its bound.
    fn make_room(&mut self, owner: &str, params: &StoreParams) {
        let (max, share) = params.session_limits();
        let (max, share) = (max as usize, share as usize);
        let mut own = self.owners.get(owner).map_or(0, BTreeSet::len);
        // A loop, not a single eviction: a table restored from a store written before
        // shares existed may hold more than the share for one owner.
        while own >= share {
            self.evict_oldest_of(owner);
            own -= 1;
        }
        while self.entries.len() >= max {
            let Some((most, Reverse(oldest))) = self.by_size.last().cloned() else {
                break;
            };
            if own > 0 && own + 1 >= most {
                self.evict_oldest_of(owner);
                own -= 1;
            } else {
                self.remove(&oldest);
            }
        }
    }

    fn evict_oldest_of(&mut self, owner: &str) {
        let oldest = self
            .owners
            .get(owner)
            .and_then(|set| set.first().cloned())
            .expect("an owner with sessions has an oldest one");
        self.remove(&oldest);
    }

    /// Forgets clients idle for longer than the TTL at log time `now_ms`.
    pub(crate) fn expire(&mut self, now_ms: u64, params: &StoreParams) {
        while let Some(oldest) = self.by_time.first() {
            if oldest.0.saturating_add(params.session_ttl_ms) >= now_ms {
                break;
            }
            let oldest = oldest.clone();
            self.remove(&oldest);
        }
    }

    /// Adds `key` to the LRU orders (global and its owner's).
    fn link(&mut self, key: LruKey) {
        let client = key.1.clone();
        self.by_time.insert(key.clone());
        self.update_owner(owner_of(&client), |set| {
            set.insert(key);
        });
    }

    /// Removes the session at `key` from the entries and every order.
    fn remove(&mut self, key: &LruKey) {
        let removed = self.by_time.remove(key);
        assert!(removed, "session {key:?} is in the LRU order");
        let e = self.entries.remove(&key.1).expect("ordered sessions exist");
        self.digest.remove(entry_hash(&key.1, &e));
        self.update_owner(owner_of(&key.1), |set| {
            set.remove(key);
        });
    }

    /// Changes `owner`'s LRU set, keeping its key in `by_size` in step.
    fn update_owner(&mut self, owner: &str, change: impl FnOnce(&mut BTreeSet<LruKey>)) {
        if !self.owners.contains_key(owner) {
            self.owners.insert(Arc::from(owner), BTreeSet::new());
        }
        let set = self.owners.get_mut(owner).expect("inserted above");
        if let Some(first) = set.first() {
            let removed = self.by_size.remove(&(set.len(), Reverse(first.clone())));
            assert!(removed, "owner {owner:?} has its size key");
        }
        change(set);
        match set.first() {
            Some(first) => {
                self.by_size.insert((set.len(), Reverse(first.clone())));
            }
            None => {
                self.owners.remove(owner);
            }
        }
    }

    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        buf.put_u32(u32::try_from(self.entries.len()).expect("table bounded by max_sessions"));
        // Oldest first, so decoding rebuilds the same order. Owners and their order are
        // derived from the client ids, so the encoding needs nothing else for eviction
        // to go on exactly as before.
        for (seen, client) in &self.by_time {
            let e = &self.entries[client];
            buf.put_str16(client);
            buf.put_u64(e.sequence);
            buf.put_u64(*seen);
            encode_outcome(buf, &e.outcome);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        let n = r.u32()?;
        let mut table = Self::default();
        for _ in 0..n {
            let client: Arc<str> = r.str16()?.into();
            let sequence = r.u64()?;
            let last_seen_ms = r.u64()?;
            let outcome = decode_outcome(r)?;
            if table.entries.contains_key(&client) {
                return Err(format!(
                    "client {client:?} listed twice in the session table"
                ));
            }
            let entry = Entry {
                sequence,
                last_seen_ms,
                outcome,
            };
            table.digest.add(entry_hash(&client, &entry));
            table.entries.insert(client.clone(), entry);
            table.link((last_seen_ms, client));
        }
        Ok(table)
    }
}

fn encode_outcome(buf: &mut Vec<u8>, outcome: &WriteOutcome) {
    match outcome {
        WriteOutcome::Applied { version, results } => {
            buf.put_u8(0);
            buf.put_u64(*version);
            buf.put_u32(u32::try_from(results.len()).expect("bounded by max_batch_ops"));
            buf.extend(results.iter().map(|r| u8::from(r.existed)));
        }
        WriteOutcome::Rejected(rejection) => {
            buf.put_u8(1);
            match rejection {
                Rejection::Invalid(v) => {
                    buf.put_u8(1);
                    buf.put_str32(&v.field);
                    buf.put_str32(&v.reason);
                }
                Rejection::VersionMismatch {
                    op_index,
                    id,
                    expected,
                    actual,
                } => {
                    buf.put_u8(2);
                    buf.put_u32(*op_index);
                    buf.put_str16(id);
                    buf.put_u64(*expected);
                    buf.put_u64(*actual);
                }
                Rejection::MissingConcept { op_index, id } => {
                    buf.put_u8(3);
                    buf.put_u32(*op_index);
                    buf.put_str16(id);
                }
                Rejection::StaleSequence {
                    client_id,
                    sequence,
                    last,
                } => {
                    buf.put_u8(4);
                    buf.put_str16(client_id);
                    buf.put_u64(*sequence);
                    buf.put_u64(*last);
                }
            }
        }
    }
}

fn decode_outcome(r: &mut Reader<'_>) -> Result<WriteOutcome, String> {
    Ok(match r.u8()? {
        0 => {
            let version = r.u64()?;
            let n = r.u32()? as usize;
            let results = r
                .take(n)?
                .iter()
                .map(|&b| OpResult { existed: b != 0 })
                .collect();
            WriteOutcome::Applied { version, results }
        }
        1 => WriteOutcome::Rejected(match r.u8()? {
            1 => Rejection::Invalid(ValidationError {
                field: r.str32()?,
                reason: r.str32()?,
            }),
            2 => Rejection::VersionMismatch {
                op_index: r.u32()?,
                id: r.str16()?,
                expected: r.u64()?,
                actual: r.u64()?,
            },
            3 => Rejection::MissingConcept {
                op_index: r.u32()?,
                id: r.str16()?,
            },
            4 => Rejection::StaleSequence {
                client_id: r.str16()?,
                sequence: r.u64()?,
                last: r.u64()?,
            },
            t => return Err(format!("unknown rejection tag {t}")),
        }),
        t => return Err(format!("unknown outcome tag {t}")),
    })
}

#[cfg(test)]
#[path = "session_test.rs"]
mod tests;
