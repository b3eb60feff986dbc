//! The tool table: each tool's name, title, description, argument type and result type, and the errors
//! a call can end in. Argument types are `deny_unknown_fields`, so a misspelt argument is an error.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolResult, JsonObject};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::schema;
use crate::gpu::{BackendError, GpuFilter};
use crate::health::HealthReport;
use crate::k8s::api::Unreadable;
use crate::tools::gpu_node::DescribeNodeReport;
use crate::tools::inventory::InventoryReport;
use crate::tools::pod_gpus::PodGpuAllocationReport;
use crate::xid::XidReport;

/// A tool's name, title and description, and its argument/result types' schemas.
pub(crate) struct ToolSpec {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) description: &'static str,
    pub(crate) input: fn() -> Arc<JsonObject>,
    pub(crate) output: fn() -> Arc<JsonObject>,
}

pub(crate) const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "get_gpu_inventory",
        title: "GPU inventory",
        description: "List this node's NVIDIA GPUs and their current state: model, UUID, serial, PCI bus id, \
                  compute capability, VBIOS, memory (bytes), temperature and thresholds (°C), power draw \
                  and limit (W), clocks (MHz), utilization (%), PCIe link, persistence/MIG/compute mode, \
                  ECC mode, NVLinks and running processes; plus driver, CUDA and NVML versions. Values the \
                  GPU cannot report are listed under `unavailable` with the reason.",
        input: schema::input_schema::<GpuScopeArgs>,
        output: schema::output_schema::<InventoryReport>,
    },
    ToolSpec {
        name: "get_gpu_health",
        title: "GPU health",
        description: "Judge this node's GPUs like DCGM's health watches: a PASS/WARN/FAIL verdict per GPU and \
                      overall, with findings that name their rule, the evidence (values, thresholds, \
                      counter deltas) and the action to take. Covers thermal, power, clock-event \
                      (throttle) reasons, ECC SBE/DBE, retired pages and row remapping, PCIe link \
                      downtraining and replay rate, NVLink state and error rates, lost or missing GPUs, \
                      InfoROM, the driver's recovery action and fatal Xids. Rate rules compare with the \
                      previous call's reading, or sample twice `window_seconds` apart. Checks a GPU \
                      cannot support are listed under `not_evaluated`, never passed silently.",
        input: schema::input_schema::<HealthArgs>,
        output: schema::output_schema::<HealthResult>,
    },
    ToolSpec {
        name: "analyze_xid_errors",
        title: "Xid error analysis",
        description: "Read the kernel ring buffer (/dev/kmsg, else syslog(2) with CAP_SYSLOG, or the file \
                      given with --kmsg-path) for NVIDIA Xid errors, attribute each to its GPU by PCI \
                      address, and explain it from NVIDIA's Xid catalog: name, severity, immediate and \
                      investigatory action, plus companion-Xid workflows (48 with 63/64, 45, 43, 13/31 \
                      recurrence, 74 link decode, 79, 154 recovery action). Returns events (newest \
                      first) with wall-clock times, a per-GPU per-code summary, a verdict and the \
                      recommended action per GPU, and the time span the log covers.",
        input: schema::input_schema::<XidArgs>,
        output: schema::output_schema::<XidResult>,
    },
    ToolSpec {
        name: "get_gpu_timeline",
        title: "GPU timeline (flight recorder)",
        description: "What happened to this node's GPUs before anyone looked, from the flight recorder \
                      `agent idle` keeps (every sample for the last hour, one-minute aggregates for \
                      24 h by default). Per GPU: min/max/mean/last per time bucket of temperature, \
                      power, clocks, utilization and memory used; and the ordered events: \
                      temperature crossing the slowdown threshold, throttle reasons starting and \
                      ending, ECC / retired-page / remapped-row / PCIe-replay / NVLink counter \
                      increments and resets, PCIe generation/width changes, NVLinks going down, \
                      Xids, GPUs lost and returned, and recorder gaps (agent restarts, skipped \
                      samples). Use it when the user reports something that already happened. \
                      Without a recorder the result says so in `notes`.",
        input: schema::input_schema::<TimelineArgs>,
        output: schema::output_schema::<TimelineResult>,
    },
    ToolSpec {
        name: "get_pod_gpu_allocation",
        title: "Pod GPU allocation",
        description: "Which pods and containers hold which GPU on this node, from the kubelet's \
                      pod-resources API: device-plugin devices (GPU UUIDs, MIG instances, shared \
                      replicas) and DRA claims (matched to GPUs through the node's ResourceSlices). \
                      Per GPU (index, UUID, MIG mode) its holders and where each row came from \
                      (device_plugin or dra, with the resource or claim name); GPUs nobody holds; \
                      devices that could not be matched and why. Filter with namespace and pod. \
                      Sources that could not be read are listed under `unreadable` with the reason \
                      (a missing permission as verb + resource).",
        input: schema::input_schema::<PodAllocationArgs>,
        output: schema::output_schema::<PodGpuAllocationReport>,
    },
    ToolSpec {
        name: "describe_gpu_node",
        title: "GPU node as Kubernetes sees it",
        description: "This node as Kubernetes sees it, beside NVML: GPU feature-discovery labels \
                      (product, count, memory, driver, CUDA, MIG strategy), nvidia.com/gpu and MIG \
                      capacity and allocatable, the kubelet's allocatable devices, conditions, taints, \
                      cordon, the DRA ResourceSlices naming the node, and recent Warning events of the \
                      node and the agent's pod. Findings with a PASS/WARN/FAIL verdict for every \
                      disagreement: NVML count vs capacity vs allocatable vs ResourceSlice devices, \
                      GFD product vs NVML name, driver label vs NVML driver, node NotReady / cordoned / \
                      GPU-tainted, GPUs held by pods that no longer exist.",
        input: schema::input_schema::<NoArgs>,
        output: schema::output_schema::<DescribeNodeReport>,
    },
];

