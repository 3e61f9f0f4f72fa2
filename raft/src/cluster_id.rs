//! [`ClusterIdentity`]: the cluster id this node belongs to, which every peer call carries
//! (metadata `sutra-cluster-id`, [`ClusterIdStamp`]) and every peer call must match.
//!
//! The node that bootstraps a cluster mints the id and keeps it before it writes the first
//! entry; any other node adopts it from the first leader that replicates to it (an
//! AppendEntries or a snapshot) and keeps it from then on. Kept in a file of its own
//! (written to a temporary file, fsynced, renamed, directory fsynced), so a node knows its
//! cluster from its first message after a restart. The cluster's parameters carry the
//! same id (`ClusterParams::cluster_id`); the node checks that they agree.
//!
//! A node of another cluster under the same CA is refused: its calls carry another id,
//! and its leader cannot make a node that already belongs somewhere adopt its own.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use tonic::metadata::MetadataValue;

pub use sutra_proto::CLUSTER_ID_METADATA_KEY;

/// This node's cluster id, persisted. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ClusterIdentity {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// `None`: kept in memory only (tests, tools).
    path: Option<PathBuf>,
    id: RwLock<Option<String>>,
}

impl ClusterIdentity {
    /// The identity kept in `path`, read if the file exists.
    pub fn open(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let id = match fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().to_string()).filter(|s| !s.is_empty()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                path: Some(path),
                id: RwLock::new(id),
            }),
        })
    }

    /// The id, once known.
    pub fn get(&self) -> Option<String> {
        self.inner.id.read().clone()
    }

    /// Takes `id` as this node's cluster id and makes it durable. Setting the id it
    /// already has changes nothing; another one is refused.
    pub fn set(&self, id: &str) -> Result<(), IdentityError> {
        let mut current = self.inner.id.write();
        match current.as_deref() {
            Some(mine) if mine == id => return Ok(()),
            Some(mine) => {
                return Err(IdentityError::Other {
                    mine: mine.to_string(),
                    theirs: id.to_string(),
                });
            }
            None => {}
        }
        if let Some(path) = &self.inner.path {
            write_durably(path, id).map_err(|source| IdentityError::Io {
                path: path.clone(),
                source,
            })?;
        }
        tracing::info!(cluster_id = id, "this node belongs to cluster");
        *current = Some(id.to_string());
        Ok(())
    }
}

/// Why a cluster id could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// This node already belongs to another cluster.
    #[error("this node belongs to cluster {mine}, not to cluster {theirs}")]
    Other {
        /// This node's.
        mine: String,
        /// The one offered.
        theirs: String,
    },
    /// The file could not be written.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn write_durably(path: &Path, id: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(format!("{id}\n").as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
}

/// Adds this node's cluster id, once known, to every outgoing peer call.
#[derive(Debug, Clone)]
pub struct ClusterIdStamp(pub ClusterIdentity);

impl tonic::service::Interceptor for ClusterIdStamp {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(id) = self.0.get()
            && let Ok(value) = MetadataValue::try_from(id.as_str())
        {
            request
                .metadata_mut()
                .insert(CLUSTER_ID_METADATA_KEY, value);
        }
        Ok(request)
    }
}

/// The cluster id a peer call carries.
pub fn caller_cluster_id(metadata: &tonic::metadata::MetadataMap) -> Option<String> {
    metadata
        .get(CLUSTER_ID_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_kept_and_another_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster-id");
        let id = ClusterIdentity::open(&path).unwrap();
        assert_eq!(id.get(), None);
        id.set("abc").unwrap();
        id.set("abc").unwrap();
        assert!(matches!(id.set("def"), Err(IdentityError::Other { .. })));
        let again = ClusterIdentity::open(&path).unwrap();
        assert_eq!(again.get().as_deref(), Some("abc"));
    }

    #[test]
    fn outgoing_calls_carry_the_id_once_known() {
        use tonic::service::Interceptor as _;
        let id = ClusterIdentity::default();
        let mut stamp = ClusterIdStamp(id.clone());
        let r = stamp.call(tonic::Request::new(())).unwrap();
        assert_eq!(caller_cluster_id(r.metadata()), None);
        id.set("abc").unwrap();
        let r = stamp.call(tonic::Request::new(())).unwrap();
        assert_eq!(caller_cluster_id(r.metadata()).as_deref(), Some("abc"));
    }
}
