//! `k8s-mcp-agent fleet nodes|health|xid` and `kubectl gpu-diag …` through the real binaries: against
//! the test API server (GPU nodes, an agent pod, a node without one), and the fleet tables over real
//! node agents' answers (every built-in scenario, aggregated as the fleet aggregates them).

mod common;
mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use agent::cli::render;
use agent::cli::style::Style;
use agent::fleet::aggregate;
use agent::gpu::DataSource;
use agent::gpu::mock::MockBackend;
use agent::server::{
    GpuDiagServer, HealthArgs, KernelLogSource, ServerOptions, ToolPermission, XidArgs,
};
use common::AGENT;
use gpu_fixture::Fixture;
use serde_json::Value;
use support::frozen::{freeze_counters, mask_timestamps};
use support::test_apiserver::ApiServer;

const FLEET: &str = env!("CARGO_BIN_EXE_k8s-mcp-agent");

/// Two GPU nodes; an agent pod on the first only.
const CLUSTER: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: gpu-node-a
  labels: {nvidia.com/gpu.present: "true", nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
status:
  capacity: {nvidia.com/gpu: "8"}
  allocatable: {nvidia.com/gpu: "8"}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Node
metadata:
  name: gpu-node-b
  labels: {nvidia.com/gpu.present: "true", pool: b}
status:
  capacity: {nvidia.com/gpu: "8"}
  allocatable: {nvidia.com/gpu: "7"}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Namespace
metadata: {name: gpu-diagnostics}
---
apiVersion: v1
kind: Pod
metadata:
  name: k8s-mcp-agent-default-abcde
  namespace: gpu-diagnostics
  labels: {app.kubernetes.io/name: k8s-mcp-agent, app.kubernetes.io/instance: default}
spec:
  nodeName: gpu-node-a
  containers: [{name: agent, image: agent}]
status:
  phase: Running
  conditions: [{type: Ready, status: "True"}]
"#;

fn run(program: &str, args: &[&str], path: Option<&std::ffi::OsStr>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null());
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.output().expect("the command runs")
}

fn fleet(server: &ApiServer, args: &[&str]) -> Output {
    let kubeconfig = server.kubeconfig().display().to_string();
    let mut all = vec![
        "fleet",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        "gpu-diagnostics",
    ];
    all.extend_from_slice(args);
    all.push("--node-timeout=10s");
    run(FLEET, &all, None)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn line_of<'a>(table: &'a str, node: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(node))
        .unwrap_or_else(|| panic!("no line for {node}:\n{table}"))
}

