//! The client-session table that makes writes exactly-once.
//!
//! For every client it remembers the last sequence applied and that write's outcome.
//! A retry of the last sequence gets the stored outcome; an older sequence is refused.
//! Entries expire by log time (the proposer's clock carried in each entry, never the
//! local clock) and the table is bounded, dropping the least recently used client first.
//! The table is part of every checkpoint and snapshot.

use std::collections::{BTreeSet, HashMap};

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

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SessionTable {
    entries: HashMap<Box<str>, Entry>,
    by_time: BTreeSet<(u64, Box<str>)>,
    /// Multiset hash of every entry, kept with the entries (see `digest.rs`).
    digest: MultisetHash,
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

    pub(crate) fn record(
        &mut self,
        client: &str,
        sequence: u64,
        outcome: WriteOutcome,
        now_ms: u64,
        params: &StoreParams,
    ) {
        if let Some(old) = self.entries.get(client) {
            self.by_time.remove(&(old.last_seen_ms, Box::from(client)));
            self.digest.remove(entry_hash(client, old));
        }
        self.by_time.insert((now_ms, Box::from(client)));
        let entry = Entry {
            sequence,
            last_seen_ms: now_ms,
            outcome,
        };
        self.digest.add(entry_hash(client, &entry));
        self.entries.insert(client.into(), entry);
        while self.entries.len() > params.max_sessions as usize {
            self.pop_oldest();
        }
    }

    /// Forgets clients idle for longer than the TTL at log time `now_ms`.
    pub(crate) fn expire(&mut self, now_ms: u64, params: &StoreParams) {
        while let Some((seen, _)) = self.by_time.first() {
            if seen.saturating_add(params.session_ttl_ms) >= now_ms {
                break;
            }
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, client)) = self.by_time.pop_first()
            && let Some(old) = self.entries.remove(&client)
        {
            self.digest.remove(entry_hash(&client, &old));
        }
    }

    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        buf.put_u32(u32::try_from(self.entries.len()).expect("table bounded by max_sessions"));
        // Oldest first, so decoding rebuilds the same order.
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
            let client = r.str16()?;
            let sequence = r.u64()?;
            let last_seen_ms = r.u64()?;
            let outcome = decode_outcome(r)?;
            table.by_time.insert((last_seen_ms, client.as_str().into()));
            let entry = Entry {
                sequence,
                last_seen_ms,
                outcome,
            };
            table.digest.add(entry_hash(&client, &entry));
            table.entries.insert(client.into(), entry);
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
mod tests {
    use super::*;

    fn params(ttl: u64, max: u32) -> StoreParams {
        StoreParams {
            vector_dimension: 4,
            session_ttl_ms: ttl,
            max_sessions: max,
        }
    }

    fn applied(v: u64) -> WriteOutcome {
        WriteOutcome::Applied {
            version: v,
            results: vec![OpResult { existed: true }, OpResult { existed: false }],
        }
    }

    #[test]
    fn duplicate_stale_and_new() {
        let p = params(1000, 10);
        let mut t = SessionTable::default();
        t.record("c", 5, applied(9), 0, &p);
        assert!(matches!(t.check("c", 5), Seen::Duplicate(o) if *o == applied(9)));
        assert!(matches!(t.check("c", 4), Seen::Stale { last: 5 }));
        assert!(matches!(t.check("c", 6), Seen::New));
        assert!(matches!(t.check("d", 1), Seen::New));
    }

    #[test]
    fn expiry_by_log_time_and_bound() {
        let p = params(100, 2);
        let mut t = SessionTable::default();
        t.record("a", 1, applied(1), 0, &p);
        t.record("b", 1, applied(2), 50, &p);
        t.expire(100, &p);
        assert_eq!(t.len(), 2, "a is exactly at its TTL and stays");
        t.expire(101, &p);
        assert!(matches!(t.check("a", 1), Seen::New));
        t.record("c", 1, applied(3), 120, &p);
        t.record("d", 1, applied(4), 130, &p);
        assert_eq!(t.len(), 2);
        assert!(
            matches!(t.check("b", 1), Seen::New),
            "least recently used dropped"
        );
    }

    #[test]
    fn encode_round_trip() {
        let p = params(100, 10);
        let mut t = SessionTable::default();
        t.record("a", 3, applied(7), 5, &p);
        let rej = Rejection::VersionMismatch {
            op_index: 2,
            id: "x".into(),
            expected: 1,
            actual: 0,
        };
        t.record("b", 9, WriteOutcome::Rejected(rej), 6, &p);
        let inv = Rejection::Invalid(ValidationError::new("ops[0].id", "must not be empty"));
        t.record("c", 1, WriteOutcome::Rejected(inv), 7, &p);
        let mut buf = Vec::new();
        t.encode(&mut buf);
        let mut r = Reader::new(&buf);
        assert_eq!(SessionTable::decode(&mut r).unwrap(), t);
        assert_eq!(r.remaining(), 0);
    }
}
