//! [`RoundReport`] and [`DrillReport`]: what a drill measured, as a table or JSON.

use crate::{CheckResult, RestoreReport, Scenario, Summary};

/// What one round measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundReport {
    /// 1-based round number.
    pub round: u32,
    /// The scenario.
    pub scenario: Scenario,
    /// The node hit (the leader for rolling-restart's last step; none for restart-all).
    pub node: Option<u64>,
    /// Every node the fault hit, in order.
    pub nodes_hit: Vec<u64>,
    /// The leader when the round began.
    pub leader_before: u64,
    /// The leader once the cluster caught up.
    pub leader_after: Option<u64>,
    /// Recovery time in milliseconds (see `docs/drills.md`); `None`: no write was
    /// acknowledged within the load window.
    pub rto_ms: Option<f64>,
    /// Time from the fault until a survivor said it leads, in milliseconds; `None` when
    /// the fault did not take the leader away (or none was seen in time).
    pub leader_ms: Option<f64>,
    /// Time from healing/restarting until every node was healthy at one applied index.
    pub catch_up_ms: f64,
    /// The applied index every node reached.
    pub applied_index: u64,
    /// Content hashes of the nodes differed at the same applied index (`None`: the nodes
    /// do not report content hashes).
    pub diverged: Option<bool>,
    /// Answers of the reads through the old leader right after it resumed
    /// (pause-leader), and how many the old leader served itself.
    pub probe_reads: usize,
    /// Of `probe_reads`, how many the old leader served itself.
    pub probe_served_by_old_leader: usize,
    /// Length of the round, seconds.
    pub duration_secs: f64,
    /// The checks of the round's history.
    #[serde(flatten)]
    pub check: CheckResult,
    /// The restore scenario's backup, restore and checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreReport>,
}

impl RoundReport {
    /// True if nothing was lost, duplicated or read out of order, the cluster recovered,
    /// and both whole-round checks actually ran and agreed: the nodes' content hashes were
    /// compared at one applied index and found equal, and `sutra-checker` found the
    /// history linearizable (a search that ran out of budget proves nothing, so it fails
    /// the round too).
    pub fn passed(&self) -> bool {
        self.check.passed()
            && self.rto_ms.is_some()
            && self.diverged == Some(false)
            && self.check.linearizability == "linearizable"
            && self.restore.as_ref().is_none_or(RestoreReport::passed)
    }
}

/// Summaries over the rounds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summaries {
    /// RTO, ms.
    pub rto_ms: Option<Summary>,
    /// Time to a new leader, ms.
    pub leader_ms: Option<Summary>,
    /// Writes acknowledged per round.
    pub writes_acked: Option<Summary>,
    /// Catch-up time, ms.
    pub catch_up_ms: Option<Summary>,
    /// The restore scenario: backup time, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_ms: Option<Summary>,
    /// The restore scenario: restore time (until the scratch cluster serves), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_ms: Option<Summary>,
    /// The restore scenario: recovery point, log entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_entries: Option<Summary>,
}

/// Whether a scenario's RTO targets were met.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Targets {
    /// Target p99, ms.
    pub rto_p99_ms: f64,
    /// Target max, ms.
    pub rto_max_ms: f64,
    /// Both met.
    pub met: bool,
}

/// The whole drill.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DrillReport {
    /// The command line that ran it.
    pub command: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Concurrent writers.
    pub writers: u32,
    /// Concurrent LINEARIZABLE readers.
    pub readers: u32,
    /// Every round.
    pub rounds: Vec<RoundReport>,
    /// Min / median / p99 / max over rounds.
    pub summary: Summaries,
    /// Acknowledged writes lost, over all rounds.
    pub lost: usize,
    /// Duplicated writes, over all rounds.
    pub duplicates: usize,
    /// Linearizability violations, over all rounds.
    pub violations: usize,
    /// Rounds in which no write was acknowledged after the fault.
    pub unrecovered_rounds: usize,
    /// The RTO targets of the scenario, if it has any.
    pub targets: Option<Targets>,
    /// True if no round lost, duplicated or misordered anything and every round
    /// recovered. Missing an RTO target does not fail a drill.
    pub passed: bool,
}

