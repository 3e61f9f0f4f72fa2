//! Backups and restores: `sutra backup save|verify` and `sutra-node restore` against real
//! nodes. One test binary; each `tNN_` module is one numbered set of tests, listed in
//! `cluster-tests/README.md`.

mod t190_backup_under_load_restores_into_a_new_cluster;
mod t191_force_new_cluster_after_quorum_loss;
mod t192_export_then_import;
mod t193_learner_seeded_from_a_backup;
