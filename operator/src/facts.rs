//! `ClusterFacts`: what the cluster offers for GPU access, as plain data. Mode resolution reads
//! only this; `observe` fills it from the API server; tests build it by hand.

use k8s_openapi::api::core::v1::Node;

use crate::dra::DraVersion;
use crate::quantity;

/// Everything mode resolution needs to know about the cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterFacts {
    /// Handler of the RuntimeClass named by `gpu.runtimeClass.name`, when that RuntimeClass exists.
    pub runtime_class_handler: Option<String>,
    /// DRA as served, when `resource.k8s.io` is served in a version the operator can write.
    pub dra: Option<DraFacts>,
    /// `resource.k8s.io` versions served that the operator cannot use (`v1alpha3`), for messages.
    pub dra_unsupported_versions: Vec<String>,
    /// The nodes `nodeSelector` matches.
    pub nodes: Vec<NodeFacts>,
    /// Whether the API server keeps `adminAccess: true` in claim templates.
    pub admin_access: AdminAccess,
}

/// DRA as the cluster serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct DraFacts {
    /// The version the operator writes (best served).
    pub version: DraVersion,
    /// Whether `gpu.resourceClaim.deviceClassName` exists.
    pub device_class_exists: bool,
    /// The ResourceClaimTemplate named by `gpu.resourceClaim.templateName`, when one is named.
    pub user_template: Option<UserTemplate>,
}

/// A user-provided ResourceClaimTemplate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserTemplate {
    /// Not found in the agent namespace.
    Missing,
    /// Found; whether its stored requests carry admin access.
    Found {
        /// `adminAccess: true` in a request.
        admin_access: bool,
    },
}

/// One node the agent would run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// Allocatable amount of `gpu.resourceRequest.resource` (0 when absent).
    pub gpu_allocatable: u64,
    /// Runtime handlers the node's CRI reports (`status.runtimeHandlers`); `None` when it reports
    /// none, which means unknown, not "no handler".
    pub runtime_handlers: Option<Vec<String>>,
}

/// The few fields of a Node the operator reads, deserialized without the rest: a Node's JSON is
/// mostly images, managed fields and conditions, and 5,000 fully decoded Nodes took a gigabyte.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct NodeSummary {
    /// `metadata` (only the name is kept).
    #[serde(default)]
    pub metadata: NodeSummaryMeta,
    /// `status` (allocatable resources and runtime handlers are kept).
    #[serde(default)]
    pub status: NodeSummaryStatus,
}

/// `metadata` of a [`NodeSummary`].
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct NodeSummaryMeta {
    /// Node name.
    #[serde(default)]
    pub name: String,
}

/// `status` of a [`NodeSummary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummaryStatus {
    /// Allocatable quantities by resource name.
    #[serde(default)]
    pub allocatable: std::collections::BTreeMap<String, String>,
    /// The CRI's runtime handlers (empty when the CRI reports none).
    #[serde(default)]
    pub runtime_handlers: Vec<RuntimeHandlerSummary>,
}

/// One entry of `status.runtimeHandlers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Deserialize)]
pub struct RuntimeHandlerSummary {
    /// Handler name (`""` is the default handler).
    #[serde(default)]
    pub name: Option<String>,
}

impl NodeFacts {
    /// Extracts the facts of one node; `gpu_resource` is the extended resource to count.
    pub fn from_node(node: &Node, gpu_resource: &str) -> Self {
        let status = node.status.as_ref();
        Self::new(
            node.metadata.name.clone().unwrap_or_default(),
            status
                .and_then(|s| s.allocatable.as_ref())
                .and_then(|a| a.get(gpu_resource))
                .map(|q| q.0.as_str()),
            status
                .and_then(|s| s.runtime_handlers.as_ref())
                .map(|handlers| handlers.iter().filter_map(|h| h.name.clone()).collect()),
        )
    }

    /// The same facts from a [`NodeSummary`] (what the operator lists).
    pub fn from_summary(node: NodeSummary, gpu_resource: &str) -> Self {
        let allocatable = node
            .status
            .allocatable
            .get(gpu_resource)
            .map(String::as_str);
        let handlers = node
            .status
            .runtime_handlers
            .iter()
            .filter_map(|h| h.name.clone())
            .collect::<Vec<_>>();
        Self::new(node.metadata.name, allocatable, Some(handlers))
    }

    fn new(name: String, gpu_allocatable: Option<&str>, handlers: Option<Vec<String>>) -> Self {
        let gpu_allocatable = gpu_allocatable
            .and_then(quantity::parse)
            .filter(|v| v.is_finite() && *v > 0.0)
            .map_or(0, |v| v.floor() as u64);
        Self {
            name,
            gpu_allocatable,
            runtime_handlers: handlers.filter(|handlers| !handlers.is_empty()),
        }
    }

    /// `Some(false)` when the node reports its runtime handlers and `handler` is not among them.
    pub fn has_runtime_handler(&self, handler: &str) -> Option<bool> {
        self.runtime_handlers
            .as_ref()
            .map(|handlers| handlers.iter().any(|h| h == handler))
    }
}

/// Whether DRA admin access survives on this API server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AdminAccess {
    /// Not known yet: a (dry-run) apply will tell.
    #[default]
    Unknown,
    /// A stored template carries `adminAccess: true`.
    Usable,
    /// The API server dropped or refused it; the message says why.
    Unusable(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn counts_allocatable_gpus_of_the_configured_resource() {
        let n = node(json!({"metadata": {"name": "gpu-1"},
            "status": {"allocatable": {"nvidia.com/gpu": "8", "cpu": "64"}}}));
        assert_eq!(
            NodeFacts::from_node(&n, "nvidia.com/gpu").gpu_allocatable,
            8
        );
        assert_eq!(
            NodeFacts::from_node(&n, "nvidia.com/mig-1g.10gb").gpu_allocatable,
            0
        );
        let zero = node(json!({"metadata": {"name": "gpu-2"},
            "status": {"allocatable": {"nvidia.com/gpu": "0"}}}));
        assert_eq!(
            NodeFacts::from_node(&zero, "nvidia.com/gpu").gpu_allocatable,
            0
        );
    }

    #[test]
    fn runtime_handlers_are_unknown_when_the_cri_reports_none() {
        let silent =
            NodeFacts::from_node(&node(json!({"metadata": {"name": "a"}, "status": {}})), "x");
        assert_eq!(silent.has_runtime_handler("nvidia"), None);
        let reporting = NodeFacts::from_node(
            &node(
                json!({"metadata": {"name": "b"}, "status": {"runtimeHandlers": [
                {"name": "runc", "features": {}}, {"name": ""}]}}),
            ),
            "x",
        );
        assert_eq!(reporting.has_runtime_handler("nvidia"), Some(false));
        assert_eq!(reporting.has_runtime_handler("runc"), Some(true));
    }
}
