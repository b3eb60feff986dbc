//! The in-repo test API server as a process (`testing/test-apiserver`'s binary), seeded with objects,
//! writing a kubeconfig that kubectl, kube-rs and the fleet use.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

/// The `test-apiserver` binary, built with `cargo build -p test-apiserver` into the target directory
/// and profile this test runs from (a no-op when it is up to date).
pub fn binary() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| super::build_package("test-apiserver", "test-apiserver"))
}

/// A running test API server; stopped when dropped.
pub struct ApiServer {
    child: Child,
    dir: tempfile::TempDir,
    _stdout: BufReader<ChildStdout>,
}

impl ApiServer {
    /// Starts a server holding the objects of the multi-document YAML `seed`.
    pub fn start(seed: &str) -> ApiServer {
        ApiServer::start_with_exec(seed, None)
    }

    /// Starts a server holding `seed` whose `pods/exec` follows the exec rules of `exec_config`
    /// (the `--exec-config` YAML: what runs for which pod or node).
    pub fn start_with_exec(seed: &str, exec_config: Option<&str>) -> ApiServer {
        let dir = tempfile::tempdir().unwrap();
        let seed_path = dir.path().join("seed.yaml");
        std::fs::write(&seed_path, seed).unwrap();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let mut command = Command::new(binary());
        command
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--seed")
            .arg(&seed_path);
        if let Some(rules) = exec_config {
            let path = dir.path().join("exec.yaml");
            std::fs::write(&path, rules).unwrap();
            command.arg("--exec-config").arg(path);
        }
        let mut child = command
            .arg("--exit-on-stdin-close")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("test-apiserver starts");
        // The server prints its URL once it serves, after writing the kubeconfig.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        stdout.read_line(&mut url).unwrap();
        assert!(
            url.starts_with("http"),
            "test-apiserver did not start: {url:?}"
        );
        assert!(kubeconfig.exists(), "test-apiserver wrote no kubeconfig");
        ApiServer {
            child,
            dir,
            _stdout: stdout,
        }
    }

    /// The kubeconfig pointing at this server.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
