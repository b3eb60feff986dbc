//! The operator as a process under measurement: started against a test API server with its own
//! metrics port and log file, asked for its reconcile counter, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use test_apiserver::TestApiServer;

/// The counter of reconciles the operator exports (started).
const RECONCILIATIONS: &str = "k8s_mcp_agent_operator_reconciliations_total";
/// The count of its reconcile-duration histogram (finished).
const FINISHED: &str = "k8s_mcp_agent_operator_reconcile_duration_seconds_count";

/// A running operator; stopped (SIGTERM, then SIGKILL after 10 s) when dropped.
pub struct Operator {
    child: Child,
    metrics_port: u16,
    log: PathBuf,
}

impl Operator {
    /// Starts `binary` against `server`, logging at `log_level` into `dir/operator.log`.
    pub fn start(
        binary: &Path,
        server: &TestApiServer,
        log_level: &str,
        dir: &Path,
    ) -> anyhow::Result<Operator> {
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join("operator.log");
        let child = Command::new(binary)
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .arg(format!("--log-level={log_level}"))
            .env("KUBECONFIG", server.kubeconfig_path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(Operator {
            child,
            metrics_port,
            log,
        })
    }

    /// The operator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reconciles started so far, from its /metrics.
    pub fn reconciliations(&self) -> anyhow::Result<u64> {
        Ok(self.reconcile_counts()?.0)
    }

    /// Reconciles started and finished so far.
    pub fn reconcile_counts(&self) -> anyhow::Result<(u64, u64)> {
        let body = http_get(self.metrics_port, "/metrics")?;
        let read = |name: &str| {
            counter(&body, name).with_context(|| format!("the operator's /metrics has no {name}"))
        };
        Ok((read(RECONCILIATIONS)?, read(FINISHED)?))
    }

    /// Waits until /metrics answers (the controller is running by then).
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.reconciliations().is_err() {
            anyhow::ensure!(
                started.elapsed() < timeout,
                "{}",
                self.explain("the operator never served /metrics")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits until at least `target` reconciles have started and every started one has finished.
    pub async fn wait_reconciles(&self, target: u64, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let (begun, finished) = self.reconcile_counts()?;
            if begun >= target && finished >= begun {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < timeout,
                "{}",
                self.explain(&format!("the operator did not reach {target} reconciles"))
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `what` went wrong, with the tail of the operator's log.
    pub fn explain(&self, what: &str) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(15)..];
        format!("{what}; operator log tail:\n{}", tail.join("\n"))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child, not yet reaped; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on loopback; returns the body.
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}

/// The value of an unlabelled counter in Prometheus text format.
fn counter(body: &str, name: &str) -> Option<u64> {
    body.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_unlabelled_counter() {
        let body = "# HELP x\nk8s_mcp_agent_operator_reconciliations_total 42\nother_total 1\n";
        assert_eq!(counter(body, RECONCILIATIONS), Some(42));
        assert_eq!(counter(body, "missing_total"), None);
        assert_eq!(
            counter(
                "k8s_mcp_agent_operator_reconciliations_total_x 3",
                RECONCILIATIONS
            ),
            None
        );
    }
}
