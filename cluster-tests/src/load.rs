//! A background write load: writer tasks putting unique concepts through every node,
//! each outcome recorded in a [`History`] (`sutra-checker`'s), bounded in count and in time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use sutra_checker::History;
use tokio::task::JoinSet;

use crate::Cluster;

/// Writers running until [`stop`](Load::stop), `max_ops` each or `max_time`, whichever
/// comes first. Writer `w` puts `<name>/w<w>-<i>` with content `v<i>`, through the
/// SDK-like [`Writer`](crate::Writer) (one sequence per write kept across retries,
/// following leader hints over every node).
#[derive(Debug)]
pub struct Load {
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Load {
    /// Starts `writers` writers against `cluster`.
    pub fn start(
        cluster: &Cluster,
        name: &str,
        writers: usize,
        max_ops: u64,
        max_time: Duration,
    ) -> Result<Self> {
        let history = Arc::new(History::new());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for w in 0..writers {
            let mut writer = cluster
                .writer(&format!("{name}-{w}"), Duration::from_secs(10))?
                .with_history(history.clone());
            let stop = stop.clone();
            let prefix = format!("{name}/w{w}-");
            tasks.spawn(async move {
                let start = Instant::now();
                for i in 0..max_ops {
                    if stop.load(Ordering::Relaxed) || start.elapsed() > max_time {
                        break;
                    }
                    let _ = writer
                        .put(&format!("{prefix}{i:05}"), format!("v{i}").as_bytes())
                        .await;
                }
            });
        }
        Ok(Self {
            history,
            stop,
            tasks,
        })
    }

    /// The record of every write so far.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Stops the writers after their current write and returns the full record.
    pub async fn stop(mut self) -> Result<Arc<History>> {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(r) = self.tasks.join_next().await {
            r?;
        }
        Ok(self.history)
    }
}