/// A GPU named by NVML index or by UUID.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum GpuRef {
    /// NVML index, 0-based.
    Index(u32),
    /// UUID (`GPU-…`).
    Uuid(String),
}

/// Arguments of `get_gpu_timeline`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelineArgs {
    /// Only this GPU: NVML index (0-based) or UUID. Every GPU when omitted.
    #[serde(default)]
    pub gpu: Option<GpuRef>,
    /// How far back to look, in seconds (default 3600, at most the retention, 86400 by default).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub since_seconds: Option<u64>,
    /// Most events to list, the newest kept (default 200, at most 5000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 5000))]
    pub max_events: Option<u32>,
}

/// `get_gpu_timeline`'s result: the timeline, labelled with its data source and node.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct TimelineResult {
    /// Where the recorded data came from when it was sampled by this agent's backend: `nvml` on a
    /// real node, `mock:<scenario>` or `mock-fixture:<file>` in demos and tests.
    pub data_source: String,
    /// The Kubernetes node (from the `NODE_NAME` environment variable), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(flatten)]
    pub report: crate::recorder::timeline::TimelineReport,
}

/// Arguments of `get_pod_gpu_allocation`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodAllocationArgs {
    /// Only pods of this namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only pods of this name.
    #[serde(default)]
    pub pod: Option<String>,
}

/// Arguments of a tool that takes none.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// The pods holding one GPU a tool reports on ("Xid 79 on GPU 3 → ml/train-7 container trainer").
#[derive(Debug, Clone, PartialEq, serde::Serialize, JsonSchema)]
pub struct GpuWorkloads {
    pub gpu_index: u32,
    /// `namespace/pod container name`, one per holder.
    pub holders: Vec<String>,
    /// One line naming what hit the GPU and who holds it.
    pub summary: String,
}

