//! t100: every read consistency level keeps its promise on a real cluster: SESSION on a
//! follower reads the client's own write, LINEARIZABLE (any node) and LEASE (leader) never
//! go back in time across a leader kill, STALE is served by any node, LEASE on a follower
//! is refused with a leader hint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use sutra_checker::{History, Op, OpKind, Outcome};
use sutra_cluster_tests::client::{is_not_leader, leader_hint, session, stale};
use sutra_cluster_tests::history::{WEAK_READ, complete_get, recorded_put};
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, NodeClient, check_final_scan, init_tracing, wait_until,
    within,
};
use sutra_proto::storage::{
    Concept, Consistency, GetConceptRequest, PutConceptRequest, ReadOptions, WriteHeader,
};

/// A put of `id` with `content` as write `sequence` of `client_id`.
fn put(client_id: &str, sequence: u64, id: &str, content: &[u8]) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: client_id.to_owned(),
            sequence,
        }),
        concept: Some(Concept {
            id: id.to_owned(),
            content: content.to_vec(),
            ..Concept::default()
        }),
        expected_version: None,
    }
}

/// Read options naming `consistency` alone.
fn at(consistency: Consistency) -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency: consistency as i32,
        ..ReadOptions::default()
    })
}

/// Every node but `leader`.
fn followers(cluster: &Cluster, leader: u64) -> Vec<u64> {
    cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect()
}

/// SESSION reads on the followers, each right after a write on the leader and carrying
/// that write's version as its token, see the write every time (100 pairs, alternating
/// followers). The answer names the follower that served it, and its applied index is at
/// least the token (the token is a version, and `ReadMeta.applied_index` is in the same
/// unit, so it can be passed on as the next token).
///
/// The writes are recorded; a LINEARIZABLE scan at the end, recorded too, must hold each
/// at its version and the history must be linearizable (`sutra-checker`).
///
/// Why: read-your-writes is what lets a client spread its reads over followers; a
/// follower answering before it applied the write breaks it silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t100_session_read_on_follower_sees_own_write() -> Result<()> {
    init_tracing();
    within("t100 session", Duration::from_secs(50), session_reads()).await
}

async fn session_reads() -> Result<()> {
    tracing::info!("--- start three nodes");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let followers = followers(&cluster, leader);

    tracing::info!(
        leader,
        ?followers,
        "--- 100 writes on the leader, each read SESSION on a follower"
    );
    let history = History::new();
    let mut writer = cluster.client(leader, ClientRole::Writer)?;
    for i in 1..=100u64 {
        let id = format!("t100s/{i:03}");
        let content = format!("v{i}").into_bytes();
        let req = put("t100-session", i, &id, &content);
        let w = recorded_put(&history, &req, writer.storage.put_concept(req.clone()))
            .await
            .with_context(|| format!("write {i}"))?;
        ensure!(!w.deduplicated, "first attempt of write {i}: {w:?}");
        let follower = followers[i as usize % followers.len()];
        let mut reader = cluster.client(follower, ClientRole::Reader)?;
        let got = reader
            .storage
            .get_concept(GetConceptRequest {
                read: session(w.version),
                id: id.clone(),
            })
            .await
            .with_context(|| format!("SESSION read of write {i} on follower {follower}"))?
            .into_inner();
        let meta = got.meta.context("read metadata")?;
        let concept = got.concept.with_context(|| {
            format!(
                "follower {follower} missed write {i} (version {}) in a SESSION read: {meta:?}",
                w.version
            )
        })?;
        assert_eq!(concept.content, content, "write {i} on follower {follower}");
        assert_eq!(
            concept.version, w.version,
            "write {i} on follower {follower}"
        );
        assert_eq!(meta.served_by, follower, "{meta:?}");
        assert_eq!(meta.consistency, Consistency::Session as i32, "{meta:?}");
        assert!(
            meta.applied_index >= w.version,
            "write {i}: follower {follower} answered at applied index {} below the token {}",
            meta.applied_index,
            w.version
        );
    }
    check_final_scan(&cluster, &history, "t100s/").await?;

    cluster.finish();
    Ok(())
}

