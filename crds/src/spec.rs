//! `GpuDiagnosticsConfig.spec`: what the user asks for. The serde form is the Helm chart's values
//! (same keys, same defaults), so a value that works in `values.yaml` works in the CR.
//!
//! Defaults are written once, as `default_*` functions used both by serde (`#[serde(default = ..)]`,
//! which is also what puts them in the CRD schema) and by the `Default` impls.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{
    Capabilities, LocalObjectReference, ResourceRequirements, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::GpuDiagnosticsConfigStatus;

/// Desired state of the k8s-mcp-agent on the cluster's GPU nodes. Every field is optional: an
/// empty spec deploys the agent with the access method the operator finds on the cluster.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "gpu.k8s-mcp-agent.io",
    version = "v1alpha1",
    kind = "GpuDiagnosticsConfig",
    plural = "gpudiagnosticsconfigs",
    shortname = "gdc",
    status = "GpuDiagnosticsConfigStatus",
    derive = "PartialEq",
    doc = "Deploys the k8s-mcp-agent GPU diagnostics server on every GPU node, picking the GPU \
           access method (RuntimeClass, device plugin or DRA) the cluster supports.",
    validation = crate::rules::NAME_LENGTH,
    printcolumn(name = "Mode", type_ = "string", json_path = ".status.mode",
        description = "GPU access method in use"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.numberReady",
        description = "Agent pods ready"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".status.desiredNumberScheduled",
        description = "Agent pods wanted (GPU nodes matched)"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason", priority = 1,
        description = "Why this mode, or what to fix")
)]
#[serde(rename_all = "camelCase")]
pub struct GpuDiagnosticsConfigSpec {
    /// How the agent gets access to the node's GPUs.
    #[serde(default)]
    pub gpu: GpuSpec,
    /// The namespace the agent runs in.
    #[serde(default)]
    pub namespace: NamespaceSpec,
    /// The agent's container image.
    #[serde(default)]
    pub image: ImageSpec,
    /// Secrets for pulling the agent image from a private registry.
    #[serde(default)]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// The ServiceAccount the agent runs as (it may get nodes and list pods, nothing more).
    #[serde(default)]
    pub service_account: ServiceAccountSpec,
    /// Nodes to run the agent on. An empty map puts the agent on every node.
    #[serde(default = "default_node_selector")]
    pub node_selector: BTreeMap<String, String>,
    /// Extra tolerations, added to the built-in toleration of the `nvidia.com/gpu` NoSchedule
    /// taint (which is always present).
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Security context of the agent container. `agent.kernelLog` adds CAP_SYSLOG and
    /// `agent.privileged` makes it privileged on top of what is set here.
    #[serde(default = "default_security_context")]
    pub security_context: SecurityContext,
    /// CPU and memory for the agent container. In DevicePlugin mode the GPU limit is added to it.
    #[serde(default = "default_resources")]
    pub resources: ResourceRequirements,
    /// Annotations added to the agent pods.
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// Labels added to the agent pods (the operator's own selector labels win on conflict).
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// PriorityClass of the agent pods; empty means none (for example `system-node-critical`).
    #[serde(default)]
    pub priority_class_name: String,
    /// How the agent DaemonSet replaces its pods. The default never runs two agents on one node,
    /// so device-plugin mode never holds a second GPU during a rollout.
    #[serde(default = "default_update_strategy")]
    pub update_strategy: DaemonSetUpdateStrategy,
    /// Behaviour of the agent itself.
    #[serde(default)]
    pub agent: AgentSpec,
}

impl Default for GpuDiagnosticsConfigSpec {
    fn default() -> Self {
        Self {
            gpu: GpuSpec::default(),
            namespace: NamespaceSpec::default(),
            image: ImageSpec::default(),
            image_pull_secrets: Vec::new(),
            service_account: ServiceAccountSpec::default(),
            node_selector: default_node_selector(),
            tolerations: Vec::new(),
            security_context: default_security_context(),
            resources: default_resources(),
            pod_annotations: BTreeMap::new(),
            pod_labels: BTreeMap::new(),
            priority_class_name: String::new(),
            update_strategy: default_update_strategy(),
            agent: AgentSpec::default(),
        }
    }
}

