//! The shared Node cache: one watch on Nodes for every config, each Node slimmed to what the
//! operator reads (name, labels, GPU allocatable, runtime handlers) before it is stored. Reconciles
//! read their nodes from memory instead of LISTing them, and a config is re-reconciled only when one
//! of those facts changes (not on every kubelet status update).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use k8s_openapi::api::core::v1::{Node, NodeStatus};
use kube::api::ObjectMeta;

use crate::facts::NodeFacts;

/// Strips a Node to the fields the operator reads (everything else would only cost memory).
pub fn slim(node: &mut Node) {
    let status = node.status.take().unwrap_or_default();
    node.metadata = ObjectMeta {
        name: node.metadata.name.take(),
        labels: node.metadata.labels.take(),
        resource_version: node.metadata.resource_version.take(),
        ..ObjectMeta::default()
    };
    node.spec = None;
    node.status = Some(NodeStatus {
        allocatable: status.allocatable,
        runtime_handlers: status.runtime_handlers,
        ..NodeStatus::default()
    });
}

/// A fingerprint of what the operator reads of a (slimmed) Node: when it changes, the configs'
/// facts may have changed.
pub fn fingerprint(node: &Node) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    node.metadata.labels.hash(&mut hasher);
    if let Some(status) = &node.status {
        if let Some(allocatable) = &status.allocatable {
            for (resource, quantity) in allocatable {
                resource.hash(&mut hasher);
                quantity.0.hash(&mut hasher);
            }
        }
        for handler in status.runtime_handlers.iter().flatten() {
            handler.name.hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Whether `node` matches an equality node selector (every key present with that value).
pub fn selected(node: &Node, selector: &BTreeMap<String, String>) -> bool {
    let labels = node.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The facts of the nodes `selector` matches, sorted by name (as a LIST would return them).
pub fn facts<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    selector: &BTreeMap<String, String>,
    gpu_resource: &str,
) -> Vec<NodeFacts> {
    let mut facts: Vec<NodeFacts> = nodes
        .into_iter()
        .filter(|n| selected(n, selector))
        .map(|n| NodeFacts::from_node(n, gpu_resource))
        .collect();
    facts.sort_by(|a, b| a.name.cmp(&b.name));
    facts
}

/// Remembers each Node's fingerprint and says whether an event changed anything the operator reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    seen: HashMap<String, u64>,
}

impl ChangeFilter {
    /// A Node was added or updated: true when it is new or its fingerprint changed.
    pub fn applied(&mut self, node: &Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        self.seen.insert(name, fingerprint(node)) != Some(fingerprint(node))
    }

    /// A Node was deleted: true when it was known.
    pub fn deleted(&mut self, node: &Node) -> bool {
        self.seen
            .remove(node.metadata.name.as_deref().unwrap_or_default())
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).unwrap()
    }

    fn full_node(name: &str, gpus: &str) -> Node {
        node(json!({
            "metadata": {"name": name, "labels": {"nvidia.com/gpu.present": "true", "pool": "a"},
                         "annotations": {"big": "x".repeat(1000)}, "resourceVersion": "7",
                         "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": gpus},
                       "capacity": {"cpu": "8"},
                       "images": [{"names": ["nvcr.io/big:1"], "sizeBytes": 1}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "runtimeHandlers": [{"name": "nvidia"}, {"name": "runc"}]}
        }))
    }

    #[test]
    fn slimming_keeps_only_what_the_operator_reads() {
        let mut n = full_node("gpu-a", "8");
        slim(&mut n);
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "gpu-a", "labels": {"nvidia.com/gpu.present": "true", "pool": "a"},
                             "resourceVersion": "7"},
                "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": "8"},
                           "runtimeHandlers": [{"name": "nvidia"}, {"name": "runc"}]}
            })
        );
        let facts = NodeFacts::from_node(&n, "nvidia.com/gpu");
        assert_eq!(facts.gpu_allocatable, 8);
        assert_eq!(facts.has_runtime_handler("nvidia"), Some(true));
    }

    #[test]
    fn selection_is_by_every_selector_label() {
        let mut a = full_node("gpu-b", "8");
        let mut b = full_node("gpu-a", "0");
        slim(&mut a);
        slim(&mut b);
        let sel = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let names = |f: Vec<NodeFacts>| f.into_iter().map(|n| n.name).collect::<Vec<_>>();
        assert_eq!(
            names(facts([&a, &b], &sel(&[("pool", "a")]), "nvidia.com/gpu")),
            ["gpu-a", "gpu-b"]
        );
        assert!(facts([&a, &b], &sel(&[("pool", "b")]), "nvidia.com/gpu").is_empty());
        assert_eq!(facts([&a, &b], &sel(&[]), "nvidia.com/gpu").len(), 2);
        assert!(
            facts(
                [&a],
                &sel(&[("pool", "a"), ("zone", "z")]),
                "nvidia.com/gpu"
            )
            .is_empty()
        );
    }

    #[test]
    fn only_changes_to_what_the_operator_reads_count() {
        let mut filter = ChangeFilter::default();
        let mut n = full_node("gpu-a", "8");
        slim(&mut n);
        assert!(filter.applied(&n), "a new node");
        assert!(
            !filter.applied(&n),
            "the same facts again (a kubelet heartbeat)"
        );
        let mut bumped = n.clone();
        bumped.metadata.resource_version = Some("8".into());
        assert!(
            !filter.applied(&bumped),
            "a new resourceVersion alone changes nothing"
        );
        let mut more = full_node("gpu-a", "7");
        slim(&mut more);
        assert!(filter.applied(&more), "allocatable GPUs changed");
        let mut relabelled = more.clone();
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("pool".into(), "b".into());
        assert!(filter.applied(&relabelled), "labels changed");
        assert!(filter.deleted(&relabelled));
        assert!(!filter.deleted(&relabelled), "already gone");
    }
}
