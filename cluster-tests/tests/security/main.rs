//! Certificates: rotation on a live cluster, and who may talk to which port. One test
//! binary; each `tNN_` module is one numbered set of tests, listed in `cluster-
//! tests/README.md`.

mod t38_certificate_rotation;
mod t60_peer_endpoint_refuses_foreign_certs;
