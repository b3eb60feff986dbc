//! Per-node problem detection from pods, kubelet events and node facts.

use k8s_openapi::api::core::v1::{Event, Pod};
use serde_json::{Value, json};

use super::*;

const NOW: &str = "2026-03-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn pod(name: &str, node: &str, status: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "gpu-diagnostics", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "agent"}], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}},
        "status": status,
    }))
    .unwrap()
}

fn event(pod: &str, reason: &str, message: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{pod}.1"), "namespace": "gpu-diagnostics"},
        "involvedObject": {"kind": "Pod", "name": pod, "uid": format!("uid-{pod}")},
        "reason": reason, "message": message, "type": "Warning",
        "lastTimestamp": "2026-03-01T11:59:00Z",
    }))
    .unwrap()
}

fn runtime_class() -> GpuAccess {
    GpuAccess::RuntimeClass {
        name: "nvidia".into(),
    }
}

fn find(
    pods: &[Pod],
    events: &[Event],
    nodes: &[NodeFacts],
    access: &GpuAccess,
) -> Vec<NodeProblem> {
    node_problems(&ProblemInput {
        pods,
        events,
        nodes,
        access: Some(access),
        runtime_handler: Some("nvidia"),
        namespace: "gpu-diagnostics",
        now: now(),
    })
}

#[test]
fn missing_runtime_handler_is_reported_per_node_with_the_fix() {
    let pods = [
        pod("agent-a", "gpu-a", json!({"phase": "Pending"})),
        pod("agent-b", "gpu-b", json!({"phase": "Pending"})),
    ];
    let events = [
        event(
            "agent-a",
            "FailedCreatePodSandBox",
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for \"nvidia\" is configured",
        ),
        event(
            "agent-b",
            "FailedCreatePodSandBox",
            "Failed to create pod sandbox: rpc error: code = Unknown desc = RuntimeHandler \"nvidia\" not supported",
        ),
    ];
    let problems = find(&pods, &events, &[], &runtime_class());
    assert_eq!(problems.len(), 2);
    for (problem, node) in problems.iter().zip(["gpu-a", "gpu-b"]) {
        assert_eq!(problem.node, node);
        assert_eq!(problem.reason, NodeProblemReason::RuntimeHandlerMissing);
        assert!(
            problem
                .message
                .starts_with("the node's container runtime has no handler \"nvidia\"")
        );
        assert!(
            problem
                .fix
                .contains("nvidia-ctk runtime configure --runtime=containerd"),
            "{}",
            problem.fix
        );
        assert!(problem.fix.contains(node));
    }
    insta::assert_yaml_snapshot!(problems[0]);
}

#[test]
fn other_sandbox_failures_keep_the_kubelet_message() {
    let pods = [pod("agent-a", "gpu-a", json!({"phase": "Pending"}))];
    let events = [event(
        "agent-a",
        "FailedCreatePodSandBox",
        "failed to setup network for sandbox: cni plugin not initialized",
    )];
    let problems = find(&pods, &events, &[], &runtime_class());
    assert_eq!(problems[0].reason, NodeProblemReason::SandboxCreationFailed);
    assert_eq!(
        problems[0].message,
        "failed to setup network for sandbox: cni plugin not initialized"
    );
}

#[test]
fn events_of_running_or_other_pods_are_ignored() {
    let running = pod(
        "agent-a",
        "gpu-a",
        json!({"phase": "Running", "containerStatuses": [
        {"name": "agent", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
         "state": {"running": {"startedAt": "2026-03-01T11:00:00Z"}}}]}),
    );
    let stale = event(
        "agent-a",
        "FailedCreatePodSandBox",
        "no runtime for \"nvidia\" is configured",
    );
    let foreign = event(
        "other",
        "FailedCreatePodSandBox",
        "no runtime for \"nvidia\" is configured",
    );
    assert!(find(&[running], &[stale, foreign], &[], &runtime_class()).is_empty());
}

#[test]
fn nodes_reporting_handlers_without_ours_are_flagged_before_any_pod_fails() {
    let nodes = [
        NodeFacts {
            name: "gpu-a".into(),
            gpu_allocatable: 0,
            runtime_handlers: Some(vec!["runc".into()]),
        },
        NodeFacts {
            name: "gpu-b".into(),
            gpu_allocatable: 0,
            runtime_handlers: Some(vec!["runc".into(), "nvidia".into()]),
        },
        NodeFacts {
            name: "gpu-c".into(),
            gpu_allocatable: 0,
            runtime_handlers: None,
        },
    ];
    let problems = find(&[], &[], &nodes, &runtime_class());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].node, "gpu-a");
    assert_eq!(problems[0].pod, None);
    assert!(problems[0].message.contains("[runc]"));
    // Only RuntimeClass mode cares about handlers.
    let device_plugin = GpuAccess::DevicePlugin {
        resource: "nvidia.com/gpu".into(),
        count: 1,
    };
    assert!(find(&[], &[], &nodes, &device_plugin).is_empty());
}

