//! Records the commit the node is built from as `SUTRA_GIT_COMMIT`: the variable of that
//! name when set (image builds have no `.git`), else `git rev-parse --short HEAD`, else
//! "unknown".

fn main() {
    println!("cargo:rerun-if-env-changed=SUTRA_GIT_COMMIT");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    let commit = std::env::var("SUTRA_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = std::process::Command::new("git")
                .args(["rev-parse", "--short", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|c| !c.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SUTRA_GIT_COMMIT={commit}");
}
