//! Observability: the monitoring listener's metrics, readiness and status page on real
//! nodes, and the alert rules and dashboard that query them. One test binary; each `tNN_`
//! module is one numbered set of tests, listed in `cluster-tests/README.md`.

use sutra_cluster_tests::http;
mod t180_monitoring_listener;
mod t181_readyz_follows_the_leader;
mod t182_alert_rules_and_dashboard;
mod t183_call_and_write_metrics;
mod t184_status_page_in_a_browser;
