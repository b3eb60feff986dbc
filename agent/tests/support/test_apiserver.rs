//! The in-repo test API server as a process (`testing/test-apiserver`'s binary), seeded with objects,
//! writing a kubeconfig that kubectl, kube-rs and the fleet use.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

/// The `test-apiserver` binary of the target directory and profile this test runs from (the suite's
/// workspace build makes it); built with `cargo build -p test-apiserver` when missing or older than its
/// sources (a package-only build resolves features differently, so it is not run needlessly).
pub fn binary() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test knows its own path");
        let built = exe
            .parent()
            .and_then(Path::parent)
            .map(|profile| profile.join("test-apiserver"));
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testing/test-apiserver");
        match built {
            Some(path) if modified(&path) >= newest(&sources) => path,
            _ => super::build_package("test-apiserver", "test-apiserver"),
        }
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of any file under `dir`.
fn newest(dir: &Path) -> Option<SystemTime> {
    let mut latest = modified(dir);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest(&path)
        } else {
            modified(&path)
        };
        latest = latest.max(time);
    }
    latest
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
