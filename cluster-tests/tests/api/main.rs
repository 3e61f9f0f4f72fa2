//! The client API's promises: writes through any node, bounded reads, the SDK's API,
//! every consistency level, exactly-once retries, validation of every RPC, client-port
//! refusals, compare-and-set and atomic batches. One test binary; each `tNN_` module is
//! one numbered set of tests, listed in `cluster-tests/README.md`.

mod t100_read_consistency_levels;
mod t105_exactly_once_retries;
mod t110_validation_on_every_rpc;
mod t115_client_port_refusals;
mod t120_cas_and_batch_atomicity;
mod t15_any_node_accepts_writes_and_linearizable_reads;
mod t80_bounded_read_refused_when_cut_off;
mod t95_sdk_api;