#[test]
fn fleet_nodes_lists_gpu_nodes_and_their_agent_pods() {
    let server = ApiServer::start(CLUSTER);
    let out = fleet(&server, &["nodes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("NODE "), "{table}");
    let a = line_of(&table, "gpu-node-a");
    assert!(a.contains("NVIDIA-H100-80GB-HBM3"), "{a}");
    assert!(
        a.contains("gpu-diagnostics/k8s-mcp-agent-default-abcde"),
        "{a}"
    );
    let b = line_of(&table, "gpu-node-b");
    assert!(b.contains("7/8") && b.contains("no agent pod"), "{b}");
    assert!(!table.contains('\x1b'), "no colour in a pipe");

    let json: Value =
        serde_json::from_slice(&fleet(&server, &["nodes", "-o", "json"]).stdout).unwrap();
    let names: Vec<&str> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gpu-node-a", "gpu-node-b"]);

    let out = fleet(&server, &["nodes", "-l", "pool=b", "-o", "yaml"]);
    let yaml: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(yaml["nodes"].as_array().unwrap().len(), 1, "{yaml}");
    assert_eq!(yaml["nodes"][0]["node"], "gpu-node-b");
}

#[test]
fn fleet_health_reports_nodes_it_could_not_ask_with_exit_3_and_progress() {
    let server = ApiServer::start(CLUSTER);
    let out = fleet(&server, &["health"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("2 node(s): UNKNOWN"), "{table}");
    assert!(line_of(&table, "gpu-node-b").contains("UNKNOWN"), "{table}");
    assert!(table.contains("no agent pod on node gpu-node-b"), "{table}");
    let progress = text(&out.stderr);
    assert!(progress.contains("asking 2 node(s)"), "{progress}");
    assert!(progress.contains("[2/2] "), "{progress}");
    assert!(progress.contains("gpu-node-b did not answer"), "{progress}");

    // One node, quiet, as JSON: the fleet tool's result.
    let out = fleet(
        &server,
        &["health", "--nodes", "gpu-node-b", "-q", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stderr), "", "--quiet");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "UNKNOWN");
    assert_eq!(json["counts"]["UNKNOWN"], 1);
    assert_eq!(json["nodes"].as_array().unwrap().len(), 1);

    let out = fleet(&server, &["xid", "--since", "24h", "--nodes", "gpu-node-b"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("no agent pod on node gpu-node-b"));
}

/// `CLUSTER` plus a third GPU node with an agent pod; exec into the agent pods runs the real `agent`
/// binary in mock mode, `ecc-dbe` on gpu-node-a and `healthy` on gpu-node-c.
fn cluster_with_agents() -> ApiServer {
    let seed = format!(
        "{CLUSTER}{}",
        r#"---
apiVersion: v1
kind: Node
metadata:
  name: gpu-node-c
  labels: {nvidia.com/gpu.present: "true"}
status:
  capacity: {nvidia.com/gpu: "8"}
  allocatable: {nvidia.com/gpu: "8"}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata:
  name: k8s-mcp-agent-default-fghij
  namespace: gpu-diagnostics
  labels: {app.kubernetes.io/name: k8s-mcp-agent, app.kubernetes.io/instance: default}
spec:
  nodeName: gpu-node-c
  containers: [{name: agent, image: agent}]
status:
  phase: Running
  conditions: [{type: Ready, status: "True"}]
"#
    );
    let rule = |node: &str, scenario: &str| {
        format!(
            "- match: {{node: {node}, container: agent}}\n  run:\n    argv: [{AGENT}]\n    \
             env: {{AGENT_NVML_MODE: mock, AGENT_MOCK_SCENARIO: {scenario}, AGENT_LOG_LEVEL: warn}}\n"
        )
    };
    let rules = format!(
        "rules:\n{}{}",
        rule("gpu-node-a", "ecc-dbe"),
        rule("gpu-node-c", "healthy")
    );
    ApiServer::start_with_exec(&seed, Some(&rules))
}

#[test]
fn fleet_health_and_xid_through_pods_exec_of_real_node_agents() {
    let server = cluster_with_agents();
    let out = fleet(&server, &["health"]);
    let table = text(&out.stdout);
    // A FAIL outranks the node that could not be asked.
    assert_eq!(out.status.code(), Some(2), "{}\n{table}", text(&out.stderr));
    let rows: Vec<&str> = table.lines().skip(3).take(3).collect();
    assert!(
        rows[0].starts_with("gpu-node-a") && rows[0].contains("FAIL"),
        "{table}"
    );
    assert!(rows[0].contains("GPU 4 ecc.volatile_dbe"), "{table}");
    assert!(
        rows[1].starts_with("gpu-node-b") && rows[1].contains("UNKNOWN"),
        "{table}"
    );
    assert!(
        rows[2].starts_with("gpu-node-c") && rows[2].contains("PASS"),
        "{table}"
    );
    let progress = text(&out.stderr);
    assert!(progress.contains("asking 3 node(s)"), "{progress}");
    assert!(progress.contains("gpu-node-a answered"), "{progress}");
    assert!(progress.contains("gpu-node-c answered"), "{progress}");

    let out = fleet(
        &server,
        &["health", "--nodes", "gpu-node-c", "-o", "json", "-q"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "PASS");
    assert_eq!(json["nodes"][0]["gpus"].as_array().unwrap().len(), 8);

    let out = fleet(&server, &["xid", "--nodes", "gpu-node-a,gpu-node-c", "-q"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let a = line_of(&table, "gpu-node-a");
    assert!(
        a.contains("GPU4:48 x1") && a.contains("DRAIN_AND_RESET"),
        "{table}"
    );
    assert!(line_of(&table, "gpu-node-c").contains("PASS"), "{table}");
    assert!(table.contains("XID CODES ACROSS THE FLEET"), "{table}");
}

/// A fleet result with the node agents' clocks masked (each node process converts its kernel log's
/// times with its own clock reading).
fn masked(value: &Value) -> Value {
    serde_json::from_str(&mask_timestamps(&value.to_string())).unwrap()
}

#[test]
fn fleet_json_is_the_fleet_tools_structured_content() {
    let server = cluster_with_agents();
    let kubeconfig = server.kubeconfig().display().to_string();
    let mut session = common::Session::start(&[
        "fleet",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        "gpu-diagnostics",
        "--node-timeout=10s",
    ]);
    session.initialize("2025-11-25");
    for (command, tool) in [
        ("nodes", "list_gpu_nodes"),
        ("health", "get_fleet_gpu_health"),
        ("xid", "get_fleet_xid_errors"),
    ] {
        let result = session.call_tool(tool, serde_json::json!({}));
        assert_eq!(result["isError"], false, "{tool}: {result}");
        let out = fleet(&server, &[command, "-o", "json"]);
        let cli: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("fleet {command} -o json: {e}: {}", text(&out.stderr)));
        assert_eq!(
            masked(&cli),
            masked(&result["structuredContent"]),
            "fleet {command} -o json"
        );
    }
}

#[test]
fn no_cluster_and_bad_flags_exit_3() {
    for args in [
        vec!["fleet", "health", "--kubeconfig", "/nonexistent/kubeconfig"],
        vec!["fleet", "nodes", "--kubeconfig", "/nonexistent/kubeconfig"],
        vec!["fleet", "health", "--window", "5x"],
        vec!["fleet", "xid", "--bogus"],
    ] {
        let out = run(FLEET, &args, None);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = text(&out.stderr);
        assert!(!err.is_empty() && out.stdout.is_empty(), "{args:?}: {err}");
        if args.contains(&"/nonexistent/kubeconfig") {
            assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
            assert_eq!(err.lines().count(), 1, "said once: {err}");
        }
    }
}

fn kubectl() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/kubectl"))
}

#[test]
fn kubectl_runs_it_as_the_gpu_diag_plugin() {
    let kubectl = kubectl();
    assert!(
        kubectl.exists(),
        "kubectl not found at {}: run hack/install-test-tools.sh or set KUBECTL",
        kubectl.display()
    );
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(FLEET, bin.path().join("kubectl-gpu_diag")).unwrap();
    let path = std::env::join_paths(std::iter::once(bin.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let kubectl = kubectl.to_str().unwrap();

    let list = run(kubectl, &["plugin", "list"], Some(&path));
    assert!(
        text(&list.stdout).contains("kubectl-gpu_diag"),
        "{}",
        text(&list.stdout)
    );

    let server = ApiServer::start(CLUSTER);
    let kubeconfig = server.kubeconfig().display().to_string();
    let out = run(
        kubectl,
        &[
            "gpu-diag",
            "nodes",
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            "gpu-diagnostics",
        ],
        Some(&path),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(line_of(&text(&out.stdout), "gpu-node-a").contains("k8s-mcp-agent-default-abcde"));

    // kubectl passes the plugin's exit code through.
    let out = run(
        kubectl,
        &[
            "gpu-diag",
            "health",
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            "gpu-diagnostics",
            "-q",
        ],
        Some(&path),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

/// The node agent's answer to `tool` on a built-in scenario (counters frozen), as the fleet receives
/// it: the tool's `structuredContent`.
async fn node_answer(scenario: &str, tool: &str) -> Value {
    let mut fixture = Fixture::builtin(scenario).unwrap();
    for gpu in &mut fixture.gpus {
        freeze_counters(gpu);
    }
    let mock = Arc::new(MockBackend::new(
        fixture,
        DataSource::MockScenario(scenario.to_string()),
    ));
    let server = GpuDiagServer::new(
        mock.clone(),
        ServerOptions {
            node_name: Some(format!("node-{scenario}")),
            mode: ToolPermission::ReadOnly,
            backend_timeout: Duration::from_secs(10),
            kernel_log: KernelLogSource::Simulated(mock),
            history_dir: None,
            kube: agent::k8s::KubeOptions {
                enabled: false,
                ..Default::default()
            },
        },
    );
    let value = match tool {
        "health" => serde_json::to_value(server.health(HealthArgs::default()).await.unwrap()),
        _ => serde_json::to_value(server.xid(XidArgs::default()).await.unwrap()),
    };
    value.unwrap()
}

const SCENARIOS: &[&str] = &[
    "healthy",
    "thermal-throttle",
    "ecc-dbe",
    "row-remap-pending",
    "row-remap-failure",
    "fallen-off-bus",
    "nvlink-errors",
    "pcie-downtrain",
];

#[tokio::test]
async fn fleet_tables_over_every_scenario_worst_first() {
    let mut health = Vec::new();
    let mut xid = Vec::new();
    for scenario in SCENARIOS {
        let node = format!("node-{scenario}");
        health.push((node.clone(), Ok(node_answer(scenario, "health").await)));
        xid.push((node, Ok(node_answer(scenario, "xid").await)));
    }
    let unreachable = agent::fleet::NodeError::Timeout(Duration::from_secs(20));
    health.push(("node-hung".to_string(), Err(unreachable.clone())));
    xid.push(("node-hung".to_string(), Err(unreachable)));

    let fleet_health = aggregate::fleet_health(health);
    let table = render::fleet::health(&fleet_health, Style::PLAIN);
    let first = table.lines().nth(3).unwrap();
    assert!(
        first.starts_with("node-ecc-dbe") && first.contains("FAIL"),
        "worst first:\n{table}"
    );
    insta::assert_snapshot!("fleet-health", mask_timestamps(&table));

    let fleet_xid = aggregate::fleet_xid(xid);
    let table = render::fleet::xid(&fleet_xid, Style::PLAIN);
    insta::assert_snapshot!("fleet-xid", mask_timestamps(&table));
    assert_eq!(agent::cli::fleet::fleet_exit_code(fleet_health.verdict), 2);
}
