use std::collections::BTreeSet;

use serde_json::json;

use super::*;
use crate::fleet::model::NodeProblemInfo;

fn node(name: &str, labels: &[(&str, &str)], capacity: Option<u64>) -> NodeFacts {
    NodeFacts {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        gpu_capacity: capacity,
        gpu_allocatable: capacity,
        ready: Some(true),
        ..NodeFacts::default()
    }
}

fn pod(name: &str, node: &str, ready: bool, created: &str) -> PodFacts {
    PodFacts {
        name: name.to_owned(),
        namespace: "gpu".to_owned(),
        uid: format!("uid-{name}"),
        node: Some(node.to_owned()),
        config: Some("default".to_owned()),
        ready,
        running: ready,
        not_ready_reason: (!ready).then(|| "ContainersNotReady".to_owned()),
        terminating: false,
        created: created.to_owned(),
    }
}

fn view() -> ClusterView {
    let mut config = ConfigFacts {
        name: "default".into(),
        namespace: "gpu".into(),
        access_mode: Some("RuntimeClass".into()),
        ..ConfigFacts::default()
    };
    config.node_problems.insert(
        "gpu-nopod".into(),
        NodeProblemInfo {
            reason: "Unschedulable".into(),
            message: "0/1 nodes available".into(),
            fix: "add a toleration".into(),
        },
    );
    ClusterView {
        configs: vec![config],
        nodes: vec![
            node("cpu-only", &[], None),
            node("gpu-label", &[("nvidia.com/gpu.present", "true")], None),
            node(
                "gpu-cap",
                &[("nvidia.com/gpu.product", "NVIDIA-H100")],
                Some(8),
            ),
            node("gpu-dra", &[], None),
            node("gpu-nopod", &[("nvidia.com/gpu.present", "true")], None),
            node("pod-only", &[], None),
        ],
        pods: vec![
            pod("a-old", "gpu-label", true, "2026-01-01T00:00:00Z"),
            pod("a-new", "gpu-label", true, "2026-02-01T00:00:00Z"),
            pod("b", "gpu-cap", false, "2026-01-01T00:00:00Z"),
            pod("c", "gpu-dra", true, "2026-01-01T00:00:00Z"),
            pod("d", "pod-only", true, "2026-01-01T00:00:00Z"),
        ],
        dra_nodes: BTreeSet::from(["gpu-dra".to_owned()]),
        namespaces: vec!["gpu".into()],
        notes: vec![],
    }
}

