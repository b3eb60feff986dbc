//! `ClusterFacts`: what the cluster offers for GPU access, as plain data. Mode resolution reads
//! only this; `observe` fills it from the API server; tests build it by hand.

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

impl NodeFacts {
    /// The facts of one node: its allocatable amount of the configured GPU resource (as the
    /// quantity string the Node reports) and the runtime handlers its CRI reports.
    pub fn new(name: String, gpu_allocatable: Option<&str>, handlers: Option<Vec<String>>) -> Self {
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
