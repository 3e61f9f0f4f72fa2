//! t186: the systemd notification protocol (`Type=notify`).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, wait_until, within};

/// A node started with `NOTIFY_SOCKET` (as systemd starts a `Type=notify` service) sends
/// `READY=1` once it serves its endpoints, and `STOPPING=1` when SIGTERM stops it; the
/// other nodes, started without the variable, are not affected.
///
/// Why: systemd orders dependent units and reports a failed start by this message; a
/// unit that never says READY is killed after its start timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t186_supervisor_readiness() -> anyhow::Result<()> {
    init_tracing();
    within("t186", Duration::from_secs(60), run()).await
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path)?;
    socket.set_nonblocking(true)?;
    let received = std::sync::Mutex::new(String::new());
    let drain = || {
        let mut buf = [0u8; 4096];
        let mut all = received.lock().unwrap_or_else(|p| p.into_inner());
        while let Ok(n) = socket.recv(&mut buf) {
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        all.clone()
    };

    let mut opts = ClusterOptions::default();
    opts.node_env.insert(
        2,
        vec![("NOTIFY_SOCKET".into(), path.display().to_string())],
    );
    let cluster = Cluster::start(opts).await?;
    let got = wait_until("READY=1 from node 2", Duration::from_secs(15), async || {
        let all = drain();
        anyhow::ensure!(all.lines().any(|l| l == "READY=1"), "so far: {all:?}");
        Ok(all)
    })
    .await?;
    assert!(
        got.lines()
            .any(|l| l.starts_with("STATUS=serving the client API on ")),
        "{got:?}"
    );
    assert!(!got.contains("STOPPING=1"), "{got:?}");

    let status = cluster.terminate(2, Duration::from_secs(20)).await?;
    assert!(status.success(), "node 2 exited with {status:?}");
    let all = drain();
    assert!(all.lines().any(|l| l == "STOPPING=1"), "{all:?}");
    cluster.finish();
    Ok(())
}
