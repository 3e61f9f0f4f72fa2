//! The proxy process of a local cluster started with link proxies (`sutra local start
//! --link-proxies`): a [`LinkProxy`] on every directed peer link, and the control socket
//! ([`crate::control`]) through which a drill isolates and heals nodes.
//!
//! ```text
//!   node i ──▶ LinkProxy(i→j) 127.0.0.1:P_ij ──▶ node j's raft port     (one per i≠j)
//!   sutra drill ── "isolate 2\n" ──▶ <dir>/proxies.sock ──▶ "ok isolated=2\n"
//! ```
//!
//! Every node is launched with `--peer-dial j=127.0.0.1:P_ij` for each other node j, so
//! all Raft traffic between nodes crosses a [`LinkProxy`]. The ports are chosen once and
//! kept in `cluster.json` (`link_proxies.links`), so a node restarted later, or this
//! process started again, uses the same ones.
//!
//! SIGTERM or SIGINT stops the process: it removes the socket, and every proxied
//! connection is reset.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::cluster_file::{LinkProxies, ProxyLink};
use crate::control::{MAX_LINE_BYTES, Reply, Request};
use crate::linkproxy::LinkProxy;

/// Every link proxy of the cluster and which nodes are isolated.
#[derive(Debug)]
pub struct ProxySet {
    proxies: BTreeMap<(u64, u64), LinkProxy>,
    isolated: BTreeSet<u64>,
}

impl ProxySet {
    /// Starts a proxy for each of `links` on its recorded address, forwarding to the
    /// Raft address `raft` gives for its target node. Within a tokio runtime.
    pub fn start(links: &[ProxyLink], raft: &BTreeMap<u64, String>) -> anyhow::Result<Self> {
        let mut proxies = BTreeMap::new();
        for l in links {
            let target = raft
                .get(&l.to)
                .with_context(|| format!("link {}->{}: no node {}", l.from, l.to, l.to))?;
            let listen: SocketAddr = l
                .addr
                .parse()
                .with_context(|| format!("link {}->{}: address {:?}", l.from, l.to, l.addr))?;
            let p = LinkProxy::start_on(l.from, l.to, listen, target)?;
            if proxies.insert((l.from, l.to), p).is_some() {
                bail!("link {}->{} listed twice", l.from, l.to);
            }
        }
        Ok(Self {
            proxies,
            isolated: BTreeSet::new(),
        })
    }

    fn isolated(&self) -> String {
        if self.isolated.is_empty() {
            return "none".into();
        }
        let ids: Vec<String> = self.isolated.iter().map(u64::to_string).collect();
        ids.join(",")
    }

    /// Carries out `req`.
    pub fn handle(&mut self, req: Request) -> Reply {
        match req {
            Request::Isolate(id) => {
                if !self.proxies.keys().any(|&(f, t)| f == id || t == id) {
                    return Reply::Err(format!("no link of node {id}"));
                }
                for (&(from, to), p) in &self.proxies {
                    if from == id || to == id {
                        p.blackhole();
                    }
                }
                self.isolated.insert(id);
                tracing::info!(node = id, "isolated");
                Reply::Ok(format!("isolated={}", self.isolated()))
            }
            Request::Heal => {
                self.proxies.values().for_each(LinkProxy::pass);
                self.isolated.clear();
                tracing::info!("healed every link");
                Reply::Ok("isolated=none".into())
            }
            Request::Status => {
                let (mut connections, mut reset, mut discarded) = (0, 0, 0);
                for p in self.proxies.values() {
                    let s = p.stats();
                    connections += s.connections;
                    reset += s.reset;
                    discarded += s.discarded_bytes;
                }
                Reply::Ok(format!(
                    "links={} isolated={} connections={connections} reset={reset} discarded_bytes={discarded}",
                    self.proxies.len(),
                    self.isolated()
                ))
            }
        }
    }

    /// The reply to one raw line.
    pub fn handle_line(&mut self, line: &str) -> Reply {
        match line.parse::<Request>() {
            Ok(req) => self.handle(req),
            Err(e) => Reply::Err(e.to_string()),
        }
    }
}

