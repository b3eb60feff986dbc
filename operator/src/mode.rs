//! Mode resolution: which GPU access method the agent uses, decided from the spec and the
//! gathered `ClusterFacts` alone (pure; every branch is tested in `mode/tests.rs`).
//!
//! `Auto` tries, in order: (1) the RuntimeClass exists → RuntimeClass; (2) DRA is served, the
//! DeviceClass exists and admin access is usable → DRA with admin access; (3) a selected node
//! advertises the GPU resource → DevicePlugin; (4) DRA is usable without admin access → DRA with a
//! one-device request; (5) nothing → no DaemonSet, and a message naming what was looked for.
//! Explicit modes skip the search but report a missing prerequisite.

use crds::{AccessMode, GpuDiagnosticsConfigSpec, GpuMode};

use crate::dra::{DeviceRequest, DraVersion};
use crate::facts::{AdminAccess, ClusterFacts, UserTemplate};

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
    /// The status/metrics name of the method.
    pub fn mode(&self) -> AccessMode {
        match self {
            GpuAccess::RuntimeClass { .. } => AccessMode::RuntimeClass,
            GpuAccess::DevicePlugin { .. } => AccessMode::DevicePlugin,
            GpuAccess::Dra { .. } => AccessMode::Dra,
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
    Explicit(AccessMode),
}

/// The requested mode: `gpu.mode` when not `Auto`, else the first `enabled: true` flag (the CRD's
/// CEL rules keep these consistent; this order only matters for objects that bypassed them).
pub fn requested(spec: &GpuDiagnosticsConfigSpec) -> Requested {
    let gpu = &spec.gpu;
    match gpu.mode {
        GpuMode::RuntimeClass => Requested::Explicit(AccessMode::RuntimeClass),
        GpuMode::DevicePlugin => Requested::Explicit(AccessMode::DevicePlugin),
        GpuMode::Dra => Requested::Explicit(AccessMode::Dra),
        GpuMode::Auto if gpu.runtime_class.enabled == Some(true) => {
            Requested::Explicit(AccessMode::RuntimeClass)
        }
        GpuMode::Auto if gpu.resource_request.enabled == Some(true) => {
            Requested::Explicit(AccessMode::DevicePlugin)
        }
        GpuMode::Auto if gpu.resource_claim.enabled == Some(true) => {
            Requested::Explicit(AccessMode::Dra)
        }
        GpuMode::Auto => Requested::Auto,
    }
}

/// Resolves the GPU access method for `spec` on a cluster described by `facts`.
pub fn resolve_mode(spec: &GpuDiagnosticsConfigSpec, facts: &ClusterFacts) -> Resolution {
    let search = Search { spec, facts };
    match requested(spec) {
        Requested::Auto => search.auto(),
        Requested::Explicit(AccessMode::RuntimeClass) => search.explicit_runtime_class(),
        Requested::Explicit(AccessMode::DevicePlugin) => search.explicit_device_plugin(),
        Requested::Explicit(AccessMode::Dra) => search.explicit_dra(),
    }
}

/// A DRA candidate found while searching.
struct DraCandidate {
    version: DraVersion,
    claim: Claim,
    /// Whether the claim gives admin access (every GPU, none consumed).
    admin: bool,
    /// Admin access was attempted (namespace labels needed) but is unusable: why.
    admin_unusable: Option<String>,
    needs_probe: bool,
}

struct Search<'a> {
    spec: &'a GpuDiagnosticsConfigSpec,
    facts: &'a ClusterFacts,
}

