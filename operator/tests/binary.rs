//! The `operator` binary, black-box: against the test API server over HTTP it installs its CRD,
//! becomes ready, reconciles a config, then stays quiet (a resync with nothing to do writes
//! nothing), serves metrics, and exits 0 on SIGTERM.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::FakeApi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain HTTP/1.1 GET; returns the status code and the body.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((code, body))
}

async fn wait_for(
    what: &str,
    log: &std::path::Path,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> bool,
) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < timeout,
            "timed out waiting for {what}; operator log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// A test API server on a socket with the CRD, a RuntimeClass, one GPU node and the default config, and
/// a folder with a kubeconfig pointing at it.
async fn cluster(test: &str) -> (FakeApi, std::path::PathBuf) {
    let server = test_apiserver::TestApiServer::start(test_apiserver::Config::default())
        .await
        .expect("the test API server starts");
    let fake = FakeApi::wrap(server);
    fake.insert(serde_json::to_value(crds::crd()).unwrap());
    fake.insert(json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"},
        "handler": "nvidia"}));
    fake.insert(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "gpu-a", "labels": {"nvidia.com/gpu.present": "true"}}, "status": {}}));
    fake.insert(
        json!({"apiVersion": "gpu.k8s-mcp-agent.io/v1alpha1", "kind": "GpuDiagnosticsConfig",
        "metadata": {"name": "default"},
        "spec": serde_json::to_value(crds::GpuDiagnosticsConfigSpec::default()).unwrap()}),
    );
    let dir = std::env::temp_dir().join(format!("operator-binary-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fake.server.kubeconfig_path(), dir.join("kubeconfig")).unwrap();
    (fake, dir)
}

/// Starts the binary against the cluster in `dir`; returns it with its metrics port.
fn start(dir: &std::path::Path, extra: &[&str]) -> (Operator, u16) {
    let port = free_port();
    let mut args = vec!["--metrics-addr".to_owned(), format!("127.0.0.1:{port}")];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let child = Command::new(env!("CARGO_BIN_EXE_operator"))
        .args(&args)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("operator.log")).unwrap(),
        ))
        .spawn()
        .expect("the operator binary starts");
    (Operator(child), port)
}

/// Sends SIGTERM and returns the exit status.
async fn terminate(operator: &mut Operator) -> std::process::ExitStatus {
    let pid = libc::pid_t::try_from(operator.0.id()).expect("pids fit pid_t");
    // SAFETY: kill(2) on a child this test spawned and has not reaped; no memory is involved.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGTERM) },
        0,
        "SIGTERM delivered"
    );
    let started = Instant::now();
    loop {
        if let Some(status) = operator.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the operator did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_reconciled(fake: &FakeApi, log: &std::path::Path) {
    wait_for(
        "the agent DaemonSet",
        log,
        Duration::from_secs(20),
        async || {
            fake.get(
                "apps",
                "daemonsets",
                Some("gpu-diagnostics"),
                "k8s-mcp-agent-default",
            )
            .is_some()
        },
    )
    .await;
    wait_for("the status", log, Duration::from_secs(20), async || {
        fake.get(
            "gpu.k8s-mcp-agent.io",
            "gpudiagnosticsconfigs",
            None,
            "default",
        )
        .is_some_and(|c| c["status"]["mode"] == "RuntimeClass")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reconciles_stays_quiet_and_stops_on_sigterm() {
    let (fake, dir) = cluster("plain").await;
    let log = dir.join("operator.log");
    let (mut operator, port) = start(&dir, &["--resync-interval", "500ms"]);

    wait_for("/readyz", &log, Duration::from_secs(30), async || {
        matches!(http_get(port, "/readyz").await, Some((200, _)))
    })
    .await;
    assert!(
        fake.writes().contains(
            &"PATCH customresourcedefinitions gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io"
                .to_owned()
        ),
        "--install-crd is on by default: {:?}",
        fake.writes()
    );
    wait_reconciled(&fake, &log).await;
    fake.assert_rbac_covers_requests();

    // Several resyncs later, nothing more was written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    fake.clear_log();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!fake.requests().is_empty(), "the operator kept resyncing");
    assert_eq!(
        fake.writes(),
        Vec::<String>::new(),
        "resyncs with nothing to do wrote"
    );

    let (code, metrics) = http_get(port, "/metrics")
        .await
        .expect("metrics are served");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("k8s_mcp_agent_operator_reconciliations_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "k8s_mcp_agent_operator_gpu_access_mode{config=\"default\",mode=\"RuntimeClass\"} 1"
        ),
        "{metrics}"
    );
    assert_eq!(http_get(port, "/healthz").await.map(|r| r.0), Some(200));

    let status = terminate(&mut operator).await;
    assert!(status.success(), "exit status on SIGTERM: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_leader_election_it_takes_the_lease_then_releases_it() {
    let (fake, dir) = cluster("leader").await;
    let log = dir.join("operator.log");
    let (mut operator, port) = start(
        &dir,
        &[
            "--leader-elect",
            "--leader-election-namespace",
            "kube-system",
            "--leader-election-identity",
            "replica-1",
            "--install-crd=false",
        ],
    );
    wait_reconciled(&fake, &log).await;
    let lease = fake
        .get(
            "coordination.k8s.io",
            "leases",
            Some("kube-system"),
            "k8s-mcp-agent-operator",
        )
        .expect("the Lease exists");
    assert_eq!(lease["spec"]["holderIdentity"], "replica-1");
    assert!(
        !fake
            .writes()
            .iter()
            .any(|w| w.contains("customresourcedefinitions")),
        "--install-crd=false leaves the CRD alone"
    );
    wait_for("/readyz", &log, Duration::from_secs(10), async || {
        matches!(http_get(port, "/readyz").await, Some((200, _)))
    })
    .await;
    let (_, metrics) = http_get(port, "/metrics").await.unwrap();
    assert!(
        metrics.contains("k8s_mcp_agent_operator_leader 1"),
        "{metrics}"
    );
    fake.assert_rbac_covers_requests();

    let status = terminate(&mut operator).await;
    assert!(status.success(), "exit status on SIGTERM: {status}");
    let lease = fake
        .get(
            "coordination.k8s.io",
            "leases",
            Some("kube-system"),
            "k8s-mcp-agent-operator",
        )
        .unwrap();
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_none_or(str::is_empty),
        "the Lease is released on shutdown: {lease}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_cluster_configuration_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_operator"))
        .args(["--metrics-addr", &format!("127.0.0.1:{}", free_port())])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no Kubernetes client configuration"),
        "{stderr}"
    );
    // Each cause once, and no colour codes when stderr is not a terminal.
    assert_eq!(
        stderr
            .matches("No such file or directory (os error 2)")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("failed to read kubeconfig").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "ANSI escape in {stderr:?}");
}
