//! The agent DaemonSet: the contract with the agent image (container `agent`, `/agent idle`,
//! readiness `/agent check`, `AGENT_*` variables) plus the pod shape of each GPU access method.

use std::collections::BTreeMap;

use crds::GpuDiagnosticsConfigSpec;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, ExecAction, HostPathVolumeSource,
    ObjectFieldSelector, PodResourceClaim, PodSpec, PodTemplateSpec, Probe, ResourceClaim,
    ResourceRequirements, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use crate::access::{Claim, GpuAccess};
use crate::names;

/// The taint GPU node pools commonly carry; always tolerated.
const GPU_TAINT: &str = "nvidia.com/gpu";

/// Whether the agent pod needs a Pod Security `privileged` namespace: a privileged container, or
/// CAP_SYSLOG (not in the `baseline` level's allowed capabilities).
pub fn needs_privileged_namespace(spec: &GpuDiagnosticsConfigSpec) -> bool {
    spec.agent.privileged
        || spec.agent.kernel_log
        || spec.agent.host_pid
        || spec.agent.kubernetes_context
}

/// The kubelet's pod-resources directory. The directory is mounted, not the socket: the kubelet
/// recreates the socket when it restarts, and a file mount would keep the dead one.
pub const POD_RESOURCES_DIR: &str = "/var/lib/kubelet/pod-resources";

/// The pod-resources volume (read-only hostPath of the directory) when Kubernetes context is on.
fn pod_resources_volume(spec: &GpuDiagnosticsConfigSpec) -> Option<(Volume, VolumeMount)> {
    spec.agent.kubernetes_context.then(|| {
        (
            Volume {
                name: "pod-resources".into(),
                host_path: Some(HostPathVolumeSource {
                    path: POD_RESOURCES_DIR.into(),
                    type_: Some("Directory".into()),
                }),
                ..Volume::default()
            },
            VolumeMount {
                name: "pod-resources".into(),
                mount_path: POD_RESOURCES_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        )
    })
}

/// `repository:tag`, `repository@sha256:...` for a digest, the operator's version when the tag is
/// empty.
pub fn image_reference(spec: &GpuDiagnosticsConfigSpec, operator_version: &str) -> String {
    let image = &spec.image;
    let tag = if image.tag.is_empty() {
        operator_version
    } else {
        image.tag.as_str()
    };
    if tag.contains(':') {
        format!("{}@{tag}", image.repository)
    } else {
        format!("{}:{tag}", image.repository)
    }
}

pub(super) fn daemon_set(
    config: &str,
    spec: &GpuDiagnosticsConfigSpec,
    access: &GpuAccess,
    service_account: &str,
    owner: OwnerReference,
    operator_version: &str,
) -> DaemonSet {
    let mut pod_labels = spec.pod_labels.clone();
    pod_labels.extend(names::common_labels(config));
    let mut pod_annotations = spec.pod_annotations.clone();
    pod_annotations.insert(
        "kubectl.kubernetes.io/default-container".into(),
        names::CONTAINER_NAME.into(),
    );

    let volume = pod_resources_volume(spec);
    let mut agent = container(spec, access, operator_version);
    if let Some((_, mount)) = &volume {
        agent
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .insert(0, mount.clone());
    }
    let mut pod = PodSpec {
        containers: vec![agent],
        volumes: volume.map(|(v, _)| vec![v]),
        host_pid: spec.agent.host_pid.then_some(true),
        service_account_name: Some(service_account.to_owned()),
        image_pull_secrets: (!spec.image_pull_secrets.is_empty())
            .then(|| spec.image_pull_secrets.clone()),
        node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
        tolerations: Some(tolerations(&spec.tolerations)),
        priority_class_name: (!spec.priority_class_name.is_empty())
            .then(|| spec.priority_class_name.clone()),
        termination_grace_period_seconds: Some(10),
        ..PodSpec::default()
    };
    if let Some(history) = super::history::wiring(spec) {
        pod.volumes
            .get_or_insert_with(Vec::new)
            .push(history.volume);
    }
    match access {
        GpuAccess::RuntimeClass { name } => pod.runtime_class_name = Some(name.clone()),
        GpuAccess::DevicePlugin { .. } => {}
        GpuAccess::Dra { claim, .. } => {
            let template = match claim {
                Claim::UserTemplate { name } => name.clone(),
                Claim::Generated(_) | Claim::Inline(_) => names::object_name(config),
            };
            pod.resource_claims = Some(vec![PodResourceClaim {
                name: spec.gpu.resource_claim.name.clone(),
                resource_claim_template_name: Some(template),
                resource_claim_name: None,
            }]);
        }
    }

    DaemonSet {
        metadata: ObjectMeta {
            name: Some(names::object_name(config)),
            namespace: Some(spec.namespace.name.clone()),
            labels: Some(names::common_labels(config)),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(names::selector_labels(config)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            update_strategy: Some(spec.update_strategy.clone()),
            min_ready_seconds: None,
            revision_history_limit: None,
        }),
        status: None,
    }
}

fn container(
    spec: &GpuDiagnosticsConfigSpec,
    access: &GpuAccess,
    operator_version: &str,
) -> Container {
    let mut env = vec![
        EnvVar {
            name: "NODE_NAME".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "spec.nodeName".into(),
                    api_version: None,
                }),
                ..EnvVarSource::default()
            }),
        },
        env_var("AGENT_MODE", spec.agent.mode.as_str()),
        env_var("AGENT_LOG_LEVEL", spec.agent.log_level.as_str()),
        env_var("AGENT_NVML_MODE", "real"),
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        env_var(
            "AGENT_KUBERNETES_CONTEXT",
            if spec.agent.kubernetes_context {
                "true"
            } else {
                "false"
            },
        ),
    ];
    let history = super::history::wiring(spec);
    if let Some(h) = &history {
        env.extend(h.env.iter().cloned());
    }
    let mut resources = spec.resources.clone();
    match access {
        GpuAccess::RuntimeClass { .. } => {
            env.push(env_var("NVIDIA_VISIBLE_DEVICES", "all"));
            env.push(env_var("NVIDIA_DRIVER_CAPABILITIES", "utility"));
        }
        GpuAccess::DevicePlugin { resource, count } => {
            let amount = Quantity(count.to_string());
            resources
                .limits
                .get_or_insert_with(BTreeMap::new)
                .insert(resource.clone(), amount.clone());
            // Extended resources must have requests equal to limits when both are given.
            if let Some(requests) = resources.requests.as_mut()
                && requests.contains_key(resource)
            {
                requests.insert(resource.clone(), amount);
            }
        }
        GpuAccess::Dra { .. } => {
            resources.claims = Some(vec![ResourceClaim {
                name: spec.gpu.resource_claim.name.clone(),
                request: None,
            }]);
        }
    }

    Container {
        name: names::CONTAINER_NAME.into(),
        image: Some(image_reference(spec, operator_version)),
        image_pull_policy: Some(spec.image.pull_policy.as_str().into()),
        command: Some(vec!["/agent".into(), "idle".into()]),
        env: Some(env),
        readiness_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec!["/agent".into(), "check".into()]),
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(30),
            timeout_seconds: Some(10),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        resources: non_empty_resources(resources),
        security_context: Some(security_context(spec)),
        volume_mounts: history.map(|h| vec![h.mount]),
        ..Container::default()
    }
}