/// GPU access: `mode` picks the method; the `enabled` flags keep the original chart's meaning (an
/// explicit `true` picks that method, an explicit `false` removes it from `Auto`'s search).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = crate::rules::AT_MOST_ONE_ENABLED,
    validation = crate::rules::RUNTIME_CLASS_ENABLED_AGREES,
    validation = crate::rules::RESOURCE_REQUEST_ENABLED_AGREES,
    validation = crate::rules::RESOURCE_CLAIM_ENABLED_AGREES,
    validation = crate::rules::RUNTIME_CLASS_MODE_NOT_DISABLED,
    validation = crate::rules::DEVICE_PLUGIN_MODE_NOT_DISABLED,
    validation = crate::rules::DRA_MODE_NOT_DISABLED
)]
pub struct GpuSpec {
    /// `Auto` tries RuntimeClass, then DRA with admin access, then the device plugin, then DRA with
    /// a one-device request, and reports which one it chose and why. The other values skip the
    /// search (the prerequisite is still checked and reported).
    #[serde(default)]
    pub mode: AccessMethodChoice,
    /// RuntimeClass mode: the NVIDIA container runtime injects every GPU; consumes none.
    #[serde(default)]
    pub runtime_class: RuntimeClassSpec,
    /// Device-plugin mode: requests GPUs from the scheduler; consumes them.
    #[serde(default)]
    pub resource_request: ResourceRequestSpec,
    /// DRA mode: a ResourceClaimTemplate per pod, with admin access when the cluster allows it.
    #[serde(default)]
    pub resource_claim: ResourceClaimSpec,
}

impl Default for GpuSpec {
    fn default() -> Self {
        Self {
            mode: AccessMethodChoice::Auto,
            runtime_class: RuntimeClassSpec::default(),
            resource_request: ResourceRequestSpec::default(),
            resource_claim: ResourceClaimSpec::default(),
        }
    }
}

/// The GPU access method asked for.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccessMethodChoice {
    /// Pick the first method the cluster supports.
    #[default]
    Auto,
    /// `runtimeClassName` + `NVIDIA_VISIBLE_DEVICES=all`.
    RuntimeClass,
    /// A `nvidia.com/gpu` (or `resourceRequest.resource`) limit.
    DevicePlugin,
    /// A Dynamic Resource Allocation claim.
    #[serde(rename = "DRA")]
    Dra,
}

/// RuntimeClass mode settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeClassSpec {
    /// `true` picks RuntimeClass mode; `false` keeps `Auto` from choosing it; unset lets `Auto`
    /// decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Name of the RuntimeClass whose handler is the NVIDIA container runtime.
    #[serde(default = "default_runtime_class_name")]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl Default for RuntimeClassSpec {
    fn default() -> Self {
        Self {
            enabled: None,
            name: default_runtime_class_name(),
        }
    }
}

/// Device-plugin mode settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequestSpec {
    /// `true` picks DevicePlugin mode; `false` keeps `Auto` from choosing it; unset lets `Auto`
    /// decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Extended resource advertised by the device plugin.
    #[serde(default = "default_gpu_resource")]
    #[schemars(length(min = 1))]
    pub resource: String,
    /// GPUs requested per agent pod (each one is taken away from workloads).
    #[serde(default = "default_gpu_count")]
    #[schemars(range(min = 1))]
    pub count: i32,
}

impl Default for ResourceRequestSpec {
    fn default() -> Self {
        Self {
            enabled: None,
            resource: default_gpu_resource(),
            count: default_gpu_count(),
        }
    }
}

/// DRA mode settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::rules::TEMPLATE_OR_INLINE_SPEC)]
pub struct ResourceClaimSpec {
    /// `true` picks DRA mode; `false` keeps `Auto` from choosing it; unset lets `Auto` decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Name of the claim in the agent pod (`resourceClaims[].name`).
    #[serde(default = "default_claim_name")]
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Use this existing ResourceClaimTemplate (in the agent namespace) instead of the one the
    /// operator generates.
    #[serde(default)]
    pub template_name: String,
    /// DeviceClass of the generated template's request.
    #[serde(default = "default_device_class_name")]
    #[schemars(length(min = 1, max = 253))]
    pub device_class_name: String,
    /// Ask for admin access (every GPU, none consumed) in the generated template. When the
    /// cluster drops it, the operator falls back to a one-device request and says so in status.
    #[serde(default = "default_true")]
    pub admin_access: bool,
    /// Advanced: the `spec` of the ResourceClaimTemplate to generate, verbatim, in the shape of
    /// the `resource.k8s.io` version the cluster serves. Replaces the generated request.
    #[serde(default)]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub spec: serde_json::Map<String, serde_json::Value>,
}

