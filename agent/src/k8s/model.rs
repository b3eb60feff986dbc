//! Plain data read from the Kubernetes API (node, pods, events, ResourceSlice devices), and the pure
//! conversions from the API's objects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use schemars::JsonSchema;
use serde::Serialize;

use super::devices::SliceDevice;

/// Node labels the GPU feature discovery publishes, by the short name the tools use.
pub const GFD_LABELS: [(&str, &str); 13] = [
    ("product", "nvidia.com/gpu.product"),
    ("count", "nvidia.com/gpu.count"),
    ("memory_mib", "nvidia.com/gpu.memory"),
    ("present", "nvidia.com/gpu.present"),
    ("driver_version", "nvidia.com/cuda.driver-version.full"),
    ("driver_major", "nvidia.com/cuda.driver.major"),
    ("driver_minor", "nvidia.com/cuda.driver.minor"),
    ("driver_rev", "nvidia.com/cuda.driver.rev"),
    (
        "cuda_runtime_version",
        "nvidia.com/cuda.runtime-version.full",
    ),
    ("cuda_runtime_major", "nvidia.com/cuda.runtime.major"),
    ("cuda_runtime_minor", "nvidia.com/cuda.runtime.minor"),
    ("mig_strategy", "nvidia.com/mig.strategy"),
    ("replicas", "nvidia.com/gpu.replicas"),
];

/// A node condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// A node taint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NodeTaint {
    pub key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub effect: String,
}

/// What the agent needs of its Node object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NodeFacts {
    pub name: String,
    /// GPU feature-discovery labels by short name (`product`, `count`, `driver_version`, …).
    pub gpu_labels: BTreeMap<String, String>,
    /// GPU resources (`nvidia.com/gpu`, `nvidia.com/mig-*`) in `status.capacity`.
    pub gpu_capacity: BTreeMap<String, String>,
    /// GPU resources in `status.allocatable`.
    pub gpu_allocatable: BTreeMap<String, String>,
    pub conditions: Vec<NodeCondition>,
    pub taints: Vec<NodeTaint>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
}

fn is_gpu_resource(name: &str) -> bool {
    name == "nvidia.com/gpu"
        || name.starts_with("nvidia.com/mig-")
        || name.starts_with("nvidia.com/gpu.")
}

/// The plain form of a Node.
pub fn node_facts(node: &Node) -> NodeFacts {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    let gpu =
        |m: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| is_gpu_resource(k))
                .map(|(k, v)| (k, v.0))
                .collect()
        };
    let spec = node.spec.clone().unwrap_or_default();
    NodeFacts {
        name: node.metadata.name.clone().unwrap_or_default(),
        gpu_labels: GFD_LABELS
            .iter()
            .filter_map(|(short, key)| labels.get(*key).map(|v| (short.to_string(), v.clone())))
            .collect(),
        gpu_capacity: gpu(status.capacity),
        gpu_allocatable: gpu(status.allocatable),
        conditions: status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| NodeCondition {
                type_: c.type_,
                status: c.status,
                reason: c.reason.unwrap_or_default(),
                message: c.message.unwrap_or_default(),
            })
            .collect(),
        taints: spec
            .taints
            .unwrap_or_default()
            .into_iter()
            .map(|t| NodeTaint {
                key: t.key,
                value: t.value.unwrap_or_default(),
                effect: t.effect,
            })
            .collect(),
        unschedulable: spec.unschedulable.unwrap_or(false),
    }
}

/// What the agent needs of a pod on its node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// (container name, container id without the `containerd://` prefix).
    pub containers: Vec<(String, String)>,
}

/// The plain form of a Pod.
pub fn pod_facts(pod: &Pod) -> PodFacts {
    let status = pod.status.clone().unwrap_or_default();
    let containers = status
        .container_statuses
        .into_iter()
        .flatten()
        .chain(status.init_container_statuses.into_iter().flatten())
        .filter_map(|c| {
            let id = c.container_id?;
            let id = id
                .split_once("://")
                .map_or(id.as_str(), |(_, id)| id)
                .to_string();
            Some((c.name, id))
        })
        .collect();
    PodFacts {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        containers,
    }
}

/// A Warning event about the node or the agent's pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EventFacts {
    /// `Node/<name>` or `Pod/<namespace>/<name>`.
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: u32,
    /// RFC 3339; absent when the event carries no time.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_seen: String,
}

impl EventFacts {
    /// The plain form of a Warning event about `kind`/`name` (others are skipped: field selectors
    /// are a hint some servers ignore).
    pub fn warning(e: &Event, kind: &str, name: &str) -> Option<EventFacts> {
        let io = &e.involved_object;
        if e.type_.as_deref() != Some("Warning")
            || io.kind.as_deref() != Some(kind)
            || io.name.as_deref() != Some(name)
        {
            return None;
        }
        let object = match io.namespace.as_deref() {
            Some(ns) if kind == "Pod" => format!("Pod/{ns}/{name}"),
            _ => format!("{kind}/{name}"),
        };
        let last_seen = e
            .last_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
            .unwrap_or_default();
        Some(EventFacts {
            object,
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            count: e.count.map_or(1, |c| c.max(0) as u32),
            last_seen,
        })
    }
}