/// Runs the proxies of `proxies` towards the nodes' Raft addresses `raft` and serves the
/// control socket, until SIGTERM or SIGINT.
pub async fn serve(proxies: &LinkProxies, raft: &BTreeMap<u64, String>) -> anyhow::Result<()> {
    let set = Arc::new(Mutex::new(ProxySet::start(&proxies.links, raft)?));
    let path = &proxies.control;
    if UnixStream::connect(path).await.is_ok() {
        bail!(
            "another process serves the link proxies' control socket {}",
            path.display()
        );
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing stale {}", path.display())),
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    tracing::info!(links = proxies.links.len(), control = %path.display(), "link proxies ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => { tokio::spawn(control_connection(s, set.clone())); }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    let _ = std::fs::remove_file(path);
    tracing::info!("link proxies stopped");
    Ok(())
}

/// Answers the lines of one control connection until it closes.
async fn control_connection(s: UnixStream, set: Arc<Mutex<ProxySet>>) {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r).take(u64::MAX);
    loop {
        let mut line = String::new();
        r.set_limit(MAX_LINE_BYTES as u64 + 1);
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply = if line.len() > MAX_LINE_BYTES {
            Reply::Err("request line too long".into())
        } else {
            set.lock()
                .expect("proxy set lock: handle never panics")
                .handle_line(&line)
        };
        if w.write_all(format!("{reply}\n").as_bytes()).await.is_err()
            || line.len() > MAX_LINE_BYTES
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::request as control;

    fn line(r: Reply) -> String {
        r.to_string()
    }

    fn links(n: u64, port: impl Fn(u64, u64) -> u16) -> Vec<ProxyLink> {
        let mut v = Vec::new();
        for from in 1..=n {
            for to in (1..=n).filter(|&t| t != from) {
                v.push(ProxyLink {
                    from,
                    to,
                    addr: format!("127.0.0.1:{}", port(from, to)),
                });
            }
        }
        v
    }

    #[tokio::test]
    async fn isolate_blackholes_the_links_of_a_node_until_heal() {
        let raft: BTreeMap<u64, String> = (1..=3).map(|i| (i, format!("127.0.0.1:{i}"))).collect();
        let mut set = ProxySet::start(&links(3, |_, _| 0), &raft).unwrap();
        assert_eq!(
            line(set.handle_line("status")),
            "ok links=6 isolated=none connections=0 reset=0 discarded_bytes=0"
        );
        assert_eq!(line(set.handle_line("isolate 2\n")), "ok isolated=2");
        let blackholed: Vec<(u64, u64)> = set
            .proxies
            .iter()
            .filter(|(_, p)| p.faults().mode == crate::linkproxy::LinkMode::Blackhole)
            .map(|(&k, _)| k)
            .collect();
        assert_eq!(blackholed, vec![(1, 2), (2, 1), (2, 3), (3, 2)]);
        assert_eq!(line(set.handle_line("isolate 3")), "ok isolated=2,3");
        assert_eq!(line(set.handle_line("isolate 7")), "err no link of node 7");
        assert!(line(set.handle_line("status")).contains(" isolated=2,3 "));
        assert_eq!(line(set.handle_line("heal")), "ok isolated=none");
        assert!(
            set.proxies
                .values()
                .all(|p| p.faults() == crate::linkproxy::LinkFaults::default())
        );
        assert!(line(set.handle_line("bogus")).starts_with("err unknown command"));
    }

    #[tokio::test]
    async fn the_control_socket_answers_one_line_per_request() {
        let dir = tempfile::tempdir().unwrap();
        let raft: BTreeMap<u64, String> = (1..=2).map(|i| (i, format!("127.0.0.1:{i}"))).collect();
        let proxies = LinkProxies {
            pid: None,
            control: dir.path().join("proxies.sock"),
            log: dir.path().join("proxies.log"),
            links: links(2, |_, _| 0),
        };
        let p = proxies.clone();
        let server = tokio::spawn(async move { serve(&p, &raft).await });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            match control(&proxies.control, Request::Status).await {
                Ok(s) => break s,
                Err(e) if std::time::Instant::now() > deadline => panic!("{e:#}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        assert!(status.starts_with("links=2 isolated=none"), "{status}");
        assert_eq!(
            control(&proxies.control, Request::Isolate(1))
                .await
                .unwrap(),
            "isolated=1"
        );
        assert_eq!(
            control(&proxies.control, Request::Heal).await.unwrap(),
            "isolated=none"
        );
        let e = control(&proxies.control, Request::Isolate(5))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no link of node 5"), "{e:#}");
        // Several requests on one connection, and a bad one, each get one line.
        let mut s = UnixStream::connect(&proxies.control).await.unwrap();
        s.write_all(b"isolate 2\nnonsense\nheal\n").await.unwrap();
        let mut r = BufReader::new(s);
        let mut lines = Vec::new();
        for _ in 0..3 {
            let mut l = String::new();
            r.read_line(&mut l).await.unwrap();
            lines.push(l);
        }
        assert_eq!(lines[0], "ok isolated=2\n");
        assert!(lines[1].starts_with("err unknown command"), "{}", lines[1]);
        assert_eq!(lines[2], "ok isolated=none\n");
        server.abort();
    }
}
