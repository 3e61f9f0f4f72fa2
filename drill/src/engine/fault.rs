//! A round's fault: what each scenario does to the cluster, the probes of a paused
//! leader, and the healing that always follows.

use super::*;

impl<D: FaultDriver> Engine<'_, D> {
    /// Injects the scenario's fault(s) and heals them, under load.
    pub(super) async fn inject(
        &self,
        round: u32,
        leader: u64,
        keys: &[String],
        rec: &History,
    ) -> Result<Injected, DrillError> {
        let c = self.config;
        let d = self.driver;
        let others: Vec<u64> = self.ids.iter().copied().filter(|&i| i != leader).collect();
        let mut out = Injected::default();
        match c.scenario {
            Scenario::KillLeader | Scenario::PauseLeader | Scenario::PartitionLeader => {
                // From the moment the fault is sent: the leader stops serving at the
                // signal, not when the driver has seen the process go.
                let fault_at = Instant::now();
                match c.scenario {
                    Scenario::KillLeader => d.kill(leader).await?,
                    Scenario::PauseLeader => d.pause(leader).await?,
                    _ => d.isolate(leader).await?,
                }
                tracing::info!(round, node = leader, "fault injected");
                out.node = Some(leader);
                out.nodes_hit = vec![leader];
                out.steps.push(Step {
                    fault_at,
                    recovery: Recovery::NewLeader(leader),
                    leader_poll: Some(self.poll_leader(&others, Some(leader), fault_at)),
                });
                tokio::time::sleep(c.fault_window).await;
                match c.scenario {
                    Scenario::KillLeader => d.restart(leader).await?,
                    Scenario::PauseLeader => {
                        d.resume(leader).await?;
                        self.probe_old_leader(leader, keys, rec, &mut out).await?;
                    }
                    _ => d.heal().await?,
                }
            }
            Scenario::KillFollower | Scenario::PauseFollower | Scenario::PartitionFollower => {
                let node = others[(round as usize - 1) % others.len()];
                let fault_at = Instant::now();
                match c.scenario {
                    Scenario::KillFollower => d.kill(node).await?,
                    Scenario::PauseFollower => d.pause(node).await?,
                    _ => d.isolate(node).await?,
                }
                out.node = Some(node);
                out.nodes_hit = vec![node];
                out.steps.push(Step {
                    fault_at,
                    recovery: Recovery::AnyAck,
                    leader_poll: None,
                });
                tokio::time::sleep(c.fault_window).await;
                match c.scenario {
                    Scenario::KillFollower => d.restart(node).await?,
                    Scenario::PauseFollower => d.resume(node).await?,
                    _ => d.heal().await?,
                }
            }
            Scenario::RestartAll => {
                let killed = join_all(self.ids.iter().map(|&id| d.kill(id))).await;
                killed.into_iter().collect::<Result<Vec<()>, _>>()?;
                out.nodes_hit = self.ids.clone();
                tokio::time::sleep(c.down_time).await;
                // RTO runs from the moment the restarts begin: the cluster was down on
                // purpose until then.
                let restart_at = Instant::now();
                let poll = self.poll_leader(&self.ids, None, restart_at);
                for &id in &self.ids {
                    d.restart(id).await?;
                }
                out.steps.push(Step {
                    fault_at: restart_at,
                    recovery: Recovery::AnyAck,
                    leader_poll: Some(poll),
                });
            }
            Scenario::RollingRestart => {
                let mut order = others.clone();
                order.push(leader);
                for &id in &order {
                    let survivors: Vec<u64> =
                        self.ids.iter().copied().filter(|&i| i != id).collect();
                    let fault_at = Instant::now();
                    let leader_poll =
                        (id == leader).then(|| self.poll_leader(&survivors, Some(id), fault_at));
                    d.stop(id).await?;
                    tracing::info!(round, node = id, "node stopped");
                    out.steps.push(Step {
                        fault_at,
                        recovery: if id == leader {
                            Recovery::NewLeader(id)
                        } else {
                            Recovery::AnyAck
                        },
                        leader_poll,
                    });
                    tokio::time::sleep(c.down_time).await;
                    d.restart(id).await?;
                    self.wait_rejoined(id).await?;
                }
                out.node = Some(leader);
                out.nodes_hit = order;
            }
            Scenario::Restore => {
                let Some(target) = c.restore.as_deref() else {
                    return Err(DrillError::Config(
                        "the restore scenario needs a restore target".into(),
                    ));
                };
                let started = Instant::now();
                let report = self.backup_and_restore(round, target, rec).await?;
                // The node the backup was streamed from.
                out.node = Some(report.source_node);
                out.nodes_hit = vec![report.source_node];
                out.restore = Some(report);
                out.steps.push(Step {
                    fault_at: started,
                    recovery: Recovery::LongestGapUntil(rec.time_of(Instant::now())),
                    leader_poll: None,
                });
            }
            Scenario::Procedure => {
                let command = c.procedure.as_deref().unwrap_or_default();
                let started = Instant::now();
                run_procedure(command, c.procedure_timeout).await?;
                tracing::info!(round, took = ?started.elapsed(), "procedure done");
                out.nodes_hit = self.ids.clone();
                out.steps.push(Step {
                    fault_at: started,
                    recovery: Recovery::LongestGapUntil(rec.time_of(Instant::now())),
                    leader_poll: None,
                });
            }
        }
        Ok(out)
    }

    /// Reads every key through the old leader right after it resumed, LINEARIZABLE and
    /// LEASE; the answers join the history, where a stale one is a violation.
    pub(super) async fn probe_old_leader(
        &self,
        old: u64,
        keys: &[String],
        rec: &History,
        out: &mut Injected,
    ) -> Result<(), DrillError> {
        let mut cfg = client_config(self.driver, self.config, &[old]);
        cfg.endpoints = vec![self.driver.api_endpoint(old)];
        let pinned = Client::new(cfg)?;
        let process = self.config.writers + self.config.readers;
        for key in keys {
            for (consistency, tag) in [
                (Consistency::Linearizable, PROBE_LINEARIZABLE),
                (Consistency::Lease, PROBE_LEASE),
            ] {
                let op = rec.invoke_tagged(process_name(process), key, read_kind(), tag);
                let r = pinned
                    .get_with(
                        key,
                        ReadOptions::new(consistency).deadline(self.config.op_timeout),
                    )
                    .await;
                if let Ok(read) = &r
                    && read.meta.served_by == old
                {
                    out.probe_served_by_old_leader += 1;
                }
                out.probe_reads += usize::from(r.is_ok());
                complete_read(rec, op, r.ok());
            }
        }
        Ok(())
    }

    /// Best effort after a failed round: every node resumed, healed and running.
    pub(super) async fn restore(&self) {
        for &id in &self.ids {
            let _ = self.driver.resume(id).await;
        }
        let _ = self.driver.heal().await;
        for &id in &self.ids {
            if let Err(e) = self.driver.restart(id).await {
                tracing::warn!(node = id, error = %e, "could not restart after a failed round");
            }
        }
    }
}
