//! Tests of the session table: dedup, expiry, encoding, and the fair-eviction rule
//! (unit cases, then a model test against a direct restatement of the rule).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn params(ttl: u64, max: u32, share: u32) -> StoreParams {
    StoreParams {
        vector_dimension: 4,
        session_ttl_ms: ttl,
        max_sessions: max,
        max_sessions_per_owner: share,
    }
}

fn applied(v: u64) -> WriteOutcome {
    WriteOutcome::Applied {
        version: v,
        results: vec![OpResult { existed: true }, OpResult { existed: false }],
    }
}

fn holds(t: &SessionTable, client: &str) -> bool {
    t.entries.contains_key(client)
}

fn count_of(t: &SessionTable, owner: &str) -> usize {
    t.owners.get(owner).map_or(0, BTreeSet::len)
}

/// The table rebuilt from its own encoding: equal only if every derived order (LRU,
/// owners, sizes) is what the entries imply.
fn reencoded(t: &SessionTable) -> SessionTable {
    let mut buf = Vec::new();
    t.encode(&mut buf);
    let mut r = Reader::new(&buf);
    let back = SessionTable::decode(&mut r).unwrap();
    assert_eq!(r.remaining(), 0);
    back
}

#[test]
fn duplicate_stale_and_new() {
    let p = params(1000, 10, 10);
    let mut t = SessionTable::default();
    t.record("c", 5, applied(9), 0, &p);
    assert!(matches!(t.check("c", 5), Seen::Duplicate(o) if *o == applied(9)));
    assert!(matches!(t.check("c", 4), Seen::Stale { last: 5 }));
    assert!(matches!(t.check("c", 6), Seen::New));
    assert!(matches!(t.check("d", 1), Seen::New));
}

#[test]
fn expiry_by_log_time_and_bound() {
    let p = params(100, 2, 2);
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
    assert_eq!(reencoded(&t), t);
}

#[test]
fn encode_round_trip() {
    let p = params(100, 10, 10);
    let mut t = SessionTable::default();
    t.record("a", 3, applied(7), 5, &p);
    let rej = Rejection::VersionMismatch {
        op_index: 2,
        id: "x".into(),
        expected: 1,
        actual: 0,
    };
    t.record("o/b", 9, WriteOutcome::Rejected(rej), 6, &p);
    let inv = Rejection::Invalid(ValidationError::new("ops[0].id", "must not be empty"));
    t.record("o/c/d", 1, WriteOutcome::Rejected(inv), 7, &p);
    assert_eq!(reencoded(&t), t);
    assert_eq!(
        count_of(&t, "o"),
        2,
        "the owner is the text before the first /"
    );
}

/// One owner writing with ten times more client ids than the table holds never takes
/// another owner's sessions: it is held to its share, and drops its own least recently
/// used session for each new one.
#[test]
fn a_flooding_owner_cannot_evict_another_owners_sessions() {
    let p = params(u64::MAX, 64, 4);
    let mut t = SessionTable::default();
    for i in 0..4 {
        t.record(&format!("alice/{i}"), 1, applied(i), i, &p);
    }
    for i in 0..640 {
        t.record(&format!("mallory/{i}"), 1, applied(100 + i), 100 + i, &p);
        assert_eq!(count_of(&t, "alice"), 4, "after mallory/{i}");
        assert!(count_of(&t, "mallory") <= 4);
    }
    let mallory: Vec<_> = t.owners["mallory"].iter().map(|(_, c)| &**c).collect();
    assert_eq!(
        mallory,
        ["mallory/636", "mallory/637", "mallory/638", "mallory/639"],
        "its own most recent ones stay"
    );
    for i in 0..4 {
        assert!(matches!(
            t.check(&format!("alice/{i}"), 1),
            Seen::Duplicate(_)
        ));
    }
}

/// With many owners filling the table, each at its share, a flood by one more still
/// leaves every other owner its share.
#[test]
fn a_full_table_of_owners_at_their_share_stays_theirs() {
    let p = params(u64::MAX, 16, 4);
    let mut t = SessionTable::default();
    for (o, owner) in ["a", "b", "c", "d"].iter().enumerate() {
        for i in 0..4 {
            let now = (o * 4 + i) as u64;
            t.record(&format!("{owner}/{i}"), 1, applied(now), now, &p);
        }
    }
    assert_eq!(t.len(), 16);
    for i in 0..160 {
        t.record(&format!("e/{i}"), 1, applied(100 + i), 100 + i, &p);
        assert_eq!(t.len(), 16);
    }
    // e took sessions only from owners holding more than it would, so all five end
    // within one of each other and e could not push anyone below e's own count.
    let counts: Vec<usize> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|o| count_of(&t, o))
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 16);
    assert!(counts.iter().all(|&c| c == 3 || c == 4), "{counts:?}");
}

