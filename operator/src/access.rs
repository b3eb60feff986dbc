//! Mode resolution: which GPU access method the agent uses, decided from the spec and the
//! gathered `ClusterFacts` alone (pure; every branch is tested in `access/tests.rs`).
//!
//! `Auto` tries, in order: (1) the RuntimeClass exists → RuntimeClass; (2) DRA is served, the
//! DeviceClass exists and admin access is usable → DRA with admin access; (3) a selected node
//! advertises the GPU resource → DevicePlugin; (4) DRA is usable without admin access → DRA with a
//! one-device request; (5) nothing → no DaemonSet, and a message naming what was looked for.
//! Explicit modes skip the search but report a missing prerequisite.

use crds::{AccessMethod, AccessMethodChoice, GpuDiagnosticsConfigSpec};

use crate::dra::{DeviceRequest, DraVersion};
use crate::facts::ClusterFacts;

/// The outcome of mode resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The access method to render; `None` when none is possible (no DaemonSet).
    pub access: Option<GpuAccess>,
    /// Machine-readable reason (the `GpuAccessResolved` condition's reason).
    pub reason: ResolutionReason,
    /// One sentence for `status.reason`: why this method, or what to do.
    pub message: String,
    /// Problems that do not stop rendering but need attention (the `Degraded` condition).
    pub issues: Vec<Issue>,
    /// Whether each agent pod takes GPUs away from workloads.
    pub consumes_gpus: bool,
    /// Whether the namespace needs the DRA admin-access labels: set whenever DRA admin access is
    /// attempted, whatever the probe says, so that the labels do not flap with the probe result.
    pub namespace_admin_labels: bool,
    /// Whether `access` assumes admin access that nobody has verified yet: the caller must probe
    /// (`facts.admin_access`) and resolve again before applying.
    pub needs_admin_probe: bool,
}

/// How the agent pod gets its GPUs.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuAccess {
    /// `runtimeClassName` + `NVIDIA_VISIBLE_DEVICES=all`.
    RuntimeClass {
        /// RuntimeClass name.
        name: String,
    },
    /// A device-plugin limit.
    DevicePlugin {
        /// Extended resource name.
        resource: String,
        /// GPUs per pod.
        count: i32,
    },
    /// A DRA claim per pod.
    Dra {
        /// Version the claim objects are written in.
        version: DraVersion,
        /// Where the claim template comes from.
        claim: Claim,
    },
}

impl GpuAccess {
    /// The method without its details (`status.mode`, the metrics label).
    pub fn method(&self) -> AccessMethod {
        match self {
            GpuAccess::RuntimeClass { .. } => AccessMethod::RuntimeClass,
            GpuAccess::DevicePlugin { .. } => AccessMethod::DevicePlugin,
            GpuAccess::Dra { .. } => AccessMethod::Dra,
        }
    }
}

/// The ResourceClaimTemplate of DRA mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The operator generates the template with this request.
    Generated(DeviceRequest),
    /// The user's existing template (`gpu.resourceClaim.templateName`).
    UserTemplate {
        /// Template name in the agent namespace.
        name: String,
    },
    /// The operator generates the template from `gpu.resourceClaim.spec`, verbatim.
    Inline(serde_json::Map<String, serde_json::Value>),
}

/// Why the mode is what it is (condition reason, `PascalCase` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionReason {
    /// Auto: the RuntimeClass exists.
    RuntimeClassFound,
    /// Auto: DRA with admin access.
    DraAdminAccessAvailable,
    /// Auto: a node advertises the device-plugin resource.
    DevicePluginResourceFound,
    /// Auto: DRA without admin access.
    DraDeviceRequestFallback,
    /// The spec names the mode.
    ModeSetInSpec,
    /// Auto found nothing.
    NoGpuAccessMethod,
    /// DRA was asked for but the cluster does not serve it.
    DraNotServed,
}

impl ResolutionReason {
    /// Wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionReason::RuntimeClassFound => "RuntimeClassFound",
            ResolutionReason::DraAdminAccessAvailable => "DRAAdminAccessAvailable",
            ResolutionReason::DevicePluginResourceFound => "DevicePluginResourceFound",
            ResolutionReason::DraDeviceRequestFallback => "DRADeviceRequestFallback",
            ResolutionReason::ModeSetInSpec => "ModeSetInSpec",
            ResolutionReason::NoGpuAccessMethod => "NoGpuAccessMethod",
            ResolutionReason::DraNotServed => "DRANotServed",
        }
    }
}

