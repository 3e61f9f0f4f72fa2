//! One plain HTTP request to a node's monitoring listener: the status code and body.

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `method path` to `addr` as HTTP/1.0 (so the answer is never chunked, and ends
/// with the connection) and reads the whole answer.
pub async fn request(addr: &str, method: &str, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok((code, body.to_string()))
}

/// The value of the unlabelled sample `name` in a metrics exposition.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Node `id`'s `/metrics` (the cluster must have been started with `metrics_listen`).
pub async fn scrape(cluster: &crate::Cluster, id: u64) -> Result<String> {
    let addr = cluster
        .node(id)?
        .metrics_addr
        .clone()
        .context("the cluster was started without metrics_listen")?;
    let (code, body) = request(&addr, "GET", "/metrics").await?;
    anyhow::ensure!(code == 200, "node {id} /metrics answered {code}");
    Ok(body)
}