/// The order of eviction, step by step: the owner's own LRU at its share; on a full
/// table the LRU of the biggest owner, ties to the oldest LRU, and a tie with the
/// writing owner to the writing owner.
#[test]
fn eviction_order_is_the_documented_one() {
    let p = params(u64::MAX, 6, 3);
    let mut t = SessionTable::default();
    let mut now = 0;
    let mut rec = |t: &mut SessionTable, c: &str| {
        now += 1;
        t.record(c, 1, applied(now), now, &p);
    };
    for c in ["a/1", "b/1", "a/2", "b/2", "a/3"] {
        rec(&mut t, c);
    }
    tracing::info!("--- a at its share drops its own least recently used");
    rec(&mut t, "a/4");
    assert!(!holds(&t, "a/1") && holds(&t, "a/2"));
    tracing::info!("--- b fills the table; c's first session: a and b both hold 3");
    rec(&mut t, "b/3");
    assert_eq!(t.len(), 6);
    // a holds a/2 (seen at 3), a/3, a/4; b holds b/1 (seen at 2), b/2, b/3.
    rec(&mut t, "c/1");
    assert!(
        !holds(&t, "b/1"),
        "tie of sizes: the owner with the oldest LRU"
    );
    assert!(holds(&t, "a/2"));
    tracing::info!("--- a tie between the writer (counted with its new one) and the biggest");
    // a 3, b 2, c 1. c's new one counts c as 2 < 3: a loses a/2.
    rec(&mut t, "c/2");
    assert!(!holds(&t, "a/2"));
    // a 2, b 2, c 2. c's new one makes c 3 ≥ 2: c drops its own oldest.
    rec(&mut t, "c/3");
    assert!(!holds(&t, "c/1") && holds(&t, "c/2") && holds(&t, "c/3"));
    assert_eq!(
        (count_of(&t, "a"), count_of(&t, "b"), count_of(&t, "c")),
        (2, 2, 2)
    );
    tracing::info!("--- a known client only moves in the LRU order");
    rec(&mut t, "a/3");
    assert_eq!(t.len(), 6);
    assert_eq!(t.owners["a"].last().unwrap().1.as_ref(), "a/3");
}

/// Unbound ids (insecure mode) are each their own owner: the table is one plain LRU.
#[test]
fn unbound_ids_share_one_plain_lru() {
    let p = params(u64::MAX, 4, 1);
    let mut t = SessionTable::default();
    for i in 0..10u64 {
        t.record(&format!("client-{i}"), 1, applied(i), i, &p);
    }
    let kept: Vec<_> = t.by_time.iter().map(|(_, c)| c.to_string()).collect();
    assert_eq!(kept, ["client-6", "client-7", "client-8", "client-9"]);
}

/// A table saved by a store without shares may hold more than the share for one owner;
/// that owner's next new session trims it to its share, oldest first.
#[test]
fn an_owner_above_its_share_is_trimmed_on_its_next_new_session() {
    let wide = params(u64::MAX, 100, 100);
    let mut t = SessionTable::default();
    for i in 0..10 {
        t.record(&format!("o/{i}"), 1, applied(i), i, &wide);
    }
    let mut t = reencoded(&t);
    let p = params(u64::MAX, 100, 3);
    t.record("o/9", 2, applied(50), 50, &p);
    assert_eq!(count_of(&t, "o"), 10, "a known client makes no room");
    t.record("o/new", 1, applied(51), 51, &p);
    let kept: Vec<_> = t.owners["o"].iter().map(|(_, c)| c.to_string()).collect();
    assert_eq!(kept, ["o/8", "o/9", "o/new"]);
}

/// The rule restated directly, scanning everything (the table must agree with it).
#[derive(Debug, Default)]
struct Model {
    seen: BTreeMap<String, u64>,
}

impl Model {
    fn owner_sessions(&self, owner: &str) -> Vec<(u64, String)> {
        let mut v: Vec<_> = self
            .seen
            .iter()
            .filter(|(c, _)| owner_of(c) == owner)
            .map(|(c, &s)| (s, c.clone()))
            .collect();
        v.sort();
        v
    }