impl Default for ResourceClaimSpec {
    fn default() -> Self {
        Self {
            enabled: None,
            name: default_claim_name(),
            template_name: String::new(),
            device_class_name: default_device_class_name(),
            admin_access: true,
            spec: serde_json::Map::new(),
        }
    }
}

/// The agent's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::rules::NAMESPACE_NOT_SHARED_SYSTEM)]
pub struct NamespaceSpec {
    /// Create (and label) the namespace. Pod Security `privileged` labels are added when the
    /// agent needs them (CAP_SYSLOG or a privileged container), and the DRA admin-access labels
    /// in DRA admin mode. With `false` the namespace must exist and is never modified.
    #[serde(default = "default_true")]
    pub create: bool,
    /// Name of the namespace (immutable).
    #[serde(default = "default_namespace_name")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    #[x_kube(validation = crate::rules::NAMESPACE_IMMUTABLE)]
    pub name: String,
}

impl Default for NamespaceSpec {
    fn default() -> Self {
        Self {
            create: true,
            name: default_namespace_name(),
        }
    }
}

/// Container image of the agent.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository.
    #[serde(default = "default_image_repository")]
    #[schemars(length(min = 1))]
    pub repository: String,
    /// Image tag, or a digest (`sha256:...`); empty means the operator's own version.
    #[serde(default)]
    pub tag: String,
    /// When the kubelet pulls the image.
    #[serde(default)]
    pub pull_policy: PullPolicy,
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            repository: default_image_repository(),
            tag: String::new(),
            pull_policy: PullPolicy::IfNotPresent,
        }
    }
}

/// Kubernetes image pull policy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull on every container start.
    Always,
    /// Pull when the node does not have the image.
    #[default]
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl PullPolicy {
    /// The value of `imagePullPolicy` in a container spec.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// The agent's ServiceAccount.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSpec {
    /// Create the ServiceAccount (with `false`, `name` must exist, or the namespace's `default`
    /// is used when `name` is empty).
    #[serde(default = "default_true")]
    pub create: bool,
    /// Name of the ServiceAccount; empty means `k8s-mcp-agent-<config name>`.
    #[serde(default)]
    pub name: String,
    /// Annotations on the created ServiceAccount.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Default for ServiceAccountSpec {
    fn default() -> Self {
        Self {
            create: true,
            name: String::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// Settings passed to the agent process (as environment variables its flags default to, so a
/// `kubectl exec -i POD -- /agent` session inherits them).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// What the agent's tools may do. Only `read-only` is accepted: every tool the agent has reads,
    /// and no tool that changes GPU state exists yet to be allowed.
    #[serde(default)]
    pub mode: AgentPermission,
    /// Log level of the agent (logs go to the container's stderr).
    #[serde(default)]
    pub log_level: LogLevel,
    /// Run the agent container privileged (and label the namespace Pod Security `privileged`).
    /// Only needed where the NVIDIA runtime ignores `NVIDIA_VISIBLE_DEVICES` for unprivileged
    /// containers.
    #[serde(default)]
    pub privileged: bool,
    /// Add CAP_SYSLOG so the agent can read the kernel ring buffer for Xid analysis (no hostPath,
    /// no privileged container).
    #[serde(default = "default_true")]
    pub kernel_log: bool,
    /// The flight recorder: `/agent idle` samples every GPU and keeps a bounded history (in a
    /// memory-backed emptyDir) that `get_gpu_timeline` and `get_gpu_health` read.
    #[serde(default)]
    pub history: HistorySpec,
    /// Share the host's PID namespace so the agent can tie the host PIDs NVML reports to pods and
    /// containers (`/proc/PID/cgroup`). Off by default: it lets the agent see every process on the
    /// node, and needs a Pod Security `privileged` namespace.
    #[serde(default, rename = "hostPID")]
    pub host_pid: bool,
    /// Read Kubernetes context: mount the kubelet's pod-resources directory read-only (hostPath,
    /// needs a Pod Security `privileged` namespace) and read the node, the pods on it, Warning events
    /// and DRA ResourceSlices. With `false` the tools answer from NVML only.
    #[serde(default = "default_true")]
    pub kubernetes_context: bool,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            mode: AgentPermission::ReadOnly,
            log_level: LogLevel::Info,
            privileged: false,
            kernel_log: true,
            history: HistorySpec::default(),
            host_pid: false,
            kubernetes_context: true,
        }
    }
}

