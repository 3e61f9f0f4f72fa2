//! The free-disk watermark: a node whose data directory's file system has less free space
//! than `min-free-disk-bytes` raises the replicated NOSPACE alarm, and the whole cluster
//! takes no more writes that store anything new until an operator disarms it
//! (`sutra alarm disarm`) — read-only with an alarm, not down. Compaction, deletes and
//! reads go on meanwhile.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sutra_raft::{Alarm, AlarmKind, Command};
use tokio::sync::watch;

use crate::node::Node;

/// How often the free space is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Room on a file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged writer may still allocate.
    pub free: u64,
    /// The file system's size.
    pub size: u64,
}

/// Bytes an unprivileged writer may still allocate on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    space(path).map(|s| s.free)
}

/// Free and total bytes of the file system holding `path`.
pub fn space(path: &Path) -> std::io::Result<Space> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    // SAFETY: statvfs is a plain C struct of integers, for which all zeroes is valid.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes only into the struct we pass; the path is NUL-terminated.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::useless_conversion)]
    let (frsize, avail, blocks) = (
        u64::from(st.f_frsize),
        u64::from(st.f_bavail),
        u64::from(st.f_blocks),
    );
    Ok(Space {
        free: avail.saturating_mul(frsize),
        size: blocks.saturating_mul(frsize),
    })
}

/// Raises this node's NOSPACE alarm whenever its free disk is below the watermark and the
/// alarm is not active, until `stop`.
pub async fn watch_free_space(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let alarm = Alarm {
        node: node.id,
        kind: AlarmKind::NoSpace,
    };
    let watermark = node.config.min_free_disk_bytes;
    let mut interval = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = interval.tick() => {}
        }
        let free = match free_bytes(&node.config.data_dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!(error = %e, dir = %node.config.data_dir.display(), "cannot read the free disk space");
                continue;
            }
        };
        if free >= watermark || node.cluster().alarms().contains(&alarm) {
            continue;
        }
        tracing::error!(
            free_bytes = free,
            watermark,
            "free disk below the watermark: raising the NOSPACE alarm; the cluster takes no new data until it is disarmed"
        );
        let raise = Command::Alarm {
            alarm,
            active: true,
        };
        if let Err(e) = node.submit(raise).await {
            tracing::warn!(error = %e, "NOSPACE alarm not raised yet; trying again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_free_space_of_a_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
