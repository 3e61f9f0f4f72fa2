//! [`ClusterFile`]: `cluster.json`, what the local runner records about the cluster it
//! runs (endpoints, certificates, processes, link proxies) and what the CLI, the drills,
//! the benchmarks and the SDK examples read to reach it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sutra_client::{ClientConfig, TlsFiles};

/// The file name inside the cluster directory.
pub const CLUSTER_FILE: &str = "cluster.json";

/// Why `cluster.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cluster file {}: {message}", path.display())]
pub struct ClusterFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// What `cluster.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The CA certificate clients must trust; the dev client certificates
    /// (`client-<name>.pem`) sit next to it.
    pub ca: PathBuf,
    /// Admin client certificate.
    pub admin_cert: PathBuf,
    /// Admin client key.
    pub admin_key: PathBuf,
    /// The nodes.
    pub nodes: Vec<LocalNode>,
    /// The proxies on the peer links, if the cluster was started with link proxies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_proxies: Option<LinkProxies>,
}

/// One node of the local cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalNode {
    /// Node id.
    pub id: u64,
    /// Client API endpoint.
    pub api: String,
    /// Raft endpoint.
    pub raft: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log file.
    pub log: PathBuf,
    /// Process id while running detached.
    pub pid: Option<u32>,
    /// Its monitoring listener (`--metrics-listen`), when the cluster was made with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// The link proxies of a local cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkProxies {
    /// Process id of the proxy process while it runs detached.
    pub pid: Option<u32>,
    /// The control socket ([`crate::control`]).
    pub control: PathBuf,
    /// The proxy process's log file.
    pub log: PathBuf,
    /// One proxy per directed link.
    pub links: Vec<ProxyLink>,
}

/// The proxy on the directed link `from → to`: node `from` dials node `to` at `addr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyLink {
    /// The dialing node.
    pub from: u64,
    /// The node dialed.
    pub to: u64,
    /// Where the proxy listens (`127.0.0.1:PORT`).
    pub addr: String,
}

impl ClusterFile {
    /// `<dir>/cluster.json`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(CLUSTER_FILE)
    }

    /// Reads the cluster file at `path`.
    pub fn read(path: &Path) -> Result<Self, ClusterFileError> {
        let bad = |message: String| ClusterFileError {
            path: path.to_path_buf(),
            message,
        };
        let bytes = fs::read(path).map_err(|e| bad(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a cluster file: {e}")))
    }

    /// The cluster file of `dir`, or `None` if there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Self>, ClusterFileError> {
        let path = Self::path_in(dir);
        match path.try_exists() {
            Ok(false) => Ok(None),
            Ok(true) => Self::read(&path).map(Some),
            Err(e) => Err(ClusterFileError {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Writes the file into `dir` atomically (temporary file, rename).
    pub fn save(&self, dir: &Path) -> Result<(), ClusterFileError> {
        let path = Self::path_in(dir);
        let bad = |message: String| ClusterFileError {
            path: path.clone(),
            message,
        };
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| bad(e.to_string()))?;
        fs::write(&tmp, bytes).map_err(|e| bad(e.to_string()))?;
        fs::rename(&tmp, &path).map_err(|e| bad(e.to_string()))
    }

    /// Every node's client API endpoint, in node order.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.api.clone()).collect()
    }

    /// The node with this id.
    pub fn node(&self, id: u64) -> Option<&LocalNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The CA and the dev client certificate `name` (`admin`, `writer` or `reader`).
    pub fn tls(&self, name: &str) -> TlsFiles {
        if name == "admin" {
            return TlsFiles {
                ca: self.ca.clone(),
                cert: self.admin_cert.clone(),
                key: self.admin_key.clone(),
            };
        }
        let certs = self.ca.parent().unwrap_or(Path::new("."));
        TlsFiles {
            ca: self.ca.clone(),
            cert: certs.join(format!("client-{name}.pem")),
            key: certs.join(format!("client-{name}-key.pem")),
        }
    }

    /// An SDK configuration for every node with the dev client certificate `name`;
    /// defaults for the rest.
    pub fn client_config(&self, name: &str) -> ClientConfig {
        ClientConfig::new(self.endpoints(), self.tls(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_file_gives_endpoints_and_dev_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let file = ClusterFile::path_in(dir.path());
        std::fs::write(
            &file,
            r#"{"ca":"/d/certs/ca.pem","admin_cert":"/d/certs/a.pem","admin_key":"/d/certs/a-key.pem","nodes":[
              {"id":1,"api":"127.0.0.1:1","raft":"127.0.0.1:11","data_dir":"/d/node-1","log":"/d/node-1.log","pid":4242},
              {"id":2,"api":"127.0.0.1:2","raft":"127.0.0.1:12","data_dir":"/d/node-2","log":"/d/node-2.log","pid":null}]}"#,
        )
        .unwrap();
        let c = ClusterFile::load(dir.path()).unwrap().unwrap();
        assert_eq!(c.endpoints(), ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(c.node(1).and_then(|n| n.pid), Some(4242));
        let reader = c.client_config("reader");
        assert_eq!(reader.endpoints, c.endpoints());
        assert_eq!(reader.tls.ca, Path::new("/d/certs/ca.pem"));
        assert_eq!(reader.tls.cert, Path::new("/d/certs/client-reader.pem"));
        assert_eq!(reader.tls.key, Path::new("/d/certs/client-reader-key.pem"));
        assert_eq!(c.tls("admin").cert, Path::new("/d/certs/a.pem"));

        let again = dir.path().join("again");
        std::fs::create_dir(&again).unwrap();
        c.save(&again).unwrap();
        assert_eq!(ClusterFile::load(&again).unwrap(), Some(c));

        std::fs::write(&file, b"{}").unwrap();
        let e = ClusterFile::read(&file).unwrap_err();
        assert!(e.to_string().contains("not a cluster file"), "{e}");
        let missing = dir.path().join("missing");
        assert_eq!(ClusterFile::load(&missing).unwrap(), None);
        let e = ClusterFile::read(&missing.join(CLUSTER_FILE)).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