/// STALE is answered by whichever node is asked, followers included, from what it has
/// applied, even while the leader is stopped. LEASE sent to a follower is refused with
/// UNAVAILABLE and a hint naming the leader (node.rs: `leader_read` refuses off the
/// leader); sent to the leader it is served, by the leader, as LEASE (node.rs serves it
/// with a ReadIndex round until a clock-drift bound exists).
///
/// Why: clients route reads by these promises; a follower that served LEASE would give
/// no freshness guarantee at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t100_stale_on_any_node_lease_only_on_leader() -> Result<()> {
    init_tracing();
    within(
        "t100 stale/lease",
        Duration::from_secs(50),
        stale_and_lease(),
    )
    .await
}

async fn stale_and_lease() -> Result<()> {
    tracing::info!("--- start three nodes, write one concept, wait until every node applied it");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let history = History::new();
    let mut writer = cluster.client(leader, ClientRole::Writer)?;
    let req = put("t100-stale", 1, "t100/stale", b"here");
    let w = recorded_put(&history, &req, writer.storage.put_concept(req.clone())).await?;
    let log_index = w.version - 1;
    for id in cluster.ids() {
        cluster
            .wait_applied(id, log_index, Duration::from_secs(10))
            .await?;
    }

    tracing::info!("--- STALE on every node is served by that node");
    for id in cluster.ids() {
        let mut c = cluster.client(id, ClientRole::Reader)?;
        let got = c
            .storage
            .get_concept(GetConceptRequest {
                read: stale(),
                id: "t100/stale".into(),
            })
            .await
            .with_context(|| format!("STALE read on node {id}"))?
            .into_inner();
        let meta = got.meta.context("read metadata")?;
        assert_eq!(meta.served_by, id, "{meta:?}");
        assert_eq!(meta.consistency, Consistency::Stale as i32, "{meta:?}");
        assert!(meta.applied_index >= w.version, "{meta:?} vs {w:?}");
        let concept = got
            .concept
            .with_context(|| format!("node {id} applied the write but STALE misses it"))?;
        assert_eq!(
            (concept.content.as_slice(), concept.version),
            (&b"here"[..], w.version)
        );
    }

    tracing::info!(leader, "--- LEASE on the leader is served by the leader");
    let mut on_leader = cluster.client(leader, ClientRole::Reader)?;
    let got = on_leader
        .storage
        .get_concept(GetConceptRequest {
            read: at(Consistency::Lease),
            id: "t100/stale".into(),
        })
        .await
        .context("LEASE read on the leader")?
        .into_inner();
    let meta = got.meta.context("read metadata")?;
    assert_eq!(
        (meta.served_by, meta.consistency, meta.leader_id),
        (leader, Consistency::Lease as i32, leader),
        "{meta:?}"
    );
    assert_eq!(got.concept.map(|c| c.version), Some(w.version));

    for f in followers(&cluster, leader) {
        tracing::info!(f, "--- LEASE on follower {f} is refused with a leader hint");
        let mut c = cluster.client(f, ClientRole::Reader)?;
        let err = c
            .storage
            .get_concept(GetConceptRequest {
                read: at(Consistency::Lease),
                id: "t100/stale".into(),
            })
            .await
            .expect_err("a follower must not serve LEASE");
        assert!(is_not_leader(&err), "{err:?}");
        let (hint_id, hint_addr) = leader_hint(&err);
        assert_eq!(hint_id, Some(leader), "{err:?}");
        assert_eq!(
            hint_addr.as_deref(),
            Some(cluster.node(leader)?.api_addr.as_str()),
            "{err:?}"
        );
    }

    tracing::info!(
        leader,
        "--- SIGSTOP the leader: STALE on the followers still answers"
    );
    cluster.pause(leader)?;
    for f in followers(&cluster, leader) {
        let mut c = cluster.client(f, ClientRole::Reader)?;
        let got = tokio::time::timeout(
            Duration::from_secs(5),
            c.storage.get_concept(GetConceptRequest {
                read: stale(),
                id: "t100/stale".into(),
            }),
        )
        .await
        .with_context(|| format!("STALE read on follower {f} with the leader stopped"))??
        .into_inner();
        assert_eq!(got.meta.map(|m| m.served_by), Some(f));
        assert_eq!(got.concept.map(|c| c.version), Some(w.version));
    }
    cluster.resume(leader)?;
    cluster.leader(Duration::from_secs(15)).await?;
    check_final_scan(&cluster, &history, "t100/stale").await?;

    cluster.finish();
    Ok(())
}

