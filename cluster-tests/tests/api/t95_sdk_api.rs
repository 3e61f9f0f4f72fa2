//! t95: the client SDK's whole storage API against a real cluster.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sutra_client::{
    Batch, CallOptions, Client, ClientConfig, ClientError, Neighbors, ReadOptions, Scan, Search,
    TlsFiles,
};
use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, within};
use sutra_proto::storage::{Concept, Consistency, Direction, Edge, Metric};

fn client(cluster: &Cluster, role: &str) -> anyhow::Result<Client> {
    let certs = cluster.certs_dir();
    let paths = sutra_certs::CertPaths::client(certs, role);
    let tls = TlsFiles {
        ca: sutra_certs::CertPaths::ca(certs).cert,
        cert: paths.cert,
        key: paths.key,
    };
    let mut config = ClientConfig::new(cluster.api_addrs(), tls);
    config.request_timeout = Duration::from_secs(10);
    Ok(Client::new(config)?)
}

fn concept(id: &str, content: &str) -> Concept {
    Concept {
        id: id.into(),
        content: content.as_bytes().to_vec(),
        ..Concept::default()
    }
}

fn edge(from: &str, to: &str, relation: &str, weight: f32) -> Edge {
    Edge {
        from: from.into(),
        to: to.into(),
        relation: relation.into(),
        weight,
    }
}

/// A unit vector of the test cluster's dimension (8) along axis `i`, slightly tilted
/// towards the next axis so that scores differ.
fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; 8];
    v[i % 8] = 1.0;
    v[(i + 1) % 8] = 0.1;
    v
}

/// One `Client` (writer certificate, all three endpoints) exercises the SDK:
/// - edges: put, neighbors out/in/both with a relation filter, delete; an edge to a
///   missing concept is `ClientError::Conflict`;
/// - `Batch`: a batch whose `check` fails changes nothing (its put is not visible) and
///   maps to `Conflict`; a good batch applies every op at one version with per-op results;
/// - compare-and-set: a stale `expected_version` is `Conflict`, the right one applies;
/// - bad input is `InvalidArgument` naming the field; a reader certificate writing is
///   `PermissionDenied`;
/// - scan: pages of 10 over 25 concepts, following `next_page_token`, in id order;
///   `scan_all` with a bound, range and keys-only scans;
/// - k-NN search (cosine and L2) finds the nearest embedding first;
/// - STALE and SESSION reads are spread over all three nodes (`ReadMeta.served_by`), and
///   a SESSION read sees the client's last write wherever it lands;
/// - a per-call deadline holds: a SESSION read waiting for a version far in the future
///   fails with `DeadlineExceeded` after about its 1 s deadline, not the 10 s default;
///   a write with a 1 s deadline to a frozen (SIGSTOPped) cluster fails the same way and
///   says its outcome is unknown.
///
/// Why: applications use the SDK, not the wire API; its results and error types are
/// the interface they program against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t95_sdk_api() -> anyhow::Result<()> {
    init_tracing();
    within("t95", Duration::from_secs(55), run()).await
}

