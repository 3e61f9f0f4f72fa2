//! Fault containment: one misconfigured node, a full disk, a fast clock, a removed node,
//! another cluster under the same CA or a flood from one caller stop nothing but
//! themselves. One test binary;
//! each `tNN_` module is one numbered set of tests, listed in `cluster-tests/README.md`.

mod t160_bounded_work_per_caller;
mod t170_misconfigured_node_stops_only_itself;
mod t171_leader_refuses_relayed_writes_that_break_the_rules;
mod t172_full_disk_is_read_only_not_down;
mod t173_fast_clock_expires_no_session;
mod t174_removed_and_foreign_nodes_are_refused;
