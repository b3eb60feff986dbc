//! `GpuDiagnosticsConfig.status`: what the operator chose, why, and what is broken. Written only
//! by the operator, only when it changes (no timestamps other than condition transitions).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a `GpuDiagnosticsConfig`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GpuDiagnosticsConfigStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// GPU access method in use; absent while none could be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AccessMethod>,
    /// One sentence: why this mode was chosen, or what to do so that one can be.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// `GpuAccessResolved`, `Ready` and `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The agent DaemonSet, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_set: Option<ObjectRef>,
    /// Agent pods the DaemonSet wants (one per matching node).
    #[serde(default)]
    pub desired_number_scheduled: i32,
    /// Agent pods running and ready.
    #[serde(default)]
    pub number_ready: i32,
    /// Nodes where the agent cannot start or is not ready, with the cause and the fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_problems: Vec<NodeProblem>,
    /// DRA details when `mode` is `DRA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dra: Option<DraStatus>,
}

/// The GPU access method the operator resolved.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessMethod {
    /// `runtimeClassName` + `NVIDIA_VISIBLE_DEVICES=all`; consumes no GPU.
    RuntimeClass,
    /// A device-plugin GPU limit; consumes GPUs.
    DevicePlugin,
    /// A DRA claim per pod (see `status.dra` for admin access).
    #[serde(rename = "DRA")]
    Dra,
}

impl AccessMethod {
    /// The wire name, for metrics labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMethod::RuntimeClass => "RuntimeClass",
            AccessMethod::DevicePlugin => "DevicePlugin",
            AccessMethod::Dra => "DRA",
        }
    }
}

/// A namespaced object the operator manages.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
}

/// DRA specifics of the resolved mode.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DraStatus {
    /// `resource.k8s.io` version the claim objects are written in (found by discovery).
    pub api_version: String,
    /// ResourceClaimTemplate the agent pods reference.
    pub resource_claim_template: String,
    /// Whether the stored template carries `adminAccess: true` (sees every GPU, consumes none).
    pub admin_access: bool,
}

/// Something that keeps the agent from running on one node.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct NodeProblem {
    /// The node.
    pub node: String,
    /// The agent pod on that node, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// What kind of problem.
    pub reason: NodeProblemReason,
    /// What was observed.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// Kinds of per-node problems.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum NodeProblemReason {
    /// The node's container runtime has no handler for the RuntimeClass.
    RuntimeHandlerMissing,
    /// The pod sandbox could not be created for another reason.
    SandboxCreationFailed,
    /// The scheduler cannot place the pod on the node.
    Unschedulable,
    /// The agent image cannot be pulled.
    ImagePullFailed,
    /// The agent container keeps crashing.
    CrashLooping,
    /// The container could not be created from its spec.
    ContainerConfigError,
    /// The agent runs but its readiness check (`/agent check`) fails.
    NotReady,
}
