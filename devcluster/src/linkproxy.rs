//! [`LinkProxy`]: a TCP proxy on one directed link i→j (node i's connections to node j's
//! Raft port), with the faults a network can have: connections reset, a black hole,
//! delay per direction, and one-way cuts.
//!
//! ```text
//!   node i ──TCP──▶ LinkProxy(i→j) 127.0.0.1:P ──TCP──▶ node j's raft port
//!                   │ Upstream   : bytes i→j (i's requests)
//!                   │ Downstream : bytes j→i (j's answers)
//!                   └ per connection, per direction: read → bounded queue (delay) → write
//! ```
//!
//! Node i reaches it because it is started with `--peer-dial j=127.0.0.1:P`; TLS runs end
//! to end through it (the proxy only moves bytes). Two users share this implementation:
//! the real-process test harness (`cluster-tests`, one proxy per link in the test
//! process) and `sutra local start --link-proxies` (one process hosting every link's
//! proxy, driven through a control socket: [`crate::proxies`]).
//!
//! Bytes a fault keeps from crossing are discarded, never delivered later: a TCP stream
//! that lost bytes cannot be resumed, so once the fault is lifted such a connection is
//! reset (both ends see it die, as they would after a real partition outlived their
//! keepalive) and the nodes dial again. A connection that lost nothing simply goes on.
//!
//! Runs on tokio tasks of the process that starts it; dropping the proxy stops accepting
//! and resets every connection it holds.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Bytes read from a socket at once.
const CHUNK_BYTES: usize = 16 << 10;
/// Bytes held per connection and direction (in flight through a delay); reading stops
/// while this much waits, so a slow or stopped receiver pushes back on the sender.
const MAX_QUEUED_BYTES: usize = 1 << 20;
/// Longest a dial of the link's target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One direction of a link's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the dialing node i to node j: i's requests to j.
    Upstream,
    /// From node j back to node i (j's answers to i's requests).
    Downstream,
}

/// What a link does with its connections as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// Forward (subject to the per-direction cuts and delays).
    Pass,
    /// Reset every connection and every new one: the dialer sees "connection reset".
    Drop,
    /// Accept, hold every connection open and forward nothing either way: the dialer
    /// sees timeouts.
    Blackhole,
}

/// The faults of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectionFaults {
    /// Bytes in this direction are discarded.
    pub cut: bool,
    /// Each chunk is held this long before it is forwarded.
    pub delay: Duration,
}

/// Everything a link does to its traffic at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFaults {
    /// The link as a whole.
    pub mode: LinkMode,
    /// Bytes from the dialer to the target.
    pub upstream: DirectionFaults,
    /// Bytes from the target back to the dialer.
    pub downstream: DirectionFaults,
}

impl Default for LinkFaults {
    fn default() -> Self {
        Self {
            mode: LinkMode::Pass,
            upstream: DirectionFaults::default(),
            downstream: DirectionFaults::default(),
        }
    }
}

impl LinkFaults {
    fn direction(&self, dir: Direction) -> &DirectionFaults {
        match dir {
            Direction::Upstream => &self.upstream,
            Direction::Downstream => &self.downstream,
        }
    }

    fn direction_mut(&mut self, dir: Direction) -> &mut DirectionFaults {
        match dir {
            Direction::Upstream => &mut self.upstream,
            Direction::Downstream => &mut self.downstream,
        }
    }

    /// Whether bytes in `dir` are kept from crossing.
    fn blocks(&self, dir: Direction) -> bool {
        self.mode != LinkMode::Pass || self.direction(dir).cut
    }
}

/// Counters of a link since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Connections accepted and dialed through to the target.
    pub connections: u64,
    /// Connections reset at once because the link was in [`LinkMode::Drop`], or because
    /// the target could not be dialed.
    pub refused: u64,
    /// Connections reset by a fault (drop, or lifting a fault that had discarded bytes).
    pub reset: u64,
    /// Bytes delivered from the dialer to the target.
    pub upstream_bytes: u64,
    /// Bytes delivered from the target to the dialer.
    pub downstream_bytes: u64,
    /// Bytes discarded, both directions.
    pub discarded_bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    upstream_bytes: AtomicU64,
    downstream_bytes: AtomicU64,
    discarded_bytes: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn delivered(&self, dir: Direction) -> &AtomicU64 {
        match dir {
            Direction::Upstream => &self.upstream_bytes,
            Direction::Downstream => &self.downstream_bytes,
        }
    }
}

