//! The `restore` scenario: a backup under load, restored into a scratch cluster whose
//! content and keys are checked against it.

use std::collections::BTreeMap;

use super::*;
use crate::{RestoreReport, RestoreTarget, ScratchCluster};

/// How many missing keys the report names.
const MISSING_NAMED: usize = 10;

impl<D: FaultDriver> Engine<'_, D> {
    /// Takes a backup under the round's load, restores it into a scratch cluster,
    /// checks it and removes it again.
    pub(super) async fn backup_and_restore(
        &self,
        round: u32,
        target: &dyn RestoreTarget,
        rec: &History,
    ) -> Result<RestoreReport, DrillError> {
        let c = self.config;
        let failed = |step: &str, message: String| DrillError::Restore {
            round,
            step: step.to_string(),
            message,
        };
        let dir = c
            .scratch_dir
            .join(format!("sutra-drill-restore-{}-r{round}", self.run_id));
        std::fs::create_dir_all(&dir).map_err(|e| failed("scratch directory", e.to_string()))?;
        let file = dir.join("backup.sutra");
        let backup_start = Instant::now();
        let taken = target.backup(&file).await;
        let backup_took = backup_start.elapsed();
        let taken = match taken {
            Ok(t) => t,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(failed("backup", e));
            }
        };
        let live_index = self.live_applied_index().await;
        // Every write acknowledged before the backup call began must be in it.
        let expected = acked_before(&rec.ops(), rec.time_of(backup_start));
        tracing::info!(round, index = taken.applied_index, live_index, took = ?backup_took, "backup taken");
        let mut report = RestoreReport {
            source_node: taken.source_node,
            backup_index: taken.applied_index,
            backup_bytes: taken.bytes,
            backup_ms: ms(backup_took),
            live_index,
            rpo_entries: live_index.saturating_sub(taken.applied_index),
            rpo_secs: backup_took.as_secs_f64(),
            backup_hash: taken.content_hash.clone(),
            keys_checked: expected.len(),
            ..RestoreReport::default()
        };
        let restore_start = Instant::now();
        let scratch_dir = dir.join("cluster");
        let scratch = match target.restore(&file, &scratch_dir).await {
            Ok(s) => s,
            Err(e) => {
                // Whatever started before the failure.
                let partial = ScratchCluster {
                    endpoints: Vec::new(),
                    dir: scratch_dir,
                    pids: Vec::new(),
                };
                if target.stop(&partial).await.is_ok() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Err(failed("restore", e));
            }
        };
        let checked = self
            .check_scratch(&scratch, &expected, restore_start, &mut report)
            .await;
        let stopped = target.stop(&scratch).await;
        if stopped.is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        checked?;
        stopped.map_err(|e| failed("stopping the scratch cluster", e))?;
        Ok(report)
    }

    /// The live cluster's applied index: its leader's, else the highest any node reports.
    async fn live_applied_index(&self) -> u64 {
        let hs = self.health(&self.ids).await;
        let ok = || hs.iter().filter_map(|(_, h)| h.as_ref().ok());
        ok().filter(|h| h.role == "leader" && h.leader_id == h.node_id)
            .max_by_key(|h| h.term)
            .or_else(|| ok().max_by_key(|h| h.applied_index))
            .map_or(0, |h| h.applied_index)
    }

    /// Waits for the scratch cluster's leader and a read it serves (the restore time),
    /// then compares its content hash with the backup's and reads every expected key.
    async fn check_scratch(
        &self,
        scratch: &ScratchCluster,
        expected: &BTreeMap<String, u64>,
        restore_start: Instant,
        report: &mut RestoreReport,
    ) -> Result<(), DrillError> {
        let c = self.config;
        let mut cfg = ClientConfig::new(scratch.endpoints.clone(), c.tls.clone());
        cfg.server_name = c.server_name.clone();
        cfg.request_timeout = c.op_timeout;
        let client = Client::new(cfg)?;
        let probe = expected.keys().next().cloned().unwrap_or_default();
        let deadline = restore_start + c.leader_timeout.max(Duration::from_secs(30));
        let leader = loop {
            let hs = join_all(scratch.endpoints.iter().map(|ep| {
                let client = &client;
                async move {
                    client
                        .health(ep, CallOptions::new().deadline(POLL_TIMEOUT))
                        .await
                }
            }))
            .await;
            let leader = hs
                .iter()
                .flatten()
                .filter(|h| h.role == "leader" && h.leader_id == h.node_id)
                .max_by_key(|h| h.term)
                .map(|h| {
                    (
                        h.node_id,
                        client_endpoint(scratch, hs.as_slice(), h.node_id),
                    )
                });
            let last = if let Some((id, Some(ep))) = leader {
                match client
                    .get_with(
                        &probe,
                        ReadOptions::linearizable().deadline(POLL_TIMEOUT * 4),
                    )
                    .await
                {
                    Ok(_) => break (id, ep),
                    Err(e) => format!("leader {id} does not serve yet: {e}"),
                }
            } else {
                hs.iter()
                    .zip(&scratch.endpoints)
                    .map(|(h, ep)| match h {
                        Ok(h) => format!("{ep}: {} term {}", h.role, h.term),
                        Err(e) => format!("{ep}: {e}"),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            if Instant::now() > deadline {
                return Err(DrillError::NoLeader {
                    waited: deadline - restore_start,
                    last: format!("scratch cluster: {last}"),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        };
        report.restore_ms = ms(restore_start.elapsed());
        report.scratch_leader = leader.0;
        let stats = client
            .stats_with(
                &leader.1,
                GetStatsRequest {
                    include_content_hash: true,
                },
                CallOptions::new().deadline(c.op_timeout),
            )
            .await?;
        report.restored_hash = stats.content_hash;
        report.restored_hash_index = stats.content_hash_index;
        report.content_equal =
            !report.restored_hash.is_empty() && report.restored_hash == report.backup_hash;
        for (key, &version) in expected {
            let read = client
                .get_with(key, ReadOptions::linearizable().deadline(c.op_timeout))
                .await?;
            if read.value.as_ref().is_none_or(|v| v.version < version) {
                report.missing += 1;
                if report.missing_keys.len() < MISSING_NAMED {
                    report.missing_keys.push(key.clone());
                }
            }
        }
        tracing::info!(
            leader = leader.0,
            restore_ms = report.restore_ms,
            equal = report.content_equal,
            missing = report.missing,
            "scratch cluster checked"
        );
        Ok(())
    }
}

/// The scratch endpoint of node `id`: the one whose health answer came from it.
fn client_endpoint(
    scratch: &ScratchCluster,
    hs: &[Result<HealthCheckResponse, ClientError>],
    id: u64,
) -> Option<String> {
    hs.iter()
        .zip(&scratch.endpoints)
        .find(|(h, _)| h.as_ref().is_ok_and(|h| h.node_id == id))
        .map(|(_, ep)| ep.clone())
}

/// For each key, the highest version of a write acknowledged before `before` (history
/// nanoseconds).
pub(super) fn acked_before(ops: &[sutra_checker::Op], before: u64) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for op in ops {
        if let (
            OpKind::Write { .. },
            Outcome::Ok {
                version: Some(version),
            },
            Some(done),
        ) = (&op.kind, &op.outcome, op.complete)
            && done < before
        {
            let v = out.entry(op.key.clone()).or_insert(0);
            *v = (*v).max(*version);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sutra_checker::Reply;

    #[test]
    fn only_writes_acknowledged_before_the_backup_are_expected_at_their_highest_version() {
        let rec = History::new();
        let write = |key: &str, v: &str| {
            rec.invoke(
                "p0",
                key,
                OpKind::Write {
                    value: Value::from(v.to_string()),
                },
            )
        };
        let ok = |op, version| {
            rec.complete_with(
                op,
                Outcome::Ok {
                    version: Some(version),
                },
                Reply::default(),
            )
            .unwrap()
        };
        let a = write("a", "1");
        ok(a, 3);
        let a = write("a", "2");
        ok(a, 5);
        let a = write("a", "0");
        ok(a, 4);
        let b = write("b", "3");
        rec.complete(b, Outcome::Unknown).unwrap();
        let r = rec.invoke("p1", "d", OpKind::Read { observed: None });
        rec.complete_read_with(r, None, None, Reply::default())
            .unwrap();
        let cut = rec.ops().iter().filter_map(|o| o.complete).max().unwrap() + 1;
        let c = write("c", "4");
        ok(c, 1);
        let c_done = rec.ops().last().and_then(|o| o.complete).unwrap();
        assert!(c_done >= cut);
        let got = acked_before(&rec.ops(), cut);
        assert_eq!(got, BTreeMap::from([("a".to_string(), 5)]));
    }
}