/// Arguments of `analyze_xid_errors`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidArgs {
    /// Only Xids logged in the last this-many seconds; the whole ring buffer when omitted.
    #[serde(default)]
    pub since_seconds: Option<u64>,
    /// Most events to list, newest first (default 200, at most 10000); counts still cover everything.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub max_events: Option<u32>,
    /// Only Xids of this GPU (NVML index, 0-based).
    #[serde(default)]
    pub gpu_index: Option<u32>,
}

/// `analyze_xid_errors`' result: the Xid report, labelled with its data source and node.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct XidResult {
    /// Where the GPUs' identities came from: `nvml` on a real node, `mock:<scenario>` or
    /// `mock-fixture:<file>` in demos and tests. The kernel log's source is in `source`.
    pub data_source: String,
    /// The Kubernetes node (from the `NODE_NAME` environment variable), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(flatten)]
    pub report: XidReport,
    /// The pods holding each GPU with Xids (from the kubelet's pod-resources API).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected_workloads: Vec<GpuWorkloads>,
    /// Kubernetes sources that could not be read to name those pods, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_unreadable: Vec<Unreadable>,
}

/// Arguments of `get_gpu_health`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    /// Only this GPU (NVML index, 0-based); every GPU when omitted.
    #[serde(default)]
    pub gpu_index: Option<u32>,
    /// Sample twice this many seconds apart (1-60) to judge rates: PCIe replays, NVLink errors,
    /// thermal and power violation time. When omitted, rates are judged against the previous call's
    /// reading in this session, if any.
    #[serde(default)]
    #[schemars(range(max = 60))]
    pub window_seconds: Option<u32>,
}

/// `get_gpu_health`'s result: the health report, labelled with its data source and node.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct HealthResult {
    /// Where the data came from: `nvml` on a real node, `mock:<scenario>` or `mock-fixture:<file>` in
    /// demos and tests.
    pub data_source: String,
    /// The Kubernetes node (from the `NODE_NAME` environment variable), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(flatten)]
    pub report: HealthReport,
    /// The pods holding each GPU that is not PASS (from the kubelet's pod-resources API).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected_workloads: Vec<GpuWorkloads>,
    /// Kubernetes sources that could not be read to name those pods, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_unreadable: Vec<Unreadable>,
}

/// Arguments of tools that can look at one GPU or all.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuScopeArgs {
    /// Only this GPU (NVML index, 0-based); every GPU when omitted.
    #[serde(default)]
    pub gpu_index: Option<u32>,
}

impl GpuScopeArgs {
    pub(super) fn filter(&self) -> GpuFilter {
        self.gpu_index.map_or(GpuFilter::All, GpuFilter::Index)
    }
}

/// Why a tool call failed; becomes an `isError` result whose text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("invalid arguments for {tool}: {message}")]
    Arguments { tool: &'static str, message: String },
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error(
        "the GPU driver did not answer within {0:?}: a GPU or the NVIDIA driver is hung. Check the \
         kernel log for Xid 79/119/120 (analyze_xid_errors) and `nvidia-smi` on the node; a node \
         reboot is usually required."
    )]
    Timeout(Duration),
    #[error(
        "a previous GPU query has not returned after overrunning its deadline: the NVIDIA driver or a \
         GPU is hung. Check the kernel log for Xid errors; a node reboot is usually required."
    )]
    StillHung,
    #[error("{0}")]
    KernelLog(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub(super) fn parse_args<T: DeserializeOwned + Default>(
    tool: &'static str,
    args: Option<JsonObject>,
) -> Result<T, ToolError> {
    super::protocol::parse_args(args).map_err(|e| ToolError::Arguments {
        tool,
        message: e.to_string(),
    })
}

pub(super) fn structured<T: serde::Serialize>(
    r: Result<T, ToolError>,
) -> Result<CallToolResult, ToolError> {
    super::protocol::structured_value(r?).map_err(|e| ToolError::Internal(e.to_string()))
}