/// A TCP proxy for the directed link `from → to`, listening on a loopback port and
/// forwarding to `target`. See the module docs.
#[derive(Debug)]
pub struct LinkProxy {
    from: u64,
    to: u64,
    addr: SocketAddr,
    target: String,
    faults: watch::Sender<LinkFaults>,
    counters: Arc<Counters>,
    accept_task: JoinHandle<()>,
}

impl LinkProxy {
    /// Starts a proxy for link `from → to` on a free port of `127.0.0.1`, forwarding to
    /// `target` (`host:port`). Must be called within a tokio runtime; its tasks run there.
    pub fn start(from: u64, to: u64, target: &str) -> std::io::Result<Self> {
        Self::start_on(from, to, SocketAddr::from(([127, 0, 0, 1], 0)), target)
    }

    /// Starts a proxy for link `from → to` listening on `listen` (port 0: any free one),
    /// forwarding to `target`. A proxy started again on the port it had keeps the
    /// addresses nodes were given valid. Must be called within a tokio runtime.
    pub fn start_on(from: u64, to: u64, listen: SocketAddr, target: &str) -> std::io::Result<Self> {
        let bind = || -> std::io::Result<std::net::TcpListener> {
            let l = std::net::TcpListener::bind(listen)?;
            l.set_nonblocking(true)?;
            Ok(l)
        };
        let std_listener = bind().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("binding a proxy for link {from}->{to} on {listen}: {e}"),
            )
        })?;
        let addr = std_listener.local_addr()?;
        let listener = TcpListener::from_std(std_listener)?;
        let (faults, rx) = watch::channel(LinkFaults::default());
        let counters = Arc::new(Counters::default());
        let accept_task = tokio::spawn(accept_loop(
            listener,
            target.to_owned(),
            rx,
            counters.clone(),
            (from, to),
        ));
        tracing::debug!(from, to, %addr, target, "link proxy started");
        Ok(Self {
            from,
            to,
            addr,
            target: target.to_owned(),
            faults,
            counters,
            accept_task,
        })
    }

    /// The address the dialing node is given for its peer.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where connections are forwarded.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `(from, to)`.
    pub fn link(&self) -> (u64, u64) {
        (self.from, self.to)
    }

    /// The faults in force now.
    pub fn faults(&self) -> LinkFaults {
        *self.faults.borrow()
    }

    /// Sets every fault at once.
    pub fn set(&self, faults: LinkFaults) {
        tracing::debug!(from = self.from, to = self.to, ?faults, "link faults");
        self.faults.send_replace(faults);
    }

    fn modify(&self, f: impl FnOnce(&mut LinkFaults)) {
        let mut faults = self.faults();
        f(&mut faults);
        self.set(faults);
    }

    /// Heals the link: forwards everything at once, no cut, no delay.
    pub fn pass(&self) {
        self.set(LinkFaults::default());
    }

    /// Resets every connection and every new one ([`LinkMode::Drop`]). Named so as not
    /// to be mistaken for `Drop::drop`.
    pub fn drop_link(&self) {
        self.modify(|f| f.mode = LinkMode::Drop);
    }

    /// Holds connections open and forwards nothing ([`LinkMode::Blackhole`]).
    pub fn blackhole(&self) {
        self.modify(|f| f.mode = LinkMode::Blackhole);
    }

    /// Holds each chunk in `dir` for `delay` before forwarding it (order is kept).
    pub fn delay(&self, dir: Direction, delay: Duration) {
        self.modify(|f| f.direction_mut(dir).delay = delay);
    }

    /// Discards the bytes in `dir` (the other direction still flows).
    pub fn cut(&self, dir: Direction) {
        self.modify(|f| f.direction_mut(dir).cut = true);
    }

    /// The counters so far.
    pub fn stats(&self) -> LinkStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LinkStats {
            connections: get(&c.connections),
            refused: get(&c.refused),
            reset: get(&c.reset),
            upstream_bytes: get(&c.upstream_bytes),
            downstream_bytes: get(&c.downstream_bytes),
            discarded_bytes: get(&c.discarded_bytes),
        }
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        // The listener goes with the accept task; the connections end (reset) when they
        // see the fault channel closed, which happens as `self.faults` is dropped.
        self.accept_task.abort();
    }
}

