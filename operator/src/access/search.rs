//! The search behind [`super::resolve_access`]: `Auto`'s ordered candidates and the explicit modes'
//! prerequisite checks, each producing a `Resolution` with a message a human can act on.

use crds::GpuDiagnosticsConfigSpec;

use super::{Claim, GpuAccess, Issue, IssueReason, Resolution, ResolutionReason};
use crate::dra::{DeviceRequest, DraVersion};
use crate::facts::{AdminAccess, ClusterFacts, DraFacts, UserTemplate};

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

pub(super) struct Search<'a> {
    pub(super) spec: &'a GpuDiagnosticsConfigSpec,
    pub(super) facts: &'a ClusterFacts,
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

    /// `Auto`: the first candidate the cluster supports, in the order of the module doc; `tried`
    /// collects why each earlier one was skipped, for the message.
    pub(super) fn auto(&self) -> Resolution {
        let mut tried: Vec<String> = Vec::new();
        if let Some(resolution) = self.auto_runtime_class(&mut tried) {
            return resolution;
        }
        let dra_fallback = match self.auto_dra_admin(&mut tried) {
            Ok(resolution) => return resolution,
            Err(fallback) => fallback,
        };
        // Admin access was attempted (and found unusable): the namespace keeps its labels.
        let namespace_admin_labels = dra_fallback
            .as_ref()
            .is_some_and(|candidate| candidate.admin_unusable.is_some());
        if let Some(mut resolution) = self.auto_device_plugin(&mut tried) {
            resolution.namespace_admin_labels = namespace_admin_labels;
            return resolution;
        }
        if let Some(candidate) = dra_fallback {
            let mut resolution = self.auto_dra_fallback(candidate, &tried);
            resolution.namespace_admin_labels = namespace_admin_labels;
            return resolution;
        }
        self.auto_found_nothing(&tried)
    }

    /// (1) The RuntimeClass.
    fn auto_runtime_class(&self, tried: &mut Vec<String>) -> Option<Resolution> {
        if self.spec.gpu.runtime_class.enabled == Some(false) {
            tried.push("RuntimeClass mode is disabled (gpu.runtimeClass.enabled=false)".into());
            return None;
        }
        match self.runtime_class_check() {
            Ok(handler) => Some(self.resolved(
                GpuAccess::RuntimeClass {
                    name: self.runtime_class_name().to_owned(),
                },
                ResolutionReason::RuntimeClassFound,
                format!(
                    "RuntimeClass \"{}\" exists (handler \"{handler}\"): the NVIDIA runtime gives \
                     the agent every GPU and consumes none",
                    self.runtime_class_name()
                ),
            )),
            Err(why) => {
                tried.push(why);
                None
            }
        }
    }

    /// (2) DRA with admin access; otherwise the non-admin DRA candidate for (4), if any.
    fn auto_dra_admin(&self, tried: &mut Vec<String>) -> Result<Resolution, Option<DraCandidate>> {
        if self.spec.gpu.resource_claim.enabled == Some(false) {
            tried.push("DRA mode is disabled (gpu.resourceClaim.enabled=false)".into());
            return Err(None);
        }
        let candidate = match self.dra_candidate() {
            Ok(candidate) => candidate,
            Err(why) => {
                tried.push(why);
                return Err(None);
            }
        };
        if candidate.admin {
            let message = format!(
                "{}DRA admin access ({}, {}) gives the agent every GPU and consumes none",
                skipped(tried),
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
            resolution.needs_admin_probe = candidate.needs_probe;
            return Ok(resolution);
        }
        tried.push(match (&candidate.admin_unusable, &candidate.claim) {
            (Some(why), _) => format!("DRA admin access is unusable: {why}"),
            (None, Claim::UserTemplate { name }) => {
                format!("ResourceClaimTemplate \"{name}\" requests no admin access")
            }
            (None, Claim::Inline(_)) => "gpu.resourceClaim.spec requests no admin access".into(),
            (None, Claim::Generated(_)) => {
                "DRA admin access is turned off (gpu.resourceClaim.adminAccess=false)".into()
            }
        });
        Err(Some(candidate))
    }

    /// (3) The device plugin.
    fn auto_device_plugin(&self, tried: &mut Vec<String>) -> Option<Resolution> {
        let gpu = &self.spec.gpu;
        if gpu.resource_request.enabled == Some(false) {
            tried.push("device-plugin mode is disabled (gpu.resourceRequest.enabled=false)".into());
            return None;
        }
        let found = match self.device_plugin_check() {
            Ok(found) => found,
            Err(why) => {
                tried.push(why);
                return None;
            }
        };
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
                skipped(tried),
                self.gpu_resource()
            ),
        );
        resolution.consumes_gpus = true;
        Some(resolution)
    }

    /// (4) DRA without admin access.
    fn auto_dra_fallback(&self, candidate: DraCandidate, tried: &[String]) -> Resolution {
        let message = format!(
            "{}each agent pod claims one device ({}, {}): taken away from workloads",
            skipped(tried),
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
        if let Some(why) = candidate.admin_unusable {
            resolution.issues.push(admin_unavailable_issue(&why));
        }
        resolution
    }

    /// (5) Nothing: no DaemonSet, and what was looked for.
    fn auto_found_nothing(&self, tried: &[String]) -> Resolution {
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

    pub(super) fn explicit_runtime_class(&self) -> Resolution {
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

    pub(super) fn explicit_device_plugin(&self) -> Resolution {
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

    pub(super) fn explicit_dra(&self) -> Resolution {
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
        let (candidate, missing) = self.explicit_dra_candidate(dra);
        let DraCandidate {
            claim,
            admin,
            admin_unusable,
            needs_probe,
            ..
        } = candidate;
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

    /// The claim an explicit DRA mode uses, and the prerequisite it lacks (reported, not a reason
    /// to pick another method).
    fn explicit_dra_candidate(&self, dra: &DraFacts) -> (DraCandidate, Option<String>) {
        let version = dra.version;
        let candidate = |claim, admin, admin_unusable, needs_probe| DraCandidate {
            version,
            claim,
            admin,
            admin_unusable,
            needs_probe,
        };
        match self.claim_source() {
            ClaimSource::UserTemplate(name) => {
                let (admin, missing) = match dra.user_template {
                    Some(UserTemplate::Found { admin_access }) => (admin_access, None),
                    _ => (false, Some(self.user_template_missing(&name))),
                };
                (
                    candidate(Claim::UserTemplate { name }, admin, None, false),
                    missing,
                )
            }
            ClaimSource::Inline(spec) => {
                let admin =
                    crate::dra::requests_admin_access(&serde_json::Value::Object(spec.clone()));
                (candidate(Claim::Inline(spec), admin, None, false), None)
            }
            ClaimSource::Generated => {
                let missing =
                    (!dra.device_class_exists).then(|| self.device_class_missing(version));
                let device_class = self.device_class().to_owned();
                let one = Claim::Generated(DeviceRequest::One {
                    device_class: device_class.clone(),
                });
                let generated = if !self.spec.gpu.resource_claim.admin_access {
                    candidate(one, false, None, false)
                } else {
                    match &self.facts.admin_access {
                        AdminAccess::Unusable(why) => {
                            candidate(one, false, Some(why.clone()), false)
                        }
                        access => candidate(
                            Claim::Generated(DeviceRequest::AdminAll { device_class }),
                            true,
                            None,
                            *access == AdminAccess::Unknown,
                        ),
                    }
                };
                (generated, missing)
            }
        }
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
