//! t132: a leader frozen (SIGSTOP) while the others elect a new leader and overwrite a
//! key never serves the old value once it resumes: not at LINEARIZABLE, not at LEASE,
//! not even while it is cut off and cannot learn that it was replaced.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sutra_cluster_tests::client::{leader_hint, stale};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, wait_until, within};
use sutra_proto::storage::{
    Concept, Consistency, GetConceptRequest, GetConceptResponse, PutConceptRequest, ReadOptions,
    WriteHeader,
};

const KEY: &str = "t132/k";
/// How long one read on the resumed node may take before it counts as "no answer".
const READ_BOUND: Duration = Duration::from_secs(2);
/// Bound on the resumed node saying it is a follower.
const STEP_DOWN_BOUND: Duration = Duration::from_secs(5);
/// Rounds of reads (one LINEARIZABLE, one LEASE each), at most, and how many of them
/// after the node said it follows.
const MAX_ROUNDS: usize = 400;
const ROUNDS_AFTER_STEP_DOWN: usize = 20;
/// Reads sent to the frozen node, handled when it resumes.
const QUEUED_READS: usize = 6;
/// Rounds of reads on the resumed node while it is cut off.
const ISOLATED_ROUNDS: usize = 3;

/// A key is written on the leader, and the leader is frozen with SIGSTOP. The two
/// others elect a new leader, which overwrites the key. The old leader is resumed
/// (SIGCONT) and, at once (reads already waiting in its socket when it resumes) and over
/// and over while it learns of the new term, read at LINEARIZABLE and at LEASE. Every
/// read either fails with UNAVAILABLE (not the leader, or cannot confirm leadership) or
/// returns the new value; none returns the old one. It says it is a follower within a
/// few seconds; from then on LINEARIZABLE reads on it (ReadIndex from the new leader)
/// return the new value and LEASE reads are refused with a hint naming the new leader.
///
/// A second round does the same to the new leader, but cuts it off from the others (every
/// link a black hole) before it resumes: it wakes up still believing it leads and cannot
/// learn otherwise, so only its own caution stands between the client and the old value.
/// Its reads must be refused, its term unchanged; once healed it steps down as above.
///
/// Why: a resumed leader believes it still leads; serving from its own state, even for
/// a moment, is a stale read. The design promises LINEARIZABLE on any node and LEASE
/// only on a leader that can be sure of it (§5, §7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t132_paused_leader_resumes_without_stale_reads() -> anyhow::Result<()> {
    init_tracing();
    within("t132", Duration::from_secs(55), run()).await
}

fn read_options(consistency: Consistency) -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency: consistency as i32,
        ..ReadOptions::default()
    })
}

fn put(sequence: u64, content: &[u8]) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: "t132".into(),
            sequence,
        }),
        concept: Some(Concept {
            id: KEY.into(),
            content: content.to_vec(),
            ..Concept::default()
        }),
        expected_version: None,
    }
}

const LEVELS: [(&str, Consistency); 2] = [
    ("LINEARIZABLE", Consistency::Linearizable),
    ("LEASE", Consistency::Lease),
];

fn get(level: Consistency) -> GetConceptRequest {
    GetConceptRequest {
        read: read_options(level),
        id: KEY.into(),
    }
}

/// Checks one read on the resumed node: the new value at `new_version`, or UNAVAILABLE,
/// or no answer within the bound; never anything else.
fn classify(
    what: &str,
    new: &[u8],
    read: Result<
        Result<tonic::Response<GetConceptResponse>, tonic::Status>,
        tokio::time::error::Elapsed,
    >,
    new_version: u64,
) -> Seen {
    match read {
        Err(_) => Seen::NoAnswer,
        Ok(Ok(resp)) => {
            let resp = resp.into_inner();
            let c = resp.concept.as_ref();
            assert!(
                c.is_some_and(|c| c.content == new && c.version == new_version),
                "{what} read on the resumed node returned {:?} (the new value is version {new_version}); meta {:?}",
                c.map(|c| (String::from_utf8_lossy(&c.content).into_owned(), c.version)),
                resp.meta
            );
            Seen::New
        }
        Ok(Err(status)) => {
            assert_eq!(
                status.code(),
                tonic::Code::Unavailable,
                "{what} read on the resumed node: {status:?}"
            );
            Seen::Refused {
                hint: leader_hint(&status).0,
            }
        }
    }
}

/// How one read on the resumed node ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    New,
    Refused { hint: Option<u64> },
    NoAnswer,
}

