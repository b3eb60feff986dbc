//! Noticing Node changes that matter: one watch on Nodes for every config, each Node decoded into the
//! few fields the operator reads (labels, allocatable resources, runtime handlers) and reduced to a
//! fingerprint. A config is re-reconciled only when a fingerprint changes, so a device plugin
//! appearing is followed at once while kubelet heartbeats and image lists trigger nothing. Nothing
//! is cached: reconciles still read their nodes with a paged LIST, so memory stays bounded by a page.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::facts::NodeSummaryStatus;

/// A Node as the watch decodes it: its metadata and the status fields the operator reads (spec,
/// conditions, images and the rest of the status are skipped by the decoder, never allocated).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WatchedNode {
    /// Name, labels and the rest of the metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Allocatable resources and runtime handlers.
    #[serde(default)]
    pub status: NodeSummaryStatus,
}

impl k8s_openapi::Resource for WatchedNode {
    const API_VERSION: &'static str = "v1";
    const GROUP: &'static str = "";
    const KIND: &'static str = "Node";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "nodes";
    type Scope = k8s_openapi::ClusterResourceScope;
}

impl k8s_openapi::Metadata for WatchedNode {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A fingerprint of what the operator reads of a Node: labels (node selection), allocatable
/// resources (device-plugin GPUs) and runtime handlers (RuntimeClass support).
pub fn fingerprint(node: &WatchedNode) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    node.metadata.labels.hash(&mut hasher);
    node.status.allocatable.hash(&mut hasher);
    for handler in &node.status.runtime_handlers {
        handler.name.hash(&mut hasher);
    }
    hasher.finish()
}

/// Each known Node's fingerprint; says whether a watch event changed anything the operator reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    seen: HashMap<String, u64>,
}

impl ChangeFilter {
    /// A Node was added or updated: true when it is new or its fingerprint changed.
    pub fn applied(&mut self, node: &WatchedNode) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let print = fingerprint(node);
        self.seen.insert(name, print) != Some(print)
    }

    /// A Node was deleted: true when it was known.
    pub fn deleted(&mut self, node: &WatchedNode) -> bool {
        self.seen
            .remove(node.metadata.name.as_deref().unwrap_or_default())
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, gpus: &str, pool: &str, heartbeat: &str) -> WatchedNode {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"nvidia.com/gpu.present": "true", "pool": pool},
                         "resourceVersion": heartbeat,
                         "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": gpus},
                       "capacity": {"cpu": "8"},
                       "images": [{"names": ["nvcr.io/big:1"], "sizeBytes": 1}],
                       "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": heartbeat}],
                       "runtimeHandlers": [{"name": "nvidia"}, {"name": "runc"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_watched_node_keeps_what_the_operator_reads() {
        let n = node("gpu-a", "8", "a", "1");
        assert_eq!(n.metadata.name.as_deref(), Some("gpu-a"));
        assert_eq!(n.status.allocatable["nvidia.com/gpu"], "8");
        assert_eq!(n.status.runtime_handlers.len(), 2);
        let empty: WatchedNode =
            serde_json::from_value(json!({"metadata": {"name": "bare"}})).unwrap();
        assert!(empty.status.allocatable.is_empty());
    }

    #[test]
    fn only_changes_to_what_the_operator_reads_count() {
        let mut filter = ChangeFilter::default();
        assert!(filter.applied(&node("gpu-a", "8", "a", "1")), "a new node");
        assert!(
            !filter.applied(&node("gpu-a", "8", "a", "2")),
            "a kubelet heartbeat (new conditions and resourceVersion) changes nothing"
        );
        assert!(
            filter.applied(&node("gpu-a", "7", "a", "3")),
            "allocatable GPUs changed"
        );
        assert!(
            filter.applied(&node("gpu-a", "7", "b", "4")),
            "labels changed"
        );
        let mut no_handlers = node("gpu-a", "7", "b", "5");
        no_handlers.status.runtime_handlers.clear();
        assert!(filter.applied(&no_handlers), "runtime handlers changed");
        assert!(
            filter.applied(&node("gpu-b", "8", "a", "1")),
            "another node"
        );
        assert!(filter.deleted(&no_handlers));
        assert!(!filter.deleted(&no_handlers), "already gone");
    }
}