/// The value the writer stores: `n` in decimal, in increasing order, one write at a time.
const COUNTER: &str = "t100/counter";
/// Bounds of the load.
const MAX_WRITES: u64 = 3_000;
const MAX_READS_PER_READER: usize = 3_000;
const MAX_LOAD: Duration = Duration::from_secs(35);
/// How long one read may take before it counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The tag of a recorded read at `level`: LEASE reads stay in the history for the
/// register check below and the durability check, and out of the linearizability check,
/// which takes LINEARIZABLE reads only.
fn level_tag(level: Consistency) -> &'static str {
    match level {
        Consistency::Lease => WEAK_READ,
        _ => "LINEARIZABLE",
    }
}

/// The history's name of reader `reader`.
fn reader_name(reader: usize) -> String {
    format!("reader-{reader}")
}

/// One write of the counter as the writer saw it (times on the history's clock).
#[derive(Debug, Clone)]
struct WriteRec {
    value: u64,
    invoked: u64,
    completed: u64,
    /// Acknowledged.
    acked: bool,
    /// Definitely not applied.
    failed: bool,
}

/// One successful read of the counter (times on the history's clock).
#[derive(Debug, Clone)]
struct ReadRec {
    reader: usize,
    node: u64,
    invoked: u64,
    completed: u64,
    /// `None`: the counter was absent.
    value: Option<u64>,
}

/// The counter's value in `content`.
fn counter_value(content: &[u8]) -> Result<u64, std::num::ParseIntError> {
    String::from_utf8_lossy(content).parse::<u64>()
}

/// The run: every write and read in `history`, plus what the history does not hold.
#[derive(Debug)]
struct Log {
    history: Arc<History>,
    failed_reads: Mutex<Vec<(usize, u64, String)>>,
    /// Answers that are wrong in themselves (served by another node, not a counter).
    violations: Mutex<Vec<String>>,
}

impl Log {
    /// Acknowledged writes invoked after `t`.
    fn acks_after(&self, t: Instant) -> usize {
        let t = self.history.time_of(t);
        self.history
            .ops()
            .iter()
            .filter(|op| op.is_acknowledged_mutation() && op.invoke > t)
            .count()
    }

    /// Answered reads of `readers` invoked after `t`.
    fn reads_after(&self, readers: &[usize], t: Instant) -> usize {
        let t = self.history.time_of(t);
        let names: Vec<String> = readers.iter().map(|&r| reader_name(r)).collect();
        self.history
            .ops()
            .iter()
            .filter(|op| matches!(op.kind, OpKind::Read { .. }))
            .filter(|op| matches!(op.outcome, Outcome::Ok { .. }) && op.invoke > t)
            .filter(|op| names.contains(&op.client))
            .count()
    }
}