/// Closes `s` with a RST instead of a FIN.
fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

async fn accept_loop(
    listener: TcpListener,
    target: String,
    faults: watch::Receiver<LinkFaults>,
    counters: Arc<Counters>,
    (from, to): (u64, u64),
) {
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                // Out of descriptors or the like: pause briefly rather than spin.
                tracing::warn!(from, to, error = %e, "link proxy accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        if faults.borrow().mode == LinkMode::Drop {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            reset(sock);
            continue;
        }
        tokio::spawn(connection(
            sock,
            target.clone(),
            faults.clone(),
            counters.clone(),
        ));
    }
}

/// Why a connection ended abnormally: both of its sockets are then reset.
#[derive(Debug)]
struct Reset;

async fn connection(
    mut client: TcpStream,
    target: String,
    faults: watch::Receiver<LinkFaults>,
    counters: Arc<Counters>,
) {
    let mut server =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.as_str())).await {
            Ok(Ok(s)) => s,
            _ => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                reset(client);
                return;
            }
        };
    let _ = server.set_nodelay(true);
    counters.connections.fetch_add(1, Ordering::Relaxed);
    let outcome = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let up = pump(cr, sw, Direction::Upstream, faults.clone(), &counters);
        let down = pump(sr, cw, Direction::Downstream, faults.clone(), &counters);
        tokio::select! {
            r = async { tokio::try_join!(up, down) } => r.map(|_| ()),
            () = until_dropped(faults) => Err(Reset),
        }
    };
    if outcome.is_err() {
        counters.reset.fetch_add(1, Ordering::Relaxed);
        reset(client);
        reset(server);
    }
}

/// Returns once the link is in [`LinkMode::Drop`] or the proxy is gone.
async fn until_dropped(mut faults: watch::Receiver<LinkFaults>) {
    loop {
        if faults.borrow_and_update().mode == LinkMode::Drop {
            return;
        }
        if faults.changed().await.is_err() {
            return;
        }
    }
}

