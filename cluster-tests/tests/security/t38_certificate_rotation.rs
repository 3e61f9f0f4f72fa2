//! t38: certificate rotation on a running cluster, done the way docs/certificates.md tells
//! an operator to: files replaced in place, one node restarted at a time, certificates
//! issued with `sutra-node certs`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sutra_certs::CertPaths;
use sutra_checker::History;
use sutra_client::{Connector, TlsFiles};
use sutra_cluster_tests::client::{SERVER_NAME, channel};
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, Load, check_scan, init_tracing, process, within,
};
use sutra_proto::storage::{Concept, HealthCheckRequest, PutConceptRequest, WriteHeader};
use tonic::Code;

/// How long one call that must be refused, or must succeed at once, may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A host name only the rotated certificate of node 1 carries.
const ROTATED_NAME: &str = "rotated.t38";

/// Three phases on a running three-node cluster, each a rolling restart (SIGTERM, start
/// again on the same flags, wait until the node names the leader and has applied what the
/// leader had) with writes acknowledged before and writes going on throughout:
///
/// 1. Same-CA rotation of node 1: its pair moved aside, `sutra-node certs` issues a new
///    one from the CA in the directory (with an extra host name) and leaves the CA alone.
///    Until node 1 restarts, it still presents the old certificate (a client checking the
///    new name is refused); after the restart it presents the new one.
/// 2. CA rotation with overlap: `sutra-node certs` makes a new CA and certificates in a
///    second directory; (a) `ca.pem` becomes a bundle of new and old CA, rolling restart;
///    (b) node and client certificates and the CA key from the new CA, rolling restart;
///    (c) `ca.pem` is the new CA alone, rolling restart.
/// 3. Every write acknowledged at any point is readable, the replicas converge, a client
///    certificate of the old CA is refused by every node, one of the new CA works
///    (through the SDK's `Connector`), and re-running `sutra-node certs` on the directory
///    finds it consistent.
///
/// Why: certificates expire and CAs get replaced. The overlap procedure only works if
/// every TLS path (client port and peer port as servers, peer channels and the SDK as
/// clients) trusts every CA of a bundle, and if a node restarted with new files rejoins
/// without the cluster losing availability or data. A mistake there shows up as a split
/// cluster on the day of the rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t38_certificate_rotation() -> Result<()> {
    init_tracing();
    within("t38", Duration::from_secs(120), run()).await
}