/// The counter's writes and the readers' answered reads in `ops`, for
/// [`check_register`]. Reads already counted as wrong answers (served by another node,
/// not a counter) are left out, as they are reported on their own.
fn register_view(
    ops: &[Op],
    reader_of: &[(usize, u64, Consistency)],
) -> (Vec<WriteRec>, Vec<ReadRec>) {
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for op in ops.iter().filter(|op| op.key == COUNTER) {
        let completed = op.complete.unwrap_or(u64::MAX);
        match &op.kind {
            OpKind::Write { value } => {
                let Ok(v) = counter_value(value.as_bytes()) else {
                    continue;
                };
                writes.push(WriteRec {
                    value: v,
                    invoked: op.invoke,
                    completed,
                    acked: matches!(op.outcome, Outcome::Ok { .. }),
                    failed: op.outcome == Outcome::Failed,
                });
            }
            OpKind::Read { observed } => {
                let Some(reader) = op
                    .client
                    .strip_prefix("reader-")
                    .and_then(|r| r.parse::<usize>().ok())
                else {
                    continue;
                };
                let node = reader_of[reader].1;
                let value = match observed.as_ref().map(|v| counter_value(v.as_bytes())) {
                    Some(Err(_)) => continue,
                    Some(Ok(v)) => Some(v),
                    None => None,
                };
                if !matches!(op.outcome, Outcome::Ok { .. }) || op.reply.served_by != Some(node) {
                    continue;
                }
                reads.push(ReadRec {
                    reader,
                    node,
                    invoked: op.invoke,
                    completed,
                    value,
                });
            }
            OpKind::Cas { .. } | OpKind::Delete => {}
        }
    }
    (writes, reads)
}

