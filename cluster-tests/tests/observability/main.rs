//! Observability: the monitoring listener's metrics, readiness and status page on real
//! nodes. One test binary; each `tNN_` module is one numbered set of tests, listed in
//! `cluster-tests/README.md`.

use sutra_cluster_tests::http;
mod t180_monitoring_listener;
mod t181_readyz_follows_the_leader;
mod t183_call_and_write_metrics;
mod t184_status_page_in_a_browser;