    fn drop_oldest_of(&mut self, owner: &str) {
        let (_, c) = self.owner_sessions(owner).remove(0);
        self.seen.remove(&c);
    }

    fn record(&mut self, client: &str, now: u64, p: &StoreParams) {
        let (max, share) = p.session_limits();
        if self.seen.contains_key(client) {
            self.seen.insert(client.into(), now);
            return;
        }
        let owner = owner_of(client);
        while self.owner_sessions(owner).len() >= share as usize {
            self.drop_oldest_of(owner);
        }
        while self.seen.len() >= max as usize {
            let owners: BTreeSet<&str> = self.seen.keys().map(|c| owner_of(c)).collect();
            // Most sessions, then the oldest LRU session.
            let (most, oldest) = owners
                .iter()
                .map(|o| {
                    let s = self.owner_sessions(o);
                    (s.len(), s[0].clone())
                })
                .max_by(|x, y| x.0.cmp(&y.0).then(y.1.cmp(&x.1)))
                .expect("a full table has owners");
            let own = self.owner_sessions(owner).len();
            if own > 0 && own + 1 >= most {
                self.drop_oldest_of(owner);
            } else {
                self.seen.remove(&oldest.1);
            }
        }
        self.seen.insert(client.into(), now);
    }

    fn expire(&mut self, now: u64, p: &StoreParams) {
        self.seen
            .retain(|_, s| s.saturating_add(p.session_ttl_ms) >= now);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Record { client: String, dt: u64 },
    Expire { dt: u64 },
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    let client = (
        prop_oneof![
            Just("a/"),
            Just("b/"),
            Just("c/"),
            Just("node:1/"),
            Just("")
        ],
        0..8u8,
    )
        .prop_map(|(owner, i)| format!("{owner}{i}"));
    prop_oneof![
        8 => (client, 0..3u64).prop_map(|(client, dt)| Op::Record { client, dt }),
        1 => (0..40u64).prop_map(|dt| Op::Expire { dt }),
        1 => Just(Op::Checkpoint),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random writes, expiries and checkpoint round trips: the table keeps exactly the
    /// sessions the rule says, never exceeds its bound or a share, never drops the
    /// session it records, takes another owner's session only if that owner keeps at
    /// least as many as the writer (or held only one), and a table restored from its encoding evicts the
    /// same way as the original.
    #[test]
    fn eviction_follows_the_rule(
        max in 1..12u32,
        share in 1..8u32,
        ttl in prop_oneof![Just(u64::MAX), 5..60u64],
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let p = params(ttl, max, share);
        let mut t = SessionTable::default();
        let mut model = Model::default();
        let mut now = 0u64;
        for (seq, op) in ops.iter().enumerate() {
            match op {
                Op::Record { client, dt } => {
                    now += dt;
                    let before: BTreeMap<String, usize> = t
                        .owners
                        .iter()
                        .map(|(o, s)| (o.to_string(), s.len()))
                        .collect();
                    t.record(client, seq as u64 + 1, applied(seq as u64), now, &p);
                    model.record(client, now, &p);
                    let owner = owner_of(client);
                    let mine = count_of(&t, owner);
                    prop_assert!(holds(&t, client), "the recorded session stays");
                    for (o, n) in before {
                        let after = count_of(&t, &o);
                        // The one exception: a full table of owners with one session
                        // each, where a new owner takes the oldest one.
                        if o != owner && after < n {
                            prop_assert!(
                                after >= mine || n == 1,
                                "{o} fell to {after} below {owner}'s {mine}"
                            );
                        }
                    }
                }
                Op::Expire { dt } => {
                    now += dt;
                    t.expire(now, &p);
                    model.expire(now, &p);
                }
                Op::Checkpoint => t = reencoded(&t),
            }
            let (max, share) = p.session_limits();
            prop_assert!(t.len() <= max as usize);
            prop_assert!(t.owners.values().all(|s| s.len() <= share as usize));
            let kept: BTreeMap<String, u64> = t
                .entries
                .iter()
                .map(|(c, e)| (c.to_string(), e.last_seen_ms))
                .collect();
            prop_assert_eq!(&kept, &model.seen);
            prop_assert_eq!(&reencoded(&t), &t);
        }
    }
}