#[test]
fn unschedulable_device_plugin_pods_suggest_a_mode_that_consumes_nothing() {
    let pods = [pod(
        "agent-a",
        "gpu-a",
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
        "status": "False", "reason": "Unschedulable", "message": "0/4 nodes are available: 1 Insufficient nvidia.com/gpu."}]}),
    )];
    let access = GpuAccess::DevicePlugin {
        resource: "nvidia.com/gpu".into(),
        count: 1,
    };
    let problems = find(&pods, &[], &[], &access);
    assert_eq!(problems[0].reason, NodeProblemReason::Unschedulable);
    assert_eq!(
        problems[0].message,
        "0/4 nodes are available: 1 Insufficient nvidia.com/gpu."
    );
    assert!(problems[0].fix.contains("free a nvidia.com/gpu"));
}

#[test]
fn container_states_map_to_reasons() {
    let waiting = |reason: &str| {
        json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 3,
            "image": "i", "imageID": "", "state": {"waiting": {"reason": reason, "message": "detail"}}}]})
    };
    let cases = [
        ("ImagePullBackOff", NodeProblemReason::ImagePullFailed),
        ("ErrImagePull", NodeProblemReason::ImagePullFailed),
        ("CrashLoopBackOff", NodeProblemReason::CrashLooping),
        (
            "CreateContainerConfigError",
            NodeProblemReason::ContainerConfigError,
        ),
    ];
    for (reason, expected) in cases {
        let problems = find(
            &[pod("agent-a", "gpu-a", waiting(reason))],
            &[],
            &[],
            &runtime_class(),
        );
        assert_eq!(problems[0].reason, expected, "{reason}");
    }
    assert!(
        find(
            &[pod("agent-a", "gpu-a", waiting("ContainerCreating"))],
            &[],
            &[],
            &runtime_class()
        )
        .is_empty()
    );
}

#[test]
fn not_ready_is_reported_only_after_the_grace_period() {
    let running_since = |started: &str| {
        json!({"phase": "Running", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0,
            "image": "i", "imageID": "", "state": {"running": {"startedAt": started}}}]})
    };
    let fresh = pod("agent-a", "gpu-a", running_since("2026-03-01T11:59:30Z"));
    assert!(find(&[fresh], &[], &[], &runtime_class()).is_empty());
    let stuck = pod("agent-a", "gpu-a", running_since("2026-03-01T11:50:00Z"));
    let problems = find(&[stuck], &[], &[], &runtime_class());
    assert_eq!(problems[0].reason, NodeProblemReason::NotReady);
    assert!(
        problems[0]
            .fix
            .contains("kubectl exec -n gpu-diagnostics agent-a -- /agent check")
    );
}

#[test]
fn the_list_is_sorted_and_capped() {
    let pods: Vec<Pod> = (0..60)
        .map(|i| {
            pod(
                &format!("agent-{i:02}"),
                &format!("node-{i:02}"),
                json!({"phase": "Pending"}),
            )
        })
        .collect();
    let events: Vec<Event> = (0..60)
        .map(|i| {
            event(
                &format!("agent-{i:02}"),
                "FailedCreatePodSandBox",
                "no runtime for \"nvidia\" is configured",
            )
        })
        .collect();
    let problems = find(&pods, &events, &[], &runtime_class());
    assert_eq!(problems.len(), MAX_NODE_PROBLEMS);
    assert_eq!(problems[0].node, "node-00");
    assert!(problems.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn handler_names_are_read_from_both_runtimes_wording() {
    assert_eq!(
        missing_runtime_handler("no runtime for \"nvidia\" is configured"),
        Some("nvidia".into())
    );
    assert_eq!(
        missing_runtime_handler("RuntimeHandler \"nvidia-cdi\" not supported"),
        Some("nvidia-cdi".into())
    );
    assert_eq!(missing_runtime_handler("image not found"), None);
}

#[test]
fn rejected_pods_are_reported_while_the_daemon_set_is_short() {
    let ds = |current: i64| {
        json!({"metadata": {"name": "k8s-mcp-agent-default"},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": current}})
    };
    let rejected: Event = serde_json::from_value(json!({
        "metadata": {"name": "ds.1"}, "involvedObject": {"kind": "DaemonSet", "name": "k8s-mcp-agent-default"},
        "reason": "FailedCreate", "type": "Warning",
        "message": "Error creating: pods \"x\" is forbidden: violates PodSecurity \"baseline:latest\": non-default capabilities (container \"agent\" must not include \"SYSLOG\")"
    })).unwrap();
    let issue = pods_rejected(std::slice::from_ref(&rejected), &ds(0)).unwrap();
    assert_eq!(issue.reason, IssueReason::PodsRejected);
    assert!(issue.message.contains("(0 of 2 exist)"));
    assert!(issue.message.contains("violates PodSecurity"));
    assert_eq!(pods_rejected(&[rejected], &ds(2)), None);
}