impl DrillReport {
    /// Summarises `rounds`.
    pub fn new(
        command: String,
        scenario: Scenario,
        writers: u32,
        readers: u32,
        rounds: Vec<RoundReport>,
    ) -> Self {
        let summary = Summaries {
            rto_ms: Summary::of(rounds.iter().filter_map(|r| r.rto_ms)),
            leader_ms: Summary::of(rounds.iter().filter_map(|r| r.leader_ms)),
            writes_acked: Summary::of(rounds.iter().map(|r| r.check.acked as f64)),
            catch_up_ms: Summary::of(rounds.iter().map(|r| r.catch_up_ms)),
            backup_ms: Summary::of(
                rounds
                    .iter()
                    .filter_map(|r| Some(r.restore.as_ref()?.backup_ms)),
            ),
            restore_ms: Summary::of(
                rounds
                    .iter()
                    .filter_map(|r| Some(r.restore.as_ref()?.restore_ms)),
            ),
            rpo_entries: Summary::of(
                rounds
                    .iter()
                    .filter_map(|r| Some(r.restore.as_ref()?.rpo_entries as f64)),
            ),
        };
        let unrecovered_rounds = rounds.iter().filter(|r| r.rto_ms.is_none()).count();
        let targets = scenario.rto_targets_ms().map(|(p99, max)| Targets {
            rto_p99_ms: p99,
            rto_max_ms: max,
            met: unrecovered_rounds == 0
                && summary.rto_ms.is_some_and(|s| s.p99 < p99 && s.max < max),
        });
        Self {
            command,
            scenario,
            writers,
            readers,
            lost: rounds.iter().map(|r| r.check.lost).sum(),
            duplicates: rounds.iter().map(|r| r.check.duplicates).sum(),
            violations: rounds.iter().map(|r| r.check.violations).sum(),
            passed: rounds.iter().all(RoundReport::passed),
            unrecovered_rounds,
            targets,
            summary,
            rounds,
        }
    }

    /// The header of the round table.
    pub fn table_header() -> String {
        format!(
            "{:>5}  {:<18}  {:>4}  {:>9}  {:>9}  {:>6}  {:>4}  {:>3}  {:>14}  {:>5}  {}",
            "round",
            "scenario",
            "node",
            "rto_ms",
            "leader_ms",
            "acked",
            "lost",
            "dup",
            "unknown(a/abs)",
            "reads",
            "check"
        )
    }

