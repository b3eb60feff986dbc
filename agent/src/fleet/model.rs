//! The fleet's plain data: what the API server says about the cluster (`ClusterView`), the tools'
//! arguments, and their typed results. No I/O here; `discover` and `aggregate` compute over it.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::errors::NodeError;

/// One `GpuDiagnosticsConfig` as the fleet needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigFacts {
    pub name: String,
    /// The agent namespace (`spec.namespace.name`, or `--namespace`).
    pub namespace: String,
    /// `status.daemonSet.name`, once the operator created it.
    pub daemon_set: Option<String>,
    /// `status.mode`: how the agent pods reach the GPUs.
    pub access_mode: Option<String>,
    /// `status.nodeProblems`, by node.
    pub node_problems: BTreeMap<String, NodeProblemInfo>,
}

/// The operator's `nodeProblems` entry of one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct NodeProblemInfo {
    pub reason: String,
    pub message: String,
    pub fix: String,
}

/// One Node, reduced to what says whether and how it has GPUs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `status.capacity["nvidia.com/gpu"]`, when the device plugin publishes it.
    pub gpu_capacity: Option<u64>,
    pub gpu_allocatable: Option<u64>,
    /// The `Ready` condition (`None` when the kubelet never reported one).
    pub ready: Option<bool>,
    pub unschedulable: bool,
    /// Taints, as `key=value:Effect`.
    pub taints: Vec<String>,
}

/// One agent pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodFacts {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub node: Option<String>,
    /// The config it belongs to (`app.kubernetes.io/instance`).
    pub config: Option<String>,
    pub ready: bool,
    /// The agent container is running (exec can reach it even when the pod is not Ready: the node
    /// agent then says itself why its readiness check fails).
    pub running: bool,
    /// Why it is not ready, in the kubelet's words.
    pub not_ready_reason: Option<String>,
    /// It has a deletion timestamp (being replaced or drained).
    pub terminating: bool,
    /// RFC 3339 creation time; newer pods win when a node has several.
    pub created: String,
}

/// Everything the API server said, read once per tool call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterView {
    pub configs: Vec<ConfigFacts>,
    pub nodes: Vec<NodeFacts>,
    pub pods: Vec<PodFacts>,
    /// Nodes that publish a GPU ResourceSlice (DRA).
    pub dra_nodes: BTreeSet<String>,
    /// The agent namespaces the fleet looked in.
    pub namespaces: Vec<String>,
    /// Things the fleet could not read (for example ResourceSlices), said once.
    pub notes: Vec<String>,
}

/// The agent pod a node's calls go to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// A node a fleet call goes to, and how it can be reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub node: String,
    pub reach: Result<PodRef, NodeError>,
}

/// Whether the fleet may exec into the agent pods of one namespace.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ExecAccess {
    pub namespace: String,
    /// `allowed`, `denied` or `unknown` (the API server could not tell).
    pub exec: AccessDecision,
    /// The API server's reason, or what to do.
    pub detail: String,
}

/// An access review's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessDecision {
    Allowed,
    Denied,
    Unknown,
}

/// `list_gpu_nodes`' arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNodesArgs {
    /// Only nodes matching this label selector (`kubectl get nodes -l` syntax).
    #[serde(default)]
    pub selector: Option<String>,
}

/// `get_fleet_gpu_health`'s arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetHealthArgs {
    /// Only these nodes (names as in list_gpu_nodes); every GPU node when omitted.
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
    /// Only nodes matching this label selector.
    #[serde(default)]
    pub selector: Option<String>,
    /// Passed to each node's get_gpu_health: sample twice this many seconds apart (1-60) to judge
    /// rates.
    #[serde(default)]
    #[schemars(range(max = 60))]
    pub window_seconds: Option<u32>,
}

/// `get_fleet_xid_errors`' arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetXidArgs {
    /// Only these nodes (names as in list_gpu_nodes); every GPU node when omitted.
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
    /// Only nodes matching this label selector.
    #[serde(default)]
    pub selector: Option<String>,
    /// Only Xids logged in the last this-many seconds; each node's whole ring buffer when omitted.
    #[serde(default)]
    pub since_seconds: Option<u64>,
}

/// A verdict in the fleet: the node agent's PASS/WARN/FAIL, or UNKNOWN for a node that did not
/// answer. Ordered by urgency: FAIL, then UNKNOWN (nothing verified), then WARN, then PASS.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum FleetVerdict {
    #[default]
    Pass,
    Warn,
    Unknown,
    Fail,
}

