//! Faults under load: a leader killed while clients write (raw and through the SDK),
//! leaders and followers cut off by partitions on the peer links, paused leaders and the
//! followers relaying to them. One test binary; each `tNN_` module is one former test
//! file, listed in `cluster-tests/README.md`.

mod t130_partitioned_leader_loses_leadership;
mod t131_minority_and_asymmetric_partitions;
mod t132_paused_leader_resumes_without_stale_reads;
mod t133_follower_abandons_relay_to_paused_leader;
mod t50_kill_leader_under_write_load;
mod t70_sdk_writes_through_leader_kill;