/// The devices of one ResourceSlice object (any served version: v1/v1beta2 put attributes on the
/// device, v1beta1 under `basic`).
pub fn slice_devices(obj: &serde_json::Value) -> Vec<SliceDevice> {
    let spec = &obj["spec"];
    let driver = spec["driver"].as_str().unwrap_or_default();
    let pool = spec["pool"]["name"].as_str().unwrap_or_default();
    let Some(devices) = spec["devices"].as_array() else {
        return Vec::new();
    };
    devices
        .iter()
        .map(|d| {
            let attrs = d
                .get("attributes")
                .or_else(|| d.get("basic").and_then(|b| b.get("attributes")));
            let attributes = attrs
                .and_then(|a| a.as_object())
                .map(|a| {
                    a.iter()
                        .filter_map(|(k, v)| {
                            let key = k.rsplit_once('/').map_or(k.as_str(), |(_, k)| k);
                            attribute_text(v).map(|v| (key.to_string(), v))
                        })
                        .collect()
                })
                .unwrap_or_default();
            SliceDevice {
                driver: driver.to_string(),
                pool: pool.to_string(),
                name: d["name"].as_str().unwrap_or_default().to_string(),
                attributes,
            }
        })
        .collect()
}

/// A DRA attribute value (`{string: …}`, `{int: …}`, `{bool: …}`, `{version: …}`) as text.
fn attribute_text(v: &serde_json::Value) -> Option<String> {
    ["string", "version", "int", "bool"].iter().find_map(|k| {
        v.get(*k).map(|x| match x {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_slice_devices_of_every_version() {
        let v1 = json!({"spec": {"driver": "gpu.nvidia.com", "nodeName": "n", "pool": {"name": "n"},
            "devices": [{"name": "gpu-0", "attributes": {
                "uuid": {"string": "GPU-aaaa"}, "index": {"int": 0},
                "gpu.nvidia.com/productName": {"string": "NVIDIA H100"},
                "driverVersion": {"version": "550.54.15"}}}]}});
        let v1beta1 = json!({"spec": {"driver": "gpu.nvidia.com", "pool": {"name": "n"},
            "devices": [{"name": "gpu-0", "basic": {"attributes": {"uuid": {"string": "GPU-aaaa"}}}}]}});
        let d = slice_devices(&v1);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].attributes["uuid"], "GPU-aaaa");
        assert_eq!(d[0].attributes["index"], "0");
        assert_eq!(d[0].attributes["productName"], "NVIDIA H100");
        assert_eq!(d[0].attributes["driverVersion"], "550.54.15");
        assert_eq!(
            (d[0].driver.as_str(), d[0].pool.as_str()),
            ("gpu.nvidia.com", "n")
        );
        assert_eq!(slice_devices(&v1beta1)[0].attributes["uuid"], "GPU-aaaa");
        assert!(slice_devices(&json!({"spec": {}})).is_empty());
    }

    #[test]
    fn pods_keep_container_ids_without_runtime_prefix() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "train-7", "namespace": "ml", "uid": "u1"},
            "status": {"containerStatuses": [
                {"name": "trainer", "containerID": "containerd://abc123", "image": "i", "imageID": "",
                 "ready": true, "restartCount": 0},
                {"name": "waiting", "image": "i", "imageID": "", "ready": false, "restartCount": 0}
            ]}
        }))
        .unwrap();
        let f = pod_facts(&pod);
        assert_eq!(
            f.containers,
            vec![("trainer".to_string(), "abc123".to_string())]
        );
        assert_eq!(
            (f.namespace.as_str(), f.name.as_str(), f.uid.as_str()),
            ("ml", "train-7", "u1")
        );
    }

    #[test]
    fn nodes_keep_gpu_resources_labels_and_taints() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "gpu-1", "labels": {
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8",
                "kubernetes.io/os": "linux"}},
            "spec": {"unschedulable": true, "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
            "status": {"capacity": {"nvidia.com/gpu": "8", "cpu": "96"},
                       "allocatable": {"nvidia.com/gpu": "7", "nvidia.com/mig-1g.10gb": "0"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let f = node_facts(&node);
        assert_eq!(f.gpu_labels.len(), 2);
        assert_eq!(f.gpu_labels["product"], "NVIDIA-H100-80GB-HBM3");
        assert_eq!(
            f.gpu_capacity.keys().collect::<Vec<_>>(),
            ["nvidia.com/gpu"]
        );
        assert_eq!(f.gpu_allocatable.len(), 2);
        assert!(f.unschedulable);
        assert_eq!(f.taints[0].key, "nvidia.com/gpu");
        assert_eq!(f.conditions[0].type_, "Ready");
    }
}