async fn run() -> anyhow::Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    cluster.leader(Duration::from_secs(15)).await?;
    let c = client(&cluster, "writer")?;
    let read = ReadOptions::default();

    tracing::info!("--- edges and neighbors");
    {
        for id in ["t95/a", "t95/b", "t95/c"] {
            c.put(concept(id, id), None).await?;
        }
        c.put_edge(edge("t95/a", "t95/b", "cites", 0.5)).await?;
        c.put_edge(edge("t95/a", "t95/c", "cites", 2.0)).await?;
        c.put_edge(edge("t95/c", "t95/a", "likes", 1.0)).await?;
        let out = c
            .neighbors(&Neighbors::of("t95/a"), None, read)
            .await?
            .items;
        let ids: Vec<_> = out.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["t95/b", "t95/c"], "{out:?}");
        let incoming = c
            .neighbors_all(&Neighbors::of("t95/a").direction(Direction::In), 100, read)
            .await?;
        assert_eq!(incoming.len(), 1);
        assert_eq!(
            (incoming[0].id.as_str(), incoming[0].relation.as_str()),
            ("t95/c", "likes")
        );
        let both = c
            .neighbors_all(
                &Neighbors::of("t95/a").direction(Direction::Both),
                100,
                read,
            )
            .await?;
        assert_eq!(both.len(), 3, "{both:?}");
        let likes = c
            .neighbors_all(
                &Neighbors::of("t95/a")
                    .direction(Direction::Both)
                    .relation("likes"),
                100,
                read,
            )
            .await?;
        assert_eq!(likes.len(), 1, "{likes:?}");
        assert!(c.delete_edge("t95/a", "t95/b", "cites").await?);
        assert!(!c.delete_edge("t95/a", "t95/b", "cites").await?);
        let out = c.neighbors_all(&Neighbors::of("t95/a"), 100, read).await?;
        assert_eq!(out.len(), 1);
        let missing = c.put_edge(edge("t95/a", "t95/nobody", "cites", 1.0)).await;
        assert!(
            matches!(missing, Err(ClientError::Conflict { .. })),
            "{missing:?}"
        );
    }

    tracing::info!("--- a batch is atomic");
    {
        let a = c
            .get("t95/a", Consistency::Linearizable)
            .await?
            .expect("t95/a");
        let mut failing = Batch::new();
        failing
            .put(concept("t95/x", "x"))
            .put_edge(edge("t95/x", "t95/a", "r", 1.0))
            .check("t95/a", a.version + 1000);
        let r = c.batch(&failing).await;
        assert!(matches!(r, Err(ClientError::Conflict { .. })), "{r:?}");
        assert_eq!(c.get("t95/x", Consistency::Linearizable).await?, None);

        let mut good = Batch::new();
        good.check("t95/a", a.version)
            .put(concept("t95/x", "x"))
            .put_edge(edge("t95/x", "t95/a", "r", 1.0))
            .put(concept("t95/a", "a2"));
        let out = c.batch(&good).await?;
        assert_eq!(out.existed, [true, false, false, true]);
        let x = c
            .get("t95/x", Consistency::Linearizable)
            .await?
            .expect("t95/x");
        let a2 = c
            .get("t95/a", Consistency::Linearizable)
            .await?
            .expect("t95/a");
        assert_eq!(x.version, out.write.version);
        assert_eq!(a2.version, out.write.version);
        assert_eq!(c.session_token(), out.write.version);
    }

    tracing::info!("--- compare-and-set, invalid input and roles map to typed errors");
    {
        let b = c
            .get("t95/b", Consistency::Linearizable)
            .await?
            .expect("t95/b");
        let stale = c.put(concept("t95/b", "b2"), Some(b.version + 1)).await;
        assert!(
            matches!(stale, Err(ClientError::Conflict { .. })),
            "{stale:?}"
        );
        let exists = c.put(concept("t95/b", "b2"), Some(0)).await;
        assert!(
            matches!(exists, Err(ClientError::Conflict { .. })),
            "{exists:?}"
        );
        c.put(concept("t95/b", "b2"), Some(b.version)).await?;

        match c.put(concept("", "no id"), None).await {
            Err(ClientError::InvalidArgument { field, message }) => {
                let field = field.expect("the field is named");
                assert!(field.ends_with("id"), "{field}: {message}");
            }
            other => panic!("empty id: {other:?}"),
        }
        let mut bad = concept("t95/bad", "");
        bad.embedding = vec![1.0; 3];
        match c.put(bad, None).await {
            Err(ClientError::InvalidArgument { field, .. }) => {
                assert!(field.expect("named").contains("embedding"));
            }
            other => panic!("short embedding: {other:?}"),
        }
        let reader = client(&cluster, "reader")?;
        let denied = reader.put(concept("t95/r", ""), None).await;
        assert!(
            matches!(denied, Err(ClientError::PermissionDenied { .. })),
            "{denied:?}"
        );
    }

    tracing::info!("--- scan pages");
    {
        let mut batch = Batch::new();
        for i in 0..25 {
            batch.put(concept(&format!("t95/scan/{i:02}"), &format!("v{i}")));
        }
        c.batch(&batch).await?;
        let scan = Scan::prefix("t95/scan/").page_size(10);
        let (mut ids, mut pages, mut token) = (Vec::new(), 0, None::<String>);
        loop {
            let page = c.scan(&scan, token.as_deref(), read).await?;
            pages += 1;
            assert!(page.items.len() <= 10);
            ids.extend(page.items.into_iter().map(|c| c.id));
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let want: Vec<_> = (0..25).map(|i| format!("t95/scan/{i:02}")).collect();
        assert_eq!(ids, want);
        assert!(pages >= 3, "{pages} pages");
        assert_eq!(c.scan_all(&scan, 17, read).await?.len(), 17);
        let range = c
            .scan_all(
                &Scan::range("t95/scan/05", Some("t95/scan/08".into())).keys_only(true),
                100,
                read,
            )
            .await?;
        let ids: Vec<_> = range.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["t95/scan/05", "t95/scan/06", "t95/scan/07"]);
        assert!(range.iter().all(|c| c.content.is_empty() && c.version > 0));
    }

    tracing::info!("--- k-NN search");
    {
        let mut batch = Batch::new();
        for i in 0..4 {
            let mut v = concept(&format!("t95/vec/{i}"), &format!("axis {i}"));
            v.embedding = axis(i);
            batch.put(v);
        }
        c.batch(&batch).await?;
        let hits = c
            .search(&Search::new(axis(2), 2).include_concepts(true), read)
            .await?;
        assert_eq!(hits.value.len(), 2);
        assert_eq!(hits.value[0].id, "t95/vec/2");
        assert_eq!(
            hits.value[0].concept.as_ref().map(|c| c.content.clone()),
            Some(b"axis 2".to_vec())
        );
        let l2 = c
            .search(&Search::new(axis(3), 1).metric(Metric::L2), read)
            .await?;
        assert_eq!(l2.value[0].id, "t95/vec/3");
        assert!(l2.value[0].concept.is_none());
    }

    tracing::info!("--- STALE and SESSION reads are spread over every node");
    {
        let all: BTreeSet<u64> = cluster.ids().into_iter().collect();
        let mut stale = BTreeSet::new();
        for _ in 0..9 {
            let r = c.get_with("t95/b", ReadOptions::stale()).await?;
            stale.insert(r.meta.served_by);
        }
        assert_eq!(stale, all, "STALE reads served by {stale:?}");
        let mut session = BTreeSet::new();
        for i in 0..9 {
            let w = c.put(concept("t95/s", &format!("s{i}")), None).await?;
            let r = c.get_with("t95/s", ReadOptions::session()).await?;
            let got = r.value.expect("own write visible");
            assert_eq!(got.version, w.version, "SESSION read missed its own write");
            assert!(r.meta.applied_index + 1 >= w.version, "{:?}", r.meta);
            session.insert(r.meta.served_by);
        }
        assert_eq!(session, all, "SESSION reads served by {session:?}");
    }

    tracing::info!("--- a per-call deadline ends the call");
    {
        let started = Instant::now();
        let r = c
            .get_with(
                "t95/b",
                ReadOptions::session()
                    .session_index(u64::MAX / 2)
                    .deadline(Duration::from_secs(1)),
            )
            .await;
        let took = started.elapsed();
        match r {
            Err(ClientError::DeadlineExceeded {
                deadline,
                outcome_unknown,
                ..
            }) => {
                assert_eq!(deadline, Duration::from_secs(1));
                assert!(!outcome_unknown, "a read has no unknown outcome");
            }
            other => panic!("expected DeadlineExceeded, got {other:?}"),
        }
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "the call took {took:?}"
        );
    }

    tracing::info!("--- a write whose deadline passes on a frozen cluster has an unknown outcome");
    {
        let ids = cluster.ids();
        for &id in &ids {
            cluster.pause(id)?;
        }
        let started = Instant::now();
        let r = c
            .put_with(
                concept("t95/frozen", "?"),
                None,
                CallOptions::new().deadline(Duration::from_secs(1)),
            )
            .await;
        let took = started.elapsed();
        for &id in &ids {
            cluster.resume(id)?;
        }
        match r {
            Err(ClientError::DeadlineExceeded {
                outcome_unknown, ..
            }) => assert!(outcome_unknown, "the write reached a node"),
            other => panic!("expected DeadlineExceeded, got {other:?}"),
        }
        assert!(took < Duration::from_secs(3), "the call took {took:?}");
    }

    cluster.finish();
    Ok(())
}
