//! Scenario 10: the agent pod on one node cannot start because that node's container runtime lacks
//! the `nvidia` handler. The test plays kubelet: it creates the pod and the `FailedCreatePodSandBox`
//! event through the server's state API; the operator must name the node, the cause and the fix.

use serde_json::json;
use test_apiserver::Config;

use crate::fixtures::{
    AGENT_LABEL, NAMESPACE, agent_pod, config, crd, gpu_node, pending_sandbox_status,
    running_status, runtime_class, runtime_handler_event,
};
use crate::harness::{Cluster, condition, has_condition};

#[test]
fn a_missing_runtime_handler_on_one_node_is_named_in_node_problems_with_the_fix() {
    let cluster = Cluster::start(
        Config::default().objects([
            crd(),
            runtime_class("nvidia"),
            gpu_node("gpu-a"),
            gpu_node("gpu-b"),
            config("default", json!({})),
        ]),
        &[],
    );
    let ds = cluster.wait_daemon_set("default", "RuntimeClass mode", |ds| {
        ds["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    });

    // The DaemonSet controller places a pod on each node; on gpu-b the sandbox cannot be created.
    let mut healthy = agent_pod("default", "k8s-mcp-agent-default-aaaaa", "gpu-a", &ds);
    healthy["status"] = running_status();
    cluster.server.create_object(healthy).expect("pod on gpu-a");
    let mut stuck = agent_pod("default", "k8s-mcp-agent-default-bbbbb", "gpu-b", &ds);
    stuck["status"] = pending_sandbox_status();
    let stuck = cluster.server.create_object(stuck).expect("pod on gpu-b");
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    cluster
        .server
        .create_object(runtime_handler_event(&stuck, "gpu-b", &now))
        .expect("kubelet's event");
    cluster.daemon_set_rolled_out("default", 2, 1);

    let status = cluster.wait_status("default", "a node problem on gpu-b", |s| {
        s["nodeProblems"].as_array().is_some_and(|p| !p.is_empty())
    });
    let problems = status["nodeProblems"].as_array().expect("nodeProblems");
    assert_eq!(problems.len(), 1, "only gpu-b has a problem: {problems:#?}");
    let problem = &problems[0];
    assert_eq!(problem["node"], "gpu-b");
    assert_eq!(problem["pod"], "k8s-mcp-agent-default-bbbbb");
    assert_eq!(problem["reason"], "RuntimeHandlerMissing");
    let message = problem["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("RuntimeHandler \"nvidia\" not supported"),
        "the cause quotes kubelet: {message}"
    );
    let fix = problem["fix"].as_str().unwrap_or_default();
    assert!(
        fix.contains("install the NVIDIA container toolkit on gpu-b")
            && fix.contains("nvidia-ctk runtime configure")
            && fix.contains("gpu.mode DevicePlugin or DRA"),
        "the fix says what to do: {fix}"
    );
    let degraded = condition(&status, "Degraded");
    assert_eq!(degraded["reason"], "NodeProblems", "{status}");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap_or_default()
            .contains("gpu-b (RuntimeHandlerMissing)"),
        "{degraded}"
    );
    assert!(
        has_condition(&status, "Ready", "False", "AgentsNotReady"),
        "{status}"
    );

    // The original chart's command to find the agent on a node finds the stuck pod.
    let found = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        AGENT_LABEL,
        "--field-selector",
        "spec.nodeName=gpu-b",
        "-o",
        "name",
    ]);
    assert_eq!(found.trim(), "pod/k8s-mcp-agent-default-bbbbb");

    // Once the node is fixed and the pod runs, the problem clears.
    cluster
        .server
        .modify_object(
            "v1",
            "Pod",
            Some(NAMESPACE),
            "k8s-mcp-agent-default-bbbbb",
            |pod| {
                pod["status"] = running_status();
            },
        )
        .expect("the pod runs");
    cluster.daemon_set_rolled_out("default", 2, 2);
    let status = cluster.wait_status("default", "node problems cleared", |s| {
        s["nodeProblems"].as_array().is_none_or(Vec::is_empty)
            && has_condition(s, "Ready", "True", "AgentsReady")
    });
    assert!(
        has_condition(&status, "Degraded", "False", "AsExpected"),
        "{status}"
    );
    cluster.stop_operator();
}