/// The user's security context plus what the agent settings require.
fn security_context(spec: &GpuDiagnosticsConfigSpec) -> SecurityContext {
    let mut context = spec.security_context.clone();
    if spec.agent.kernel_log {
        let capabilities = context
            .capabilities
            .get_or_insert_with(Capabilities::default);
        let add = capabilities.add.get_or_insert_with(Vec::new);
        if !add.iter().any(|c| c == "SYSLOG" || c == "CAP_SYSLOG") {
            add.push("SYSLOG".into());
        }
    }
    if spec.agent.privileged {
        context.privileged = Some(true);
        // The API server rejects privileged: true together with allowPrivilegeEscalation: false.
        if context.allow_privilege_escalation == Some(false) {
            context.allow_privilege_escalation = None;
        }
    }
    context
}

/// The built-in GPU taint toleration followed by the user's (duplicates of it dropped).
fn tolerations(user: &[Toleration]) -> Vec<Toleration> {
    let builtin = Toleration {
        key: Some(GPU_TAINT.into()),
        operator: Some("Exists".into()),
        effect: Some("NoSchedule".into()),
        value: None,
        toleration_seconds: None,
    };
    let mut all = vec![builtin.clone()];
    all.extend(user.iter().filter(|t| **t != builtin).cloned());
    all
}

fn non_empty_resources(resources: ResourceRequirements) -> Option<ResourceRequirements> {
    let empty = resources.limits.as_ref().is_none_or(BTreeMap::is_empty)
        && resources.requests.as_ref().is_none_or(BTreeMap::is_empty)
        && resources.claims.as_ref().is_none_or(Vec::is_empty);
    (!empty).then_some(resources)
}

/// A variable from the downward API.
fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}