#[test]
fn gpu_nodes_are_found_by_label_capacity_dra_or_agent_pod_and_sorted() {
    let v = view();
    let nodes = gpu_nodes(&v, None);
    let listed: Vec<(&str, Vec<&str>)> = nodes
        .iter()
        .map(|n| {
            (
                n.node.as_str(),
                n.gpu_evidence.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("gpu-cap", vec!["capacity", "agent-pod"]),
            ("gpu-dra", vec!["dra", "agent-pod"]),
            ("gpu-label", vec!["label", "agent-pod"]),
            ("gpu-nopod", vec!["label"]),
            ("pod-only", vec!["agent-pod"]),
        ]
    );
    let cap = &nodes[0];
    assert_eq!(cap.gpu_capacity, Some(8));
    assert_eq!(cap.gpu_product.as_deref(), Some("NVIDIA-H100"));
    assert_eq!(cap.access_mode.as_deref(), Some("RuntimeClass"));
    let nopod = nodes.iter().find(|n| n.node == "gpu-nopod").unwrap();
    assert!(nopod.agent_pod.is_none());
    assert_eq!(nopod.node_problem.as_ref().unwrap().reason, "Unschedulable");
}

#[test]
fn the_newest_ready_pod_serves_a_node() {
    let mut v = view();
    assert_eq!(pick_pod(&v, "gpu-label").unwrap().name, "a-new");
    v.pods[1].ready = false;
    assert_eq!(pick_pod(&v, "gpu-label").unwrap().name, "a-old");
    v.pods[0].terminating = true;
    v.pods[0].ready = false;
    assert_eq!(pick_pod(&v, "gpu-label").unwrap().name, "a-new");
}

#[test]
fn targets_say_why_a_node_cannot_be_reached() {
    let v = view();
    let targets = select_targets(&v, None, None);
    let summary: Vec<(&str, String)> = targets
        .iter()
        .map(|t| {
            (
                t.node.as_str(),
                match &t.reach {
                    Ok(p) => format!("pod {}", p.name),
                    Err(e) => e.to_string(),
                },
            )
        })
        .collect();
    assert_eq!(summary[0].0, "gpu-cap");
    assert!(
        summary[0]
            .1
            .starts_with("agent pod gpu/b is not ready: ContainersNotReady"),
        "{}",
        summary[0].1
    );
    assert_eq!(summary[2], ("gpu-label", "pod a-new".to_owned()));
    assert!(
        summary[3].1.contains("no agent pod on node gpu-nopod")
            && summary[3]
                .1
                .contains("Unschedulable: 0/1 nodes available; fix: add a toleration"),
        "{}",
        summary[3].1
    );
}

#[test]
fn requested_nodes_are_deduplicated_checked_and_filtered_by_the_selector() {
    let v = view();
    let requested = [
        "gpu-dra".to_owned(),
        "nope".to_owned(),
        "gpu-dra".to_owned(),
    ];
    let targets = select_targets(&v, Some(&requested), None);
    assert_eq!(targets.len(), 2);
    assert!(targets[0].reach.is_ok());
    assert_eq!(
        targets[1].reach,
        Err(NodeError::UnknownNode {
            node: "nope".into()
        })
    );
    let only = BTreeSet::from(["gpu-cap".to_owned(), "cpu-only".to_owned()]);
    let targets = select_targets(&v, None, Some(&only));
    let names: Vec<&str> = targets.iter().map(|t| t.node.as_str()).collect();
    assert_eq!(
        names,
        vec!["gpu-cap"],
        "a selector never adds a node without GPUs"
    );
    let targets = select_targets(&v, Some(&requested), Some(&only));
    assert!(targets.is_empty());
}

#[test]
fn a_running_pod_that_is_not_ready_is_still_asked() {
    let mut v = view();
    v.pods[2].running = true;
    let targets = select_targets(&v, Some(&["gpu-cap".to_owned()]), None);
    assert_eq!(targets[0].reach.as_ref().unwrap().name, "b");
}

#[test]
fn pod_facts_carry_the_kubelets_reason() {
    let crash: Pod = serde_json::from_value(json!({
        "metadata": {"name": "agent-x", "namespace": "gpu", "uid": "u1",
                     "labels": {"app.kubernetes.io/instance": "default"},
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": "n1", "containers": [{"name": "agent"}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                   "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 5, "image": "i",
                       "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff",
                       "message": "back-off 5m0s restarting failed container"}}}]}
    }))
    .unwrap();
    let facts = pod_facts(&crash, "app.kubernetes.io/instance");
    assert!(!facts.ready && !facts.running);
    assert_eq!(facts.config.as_deref(), Some("default"));
    assert_eq!(facts.node.as_deref(), Some("n1"));
    assert_eq!(
        facts.not_ready_reason.as_deref(),
        Some("CrashLoopBackOff: back-off 5m0s restarting failed container")
    );
    let pending: Pod = serde_json::from_value(json!({
        "metadata": {"name": "agent-y"}, "status": {"phase": "Pending"}
    }))
    .unwrap();
    assert_eq!(
        pod_facts(&pending, "x").not_ready_reason.as_deref(),
        Some("phase Pending")
    );
}

#[test]
fn node_facts_read_capacity_readiness_and_taints() {
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "spec": {"unschedulable": true, "taints": [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]},
        "status": {"capacity": {"nvidia.com/gpu": "8"}, "allocatable": {"nvidia.com/gpu": "6"},
                   "conditions": [{"type": "Ready", "status": "False"}]}
    }))
    .unwrap();
    let f = node_facts(&n);
    assert_eq!((f.gpu_capacity, f.gpu_allocatable), (Some(8), Some(6)));
    assert_eq!(f.ready, Some(false));
    assert!(f.unschedulable);
    assert_eq!(
        f.taints,
        vec![
            "nvidia.com/gpu=present:NoSchedule",
            "node.kubernetes.io/unreachable:NoExecute"
        ]
    );
    let v = ClusterView {
        nodes: vec![f],
        ..ClusterView::default()
    };
    assert_eq!(
        gpu_nodes(&v, None)[0].gpu_taints,
        vec!["nvidia.com/gpu=present:NoSchedule"]
    );
}
