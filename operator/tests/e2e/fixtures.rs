//! The cluster objects scenarios are built from, as a cluster's own components would write them
//! (nodes with their status, a RuntimeClass, a DeviceClass, kubelet pods and events), plus the
//! names the operator derives from a config.

use serde_json::{Value, json};
use test_apiserver::DraVersion;

/// Namespace the agent runs in by default.
pub const NAMESPACE: &str = "gpu-diagnostics";
/// `apiVersion` of `GpuDiagnosticsConfig`.
pub const GDC_API_VERSION: &str = "gpu.k8s-mcp-agent.io/v1alpha1";
/// Kind of the config.
pub const GDC_KIND: &str = "GpuDiagnosticsConfig";
/// Label selecting every agent pod, as users type it.
pub const AGENT_LABEL: &str = "app.kubernetes.io/name=k8s-mcp-agent";

/// `k8s-mcp-agent-<config>`: the DaemonSet, ServiceAccount, RBAC and claim template of a config.
pub fn agent_name(config: &str) -> String {
    format!("k8s-mcp-agent-{config}")
}

/// The GpuDiagnosticsConfig CRD the operator installs (for servers seeded with configs).
pub fn crd() -> Value {
    serde_json::to_value(crds::crd()).expect("the CRD serializes")
}

/// A cluster-scoped config with `spec`.
pub fn config(name: &str, spec: Value) -> Value {
    json!({"apiVersion": GDC_API_VERSION, "kind": GDC_KIND, "metadata": {"name": name}, "spec": spec})
}

/// A node labelled as a GPU node (as GPU Feature Discovery does), with no device plugin.
pub fn gpu_node(name: &str) -> Value {
    node(name, json!({"nvidia.com/gpu.present": "true"}), json!({}))
}

/// A GPU node whose device plugin advertises `gpus` allocatable `nvidia.com/gpu`.
pub fn device_plugin_node(name: &str, gpus: u32) -> Value {
    node(
        name,
        json!({"nvidia.com/gpu.present": "true"}),
        json!({"nvidia.com/gpu": gpus.to_string()}),
    )
}

/// A node with these labels and extra allocatable resources.
pub fn node(name: &str, labels: Value, extra_allocatable: Value) -> Value {
    let mut allocatable = json!({"cpu": "8", "memory": "32Gi", "pods": "110"});
    if let (Some(all), Some(extra)) = (allocatable.as_object_mut(), extra_allocatable.as_object()) {
        all.extend(extra.clone());
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {"allocatable": allocatable.clone(), "capacity": allocatable,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
    })
}

/// The RuntimeClass the NVIDIA GPU Operator / container toolkit creates.
pub fn runtime_class(name: &str) -> Value {
    json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": "nvidia"})
}

/// The DeviceClass the NVIDIA DRA driver creates, at `version`.
pub fn device_class(version: DraVersion, name: &str) -> Value {
    json!({
        "apiVersion": format!("resource.k8s.io/{}", dra_version(version)),
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": {"selectors": [{"cel": {"expression": "device.driver == 'gpu.nvidia.com'"}}]}
    })
}

/// The version segment of a DRA version.
pub fn dra_version(version: DraVersion) -> &'static str {
    match version {
        DraVersion::V1 => "v1",
        DraVersion::V1beta2 => "v1beta2",
        DraVersion::V1beta1 => "v1beta1",
    }
}

/// An agent pod the DaemonSet controller created on `node`, with the template's container env (no
/// status yet: the caller adds it).
pub fn agent_pod(config: &str, pod: &str, node: &str, daemon_set: &Value) -> Value {
    let template = &daemon_set["spec"]["template"]["spec"];
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": pod, "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "k8s-mcp-agent", "app.kubernetes.io/instance": config},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "DaemonSet", "controller": true, "blockOwnerDeletion": true,
                "name": daemon_set["metadata"]["name"], "uid": daemon_set["metadata"]["uid"]
            }]
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": "agent", "image": template["containers"][0]["image"],
                            "env": template["containers"][0]["env"]}]
        }
    });
    if let Some(runtime_class) = template["runtimeClassName"].as_str() {
        pod["spec"]["runtimeClassName"] = json!(runtime_class);
    }
    pod
}

/// Status of a pod whose sandbox cannot be created: Pending, container waiting in ContainerCreating.
pub fn pending_sandbox_status() -> Value {
    json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0, "image": "agent", "imageID": "",
                               "state": {"waiting": {"reason": "ContainerCreating"}}}]
    })
}

/// Status of a running, ready agent pod.
pub fn running_status() -> Value {
    json!({
        "phase": "Running",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "agent", "ready": true, "restartCount": 0, "image": "agent", "imageID": "",
                               "started": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]
    })
}

/// The Warning event kubelet records when the container runtime lacks the RuntimeClass's handler
/// (the symptom in the original chart's troubleshooting section).
pub fn runtime_handler_event(pod: &Value, node: &str, now: &str) -> Value {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.18a1b2c3d4e5f607"), "namespace": NAMESPACE},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": NAMESPACE, "name": name,
                           "uid": pod["metadata"]["uid"]},
        "reason": "FailedCreatePodSandBox",
        "type": "Warning",
        "message": "Failed to create pod sandbox: rpc error: code = Unknown desc = RuntimeHandler \"nvidia\" not supported",
        "source": {"component": "kubelet", "host": node},
        "reportingComponent": "kubelet", "reportingInstance": node,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1
    })
}
