//! What a node tells its operators and supervisors outside the API: structured logs with
//! stable event names, the audit trail of admin calls, and systemd readiness. One test
//! binary; each `tNN_` module is one numbered set of tests, listed in
//! `cluster-tests/README.md`.

mod t185_json_logs_events_and_audit;
mod t186_supervisor_readiness;
