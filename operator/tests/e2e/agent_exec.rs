//! The original chart's usage end to end: `kubectl exec -i -n gpu-diagnostics POD -c agent -- /agent
//! < examples/inventory-query.jsonl` into an agent pod of the operator's DaemonSet prints both JSON-RPC
//! replies. The test plays the DaemonSet controller and kubelet (it creates the pod from the
//! DaemonSet's template); the test API server's exec rule runs the real `agent` binary in mock mode
//! for that node, with the container's env from the template.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use test_apiserver::{Config, ExecRule};

use crate::fixtures::{NAMESPACE, agent_pod, config, crd, gpu_node, running_status, runtime_class};
use crate::harness::{Cluster, kubectl_path};

const POD: &str = "k8s-mcp-agent-default-x7k2p";

/// The `agent` binary cargo built next to the `operator` binary (`cargo build` builds both).
fn agent_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_operator")).with_file_name("agent");
    assert!(
        path.exists(),
        "the agent binary is not at {}: build it first (`cargo build -p agent`; hack/test.sh builds the workspace)",
        path.display()
    );
    path
}

/// Every kubectl to try: `.tools/kubectl` (1.35) and, when installed, `.tools/k8s-1.32/kubectl`.
fn kubectls() -> Vec<PathBuf> {
    let mut all = vec![kubectl_path()];
    let older = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/k8s-1.32/kubectl");
    if older.exists() {
        all.push(older);
    }
    all
}

#[test]
fn kubectl_exec_into_an_agent_pod_answers_the_inventory_query() {
    let agent = agent_binary();
    let cluster = Cluster::start(
        Config::default()
            .objects([
                crd(),
                runtime_class("nvidia"),
                gpu_node("gpu-a"),
                config("default", json!({})),
            ])
            .exec_rule(
                ExecRule::run([agent.display().to_string()])
                    .env("AGENT_NVML_MODE", "mock")
                    .env("AGENT_MOCK_SCENARIO", "healthy")
                    .node("gpu-a")
                    .container("agent")
                    .command("/agent"),
            ),
        &[],
    );
    let ds = cluster.wait_daemon_set("default", "RuntimeClass mode", |ds| {
        ds["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    });
    let mut pod = agent_pod("default", POD, "gpu-a", &ds);
    pod["status"] = running_status();
    cluster.server.create_object(pod).expect("the agent pod");

    let query = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/inventory-query.jsonl");
    for kubectl in kubectls() {
        let output = Command::new(&kubectl)
            .args([
                "exec", "-i", "-n", NAMESPACE, POD, "-c", "agent", "--", "/agent",
            ])
            .env("KUBECONFIG", cluster.server.kubeconfig_path())
            .env("HOME", cluster.dir())
            .stdin(std::fs::File::open(&query).expect("examples/inventory-query.jsonl"))
            .output()
            .expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{} exec failed ({}):\n{stdout}\n{stderr}",
            kubectl.display(),
            output.status
        );
        let replies: Vec<Value> = stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("stdout carries JSON-RPC lines only"))
            .collect();
        assert_eq!(replies.len(), 2, "two replies: {stdout}");
        assert_eq!(replies[0]["id"], 0);
        assert_eq!(replies[0]["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(replies[1]["id"], 1);
        let inventory = &replies[1]["result"]["structuredContent"];
        assert_eq!(inventory["data_source"], "mock:healthy", "{stdout}");
        assert_eq!(inventory["gpus"].as_array().map(Vec::len), Some(8));
    }
}