/// Moves bytes from `r` to `w` in direction `dir` under the link's faults: reads into a
/// bounded queue, each chunk due at its read time plus the delay then in force; discards
/// what a fault blocks. Ends with `Ok` after forwarding an end of stream, and with
/// [`Reset`] when the stream cannot go on (an I/O error, a fault lifted after bytes were
/// discarded, the proxy gone).
async fn pump(
    mut r: tokio::net::tcp::ReadHalf<'_>,
    mut w: tokio::net::tcp::WriteHalf<'_>,
    dir: Direction,
    mut faults: watch::Receiver<LinkFaults>,
    counters: &Counters,
) -> Result<(), Reset> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut queued = 0usize;
    let mut eof = false;
    // Bytes were discarded: this stream is broken for good.
    let mut lost = false;
    loop {
        let f = *faults.borrow_and_update();
        let blocked = f.blocks(dir);
        if blocked && !queue.is_empty() {
            Counters::add(&counters.discarded_bytes, queued);
            queue.clear();
            queued = 0;
            lost = true;
        }
        if lost && !blocked {
            return Err(Reset);
        }
        if eof && queue.is_empty() && !blocked {
            // The end of stream is forwarded like data: only when nothing blocks it.
            let _ = w.shutdown().await;
            return Ok(());
        }
        let due = queue.front().map(|(t, _)| *t);
        tokio::select! {
            changed = faults.changed() => {
                if changed.is_err() {
                    return Err(Reset);
                }
            }
            read = r.read(&mut buf), if !eof && queued < MAX_QUEUED_BYTES => match read {
                Ok(0) => eof = true,
                Ok(n) if blocked => {
                    Counters::add(&counters.discarded_bytes, n);
                    lost = true;
                }
                Ok(n) => {
                    let delay = f.direction(dir).delay;
                    queue.push_back((Instant::now() + delay, buf[..n].to_vec()));
                    queued += n;
                }
                // While blocked the dialer's reset is not forwarded either: hold on.
                Err(_) if blocked => {
                    eof = true;
                    lost = true;
                }
                Err(_) => return Err(Reset),
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let (_, chunk) = queue.pop_front().expect("a due chunk is queued");
                queued -= chunk.len();
                if w.write_all(&chunk).await.is_err() {
                    return Err(Reset);
                }
                Counters::add(counters.delivered(dir), chunk.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant as StdInstant;

    use super::*;

    /// An echo server on 127.0.0.1:0 that answers every byte it reads.
    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// A sink server that counts what it receives and answers nothing.
    async fn sink_server() -> (SocketAddr, Arc<AtomicU64>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(AtomicU64::new(0));
        let g = got.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let g = g.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        g.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
        });
        (addr, got)
    }

    const T: Duration = Duration::from_secs(5);

    /// Polls `check` every 10 ms until it returns `Ok`, for at most `timeout`.
    async fn wait_until(
        what: &str,
        timeout: Duration,
        mut check: impl AsyncFnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let deadline = StdInstant::now() + timeout;
        loop {
            match check().await {
                Ok(()) => return Ok(()),
                Err(e) if StdInstant::now() >= deadline => {
                    anyhow::bail!("{what}: not reached within {timeout:?}: {e:#}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Sends `msg` and reads back as many bytes.
    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await?;
        Ok(back)
    }

    async fn connect(p: &LinkProxy) -> TcpStream {
        TcpStream::connect(p.addr()).await.unwrap()
    }

    #[tokio::test]
    async fn pass_forwards_both_ways_and_end_of_stream() {
        let p = LinkProxy::start(1, 2, &echo_server().await.to_string()).unwrap();
        let mut s = connect(&p).await;
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let back = tokio::time::timeout(T, round_trip(&mut s, &big))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, big);
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(T, s.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(rest.is_empty());
        let st = p.stats();
        assert_eq!((st.upstream_bytes, st.downstream_bytes), (200_000, 200_000));
        assert_eq!((st.connections, st.reset, st.discarded_bytes), (1, 0, 0));
    }

    #[tokio::test]
    async fn drop_resets_open_and_new_connections_until_pass() {
        let p = LinkProxy::start(1, 2, &echo_server().await.to_string()).unwrap();
        let mut open = connect(&p).await;
        round_trip(&mut open, b"hello").await.unwrap();
        p.drop_link();
        // The open connection is reset: a read ends in an error or at once with nothing.
        let mut buf = [0u8; 8];
        let r = tokio::time::timeout(T, open.read(&mut buf)).await.unwrap();
        assert!(matches!(r, Err(_) | Ok(0)), "{r:?}");
        // A new one is accepted and reset.
        let mut new = connect(&p).await;
        let r = tokio::time::timeout(T, round_trip(&mut new, b"x"))
            .await
            .unwrap();
        assert!(r.is_err(), "{r:?}");
        assert!(
            p.stats().refused >= 1 && p.stats().reset >= 1,
            "{:?}",
            p.stats()
        );
        p.pass();
        let mut again = connect(&p).await;
        assert_eq!(round_trip(&mut again, b"back").await.unwrap(), b"back");
    }

    #[tokio::test]
    async fn blackhole_holds_connections_and_forwards_nothing() {
        let (target, got) = sink_server().await;
        let p = LinkProxy::start(1, 2, &target.to_string()).unwrap();
        let echo = LinkProxy::start(1, 3, &echo_server().await.to_string()).unwrap();
        echo.blackhole();
        p.blackhole();
        // Nothing comes back, and the connection stays open (a read times out).
        let mut s = connect(&echo).await;
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        let r = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
        assert!(r.is_err(), "a blackholed connection answered: {r:?}");
        // Nothing reaches the target either, even a close.
        let mut t = connect(&p).await;
        t.write_all(&[7u8; 10_000]).await.unwrap();
        t.shutdown().await.unwrap();
        wait_until("the proxy discarding 10000 bytes", T, async || {
            anyhow::ensure!(p.stats().discarded_bytes == 10_000, "{:?}", p.stats());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(got.load(Ordering::Relaxed), 0);
        // Lifting the black hole resets the connection that lost bytes (never delivered
        // late), and new connections work.
        echo.pass();
        let r = tokio::time::timeout(T, s.read(&mut buf)).await.unwrap();
        assert!(matches!(r, Err(_) | Ok(0)), "{r:?}");
        let mut s = connect(&echo).await;
        assert_eq!(round_trip(&mut s, b"pong").await.unwrap(), b"pong");
        assert_eq!(got.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn an_idle_connection_survives_a_blackhole() {
        let p = LinkProxy::start(1, 2, &echo_server().await.to_string()).unwrap();
        let mut s = connect(&p).await;
        round_trip(&mut s, b"a").await.unwrap();
        p.blackhole();
        p.pass();
        assert_eq!(round_trip(&mut s, b"b").await.unwrap(), b"b");
        assert_eq!(p.stats().reset, 0);
    }

    #[tokio::test]
    async fn delay_applies_per_direction() {
        let p = LinkProxy::start(1, 2, &echo_server().await.to_string()).unwrap();
        let mut s = connect(&p).await;
        round_trip(&mut s, b"warm").await.unwrap();
        for (dir, d) in [
            (Direction::Upstream, Duration::from_millis(150)),
            (Direction::Downstream, Duration::from_millis(150)),
        ] {
            p.pass();
            p.delay(dir, d);
            let start = StdInstant::now();
            assert_eq!(round_trip(&mut s, b"slow").await.unwrap(), b"slow");
            let took = start.elapsed();
            assert!(took >= d, "{dir:?}: {took:?}");
            assert!(took < d + Duration::from_secs(2), "{dir:?}: {took:?}");
        }
        p.delay(Direction::Upstream, Duration::from_millis(100));
        p.delay(Direction::Downstream, Duration::from_millis(100));
        let start = StdInstant::now();
        round_trip(&mut s, b"both").await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(200));
        p.pass();
        let start = StdInstant::now();
        round_trip(&mut s, b"fast").await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn one_way_cuts() {
        // Upstream cut: the target receives nothing, while its answers would still flow.
        let (target, got) = sink_server().await;
        let p = LinkProxy::start(1, 2, &target.to_string()).unwrap();
        let mut s = connect(&p).await;
        s.write_all(b"before").await.unwrap();
        wait_until("6 bytes delivered", T, async || {
            anyhow::ensure!(got.load(Ordering::Relaxed) == 6);
            Ok(())
        })
        .await
        .unwrap();
        p.cut(Direction::Upstream);
        s.write_all(b"during").await.unwrap();
        wait_until("6 bytes discarded", T, async || {
            anyhow::ensure!(p.stats().discarded_bytes == 6, "{:?}", p.stats());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(got.load(Ordering::Relaxed), 6);

        // Downstream cut on an echo link: requests arrive (the echo server answers) but
        // the answers are discarded.
        let e = LinkProxy::start(1, 3, &echo_server().await.to_string()).unwrap();
        let mut s = connect(&e).await;
        round_trip(&mut s, b"ok").await.unwrap();
        e.cut(Direction::Downstream);
        s.write_all(b"lost").await.unwrap();
        wait_until("the answer discarded", T, async || {
            let st = e.stats();
            anyhow::ensure!(st.upstream_bytes == 6 && st.discarded_bytes == 4, "{st:?}");
            Ok(())
        })
        .await
        .unwrap();
        let mut buf = [0u8; 4];
        let r = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
        assert!(r.is_err(), "an answer crossed a downstream cut: {r:?}");
        e.pass();
        let r = tokio::time::timeout(T, s.read(&mut buf)).await.unwrap();
        assert!(
            matches!(r, Err(_) | Ok(0)),
            "the late answer was delivered: {r:?}"
        );
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_everything() {
        let p = LinkProxy::start(1, 2, &echo_server().await.to_string()).unwrap();
        let addr = p.addr();
        let mut s = connect(&p).await;
        round_trip(&mut s, b"hi").await.unwrap();
        drop(p);
        let mut buf = [0u8; 2];
        let r = tokio::time::timeout(T, s.read(&mut buf)).await.unwrap();
        assert!(matches!(r, Err(_) | Ok(0)), "{r:?}");
        wait_until("the listener closed", T, async || {
            anyhow::ensure!(TcpStream::connect(addr).await.is_err(), "still accepting");
            Ok(())
        })
        .await
        .unwrap();
    }
}
