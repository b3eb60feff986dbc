//! Helpers shared by the agent's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

pub mod fake_nvml;
pub mod frozen;
pub mod test_apiserver;

use std::path::{Path, PathBuf};
use std::process::Command;

/// `cargo build -p PACKAGE` into the target directory and profile this test runs from (a no-op when
/// it is up to date); returns the path of `artifact` there.
pub fn build_package(package: &str, artifact: &str) -> PathBuf {
    // This test runs as <target>/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&workspace)
        .args(["build", "--quiet", "-p", package, "--target-dir"])
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
        None => {}
    }
    let status = build.status().expect("cargo runs");
    assert!(
        status.success(),
        "cargo build -p {package} failed: {status}"
    );
    let path = profile_dir.join(artifact);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}
