//! The control socket of the link proxies: one [`Request`] per line in, one [`Reply`]
//! per line out, over a Unix stream socket (`link_proxies.control` in `cluster.json`).
//! Both ends use these types: the proxy process ([`crate::proxies`]) parses requests and
//! formats replies; [`request`] (the runner, the drills) does the opposite.
//!
//! | request | effect | reply |
//! |---|---|---|
//! | `isolate <id>` | black-holes every link from and to node `id` (clients still reach it); adds to earlier isolations | `ok isolated=<ids>` |
//! | `heal` | every link passes again | `ok isolated=none` |
//! | `status` | nothing | `ok links=<n> isolated=<ids\|none> connections=<n> reset=<n> discarded_bytes=<n>` |
//! | anything else | nothing | `err <reason>` |

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Longest a control request may take, connection included.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request line the control socket accepts.
pub const MAX_LINE_BYTES: usize = 256;

/// A control command, one line of the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Cut every link from and to a node.
    Isolate(u64),
    /// Let every link pass.
    Heal,
    /// Report the links and counters.
    Status,
}

/// Why a control line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

impl FromStr for Request {
    type Err = BadRequest;

    fn from_str(line: &str) -> Result<Self, BadRequest> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["isolate", id] => match id.parse::<u64>() {
                Ok(id) if id > 0 => Ok(Self::Isolate(id)),
                _ => Err(BadRequest(format!(
                    "isolate: {id:?} is not a node id (a positive integer)"
                ))),
            },
            ["isolate"] => Err(BadRequest("isolate: missing node id".into())),
            ["heal"] => Ok(Self::Heal),
            ["status"] => Ok(Self::Status),
            [] => Err(BadRequest("empty request".into())),
            [cmd, ..] if ["isolate", "heal", "status"].contains(cmd) => {
                Err(BadRequest(format!("{cmd}: too many arguments")))
            }
            [cmd, ..] => Err(BadRequest(format!(
                "unknown command {cmd:?} (isolate <id>, heal, status)"
            ))),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Isolate(id) => write!(f, "isolate {id}"),
            Self::Heal => f.write_str("heal"),
            Self::Status => f.write_str("status"),
        }
    }
}

/// The answer to one request line: `ok <text>` or `err <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done; what follows `ok`.
    Ok(String),
    /// Refused; why.
    Err(String),
}

impl Reply {
    /// Parses one reply line (a missing or garbled line is an `Err`).
    pub fn parse(line: &str) -> Self {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("ok")
            && (rest.is_empty() || rest.starts_with(' '))
        {
            return Self::Ok(rest.trim_start().to_string());
        }
        if let Some(rest) = line.strip_prefix("err ") {
            return Self::Err(rest.to_string());
        }
        Self::Err(if line.is_empty() { "empty reply" } else { line }.to_string())
    }
}

impl fmt::Display for Reply {
    /// The reply line without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok(text) if text.is_empty() => f.write_str("ok"),
            Self::Ok(text) => write!(f, "ok {text}"),
            Self::Err(reason) => write!(f, "err {reason}"),
        }
    }
}

/// Why a control request did not get an `ok`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The socket could not be reached or the exchange broke.
    #[error("link proxies' control socket {}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No reply in time.
    #[error("link proxies' control socket {}: no answer to {request:?} within {CONTROL_TIMEOUT:?}", path.display())]
    Timeout {
        /// The socket.
        path: PathBuf,
        /// What was asked.
        request: String,
    },
    /// The proxies answered `err`.
    #[error("link proxies refused {request:?}: {reason}")]
    Refused {
        /// What was asked.
        request: String,
        /// Their reason.
        reason: String,
    },
}

/// Sends `request` to the control socket at `path`; the text after `ok`.
pub async fn request(path: &Path, request: Request) -> Result<String, ControlError> {
    let exchange = async {
        let mut s = UnixStream::connect(path).await?;
        s.write_all(format!("{request}\n").as_bytes()).await?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).await?;
        std::io::Result::Ok(line)
    };
    let line = tokio::time::timeout(CONTROL_TIMEOUT, exchange)
        .await
        .map_err(|_| ControlError::Timeout {
            path: path.to_path_buf(),
            request: request.to_string(),
        })?
        .map_err(|source| ControlError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    match Reply::parse(&line) {
        Reply::Ok(text) => Ok(text),
        Reply::Err(reason) => Err(ControlError::Refused {
            request: request.to_string(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!("isolate 2".parse(), Ok(Request::Isolate(2)));
        assert_eq!("  isolate\t12 \n".parse(), Ok(Request::Isolate(12)));
        assert_eq!("heal\n".parse(), Ok(Request::Heal));
        assert_eq!("status".parse(), Ok(Request::Status));
        for bad in [
            "",
            "\n",
            "isolate",
            "isolate 0",
            "isolate -1",
            "isolate two",
            "isolate 1 2",
            "heal now",
            "HEAL",
            "partition 1",
        ] {
            let e = bad.parse::<Request>().unwrap_err();
            assert!(!e.0.contains('\n'), "{bad:?}: {e}");
        }
        for r in [Request::Isolate(3), Request::Heal, Request::Status] {
            assert_eq!(r.to_string().parse(), Ok(r));
        }
    }

    #[test]
    fn replies_parse_and_print() {
        assert_eq!(
            Reply::parse("ok isolated=2\n"),
            Reply::Ok("isolated=2".into())
        );
        assert_eq!(Reply::parse("ok\n"), Reply::Ok(String::new()));
        assert_eq!(
            Reply::parse("err no link of node 9\n"),
            Reply::Err("no link of node 9".into())
        );
        assert_eq!(Reply::parse(""), Reply::Err("empty reply".into()));
        assert_eq!(Reply::parse("okay"), Reply::Err("okay".into()));
        for r in [
            Reply::Ok("isolated=none".into()),
            Reply::Ok(String::new()),
            Reply::Err("no link of node 9".into()),
        ] {
            assert_eq!(Reply::parse(&r.to_string()), r);
        }
    }

    #[tokio::test]
    async fn a_missing_socket_is_named() {
        let e = request(Path::new("/nonexistent/proxies.sock"), Request::Heal)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/proxies.sock"), "{e}");
    }
}