    /// One line of the round table.
    pub fn table_row(r: &RoundReport) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        let check = if r.passed() {
            "ok".to_string()
        } else if let Some(x) = r.restore.as_ref().filter(|x| !x.passed()) {
            format!(
                "FAIL ({}{} acknowledged writes missing from the restore)",
                if x.content_equal {
                    ""
                } else {
                    "content differs from the backup, "
                },
                x.missing
            )
        } else if r.rto_ms.is_none() && r.check.passed() {
            "NOT RECOVERED".to_string()
        } else {
            format!(
                "FAIL ({} violations{})",
                r.check.violations,
                if r.diverged == Some(true) {
                    ", diverged"
                } else {
                    ""
                }
            )
        };
        format!(
            "{:>5}  {:<18}  {:>4}  {:>9}  {:>9}  {:>6}  {:>4}  {:>3}  {:>14}  {:>5}  {}",
            r.round,
            r.scenario.name(),
            r.node.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ms(r.rto_ms),
            ms(r.leader_ms),
            r.check.acked,
            r.check.lost,
            r.check.duplicates,
            format!(
                "{} ({}/{})",
                r.check.unknown, r.check.unknown_applied, r.check.unknown_absent
            ),
            r.check.reads,
            check
        )
    }

    /// The whole report as a table: command, one line per round, summaries, verdict.
    pub fn table(&self) -> String {
        let mut out = format!("command    {}\n{}\n", self.command, Self::table_header());
        for r in &self.rounds {
            out.push_str(&Self::table_row(r));
            out.push('\n');
        }
        out.push_str(&self.summary_table());
        out
    }

    /// Summaries, probe reads, details of failures and the verdict.
    pub fn summary_table(&self) -> String {
        let mut out = format!(
            "{:<12}  {:>9}  {:>9}  {:>9}  {:>9}\n",
            "over rounds", "min", "median", "p99", "max"
        );
        for (name, s) in [
            ("rto_ms", self.summary.rto_ms),
            ("leader_ms", self.summary.leader_ms),
            ("acked", self.summary.writes_acked),
            ("catch_up_ms", self.summary.catch_up_ms),
            ("backup_ms", self.summary.backup_ms),
            ("restore_ms", self.summary.restore_ms),
            ("rpo_entries", self.summary.rpo_entries),
        ] {
            // The restore scenario's measurements only in its reports.
            if self.scenario != Scenario::Restore
                && matches!(name, "backup_ms" | "restore_ms" | "rpo_entries")
            {
                continue;
            }
            match s {
                Some(s) => out.push_str(&format!(
                    "{name:<12}  {:>9.1}  {:>9.1}  {:>9.1}  {:>9.1}\n",
                    s.min, s.median, s.p99, s.max
                )),
                None => out.push_str(&format!("{name:<12}  {:>9}\n", "-")),
            }
        }
        let probes: usize = self.rounds.iter().map(|r| r.probe_reads).sum();
        if probes > 0 {
            let by_old: usize = self
                .rounds
                .iter()
                .map(|r| r.probe_served_by_old_leader)
                .sum();
            let stale: usize = self.rounds.iter().map(|r| r.check.stale_reads).sum();
            out.push_str(&format!(
                "old leader   {probes} reads right after resume ({by_old} served by it), {stale} stale\n"
            ));
        }
        let verdicts: Vec<&str> = self
            .rounds
            .iter()
            .map(|r| r.check.linearizability.as_str())
            .filter(|v| !v.is_empty())
            .collect();
        if !verdicts.is_empty() {
            let lin = verdicts.iter().filter(|v| **v == "linearizable").count();
            out.push_str(&format!(
                "checker    sutra-checker: {lin} of {} rounds linearizable{}\n",
                self.rounds.len(),
                if lin < verdicts.len() {
                    format!(" ({} not, or not decided)", verdicts.len() - lin)
                } else {
                    String::new()
                }
            ));
        }
        let hashed = self.rounds.iter().filter(|r| r.diverged.is_some()).count();
        if hashed > 0 {
            let diverged = self
                .rounds
                .iter()
                .filter(|r| r.diverged == Some(true))
                .count();
            out.push_str(&format!(
                "content    hashes compared at one applied index in {hashed} of {} rounds: {}\n",
                self.rounds.len(),
                if diverged == 0 {
                    "equal on every node".to_string()
                } else {
                    format!("DIFFERENT in {diverged} rounds")
                }
            ));
        }
        for r in &self.rounds {
            if let Some(x) = &r.restore {
                out.push_str(&format!(
                    "restore    round {}: backup of index {} ({} bytes, node {}) in {:.1} ms; live index {} (rpo {} entries, under {:.2} s); restored in {:.1} ms, leader {}; content {}; {} keys checked, {} missing\n",
                    r.round,
                    x.backup_index,
                    x.backup_bytes,
                    x.source_node,
                    x.backup_ms,
                    x.live_index,
                    x.rpo_entries,
                    x.rpo_secs,
                    x.restore_ms,
                    x.scratch_leader,
                    if x.content_equal {
                        format!("equal ({})", x.backup_hash)
                    } else {
                        format!("DIFFERENT: backup {}, restored {} at {}", x.backup_hash, x.restored_hash, x.restored_hash_index)
                    },
                    x.keys_checked,
                    x.missing
                ));
                for k in &x.missing_keys {
                    out.push_str(&format!(
                        "round {}: missing from the restore: {k}\n",
                        r.round
                    ));
                }
            }
        }
        for r in self.rounds.iter().filter(|r| !r.check.details.is_empty()) {
            for d in &r.check.details {
                out.push_str(&format!("round {}: {d}\n", r.round));
            }
        }
        if let Some(t) = &self.targets {
            out.push_str(&format!(
                "targets    rto p99 < {:.0} ms, max < {:.0} ms: {}\n",
                t.rto_p99_ms,
                t.rto_max_ms,
                if t.met { "met" } else { "MISSED" }
            ));
        }
        out.push_str(&format!(
            "result     {}: {} lost, {} duplicates, {} linearizability violations, {} rounds not recovered",
            if self.passed { "PASS" } else { "FAIL" },
            self.lost,
            self.duplicates,
            self.violations,
            self.unrecovered_rounds
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn round(n: u32, rto: Option<f64>, lost: usize) -> RoundReport {
        RoundReport {
            round: n,
            scenario: Scenario::KillLeader,
            node: Some(2),
            nodes_hit: vec![2],
            leader_before: 2,
            leader_after: Some(1),
            rto_ms: rto,
            leader_ms: rto.map(|r| r / 2.0),
            catch_up_ms: 800.0,
            applied_index: 1234,
            diverged: Some(false),
            probe_reads: 0,
            probe_served_by_old_leader: 0,
            duration_secs: 9.5,
            check: CheckResult {
                acked: 500,
                lost,
                unknown: 2,
                unknown_applied: 1,
                unknown_absent: 1,
                reads: 300,
                linearizability: "linearizable".into(),
                ..CheckResult::default()
            },
            restore: None,
        }
    }

    #[test]
    fn a_round_whose_checks_did_not_run_fails() {
        assert!(round(1, Some(900.0), 0).passed());
        let mut r = round(1, Some(900.0), 0);
        r.diverged = None;
        assert!(!r.passed(), "content hashes never compared");
        let mut r = round(1, Some(900.0), 0);
        r.check.linearizability = "unknown (search budget)".into();
        assert!(!r.passed(), "linearizability not decided");
    }

    #[test]
    fn a_restore_that_differs_or_misses_a_write_fails_the_round() {
        let restored = |hash: &str, missing: usize| {
            let mut r = round(1, Some(80.0), 0);
            r.scenario = Scenario::Restore;
            r.restore = Some(RestoreReport {
                backup_index: 100,
                live_index: 104,
                rpo_entries: 4,
                backup_ms: 150.0,
                restore_ms: 1700.0,
                backup_hash: "aa".into(),
                restored_hash: hash.into(),
                content_equal: hash == "aa",
                keys_checked: 16,
                missing,
                ..RestoreReport::default()
            });
            r
        };
        let ok = DrillReport::new("c".into(), Scenario::Restore, 4, 2, vec![restored("aa", 0)]);
        assert!(ok.passed);
        let j = serde_json::to_value(&ok).unwrap();
        assert_eq!(j["rounds"][0]["restore"]["rpo_entries"], 4);
        assert_eq!(j["summary"]["restore_ms"]["max"], 1700.0);
        let table = ok.table();
        assert!(
            table.contains("restore    round 1: backup of index 100"),
            "{table}"
        );
        assert!(table.contains("restore_ms"), "{table}");
        for (hash, missing) in [("bb", 0), ("aa", 1)] {
            let r = DrillReport::new(
                "c".into(),
                Scenario::Restore,
                4,
                2,
                vec![restored(hash, missing)],
            );
            assert!(!r.passed);
            assert!(r.table().contains("FAIL ("), "{}", r.table());
        }
        // Other scenarios neither report nor summarise restores.
        let r = DrillReport::new(
            "c".into(),
            Scenario::KillLeader,
            4,
            2,
            vec![round(1, Some(9.0), 0)],
        );
        assert!(
            serde_json::to_value(&r).unwrap()["rounds"][0]
                .get("restore")
                .is_none()
        );
        assert!(!r.table().contains("restore_ms"));
    }

    #[test]
    fn the_json_report_has_every_round_and_the_summaries() {
        let rounds = vec![
            round(1, Some(900.0), 0),
            round(2, Some(1200.0), 0),
            round(3, Some(700.0), 0),
        ];
        let r = DrillReport::new("sutra drill".into(), Scenario::KillLeader, 4, 2, rounds);
        assert!(r.passed);
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["scenario"], "kill-leader");
        assert_eq!(j["command"], "sutra drill");
        assert_eq!(j["passed"], true);
        assert_eq!(j["rounds"].as_array().unwrap().len(), 3);
        let r0 = &j["rounds"][0];
        for field in [
            "round",
            "scenario",
            "node",
            "rto_ms",
            "leader_ms",
            "acked",
            "lost",
            "duplicates",
            "unknown",
            "unknown_applied",
            "unknown_absent",
            "violations",
            "stale_reads",
            "catch_up_ms",
            "applied_index",
        ] {
            assert!(!r0[field].is_null(), "rounds[0].{field} missing: {r0}");
        }
        assert_eq!(j["summary"]["rto_ms"]["min"], 700.0);
        assert_eq!(j["summary"]["rto_ms"]["median"], 900.0);
        assert_eq!(j["summary"]["rto_ms"]["p99"], 1200.0);
        assert_eq!(j["summary"]["rto_ms"]["max"], 1200.0);
        assert_eq!(j["targets"]["met"], true);
        let table = r.table();
        assert!(table.starts_with("command    sutra drill\n"), "{table}");
        assert!(table.contains("result     PASS"), "{table}");
        assert!(
            table.contains("targets    rto p99 < 1500 ms, max < 3000 ms: met"),
            "{table}"
        );
    }

    #[test]
    fn a_lost_write_or_no_recovery_fails_the_drill_and_slow_rounds_miss_targets() {
        let r = DrillReport::new(
            "c".into(),
            Scenario::KillLeader,
            4,
            2,
            vec![round(1, Some(900.0), 1), round(2, Some(3500.0), 0)],
        );
        assert!(!r.passed);
        assert_eq!(r.lost, 1);
        assert!(!r.targets.as_ref().unwrap().met);
        assert!(r.table().contains("result     FAIL"));
        let r = DrillReport::new(
            "c".into(),
            Scenario::KillLeader,
            4,
            2,
            vec![round(1, None, 0)],
        );
        assert!(!r.passed);
        assert_eq!(r.unrecovered_rounds, 1);
        assert!(r.table().contains("NOT RECOVERED"));
        // Follower faults have no targets.
        let mut f = round(1, Some(5.0), 0);
        f.scenario = Scenario::KillFollower;
        let r = DrillReport::new("c".into(), Scenario::KillFollower, 4, 2, vec![f]);
        assert!(r.targets.is_none() && r.passed);
    }
}
