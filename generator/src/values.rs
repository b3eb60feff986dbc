//! The chart's own values (`operator`, `config`, `crds`): what the chart needs beyond the
//! `GpuDiagnosticsConfig` spec, typed here so that `values.yaml`, `values.schema.json` and the
//! README table describe them from the same doc comments and defaults as the spec keys.
//!
//! The hand-written templates read exactly these keys; `deployment/tests/` renders each of them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crds::PullPolicy;

/// Values of the chart that are not part of the `GpuDiagnosticsConfig` spec.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChartValues {
    /// The operator: a Deployment that turns the GpuDiagnosticsConfig into the agent DaemonSet.
    #[serde(default)]
    pub operator: OperatorValues,
    /// The GpuDiagnosticsConfig this release creates from the values above.
    #[serde(default)]
    pub config: ConfigValues,
    /// The GpuDiagnosticsConfig CustomResourceDefinition.
    #[serde(default)]
    pub crds: CrdsValues,
    /// ClusterRoles for people who run `k8s-mcp-agent fleet` on their own machines: an admin binds
    /// them to a user or group (see NOTES.txt).
    #[serde(default)]
    pub fleet_rbac: FleetRbacValues,
}

/// The fleet users' ClusterRoles.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FleetRbacValues {
    /// Render `k8s-mcp-agent-fleet` (read nodes and configs; bind cluster-wide) and
    /// `k8s-mcp-agent-fleet-exec` (list agent pods and exec into them; bind in the agent namespace
    /// with a RoleBinding). They grant nothing until bound.
    #[serde(default = "default_true")]
    pub create: bool,
}

impl Default for FleetRbacValues {
    fn default() -> Self {
        Self { create: true }
    }
}

/// The operator Deployment.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperatorValues {
    /// The operator's container image.
    #[serde(default)]
    pub image: OperatorImage,
    /// Secrets for pulling the operator image from a private registry.
    #[serde(default)]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Operator replicas. More than one turns leader election on: one replica reconciles, the
    /// others wait to take over.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1))]
    pub replicas: i32,
    /// Leader election through a Lease in the release namespace.
    #[serde(default)]
    pub leader_election: LeaderElection,
    /// Re-reconcile every config this often (node capacity and agent pod problems are read
    /// then), as a number with `ms`, `s`, `m` or `h`.
    #[serde(default = "default_resync_interval")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)?$"))]
    pub resync_interval: String,
    /// Log filter of the operator (`error`, `warn`, `info`, `debug`, `trace`, or a tracing
    /// filter such as `info,operator=debug`).
    #[serde(default = "default_log_level")]
    #[schemars(length(min = 1))]
    pub log_level: String,
    /// Log line format on stderr.
    #[serde(default)]
    pub log_format: LogFormat,
    /// The `/metrics`, `/healthz` and `/readyz` endpoint.
    #[serde(default)]
    pub metrics: Metrics,
    /// The operator's ServiceAccount.
    #[serde(default)]
    pub service_account: OperatorServiceAccount,
    /// CPU and memory for the operator container.
    #[serde(default = "default_operator_resources")]
    pub resources: ResourceRequirements,
    /// Nodes the operator may run on.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the operator pod.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// PriorityClass of the operator pod; empty means none.
    #[serde(default)]
    pub priority_class_name: String,
    /// Annotations added to the operator pod.
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// Labels added to the operator pod.
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
}

impl Default for OperatorValues {
    fn default() -> Self {
        Self {
            image: OperatorImage::default(),
            image_pull_secrets: Vec::new(),
            replicas: default_replicas(),
            leader_election: LeaderElection::default(),
            resync_interval: default_resync_interval(),
            log_level: default_log_level(),
            log_format: LogFormat::default(),
            metrics: Metrics::default(),
            service_account: OperatorServiceAccount::default(),
            resources: default_operator_resources(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            priority_class_name: String::new(),
            pod_annotations: BTreeMap::new(),
            pod_labels: BTreeMap::new(),
        }
    }
}

/// The operator's container image.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperatorImage {
    /// Image repository.
    #[serde(default = "default_operator_repository")]
    #[schemars(length(min = 1))]
    pub repository: String,
    /// Image tag, or a digest (`sha256:...`); empty means the chart's appVersion.
    #[serde(default)]
    pub tag: String,
    /// When the kubelet pulls the image.
    #[serde(default)]
    pub pull_policy: PullPolicy,
}

