//! [`Scenario`]: which fault a drill injects in each round.

use std::fmt;
use std::str::FromStr;

/// The fault a drill injects in each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// SIGKILL the leader; restart it (same data, same ports) after the load window.
    KillLeader,
    /// SIGSTOP the leader; SIGCONT it after the load window, then read through it at
    /// LINEARIZABLE and LEASE: it must not serve a stale value.
    PauseLeader,
    /// Cut the leader's peer links both ways; heal after the load window.
    PartitionLeader,
    /// SIGKILL a follower (a different one each round); restart it after the window.
    KillFollower,
    /// SIGSTOP a follower (a different one each round); SIGCONT it after the window.
    PauseFollower,
    /// Cut a follower's peer links both ways (a different one each round); heal after
    /// the window.
    PartitionFollower,
    /// SIGKILL every node, then restart them all.
    RestartAll,
    /// Gracefully stop (SIGTERM) and restart each node in turn, followers first, then
    /// the leader, under load.
    RollingRestart,
    /// Run an operator's procedure (a shell command: a rolling upgrade, a certificate
    /// rotation, maintenance) under load, with the same checks. Its RTO is the longest
    /// time without an acknowledged write from the procedure's start until the first
    /// write acknowledged after it ended.
    Procedure,
    /// Take a backup under load, restore it into a scratch three-node cluster, and check
    /// that its content hash equals the backup's and that every write acknowledged before
    /// the backup began is in it; reports backup and restore times and the recovery point.
    Restore,
}

impl Scenario {
    /// Every scenario, in the order the documentation lists them.
    pub const ALL: [Scenario; 10] = [
        Self::KillLeader,
        Self::PauseLeader,
        Self::PartitionLeader,
        Self::KillFollower,
        Self::PauseFollower,
        Self::PartitionFollower,
        Self::RestartAll,
        Self::RollingRestart,
        Self::Procedure,
        Self::Restore,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::KillLeader => "kill-leader",
            Self::PauseLeader => "pause-leader",
            Self::PartitionLeader => "partition-leader",
            Self::KillFollower => "kill-follower",
            Self::PauseFollower => "pause-follower",
            Self::PartitionFollower => "partition-follower",
            Self::RestartAll => "restart-all",
            Self::RollingRestart => "rolling-restart",
            Self::Procedure => "procedure",
            Self::Restore => "restore",
        }
    }

    /// Whether the fault takes the leader away, so recovery needs a new leader.
    pub fn hits_leader(self) -> bool {
        matches!(
            self,
            Self::KillLeader | Self::PauseLeader | Self::PartitionLeader
        )
    }

    /// The RTO targets of `docs/design.md` §7 that apply to this scenario, as
    /// `(p99, max)` in milliseconds: kill-leader and partition-leader only.
    pub fn rto_targets_ms(self) -> Option<(f64, f64)> {
        matches!(self, Self::KillLeader | Self::PartitionLeader).then_some((1500.0, 3000.0))
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scenario name that is not one of [`Scenario::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario {given:?}; expected one of: {}", Scenario::ALL.map(Scenario::name).join(", "))]
pub struct UnknownScenario {
    /// What was given.
    pub given: String,
}

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|sc| sc.name() == wanted)
            .ok_or_else(|| UnknownScenario {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_list_the_choices() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>(), Ok(s));
            assert_eq!(s.to_string(), s.name());
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
        }
        assert_eq!("Kill_Leader".parse::<Scenario>(), Ok(Scenario::KillLeader));
        let err = "kill-everyone".parse::<Scenario>().unwrap_err().to_string();
        assert!(err.contains("kill-everyone"), "{err}");
        assert!(err.contains("rolling-restart"), "{err}");
    }

    #[test]
    fn targets_apply_to_kill_and_partition_of_the_leader() {
        assert_eq!(
            Scenario::KillLeader.rto_targets_ms(),
            Some((1500.0, 3000.0))
        );
        assert_eq!(
            Scenario::PartitionLeader.rto_targets_ms(),
            Some((1500.0, 3000.0))
        );
        assert_eq!(Scenario::PauseLeader.rto_targets_ms(), None);
        assert!(Scenario::PauseLeader.hits_leader());
        assert!(!Scenario::KillFollower.hits_leader());
        assert!(!Scenario::PartitionFollower.hits_leader());
        assert_eq!(Scenario::PauseFollower.rto_targets_ms(), None);
    }
}
