//! Finds out once, at build time, whether a Docker engine answers here, and if so sets
//! `cfg(docker_engine)`: the compose-cluster test (`tests/tooling/t200_compose_cluster.rs`)
//! is `#[ignore]`d without it, so a machine without Docker reports it as skipped rather
//! than passed.
//!
//! `SUTRA_DOCKER=0` turns the test off and `SUTRA_DOCKER=1` on whatever `docker info`
//! says. The check runs again when that variable changes or the engine's socket appears,
//! goes or is recreated.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest `docker info` may take; an engine that does not answer by then counts as
/// absent (the build must not hang on it).
const DOCKER_INFO_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    println!("cargo::rustc-check-cfg=cfg(docker_engine)");
    println!("cargo:rerun-if-env-changed=SUTRA_DOCKER");
    println!("cargo:rerun-if-env-changed=DOCKER_HOST");
    println!("cargo:rerun-if-changed=/var/run/docker.sock");
    println!("cargo:rerun-if-changed=build.rs");
    let engine = match std::env::var("SUTRA_DOCKER").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => docker_info_succeeds(),
    };
    if engine {
        println!("cargo:rustc-cfg=docker_engine");
    }
}

/// Whether `docker info` exits 0 within [`DOCKER_INFO_TIMEOUT`].
fn docker_info_succeeds() -> bool {
    let Ok(mut child) = Command::new("docker")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if start.elapsed() < DOCKER_INFO_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