impl Default for OperatorImage {
    fn default() -> Self {
        Self {
            repository: default_operator_repository(),
            tag: String::new(),
            pull_policy: PullPolicy::IfNotPresent,
        }
    }
}

/// Leader election settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElection {
    /// Compete for the Lease even with one replica (always on with more than one).
    #[serde(default)]
    pub enabled: bool,
    /// Name of the Lease.
    #[serde(default = "default_lease_name")]
    #[schemars(length(min = 1, max = 253))]
    pub lease_name: String,
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_name: default_lease_name(),
        }
    }
}

/// Log line format of the operator.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The operator's HTTP endpoint.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Port of `/metrics`, `/healthz` and `/readyz` (the probes use it too).
    #[serde(default = "default_metrics_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// A Service in front of the endpoint, for Prometheus.
    #[serde(default)]
    pub service: MetricsService,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            port: default_metrics_port(),
            service: MetricsService::default(),
        }
    }
}

/// The metrics Service.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsService {
    /// Create a ClusterIP Service named `<release>-operator-metrics`.
    #[serde(default)]
    pub enabled: bool,
    /// Annotations on the Service (for example `prometheus.io/scrape: "true"`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The operator's ServiceAccount.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperatorServiceAccount {
    /// Create the ServiceAccount (with `false`, `name` must exist).
    #[serde(default = "default_true")]
    pub create: bool,
    /// Name of the ServiceAccount; empty means `<release>-operator`.
    #[serde(default)]
    pub name: String,
    /// Annotations on the created ServiceAccount.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Default for OperatorServiceAccount {
    fn default() -> Self {
        Self {
            create: true,
            name: String::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// The release's GpuDiagnosticsConfig.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValues {
    /// Create the GpuDiagnosticsConfig from these values. With `false` the chart installs only
    /// the operator and you apply GpuDiagnosticsConfig objects yourself.
    #[serde(default = "default_true")]
    pub create: bool,
    /// Name of the (cluster-scoped) GpuDiagnosticsConfig; the agent's objects are named
    /// `k8s-mcp-agent-<name>`.
    #[serde(default = "default_config_name")]
    #[schemars(
        length(min = 1, max = 49),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
}

impl Default for ConfigValues {
    fn default() -> Self {
        Self {
            create: true,
            name: default_config_name(),
        }
    }
}

/// The CRD's lifecycle.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CrdsValues {
    /// The operator applies the CRD it was built with at start-up, so `helm upgrade` upgrades it
    /// (Helm itself installs the chart's `crds/` folder on first install only; `--skip-crds`
    /// skips that). `false` leaves the CRD entirely to you.
    #[serde(default = "default_true")]
    pub install: bool,
}

impl Default for CrdsValues {
    fn default() -> Self {
        Self { install: true }
    }
}

/// Image repository of the operator.
pub const DEFAULT_OPERATOR_REPOSITORY: &str = "ghcr.io/k8s-mcp-agent/operator";

fn default_true() -> bool {
    true
}

fn default_replicas() -> i32 {
    1
}

fn default_resync_interval() -> String {
    "60s".to_owned()
}

fn default_log_level() -> String {
    "info".to_owned()
}

fn default_metrics_port() -> i32 {
    8080
}

fn default_lease_name() -> String {
    "k8s-mcp-agent-operator".to_owned()
}

fn default_config_name() -> String {
    "default".to_owned()
}

fn default_operator_repository() -> String {
    DEFAULT_OPERATOR_REPOSITORY.to_owned()
}

/// One reconcile at a time per config, a handful of watches: small and steady.
fn default_operator_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("10m".to_owned())),
            ("memory".to_owned(), Quantity("64Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("256Mi".to_owned()),
        )])),
        claims: None,
    }
}