impl Search<'_> {
    fn runtime_class_name(&self) -> &str {
        &self.spec.gpu.runtime_class.name
    }

    fn gpu_resource(&self) -> &str {
        &self.spec.gpu.resource_request.resource
    }

    fn device_class(&self) -> &str {
        &self.spec.gpu.resource_claim.device_class_name
    }

    fn auto(&self) -> Resolution {
        let gpu = &self.spec.gpu;
        let mut tried: Vec<String> = Vec::new();

        // (1) RuntimeClass.
        if gpu.runtime_class.enabled == Some(false) {
            tried.push("RuntimeClass mode is disabled (gpu.runtimeClass.enabled=false)".into());
        } else {
            match self.runtime_class_check() {
                Ok(handler) => {
                    return self.resolved(
                        GpuAccess::RuntimeClass {
                            name: self.runtime_class_name().to_owned(),
                        },
                        ResolutionReason::RuntimeClassFound,
                        format!(
                            "RuntimeClass \"{}\" exists (handler \"{handler}\"): the NVIDIA runtime gives \
                             the agent every GPU and consumes none",
                            self.runtime_class_name()
                        ),
                    );
                }
                Err(why) => tried.push(why),
            }
        }

        // (2) DRA with admin access; remember a non-admin DRA candidate for (4).
        let mut dra_fallback = None;
        let mut namespace_admin_labels = false;
        if gpu.resource_claim.enabled == Some(false) {
            tried.push("DRA mode is disabled (gpu.resourceClaim.enabled=false)".into());
        } else {
            match self.dra_candidate() {
                Err(why) => tried.push(why),
                Ok(candidate) => {
                    namespace_admin_labels = candidate.admin || candidate.admin_unusable.is_some();
                    if candidate.admin {
                        let needs_probe = candidate.needs_probe;
                        let message = format!(
                            "{}DRA admin access ({}, {}) gives the agent every GPU and consumes none",
                            skipped(&tried),
                            self.describe_claim(&candidate.claim),
                            candidate.version.api_version(),
                        );
                        let mut resolution = self.resolved(
                            GpuAccess::Dra {
                                version: candidate.version,
                                claim: candidate.claim,
                            },
                            ResolutionReason::DraAdminAccessAvailable,
                            message,
                        );
                        resolution.namespace_admin_labels = true;
                        resolution.needs_admin_probe = needs_probe;
                        return resolution;
                    }
                    tried.push(match (&candidate.admin_unusable, &candidate.claim) {
                        (Some(why), _) => format!("DRA admin access is unusable: {why}"),
                        (None, Claim::UserTemplate { name }) => {
                            format!("ResourceClaimTemplate \"{name}\" requests no admin access")
                        }
                        (None, Claim::Inline(_)) => {
                            "gpu.resourceClaim.spec requests no admin access".into()
                        }
                        (None, Claim::Generated(_)) => {
                            "DRA admin access is turned off (gpu.resourceClaim.adminAccess=false)"
                                .into()
                        }
                    });
                    dra_fallback = Some(candidate);
                }
            }
        }

        // (3) Device plugin.
        if gpu.resource_request.enabled == Some(false) {
            tried.push("device-plugin mode is disabled (gpu.resourceRequest.enabled=false)".into());
        } else {
            match self.device_plugin_check() {
                Ok(found) => {
                    let count = gpu.resource_request.count;
                    let mut resolution = self.resolved(
                        GpuAccess::DevicePlugin {
                            resource: self.gpu_resource().to_owned(),
                            count,
                        },
                        ResolutionReason::DevicePluginResourceFound,
                        format!(
                            "{}{found}, so each agent pod requests {count} {}: taken away from workloads, \
                             and the agent sees only the GPUs it was given",
                            skipped(&tried),
                            self.gpu_resource()
                        ),
                    );
                    resolution.consumes_gpus = true;
                    resolution.namespace_admin_labels = namespace_admin_labels;
                    return resolution;
                }
                Err(why) => tried.push(why),
            }
        }

        // (4) DRA without admin access.
        if let Some(candidate) = dra_fallback {
            let message = format!(
                "{}each agent pod claims one device ({}, {}): taken away from workloads",
                skipped(&tried),
                self.describe_claim(&candidate.claim),
                candidate.version.api_version(),
            );
            let mut resolution = self.resolved(
                GpuAccess::Dra {
                    version: candidate.version,
                    claim: candidate.claim,
                },
                ResolutionReason::DraDeviceRequestFallback,
                message,
            );
            resolution.consumes_gpus = true;
            resolution.namespace_admin_labels = namespace_admin_labels;
            if let Some(why) = candidate.admin_unusable {
                resolution.issues.push(admin_unavailable_issue(&why));
            }
            return resolution;
        }

        // (5) Nothing.
        let message = format!(
            "No GPU access method found: {}. Install the NVIDIA GPU Operator or container toolkit \
             (it creates RuntimeClass \"{}\"), the NVIDIA DRA driver, or the NVIDIA device plugin; or \
             set gpu.mode",
            tried.join("; "),
            self.runtime_class_name()
        );
        Resolution {
            access: None,
            reason: ResolutionReason::NoGpuAccessMethod,
            issues: vec![Issue {
                reason: IssueReason::NoGpuAccessMethod,
                message: message.clone(),
            }],
            message,
            consumes_gpus: false,
            namespace_admin_labels: false,
            needs_admin_probe: false,
        }
    }

    fn explicit_runtime_class(&self) -> Resolution {
        let name = self.runtime_class_name().to_owned();
        let mut resolution = self.resolved(
            GpuAccess::RuntimeClass { name: name.clone() },
            ResolutionReason::ModeSetInSpec,
            format!("RuntimeClass mode is set in the spec: agent pods use RuntimeClass \"{name}\""),
        );
        if let Err(why) = self.runtime_class_check() {
            resolution.issues.push(Issue {
                reason: IssueReason::PrerequisiteMissing,
                message: format!(
                    "{why}: agent pods cannot start; install the NVIDIA GPU Operator or container \
                     toolkit, or pick another gpu.mode"
                ),
            });
        }
        resolution
    }

    fn explicit_device_plugin(&self) -> Resolution {
        let count = self.spec.gpu.resource_request.count;
        let resource = self.gpu_resource().to_owned();
        let mut resolution = self.resolved(
            GpuAccess::DevicePlugin {
                resource: resource.clone(),
                count,
            },
            ResolutionReason::ModeSetInSpec,
            format!(
                "DevicePlugin mode is set in the spec: each agent pod requests {count} {resource}, \
                 taken away from workloads"
            ),
        );
        resolution.consumes_gpus = true;
        if let Err(why) = self.device_plugin_check() {
            resolution.issues.push(Issue {
                reason: IssueReason::PrerequisiteMissing,
                message: format!(
                    "{why}: agent pods stay Pending until the NVIDIA device plugin advertises {resource} \
                     on the selected nodes"
                ),
            });
        }
        resolution
    }

    fn explicit_dra(&self) -> Resolution {
        let Some(dra) = &self.facts.dra else {
            let message = format!(
                "DRA mode is set in the spec but {}: use Kubernetes 1.32+ with DynamicResourceAllocation \
                 enabled, or pick another gpu.mode",
                self.dra_not_served()
            );
            return Resolution {
                access: None,
                reason: ResolutionReason::DraNotServed,
                issues: vec![Issue {
                    reason: IssueReason::PrerequisiteMissing,
                    message: message.clone(),
                }],
                message,
                consumes_gpus: false,
                namespace_admin_labels: false,
                needs_admin_probe: false,
            };
        };
        let (claim, admin, admin_unusable, needs_probe, missing) = match self.claim_source() {
            ClaimSource::UserTemplate(name) => {
                let (admin, missing) = match dra.user_template {
                    Some(UserTemplate::Found { admin_access }) => (admin_access, None),
                    _ => (false, Some(self.user_template_missing(&name))),
                };
                (Claim::UserTemplate { name }, admin, None, false, missing)
            }
            ClaimSource::Inline(spec) => {
                let admin =
                    crate::dra::requests_admin_access(&serde_json::Value::Object(spec.clone()));
                (Claim::Inline(spec), admin, None, false, None)
            }
            ClaimSource::Generated => {
                let missing =
                    (!dra.device_class_exists).then(|| self.device_class_missing(dra.version));
                let device_class = self.device_class().to_owned();
                if !self.spec.gpu.resource_claim.admin_access {
                    (
                        Claim::Generated(DeviceRequest::One { device_class }),
                        false,
                        None,
                        false,
                        missing,
                    )
                } else {
                    match &self.facts.admin_access {
                        AdminAccess::Unusable(why) => (
                            Claim::Generated(DeviceRequest::One { device_class }),
                            false,
                            Some(why.clone()),
                            false,
                            missing,
                        ),
                        access => (
                            Claim::Generated(DeviceRequest::AdminAll { device_class }),
                            true,
                            None,
                            *access == AdminAccess::Unknown,
                            missing,
                        ),
                    }
                }
            }
        };
        let what = self.describe_claim(&claim);
        let message = if admin {
            format!(
                "DRA mode is set in the spec: admin access ({what}, {}) gives the agent every GPU and \
                 consumes none",
                dra.version.api_version()
            )
        } else {
            format!(
                "DRA mode is set in the spec: each agent pod claims devices ({what}, {}), taken away \
                 from workloads",
                dra.version.api_version()
            )
        };
        let mut resolution = self.resolved(
            GpuAccess::Dra {
                version: dra.version,
                claim,
            },
            ResolutionReason::ModeSetInSpec,
            message,
        );
        resolution.consumes_gpus = !admin;
        resolution.needs_admin_probe = needs_probe;
        resolution.namespace_admin_labels = admin || admin_unusable.is_some();
        if let Some(missing) = missing {
            resolution.issues.push(Issue {
                reason: IssueReason::PrerequisiteMissing,
                message: format!("{missing}: agent pods cannot get their claim until it exists"),
            });
        }
        if let Some(why) = admin_unusable {
            resolution.issues.push(admin_unavailable_issue(&why));
        }
        resolution
    }

    /// The RuntimeClass's handler when Auto may use it, or why not.
    fn runtime_class_check(&self) -> Result<String, String> {
        let name = self.runtime_class_name();
        let Some(handler) = &self.facts.runtime_class_handler else {
            return Err(format!("no RuntimeClass \"{name}\""));
        };
        let nodes = &self.facts.nodes;
        let all_report_without = !nodes.is_empty()
            && nodes
                .iter()
                .all(|n| n.has_runtime_handler(handler) == Some(false));
        if all_report_without {
            return Err(format!(
                "RuntimeClass \"{name}\" exists but none of the {} selected nodes reports its handler \
                 \"{handler}\"",
                nodes.len()
            ));
        }
        Ok(handler.clone())
    }

    /// A sentence saying which nodes advertise the GPU resource, or why none does.
    fn device_plugin_check(&self) -> Result<String, String> {
        let nodes = &self.facts.nodes;
        let resource = self.gpu_resource();
        let with_gpu = nodes.iter().filter(|n| n.gpu_allocatable > 0).count();
        if with_gpu > 0 {
            return Ok(format!(
                "{with_gpu} of {} selected nodes advertise allocatable {resource}",
                nodes.len()
            ));
        }
        if nodes.is_empty() {
            Err(format!(
                "no node matches nodeSelector {}",
                self.node_selector()
            ))
        } else {
            Err(format!(
                "none of the {} nodes matching nodeSelector {} advertises allocatable {resource}",
                nodes.len(),
                self.node_selector()
            ))
        }
    }

    fn dra_candidate(&self) -> Result<DraCandidate, String> {
        let Some(dra) = &self.facts.dra else {
            return Err(self.dra_not_served());
        };
        let version = dra.version;
        match self.claim_source() {
            ClaimSource::UserTemplate(name) => match dra.user_template {
                Some(UserTemplate::Found { admin_access }) => Ok(DraCandidate {
                    version,
                    claim: Claim::UserTemplate { name },
                    admin: admin_access,
                    admin_unusable: None,
                    needs_probe: false,
                }),
                _ => Err(self.user_template_missing(&name)),
            },
            ClaimSource::Inline(spec) => {
                let admin =
                    crate::dra::requests_admin_access(&serde_json::Value::Object(spec.clone()));
                Ok(DraCandidate {
                    version,
                    claim: Claim::Inline(spec),
                    admin,
                    admin_unusable: None,
                    needs_probe: false,
                })
            }
            ClaimSource::Generated => {
                if !dra.device_class_exists {
                    return Err(self.device_class_missing(version));
                }
                let device_class = self.device_class().to_owned();
                if !self.spec.gpu.resource_claim.admin_access {
                    return Ok(DraCandidate {
                        version,
                        claim: Claim::Generated(DeviceRequest::One { device_class }),
                        admin: false,
                        admin_unusable: None,
                        needs_probe: false,
                    });
                }
                Ok(match &self.facts.admin_access {
                    AdminAccess::Unusable(why) => DraCandidate {
                        version,
                        claim: Claim::Generated(DeviceRequest::One { device_class }),
                        admin: false,
                        admin_unusable: Some(why.clone()),
                        needs_probe: false,
                    },
                    access => DraCandidate {
                        version,
                        claim: Claim::Generated(DeviceRequest::AdminAll { device_class }),
                        admin: true,
                        admin_unusable: None,
                        needs_probe: *access == AdminAccess::Unknown,
                    },
                })
            }
        }
    }

    fn claim_source(&self) -> ClaimSource {
        let claim = &self.spec.gpu.resource_claim;
        if !claim.template_name.is_empty() {
            ClaimSource::UserTemplate(claim.template_name.clone())
        } else if !claim.spec.is_empty() {
            ClaimSource::Inline(claim.spec.clone())
        } else {
            ClaimSource::Generated
        }
    }

    fn describe_claim(&self, claim: &Claim) -> String {
        match claim {
            Claim::Generated(DeviceRequest::AdminAll { device_class })
            | Claim::Generated(DeviceRequest::One { device_class }) => {
                format!("DeviceClass \"{device_class}\"")
            }
            Claim::UserTemplate { name } => format!("ResourceClaimTemplate \"{name}\""),
            Claim::Inline(_) => "the claim spec in gpu.resourceClaim.spec".into(),
        }
    }

    fn dra_not_served(&self) -> String {
        if self.facts.dra_unsupported_versions.is_empty() {
            "the API server does not serve resource.k8s.io".into()
        } else {
            format!(
                "the API server serves resource.k8s.io only as {} (the operator needs v1, v1beta2 or \
                 v1beta1: Kubernetes 1.32+)",
                self.facts.dra_unsupported_versions.join(", ")
            )
        }
    }

    fn device_class_missing(&self, version: DraVersion) -> String {
        format!(
            "no DeviceClass \"{}\" ({}; is the NVIDIA DRA driver installed?)",
            self.device_class(),
            version.api_version()
        )
    }

    fn user_template_missing(&self, name: &str) -> String {
        format!(
            "ResourceClaimTemplate \"{name}\" not found in namespace \"{}\"",
            self.spec.namespace.name
        )
    }

    fn node_selector(&self) -> String {
        if self.spec.node_selector.is_empty() {
            return "{} (every node)".into();
        }
        self.spec
            .node_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn resolved(&self, access: GpuAccess, reason: ResolutionReason, message: String) -> Resolution {
        Resolution {
            access: Some(access),
            reason,
            message,
            issues: Vec::new(),
            consumes_gpus: false,
            namespace_admin_labels: false,
            needs_admin_probe: false,
        }
    }
}

enum ClaimSource {
    Generated,
    UserTemplate(String),
    Inline(serde_json::Map<String, serde_json::Value>),
}

/// "A; B; so " prefix listing why earlier methods were skipped.
fn skipped(tried: &[String]) -> String {
    if tried.is_empty() {
        String::new()
    } else {
        let mut text = tried.join("; ");
        if let Some(first) = text.get(0..1) {
            let upper = first.to_uppercase();
            text.replace_range(0..1, &upper);
        }
        text + "; "
    }
}

fn admin_unavailable_issue(why: &str) -> Issue {
    Issue {
        reason: IssueReason::AdminAccessUnavailable,
        message: format!(
            "DRA admin access is unusable ({why}), so the agent claims a GPU on every node; enable the \
             DRAAdminAccess feature gate (beta and on by default since Kubernetes 1.34) and keep the \
             namespace's admin-access labels"
        ),
    }
}

#[cfg(test)]
mod tests;