async fn run() -> Result<()> {
    tracing::info!("--- start three nodes, 60 writes acknowledged");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let certs = cluster.certs_dir().to_owned();
    let before = Arc::new(History::new());
    cluster.write_many(&before, "t38/before/", 60, 3).await?;

    tracing::info!("--- same CA: a new certificate for node 1, read only when it restarts");
    {
        let retired = cluster.dir().join("retired-node-1");
        std::fs::create_dir_all(&retired)?;
        let node1 = CertPaths::node(&certs, 1);
        let ca_before = std::fs::read(&CertPaths::ca(&certs).cert)?;
        for path in [&node1.cert, &node1.key] {
            let name = path.file_name().context("a file name")?;
            std::fs::rename(path, retired.join(name))?;
        }
        let out = certs_cmd(&[
            "--dir".as_ref(),
            certs.as_os_str(),
            "--nodes".as_ref(),
            "1".as_ref(),
            "--host".as_ref(),
            ROTATED_NAME.as_ref(),
        ])?;
        ensure!(
            out.contains("node-1.pem") && out.contains("node-1-key.pem"),
            "sutra-node certs did not issue node 1's pair:\n{out}"
        );
        ensure!(
            std::fs::read(&CertPaths::ca(&certs).cert)? == ca_before,
            "issuing one certificate changed the CA file"
        );

        let err = probe_name(&cluster, 1, ROTATED_NAME)
            .await
            .expect_err("a running node must still present the certificate it started with");
        tracing::info!(error = %format!("{err:#}"), "the running node still presents its old certificate");

        roll(&cluster, 1).await?;
        probe_name(&cluster, 1, ROTATED_NAME)
            .await
            .context("node 1 after its restart, checked against the new certificate's name")?;
    }

    tracing::info!("--- new CA: a complete set in a second directory, from sutra-node certs");
    let new_dir = cluster.dir().join("certs-new");
    certs_cmd(&["--dir".as_ref(), new_dir.as_os_str()])?;
    // The old CA and the old writer certificate, to check at the end that they are refused.
    let old_dir = cluster.dir().join("certs-old");
    std::fs::create_dir_all(&old_dir)?;
    for name in ["ca.pem", "client-writer.pem", "client-writer-key.pem"] {
        std::fs::copy(certs.join(name), old_dir.join(name))?;
    }

    tracing::info!("--- CA step 1: trust both CAs (bundle in ca.pem), rolling restart");
    let trust_both = {
        let mut bundle = std::fs::read(new_dir.join("ca.pem"))?;
        bundle.extend(std::fs::read(old_dir.join("ca.pem"))?);
        replace_with(&certs.join("ca.pem"), &bundle)?;
        // The test's clients trust both CAs from now on and still present old certificates.
        cluster.reload_client_certs();
        let history = rolling_restart_under_load(&cluster, "t38/trust-both").await?;
        // The old CA is the second certificate of the bundle, and every node still
        // presents an old certificate: the SDK must have loaded the whole file.
        let sdk = Connector::new(
            &TlsFiles {
                ca: certs.join("ca.pem"),
                cert: certs.join("client-writer.pem"),
                key: certs.join("client-writer-key.pem"),
            },
            Some(SERVER_NAME),
        )?;
        for id in cluster.ids() {
            health_with(&sdk, &cluster.node(id)?.api_addr)
                .await
                .with_context(|| format!("node {id} through the SDK trusting the bundle"))?;
        }
        history
    };

    tracing::info!("--- CA step 2: node and client certificates of the new CA, rolling restart");
    let new_leaves = {
        let mut files = vec!["ca-key.pem".to_owned()];
        for stem in ["node-1", "node-2", "node-3"]
            .into_iter()
            .map(str::to_owned)
            .chain(["admin", "writer", "reader"].map(|c| format!("client-{c}")))
        {
            files.push(format!("{stem}.pem"));
            files.push(format!("{stem}-key.pem"));
        }
        for name in &files {
            replace_with(&certs.join(name), &std::fs::read(new_dir.join(name))?)?;
        }
        cluster.reload_client_certs();
        rolling_restart_under_load(&cluster, "t38/new-leaves").await?
    };

    tracing::info!("--- CA step 3: drop the old CA (ca.pem is the new CA alone), rolling restart");
    let new_only = {
        replace_with(
            &certs.join("ca.pem"),
            &std::fs::read(new_dir.join("ca.pem"))?,
        )?;
        cluster.reload_client_certs();
        rolling_restart_under_load(&cluster, "t38/new-only").await?
    };

    tracing::info!("--- every acknowledged write is readable, the replicas converge");
    for (prefix, history) in [
        ("t38/before/", &before),
        ("t38/trust-both/", &trust_both),
        ("t38/new-leaves/", &new_leaves),
        ("t38/new-only/", &new_only),
    ] {
        let stored = cluster
            .read_all_on_leader(prefix, Duration::from_secs(30))
            .await?;
        let report = check_scan(&history.ops(), &stored)
            .with_context(|| format!("writes under {prefix}"))?;
        tracing::info!(prefix, ?report, "checked");
    }
    cluster
        .wait_converged(&cluster.ids(), Duration::from_secs(30))
        .await?;

    tracing::info!("--- an old-CA client certificate is refused, a new-CA one works (SDK)");
    {
        let old_writer = TlsFiles {
            ca: certs.join("ca.pem"),
            cert: old_dir.join("client-writer.pem"),
            key: old_dir.join("client-writer-key.pem"),
        };
        let new_writer = TlsFiles {
            ca: certs.join("ca.pem"),
            cert: certs.join("client-writer.pem"),
            key: certs.join("client-writer-key.pem"),
        };
        let old = Connector::new(&old_writer, Some(SERVER_NAME))?;
        let new = Connector::new(&new_writer, Some(SERVER_NAME))?;
        for id in cluster.ids() {
            let addr = cluster.node(id)?.api_addr.clone();
            match put_with(&old, &addr, &format!("t38/old-ca/{id}")).await {
                Ok(()) => bail!("node {id} accepted a write with an old-CA client certificate"),
                Err(e) => ensure!(
                    refused_by_transport(&e),
                    "node {id}: an old-CA certificate must fail in the TLS handshake, got {e:#}"
                ),
            }
            health_with(&new, &addr)
                .await
                .with_context(|| format!("node {id}: HealthCheck with a new-CA certificate"))?;
        }
        let leader = cluster.leader(Duration::from_secs(10)).await?;
        let addr = cluster.node(leader)?.api_addr.clone();
        put_with(&new, &addr, "t38/new-ca/final")
            .await
            .context("a write with a new-CA client certificate")?;
        let stored = cluster
            .read_all_on_leader("t38/old-ca/", Duration::from_secs(10))
            .await?;
        ensure!(stored.is_empty(), "old-CA writes were applied: {stored:?}");
    }

    tracing::info!("--- sutra-node certs finds the rotated directory consistent");
    let out = certs_cmd(&["--dir".as_ref(), certs.as_os_str()])?;
    ensure!(
        out.contains("already holds every requested certificate"),
        "re-running sutra-node certs on the rotated directory changed it:\n{out}"
    );

    cluster.finish();
    Ok(())
}