/// The agent's flight recorder (GPU history kept on the node).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistorySpec {
    /// Record GPU history. When false the agent keeps none and `get_gpu_timeline` says so.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How often every GPU is sampled, as a duration (`500ms`, `10s`, `1m`).
    #[serde(default = "default_sample_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub sample_interval: String,
    /// How long one-minute aggregates are kept (every sample is kept for the last hour, or for
    /// this long if shorter), as a duration (`6h`, `24h`).
    #[serde(default = "default_history_retention")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub retention: String,
}

impl Default for HistorySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_interval: default_sample_interval(),
            retention: default_history_retention(),
        }
    }
}

/// Size of the memory-backed emptyDir holding the history; the agent keeps its history below
/// [`HISTORY_MAX_BYTES`] (a day of 8 GPUs at the default interval takes a few MiB).
pub const HISTORY_VOLUME_SIZE: &str = "32Mi";
/// The byte budget the agent keeps its history within (90 % of [`HISTORY_VOLUME_SIZE`]).
pub const HISTORY_MAX_BYTES: u64 = 32 * 1024 * 1024 / 10 * 9;
/// Where the history volume is mounted in the agent container.
pub const HISTORY_DIR: &str = "/var/lib/k8s-mcp-agent/history";

fn default_sample_interval() -> String {
    "10s".to_owned()
}

fn default_history_retention() -> String {
    "24h".to_owned()
}

/// What the agent's MCP tools may do: only reading, until tools that change GPU state exist (a value
/// that allowed more would change nothing).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AgentPermission {
    /// Diagnostics only.
    #[default]
    ReadOnly,
}

impl AgentPermission {
    /// The value of the agent's `AGENT_MODE` variable (its `--mode` flag).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentPermission::ReadOnly => "read-only",
        }
    }
}

/// Log verbosity of the agent.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// The value of the agent's `AGENT_LOG_LEVEL` variable.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Image repository used when `image.repository` is not set.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ghcr.io/k8s-mcp-agent/agent";
/// Extended resource of the NVIDIA device plugin.
pub const DEFAULT_GPU_RESOURCE: &str = "nvidia.com/gpu";
/// DeviceClass of the NVIDIA DRA driver for whole GPUs.
pub const DEFAULT_DEVICE_CLASS: &str = "gpu.nvidia.com";
/// RuntimeClass created by the GPU Operator / `nvidia-ctk`.
pub const DEFAULT_RUNTIME_CLASS: &str = "nvidia";
/// Namespace the agent runs in by default.
pub const DEFAULT_NAMESPACE: &str = "gpu-diagnostics";
/// Node label set by GPU Feature Discovery on GPU nodes.
pub const GPU_PRESENT_LABEL: &str = "nvidia.com/gpu.present";

fn default_true() -> bool {
    true
}

fn default_runtime_class_name() -> String {
    DEFAULT_RUNTIME_CLASS.to_owned()
}

fn default_gpu_resource() -> String {
    DEFAULT_GPU_RESOURCE.to_owned()
}

fn default_gpu_count() -> i32 {
    1
}

fn default_claim_name() -> String {
    "gpu".to_owned()
}

fn default_device_class_name() -> String {
    DEFAULT_DEVICE_CLASS.to_owned()
}

fn default_namespace_name() -> String {
    DEFAULT_NAMESPACE.to_owned()
}

fn default_image_repository() -> String {
    DEFAULT_IMAGE_REPOSITORY.to_owned()
}

fn default_node_selector() -> BTreeMap<String, String> {
    BTreeMap::from([(GPU_PRESENT_LABEL.to_owned(), "true".to_owned())])
}

/// Root (the kernel ring buffer and NVML device files need it) with every capability dropped and a
/// read-only root filesystem (the agent writes nothing); `agent.kernelLog` adds CAP_SYSLOG back.
fn default_security_context() -> SecurityContext {
    SecurityContext {
        run_as_user: Some(0),
        run_as_non_root: Some(false),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

/// The agent idles between diagnostic sessions; a session (NVML + MCP) stays well under 512Mi.
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("10m".to_owned())),
            ("memory".to_owned(), Quantity("64Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("512Mi".to_owned()),
        )])),
        claims: None,
    }
}

fn default_update_strategy() -> DaemonSetUpdateStrategy {
    DaemonSetUpdateStrategy {
        type_: Some("RollingUpdate".to_owned()),
        rolling_update: Some(RollingUpdateDaemonSet {
            max_unavailable: Some(IntOrString::Int(1)),
            max_surge: Some(IntOrString::Int(0)),
        }),
    }
}

fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