/// Something that needs a human, with the `Degraded` reason it maps to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Issue {
    /// Kind of issue (ordered by severity: the first one names the condition).
    pub reason: IssueReason,
    /// What is wrong and what to do.
    pub message: String,
}

/// Kinds of issues, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IssueReason {
    /// No access method could be resolved.
    NoGpuAccessMethod,
    /// The config's name is too long for the names derived from it (the CRD's CEL rule was
    /// bypassed, for example by an older CRD).
    NameTooLong,
    /// The namespace to deploy into does not exist (and may not be created).
    NamespaceMissing,
    /// An object with the operator's name exists but belongs to someone else.
    ObjectConflict,
    /// The API server rejected an object built from the spec as invalid.
    ObjectRejected,
    /// An explicit mode's prerequisite is missing.
    PrerequisiteMissing,
    /// DRA admin access was asked for but the cluster drops or refuses it.
    AdminAccessUnavailable,
    /// The namespace lacks labels the agent pod needs, and may not be labelled.
    NamespaceLabelsMissing,
    /// The DaemonSet controller cannot create agent pods (admission refused them).
    PodsRejected,
    /// No node matches the nodeSelector.
    NoMatchingNodes,
    /// Agent pods cannot start on some nodes.
    NodeProblems,
}

impl IssueReason {
    /// Wire form (condition reason).
    pub fn as_str(self) -> &'static str {
        match self {
            IssueReason::NoGpuAccessMethod => "NoGpuAccessMethod",
            IssueReason::NameTooLong => "NameTooLong",
            IssueReason::NamespaceMissing => "NamespaceMissing",
            IssueReason::ObjectConflict => "ObjectConflict",
            IssueReason::ObjectRejected => "ObjectRejected",
            IssueReason::PrerequisiteMissing => "PrerequisiteMissing",
            IssueReason::AdminAccessUnavailable => "AdminAccessUnavailable",
            IssueReason::NamespaceLabelsMissing => "NamespaceLabelsMissing",
            IssueReason::PodsRejected => "PodsRejected",
            IssueReason::NoMatchingNodes => "NoMatchingNodes",
            IssueReason::NodeProblems => "NodeProblems",
        }
    }
}

/// What the spec asks for, after folding the chart-style `enabled` flags into a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Search.
    Auto,
    /// Use this method.
    Explicit(AccessMethod),
}

/// The requested mode: `gpu.mode` when not `Auto`, else the first `enabled: true` flag (the CRD's
/// CEL rules keep these consistent; this order only matters for objects that bypassed them).
pub fn requested(spec: &GpuDiagnosticsConfigSpec) -> Requested {
    let gpu = &spec.gpu;
    match gpu.mode {
        AccessMethodChoice::RuntimeClass => Requested::Explicit(AccessMethod::RuntimeClass),
        AccessMethodChoice::DevicePlugin => Requested::Explicit(AccessMethod::DevicePlugin),
        AccessMethodChoice::Dra => Requested::Explicit(AccessMethod::Dra),
        AccessMethodChoice::Auto if gpu.runtime_class.enabled == Some(true) => {
            Requested::Explicit(AccessMethod::RuntimeClass)
        }
        AccessMethodChoice::Auto if gpu.resource_request.enabled == Some(true) => {
            Requested::Explicit(AccessMethod::DevicePlugin)
        }
        AccessMethodChoice::Auto if gpu.resource_claim.enabled == Some(true) => {
            Requested::Explicit(AccessMethod::Dra)
        }
        AccessMethodChoice::Auto => Requested::Auto,
    }
}

/// Resolves the GPU access method for `spec` on a cluster described by `facts`.
pub fn resolve_access(spec: &GpuDiagnosticsConfigSpec, facts: &ClusterFacts) -> Resolution {
    let search = Search { spec, facts };
    match requested(spec) {
        Requested::Auto => search.auto(),
        Requested::Explicit(AccessMethod::RuntimeClass) => search.explicit_runtime_class(),
        Requested::Explicit(AccessMethod::DevicePlugin) => search.explicit_device_plugin(),
        Requested::Explicit(AccessMethod::Dra) => search.explicit_dra(),
    }
}

mod search;

use search::Search;

#[cfg(test)]
mod tests;