/// Runs `sutra-node certs` with `args`, requiring success; returns its standard output.
fn certs_cmd(args: &[&OsStr]) -> Result<String> {
    let out = std::process::Command::new(process::node_binary()?)
        .arg("certs")
        .args(args)
        .output()
        .context("running sutra-node certs")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "sutra-node certs {args:?}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    tracing::info!(?args, %stdout, "sutra-node certs");
    Ok(stdout)
}

/// Replaces `path` with `contents` as an operator's `install` does: written beside it,
/// with the mode of the file it replaces, then renamed over it.
fn replace_with(path: &Path, contents: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let mode = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .permissions();
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, mode)?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// One step of a rolling restart: SIGTERM node `id` (it must exit 0), start it again with
/// the same flags (so it reads its certificate files again), and wait until every node
/// names one leader and `id` has applied what the leader had applied by then.
async fn roll(cluster: &Cluster, id: u64) -> Result<()> {
    tracing::info!(node = id, "restarting");
    let exit = cluster.terminate(id, Duration::from_secs(20)).await?;
    ensure!(exit.success(), "node {id} exited with {exit:?} on SIGTERM");
    cluster.restart(id)?;
    let leader = cluster
        .wait_for_leader(&cluster.ids(), Duration::from_secs(30))
        .await
        .with_context(|| format!("node {id} rejoining"))?;
    let target = cluster.health(leader).await?.applied_index;
    cluster
        .wait_applied(id, target, Duration::from_secs(30))
        .await?;
    tracing::info!(node = id, leader, applied = target, "back and caught up");
    Ok(())
}

/// Restarts nodes 1, 2, 3 in turn while two writers put concepts under `name/`, with the
/// certificates the test's clients find in the directory now. Writes must be
/// acknowledged during the restarts; returns the writers' history.
async fn rolling_restart_under_load(cluster: &Cluster, name: &str) -> Result<Arc<History>> {
    let load = Load::start(cluster, name, 2, 1_000_000, Duration::from_secs(150))?;
    for id in cluster.ids() {
        roll(cluster, id).await?;
    }
    let history = load.stop().await?;
    let counts = history.counts();
    tracing::info!(name, ?counts, "writes during the rolling restart");
    ensure!(
        counts.acknowledged > 0,
        "no write was acknowledged during the rolling restart ({name}): {counts:?}"
    );
    Ok(history)
}

/// A HealthCheck on node `id` with the reader certificate, verifying the node's
/// certificate against `name` instead of the usual `localhost`.
async fn probe_name(cluster: &Cluster, id: u64, name: &str) -> Result<()> {
    let certs = cluster.certs();
    let reader = CertPaths::client(&certs.dir, ClientRole::Reader.cert_name());
    let tls = sutra_certs::client_tls(&certs.ca(), &reader.cert, &reader.key, name)?;
    let addr = cluster.node(id)?.api_addr.clone();
    let mut client = sutra_cluster_tests::NodeClient::new(&addr, channel(&addr, tls)?);
    tokio::time::timeout(
        CALL_TIMEOUT,
        client.storage.health_check(HealthCheckRequest {}),
    )
    .await
    .context("HealthCheck timed out")??;
    Ok(())
}

/// A HealthCheck through `connector` on the node at `addr`, within [`CALL_TIMEOUT`].
async fn health_with(connector: &Connector, addr: &str) -> Result<()> {
    tokio::time::timeout(CALL_TIMEOUT, async {
        connector
            .storage(addr)
            .await?
            .health_check(HealthCheckRequest {})
            .await?;
        anyhow::Ok(())
    })
    .await
    .context("HealthCheck timed out")?
}

/// A put of `id` through `connector` to the node at `addr`, within [`CALL_TIMEOUT`].
async fn put_with(connector: &Connector, addr: &str, id: &str) -> Result<()> {
    tokio::time::timeout(CALL_TIMEOUT, async {
        let mut storage = connector.storage(addr).await?;
        storage
            .put_concept(PutConceptRequest {
                header: Some(WriteHeader {
                    client_id: id.to_owned(),
                    sequence: 1,
                }),
                concept: Some(Concept {
                    id: id.to_owned(),
                    content: id.as_bytes().to_vec(),
                    ..Concept::default()
                }),
                expected_version: None,
            })
            .await?;
        anyhow::Ok(())
    })
    .await
    .context("put timed out")?
}

/// Whether `e` is a failure of the connection (the TLS handshake refused), not an answer
/// of the service such as PERMISSION_DENIED.
fn refused_by_transport(e: &anyhow::Error) -> bool {
    if let Some(sutra_client::Error::Connect { .. }) = e.downcast_ref::<sutra_client::Error>() {
        return true;
    }
    e.downcast_ref::<tonic::Status>().is_some_and(|s| {
        matches!(
            s.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
        )
    })
}