/// How many nodes got each verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub struct VerdictCounts {
    pub pass: u32,
    pub warn: u32,
    pub fail: u32,
    pub unknown: u32,
}

/// `list_gpu_nodes`' result.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NodeList {
    /// Whether this user may exec into the agent pods (SelfSubjectAccessReview for `create
    /// pods/exec`), per agent namespace. Without it the fleet's per-node tools cannot reach nodes.
    pub exec_access: Vec<ExecAccess>,
    /// Every node with GPUs or an agent pod, by name.
    pub nodes: Vec<GpuNode>,
    /// What the fleet could not read, and what that means.
    pub notes: Vec<String>,
}

/// One node with GPUs or an agent pod.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct GpuNode {
    pub node: String,
    /// Why the node is listed: `label` (nvidia.com/gpu.present=true), `capacity` (nvidia.com/gpu),
    /// `dra` (a GPU ResourceSlice), `agent-pod`.
    pub gpu_evidence: Vec<String>,
    /// `nvidia.com/gpu` capacity; absent when the device plugin does not publish it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_capacity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_allocatable: Option<u64>,
    /// The `nvidia.com/gpu.product` label (GPU feature discovery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_product: Option<String>,
    /// The Ready condition; absent when the kubelet never reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    pub unschedulable: bool,
    /// Taints whose key mentions GPUs or NVIDIA, as `key=value:Effect`.
    pub gpu_taints: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_pod: Option<AgentPod>,
    /// The GpuDiagnosticsConfig serving the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// The config's GPU access mode (RuntimeClass, DevicePlugin, DRA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<String>,
    /// The operator's `nodeProblems` entry for this node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_problem: Option<NodeProblemInfo>,
}

/// The agent pod on a node.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AgentPod {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `get_fleet_gpu_health`'s result.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FleetHealth {
    /// The worst verdict of all nodes (FAIL > UNKNOWN > WARN > PASS).
    pub verdict: FleetVerdict,
    /// Nodes per verdict.
    pub counts: VerdictCounts,
    /// Worst first, then by name.
    pub nodes: Vec<NodeHealthEntry>,
}

/// One node's health in the fleet.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NodeHealthEntry {
    pub node: String,
    pub verdict: FleetVerdict,
    pub gpus: Vec<GpuVerdict>,
    /// The node agent's findings (node-level and per GPU, with `gpu_index`).
    pub findings: Vec<FleetFinding>,
    /// Why the node did not answer (verdict UNKNOWN), in words to act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One GPU's verdict.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct GpuVerdict {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub verdict: FleetVerdict,
}

/// One finding of a node agent, labelled with its GPU.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FleetFinding {
    /// The GPU it concerns; absent for node-level findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    /// The health rule.
    pub check: String,
    /// `info`, `warn` or `fail`.
    pub severity: String,
    pub message: String,
    /// What to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// `get_fleet_xid_errors`' result.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FleetXid {
    /// The worst verdict of all nodes (FAIL > UNKNOWN > WARN > PASS).
    pub verdict: FleetVerdict,
    /// Nodes per verdict.
    pub counts: VerdictCounts,
    /// Fleet-wide, per Xid code: events, nodes, the catalog's severity and action; most severe
    /// first.
    pub codes: Vec<FleetXidCode>,
    /// Worst first, then by name.
    pub nodes: Vec<NodeXidEntry>,
}

/// One Xid code across the fleet.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FleetXidCode {
    pub code: u32,
    pub mnemonic: String,
    /// The catalog's severity of the code.
    pub severity: String,
    pub event_count: u64,
    /// Nodes that logged it, by name.
    pub nodes: Vec<String>,
    /// The catalog's immediate action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immediate_instruction: Option<String>,
}

/// One node's Xid errors.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NodeXidEntry {
    pub node: String,
    pub verdict: FleetVerdict,
    /// The node agent's recommended action for the node (absent when it did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended_action: Option<String>,
    pub xid_event_count: u64,
    /// Per GPU, per code.
    pub codes: Vec<NodeXidCode>,
    /// Why the node did not answer (verdict UNKNOWN), in words to act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One Xid code on one GPU of a node.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct NodeXidCode {
    pub code: u32,
    pub mnemonic: String,
    pub severity: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    pub pci_bus_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}