fn value(round: u64) -> Vec<u8> {
    format!("value {round}").into_bytes()
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes behind link proxies; write value 0");
    let cluster = Cluster::start(ClusterOptions {
        link_proxies: true,
        ..ClusterOptions::default()
    })
    .await?;
    cluster
        .call_leader(
            ClientRole::Writer,
            "writing value 0",
            Duration::from_secs(10),
            async |mut c| c.storage.put_concept(put(1, &value(0))).await,
        )
        .await?;
    freeze_overwrite_resume(&cluster, 1, false).await?;
    freeze_overwrite_resume(&cluster, 2, true).await?;
    cluster.finish();
    Ok(())
}

/// One round: freeze the leader, have the others elect a leader and write
/// `value(round)` over `value(round - 1)`, resume the old leader (cut off first if
/// `isolate`) and read the key from it.
async fn freeze_overwrite_resume(
    cluster: &Cluster,
    round: u64,
    isolate: bool,
) -> anyhow::Result<()> {
    let (prev, next) = (value(round - 1), value(round));
    let old = cluster.leader(Duration::from_secs(10)).await?;
    let old_term = cluster.health(old).await?.term;
    let others: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != old).collect();
    tracing::info!(
        round,
        old,
        old_term,
        isolate,
        "--- round {round}: every node has value {}",
        round - 1
    );
    // Every node has it, so the new leader's overwrite is the only difference.
    for id in cluster.ids() {
        let mut c = cluster.client(id, ClientRole::Reader)?;
        wait_until(
            &format!("node {id} applying value {}", round - 1),
            Duration::from_secs(10),
            async || {
                let got = c
                    .storage
                    .get_concept(GetConceptRequest {
                        read: stale(),
                        id: KEY.into(),
                    })
                    .await?
                    .into_inner()
                    .concept;
                anyhow::ensure!(got.as_ref().is_some_and(|c| c.content == prev), "{got:?}");
                Ok(())
            },
        )
        .await?;
    }

    // The reader's connection to the leader is up before it is frozen.
    let mut r = cluster.client(old, ClientRole::Reader)?;
    r.storage
        .get_concept(get(Consistency::Linearizable))
        .await?;

    tracing::info!(
        old,
        "--- SIGSTOP the leader {old}; the others elect a leader"
    );
    cluster.pause(old)?;
    if isolate {
        // Before the election: what reaches a frozen process's sockets is read when it
        // resumes, so a vote request let through now would tell it of the new term.
        cluster.isolate(old)?;
    }
    let new = cluster
        .wait_for_leader(&others, Duration::from_secs(10))
        .await?;
    let new_term = cluster.health(new).await?.term;
    tracing::info!(new, new_term, "new leader");
    assert!(new_term > old_term);

    tracing::info!(new, "--- the new leader overwrites the key");
    let mut w = cluster.client(new, ClientRole::Writer)?;
    let written = wait_until(
        "the new leader acknowledging the overwrite",
        Duration::from_secs(10),
        async || {
            Ok(w.storage
                .put_concept(put(round + 1, &next))
                .await?
                .into_inner())
        },
    )
    .await?;
    tracing::info!(version = written.version, "value {round} written");
    assert!(!written.deduplicated);

    tracing::info!(
        old,
        "--- reads queued on the frozen node, SIGCONT, then reads again and again"
    );
    // Reads sent while it is frozen wait in its sockets (the connection is open: see
    // above) and are among the first things it handles when it runs again.
    let mut queued = tokio::task::JoinSet::new();
    for i in 0..QUEUED_READS {
        let level = LEVELS[i % LEVELS.len()];
        let mut c = r.storage.clone();
        queued.spawn(async move {
            let read = tokio::time::timeout(
                READ_BOUND + Duration::from_secs(5),
                c.get_concept(get(level.1)),
            )
            .await;
            (level.0, read)
        });
    }
    // Resume once the requests are in its socket's receive queue (observed in
    // /proc/net/tcp, stable over one poll) rather than after a guessed pause.
    let api_port: u16 = cluster
        .node(old)?
        .api_addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no port in the api address"))?;
    let mut last = 0;
    let waiting = wait_until(
        "the reads waiting in the frozen node's receive queue",
        Duration::from_secs(5),
        async || {
            let now = receive_queue_bytes(api_port)?;
            let stable = now > 0 && now == last;
            last = now;
            anyhow::ensure!(stable, "{now} bytes queued");
            Ok(now)
        },
    )
    .await?;
    tracing::info!(bytes = waiting, "reads queued on the frozen node; SIGCONT");
    cluster.resume(old)?;
    let resumed = Instant::now();
    let mut seen: BTreeMap<(&str, Seen), usize> = BTreeMap::new();
    while let Some(done) = queued.join_next().await {
        let (name, read) = done?;
        let s = classify(&format!("queued {name}"), &next, read, written.version);
        tracing::info!(name, ?s, after = ?resumed.elapsed(), "read queued before SIGCONT");
        *seen.entry((name, s)).or_default() += 1;
    }

    if isolate {
        tracing::info!(old, "--- cut off, the resumed node refuses every read");
        for i in 0..ISOLATED_ROUNDS {
            for (name, level) in LEVELS {
                let read =
                    tokio::time::timeout(READ_BOUND, r.storage.get_concept(get(level))).await;
                let s = classify(
                    &format!("isolated {i}: {name}"),
                    &next,
                    read,
                    written.version,
                );
                tracing::info!(i, name, ?s, after = ?resumed.elapsed(), "read on the cut-off node");
                assert_ne!(s, Seen::New, "the cut-off node cannot know the new value");
                *seen.entry((name, s)).or_default() += 1;
            }
        }
        let h = cluster.health(old).await?;
        tracing::info!(role = %h.role, term = h.term, leader = h.leader_id, "the cut-off node's view");
        assert_eq!(h.term, old_term, "a cut-off node learned of a new term");
        cluster.heal();
    }

    let healed = Instant::now();
    let mut stepped_down: Option<Duration> = None;
    let mut rounds_after = 0;
    let mut lease_hints_after = Vec::new();
    for i in 0..MAX_ROUNDS {
        for (name, level) in LEVELS {
            let read = tokio::time::timeout(READ_BOUND, r.storage.get_concept(get(level))).await;
            let s = classify(&format!("{i}: {name}"), &next, read, written.version);
            if let (Some(_), Consistency::Lease, Seen::Refused { hint }) = (stepped_down, level, &s)
            {
                lease_hints_after.push(*hint);
            }
            if i < 3 {
                tracing::info!(i, name, ?s, after = ?resumed.elapsed(), "read on the resumed node");
            }
            *seen.entry((name, s)).or_default() += 1;
        }
        if stepped_down.is_none() {
            let h = cluster.health(old).await;
            if let Ok(h) = &h
                && h.role == "follower"
                && h.leader_id == new
            {
                stepped_down = Some(healed.elapsed());
                tracing::info!(after = ?healed.elapsed(), term = h.term, i, "the resumed node follows {new}");
            } else {
                assert!(
                    healed.elapsed() < STEP_DOWN_BOUND,
                    "node {old} did not step down within {STEP_DOWN_BOUND:?}: {h:?}"
                );
            }
        } else {
            rounds_after += 1;
            if rounds_after >= ROUNDS_AFTER_STEP_DOWN {
                break;
            }
        }
    }
    tracing::info!(?seen, ?stepped_down, "reads on the resumed node");
    assert!(
        stepped_down.is_some() && rounds_after >= ROUNDS_AFTER_STEP_DOWN,
        "ran out of rounds: stepped down {stepped_down:?}, {rounds_after} rounds after"
    );
    assert!(
        !lease_hints_after.is_empty() && lease_hints_after.iter().all(|&h| h == Some(new)),
        "LEASE refusals on the follower should name leader {new}: {lease_hints_after:?}"
    );
    assert!(
        seen.get(&("LINEARIZABLE", Seen::New)).copied().unwrap_or(0) >= ROUNDS_AFTER_STEP_DOWN,
        "LINEARIZABLE reads on the follower should be served: {seen:?}"
    );

    tracing::info!("--- its own state catches up too (STALE)");
    wait_until(
        "the resumed node applying the new value",
        Duration::from_secs(10),
        async || {
            let c = r
                .storage
                .get_concept(GetConceptRequest {
                    read: stale(),
                    id: KEY.into(),
                })
                .await?
                .into_inner()
                .concept;
            anyhow::ensure!(c.as_ref().is_some_and(|c| c.content == next), "{c:?}");
            Ok(())
        },
    )
    .await?;

    Ok(())
}

/// Bytes waiting in the receive queues of the loopback TCP connections whose local port
/// is `port` (the kernel's `/proc/net/tcp`): what clients sent a process that has not
/// read it yet.
fn receive_queue_bytes(port: u16) -> anyhow::Result<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let mut total = 0;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx_queue:rx_queue ...; st 01 = ESTABLISHED.
        let (Some(local), Some(st), Some(queues)) = (f.get(1), f.get(3), f.get(4)) else {
            continue;
        };
        let local_port = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if local_port != Some(port) || *st != "01" {
            continue;
        }
        if let Some((_, rx)) = queues.split_once(':') {
            total += u64::from_str_radix(rx, 16)?;
        }
    }
    Ok(total)
}
