//! Replication on real processes: election, replication, catch-up from the log and by
//! snapshot, membership changes, SIGTERM handover, a new leader's first writes, whole-
//! cluster restarts and replica convergence. One test binary; each `tNN_` module is one
//! former test file, listed in `cluster-tests/README.md`.

mod t10_election_and_replication;
mod t140_replicas_converge_to_identical_content;
mod t20_follower_restart_catches_up_from_log;
mod t21_far_behind_follower_catches_up_by_snapshot;
mod t30_membership_add_learner_promote_remove;
mod t35_sigterm_leader_hands_over;
mod t36_new_leader_takes_writes_at_once;
mod t40_whole_cluster_restart_keeps_acknowledged_writes;
