//! The operator's tools against real clusters: the `sutra` CLI, `deploy/health-check`,
//! `deploy/backup`, the failover drills (through the harness and against `sutra local`)
//! and the compose cluster on Docker. One test binary; each `tNN_` module is one numbered
//! set of tests, listed in `cluster-tests/README.md`.

mod t150_drills;
mod t155_local_drill_partition;
mod t200_compose_cluster;
mod t90_cli;
mod t91_cli_data_commands;
mod t92_health_check_script;
mod t93_backup_script;
mod t94_bench_shapes;
mod t96_import;
mod t97_import_resumes;