/// Checks reads of a register written with increasing values by one sequential writer
/// against the writes: (a) each reader's values never decrease; (b) a read invoked after
/// a write was acknowledged returns at least that value; (c) a read returns a value whose
/// write was invoked before the read completed and did not fail (nothing unwritten);
/// (d) a read invoked after another read completed (any readers) returns at least that
/// read's value. Returns how many reads were checked.
fn check_register(what: &str, writes: &[WriteRec], reads: &[ReadRec]) -> Result<usize> {
    let mut acked: Vec<&WriteRec> = writes.iter().filter(|w| w.acked).collect();
    acked.sort_by_key(|w| w.completed);
    // Running maximum of acknowledged values by completion time.
    let mut acked_max = Vec::with_capacity(acked.len());
    let mut m = 0;
    for w in &acked {
        m = m.max(w.value);
        acked_max.push(m);
    }
    let by_value: std::collections::HashMap<u64, &WriteRec> =
        writes.iter().map(|w| (w.value, w)).collect();
    let mut per_reader: std::collections::BTreeMap<usize, Vec<&ReadRec>> = Default::default();
    for r in reads {
        per_reader.entry(r.reader).or_default().push(r);
    }
    for (reader, rs) in &mut per_reader {
        rs.sort_by_key(|r| r.invoked);
        for pair in rs.windows(2) {
            if pair[1].value < pair[0].value {
                bail!(
                    "{what}: reader {reader} went back in time: {:?} then {:?}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }
    for r in reads {
        let Some(v) = r.value else {
            bail!(
                "{what}: read found no counter although value 0 was acknowledged before any read: {r:?}"
            );
        };
        let before = acked.partition_point(|w| w.completed < r.invoked);
        if before > 0 && v < acked_max[before - 1] {
            bail!(
                "{what}: read on node {} returned {v} although {} was acknowledged before it was invoked: {r:?}",
                r.node,
                acked_max[before - 1]
            );
        }
        let w = by_value.get(&v).with_context(|| {
            format!("{what}: read returned {v}, which was never written: {r:?}")
        })?;
        if w.failed || w.invoked > r.completed {
            bail!(
                "{what}: read returned {v}, whose write {w:?} failed or started after the read ended: {r:?}"
            );
        }
    }
    let mut by_completion: Vec<&ReadRec> = reads.iter().collect();
    by_completion.sort_by_key(|r| r.completed);
    let mut read_max = Vec::with_capacity(by_completion.len());
    let mut m: Option<(u64, &ReadRec)> = None;
    for r in &by_completion {
        let v = r.value.unwrap_or(0);
        if m.is_none_or(|(best, _)| v > best) {
            m = Some((v, r));
        }
        read_max.push(m.expect("just set"));
    }
    for r in reads {
        let before = by_completion.partition_point(|x| x.completed < r.invoked);
        if before > 0 {
            let (best, earlier) = read_max[before - 1];
            if r.value.unwrap_or(0) < best {
                bail!("{what}: read {r:?} returned less than the earlier read {earlier:?}");
            }
        }
    }
    Ok(reads.len())
}

/// One writer stores 0, 1, 2, ... in a single concept, one acknowledged write after
/// another (retried with the same sequence through failures). A reader per node reads it
/// LINEARIZABLE in a loop, and another per node reads it LEASE (followers refuse it; the
/// leader serves it). Mid-run the leader is SIGKILLed; later it is restarted and serves
/// again. Per consistency level, the reads are checked against the writes'
/// invoke/complete times: no reader goes back, no read misses a write acknowledged
/// before it started or a read completed before it started, and no read returns a value
/// never written (or written only after the read ended).
///
/// Why: a follower waiting on a stale read index, or a deposed leader answering from
/// its own state, shows exactly here, as a value older than one already seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t100_linearizable_and_lease_never_go_back_across_leader_kill() -> Result<()> {
    init_tracing();
    within(
        "t100 linearizable",
        Duration::from_secs(58),
        no_going_back(),
    )
    .await
}

async fn no_going_back() -> Result<()> {
    tracing::info!("--- start three nodes; the counter starts at 0");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    let log = Arc::new(Log {
        history: history.clone(),
        failed_reads: Mutex::default(),
        violations: Mutex::default(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut writer = cluster
        .writer("t100-counter", Duration::from_secs(8))?
        .with_history(history.clone());
    writer.put(COUNTER, b"0").await.into_ok()?;

    let write_task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            for value in 1..=MAX_WRITES {
                if stop.load(Ordering::Relaxed) || start.elapsed() > MAX_LOAD {
                    break;
                }
                // Recorded by the writer, acknowledged, failed or unknown.
                let _ = writer.put(COUNTER, value.to_string().as_bytes()).await;
            }
        })
    };

    // Readers 0..n read LINEARIZABLE on node ids[i]; readers n..2n read LEASE.
    let ids = cluster.ids();
    let levels = [Consistency::Linearizable, Consistency::Lease];
    let mut readers = tokio::task::JoinSet::new();
    let mut reader_of = Vec::new();
    for (l, level) in levels.iter().enumerate() {
        for (i, &node) in ids.iter().enumerate() {
            let reader = l * ids.len() + i;
            reader_of.push((reader, node, *level));
            let client = cluster.client(node, ClientRole::Reader)?;
            let (log, stop, level) = (log.clone(), stop.clone(), *level);
            readers.spawn(read_loop(reader, node, level, client, log, stop));
        }
    }
    let lin_readers: Vec<usize> = (0..ids.len()).collect();
    let lin_reader_of = |node: u64| ids.iter().position(|&n| n == node).expect("a node");

    tracing::info!("--- wait for 100 acknowledged writes and 30 LINEARIZABLE reads on every node");
    wait_until("load under way", Duration::from_secs(20), async || {
        let acks = log.acks_after(start);
        for &r in &lin_readers {
            let n = log.reads_after(&[r], start);
            ensure!(n >= 30, "reader {r}: {n} reads; {acks} acks");
        }
        ensure!(acks >= 100, "{acks} acks");
        Ok(())
    })
    .await?;

    let old_leader = cluster.leader(Duration::from_secs(10)).await?;
    tracing::info!(old_leader, "--- SIGKILL the leader {old_leader}");
    let killed_at = Instant::now();
    cluster.kill(old_leader)?;
    let survivors: Vec<usize> = ids
        .iter()
        .filter(|&&n| n != old_leader)
        .map(|&n| lin_reader_of(n))
        .collect();
    wait_until(
        "writes and LINEARIZABLE reads on the survivors after the kill",
        Duration::from_secs(20),
        async || {
            let acks = log.acks_after(killed_at);
            for &r in &survivors {
                let n = log.reads_after(&[r], killed_at);
                ensure!(n >= 30, "reader {r}: {n} reads since the kill; {acks} acks");
            }
            ensure!(acks >= 100, "{acks} acks since the kill");
            Ok(())
        },
    )
    .await?;

    tracing::info!(
        old_leader,
        "--- restart node {old_leader}; it serves LINEARIZABLE reads again"
    );
    cluster.restart(old_leader)?;
    let restarted_at = Instant::now();
    let restarted_reader = lin_reader_of(old_leader);
    wait_until(
        "LINEARIZABLE reads on the restarted node",
        Duration::from_secs(20),
        async || {
            let n = log.reads_after(&[restarted_reader], restarted_at);
            let acks = log.acks_after(restarted_at);
            ensure!(
                n >= 30 && acks >= 30,
                "{n} reads, {acks} acks since the restart"
            );
            Ok(())
        },
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    write_task.await?;
    while let Some(r) = readers.join_next().await {
        r?;
    }

    tracing::info!("--- check every read against the writes");
    let ops = history.ops();
    let (writes, reads) = register_view(&ops, &reader_of);
    let failed = log
        .failed_reads
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .len();
    let acked = writes.iter().filter(|w| w.acked).count();
    tracing::info!(
        writes = writes.len(),
        acked,
        reads = reads.len(),
        failed_reads = failed,
        "load done"
    );
    let violations = log
        .violations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    ensure!(violations.is_empty(), "wrong answers: {violations:?}");
    let killed_at = history.time_of(killed_at);
    for level in levels {
        let of_level: Vec<ReadRec> = reads
            .iter()
            .filter(|r| reader_of[r.reader].2 == level)
            .cloned()
            .collect();
        let n = check_register(&format!("{level:?}"), &writes, &of_level)?;
        let after_kill = of_level.iter().filter(|r| r.invoked > killed_at).count();
        tracing::info!(
            ?level,
            checked = n,
            after_kill,
            "reads consistent with the writes"
        );
        ensure!(
            n > 0 && after_kill > 0,
            "{level:?}: {n} reads, {after_kill} after the kill: too few to check"
        );
    }

    tracing::info!("--- sutra-checker: the whole history durable and linearizable");
    check_final_scan(&cluster, &history, COUNTER).await?;

    cluster.finish();
    Ok(())
}

/// Reads the counter on `node` at `level` until told to stop, recording each success.
async fn read_loop(
    reader: usize,
    node: u64,
    level: Consistency,
    mut client: NodeClient,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
) {
    let history = &log.history;
    for _ in 0..MAX_READS_PER_READER {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let read = OpKind::Read { observed: None };
        let op = history.invoke_tagged(reader_name(reader), COUNTER, read, level_tag(level));
        let got = tokio::time::timeout(
            READ_TIMEOUT,
            client.storage.get_concept(GetConceptRequest {
                read: at(level),
                id: COUNTER.into(),
            }),
        )
        .await;
        let got = match got {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "no answer within {READ_TIMEOUT:?}"
            ))),
        };
        if let Err(e) = complete_get(history, op, &got) {
            log.violations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("recording a read: {e}"));
        }
        let err = match got {
            Ok(resp) => {
                let served_by = resp.meta.as_ref().map_or(0, |m| m.served_by);
                let value = resp.concept.map(|c| counter_value(&c.content));
                let violation = match &value {
                    Some(Err(e)) => Some(format!("unparsable counter: {e}")),
                    _ if served_by != node => Some(format!("served by {served_by}")),
                    _ => None,
                };
                if let Some(v) = violation {
                    log.violations
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("reader {reader} on node {node} ({level:?}): {v}"));
                }
                None
            }
            Err(status) => Some(format!("{:?}: {}", status.code(), status.message())),
        };
        if let Some(e) = err {
            log.failed_reads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((reader, node, e));
            // Pacing, not synchronisation: a refused read (a follower asked for LEASE, a
            // dead node) comes back at once and would otherwise spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
