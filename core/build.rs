//! Records the git commit the tool was built from, so every JSON record can name it.
use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SENDPATH_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // Only watch files that exist: a missing rerun-if-changed path makes cargo rerun every build.
    for p in ["../.git/HEAD", "../.git/logs/HEAD"] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
