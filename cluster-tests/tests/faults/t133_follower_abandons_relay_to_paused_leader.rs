//! t133: a follower relaying a write (or asking for a read index) to a leader that froze
//! gives up once the others elect a new leader, instead of holding the client until the
//! old leader wakes up; the write, retried with its exactly-once identity, is applied once.

use std::time::{Duration, Instant};

use sutra_cluster_tests::client::{leader_hint, linearizable, stale};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, wait_until, within};
use sutra_proto::storage::{Concept, GetConceptRequest, PutConceptRequest, WriteHeader};

const KEY: &str = "t133/k";
/// Far longer than an election: a relay still waiting this long is waiting on the frozen
/// leader, not on the cluster.
const PATIENCE: Duration = Duration::from_secs(8);
/// The relay must end within this long after the freeze (an election is about a second
/// with the harness's timers).
const ABANDON_BOUND: Duration = Duration::from_secs(4);

fn put(content: &str) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: "t133".into(),
            sequence: 1,
        }),
        concept: Some(Concept {
            id: KEY.into(),
            content: content.as_bytes().to_vec(),
            ..Concept::default()
        }),
        expected_version: None,
    }
}

/// The leader is frozen with SIGSTOP. A write sent to a follower (with an 8 s gRPC
/// deadline) and a LINEARIZABLE read sent to the other follower are relayed to the frozen
/// leader; both must end within a few seconds, once the followers have elected a new
/// leader, with UNAVAILABLE (or, for the read, an answer from the new leader's read
/// index). The write is then retried on the new leader with the same client id and
/// sequence: it is applied exactly once, whether or not the abandoned relay reached the
/// old leader's log before it froze. After the old leader resumes, every node holds the
/// write at one version.
///
/// Why: clients time out per attempt and move on, but a follower that keeps waiting on
/// the old leader turns every relayed call into a wait for the client's timeout; the
/// recovery time after a frozen leader would be the client's timeout, not the election.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t133_follower_abandons_relay_to_paused_leader() -> anyhow::Result<()> {
    init_tracing();
    within("t133", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let old = cluster.leader(Duration::from_secs(15)).await?;
    let followers: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != old).collect();
    let (a, b) = (followers[0], followers[1]);
    // Connections are up, and the followers know the leader, before it freezes.
    let mut wa = cluster.client(a, ClientRole::Writer)?;
    let mut rb = cluster.client(b, ClientRole::Reader)?;
    for c in [&mut wa, &mut rb] {
        wait_until("the follower naming the leader", PATIENCE, async || {
            let meta = c
                .storage
                .get_concept(GetConceptRequest {
                    read: stale(),
                    id: KEY.into(),
                })
                .await?
                .into_inner()
                .meta;
            anyhow::ensure!(meta.is_some_and(|m| m.leader_id == old), "leader not known");
            Ok(())
        })
        .await?;
    }

    tracing::info!(
        old,
        a,
        b,
        "--- freeze the leader; write through {a}, read through {b}"
    );
    cluster.pause(old)?;
    let frozen = Instant::now();
    let mut write = tonic::Request::new(put("relayed"));
    write.set_timeout(PATIENCE);
    let mut read = tonic::Request::new(GetConceptRequest {
        read: linearizable(),
        id: KEY.into(),
    });
    read.set_timeout(PATIENCE);
    let (w, r) = tokio::join!(
        async {
            let out = wa.storage.put_concept(write).await;
            (out, frozen.elapsed())
        },
        async {
            let out = rb.storage.get_concept(read).await;
            (out, frozen.elapsed())
        }
    );
    let ((w, w_took), (r, r_took)) = (w, r);
    tracing::info!(?w_took, ?r_took, write = ?w.as_ref().map(|_| ()), read = ?r.as_ref().map(|_| ()), "relays ended");
    assert!(
        w_took < ABANDON_BOUND,
        "the relayed write waited {w_took:?} on the frozen leader: {w:?}"
    );
    assert!(
        r_took < ABANDON_BOUND,
        "the relayed read index waited {r_took:?} on the frozen leader: {r:?}"
    );
    match &w {
        Err(s) => assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}"),
        Ok(resp) => panic!("a write relayed to a frozen leader was acknowledged: {resp:?}"),
    }
    if let Err(s) = &r {
        assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
    }

    tracing::info!("--- retry the write on the new leader with the same identity");
    let new = cluster.wait_for_leader(&followers, PATIENCE).await?;
    let mut wn = cluster.client(new, ClientRole::Writer)?;
    let first = wn.storage.put_concept(put("relayed")).await?.into_inner();
    let again = wn.storage.put_concept(put("relayed")).await?.into_inner();
    assert!(
        again.deduplicated,
        "a second retry is answered from the session"
    );
    assert_eq!(again.version, first.version);
    if let Err(s) = &w
        && let (Some(hinted), _) = leader_hint(s)
    {
        assert_eq!(hinted, new, "the abandoned relay named the new leader");
    }

    tracing::info!("--- resume the old leader; every node holds the write once");
    cluster.resume(old)?;
    for id in cluster.ids() {
        let mut c = cluster.client(id, ClientRole::Reader)?;
        wait_until(
            &format!("node {id} holding the write"),
            PATIENCE,
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
                anyhow::ensure!(
                    got.as_ref()
                        .is_some_and(|c| c.content == b"relayed" && c.version == first.version),
                    "{got:?}"
                );
                Ok(())
            },
        )
        .await?;
    }
    cluster.finish();
    Ok(())
}
