//! Rendering snapshots per access mode, and the rules that merge user settings with what the
//! agent needs.

use serde_json::{Value, json};

use super::*;
use crate::access::{Claim, GpuAccess, Resolution, ResolutionReason};

const VERSION: &str = "0.1.0";

fn config(spec: Value) -> GpuDiagnosticsConfig {
    let mut config = GpuDiagnosticsConfig::new(
        "default",
        serde_json::from_value(spec).expect("test spec parses"),
    );
    config.metadata.uid = Some("3f1c-config-uid".into());
    config
}

fn resolution(access: Option<GpuAccess>) -> Resolution {
    Resolution {
        access,
        reason: ResolutionReason::ModeSetInSpec,
        message: String::new(),
        issues: Vec::new(),
        consumes_gpus: false,
        namespace_admin_labels: false,
        needs_admin_probe: false,
    }
}

fn runtime_class() -> GpuAccess {
    GpuAccess::RuntimeClass {
        name: "nvidia".into(),
    }
}

fn device_plugin() -> GpuAccess {
    GpuAccess::DevicePlugin {
        resource: "nvidia.com/gpu".into(),
        count: 1,
    }
}

fn dra_admin(version: DraVersion) -> GpuAccess {
    GpuAccess::Dra {
        version,
        claim: Claim::Generated(DeviceRequest::AdminAll {
            device_class: "gpu.nvidia.com".into(),
        }),
    }
}

fn render_default(access: GpuAccess) -> Desired {
    render(
        &config(json!({})),
        &resolution(Some(access)),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap()
}

fn container(desired: &Desired) -> &Value {
    &desired.daemon_set.as_ref().unwrap()["spec"]["template"]["spec"]["containers"][0]
}

fn pod(desired: &Desired) -> &Value {
    &desired.daemon_set.as_ref().unwrap()["spec"]["template"]["spec"]
}

#[test]
fn runtime_class_mode_renders_every_object() {
    insta::assert_yaml_snapshot!(render_default(runtime_class()));
}

#[test]
fn device_plugin_mode_daemon_set() {
    insta::assert_yaml_snapshot!(render_default(device_plugin()).daemon_set);
}

#[test]
fn dra_admin_mode_daemon_set_and_template() {
    let access = dra_admin(DraVersion::V1);
    let desired = render_default(access.clone());
    insta::assert_yaml_snapshot!("dra_daemon_set", desired.daemon_set);
    let owner = daemon_set_owner("k8s-mcp-agent-default", "9a7e-ds-uid");
    insta::assert_yaml_snapshot!(
        "dra_v1_admin_template",
        render_claim_template("default", "gpu-diagnostics", &access, Some(owner))
    );
}

#[test]
fn claim_templates_follow_the_served_version_and_the_claim_source() {
    let one_v1beta1 = GpuAccess::Dra {
        version: DraVersion::V1beta1,
        claim: Claim::Generated(DeviceRequest::One {
            device_class: "gpu.nvidia.com".into(),
        }),
    };
    let template = render_claim_template("default", "ns", &one_v1beta1, None).unwrap();
    assert_eq!(template["apiVersion"], "resource.k8s.io/v1beta1");
    assert_eq!(
        template["spec"]["spec"]["devices"]["requests"][0],
        json!({"name": "gpus", "deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1})
    );

    let inline_spec =
        json!({"devices": {"requests": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com"}]}});
    let inline = GpuAccess::Dra {
        version: DraVersion::V1beta2,
        claim: Claim::Inline(inline_spec.as_object().unwrap().clone()),
    };
    let template = render_claim_template("default", "ns", &inline, None).unwrap();
    assert_eq!(template["apiVersion"], "resource.k8s.io/v1beta2");
    // The original chart's flat inline request is nested for the served version.
    assert_eq!(
        template["spec"]["spec"],
        json!({"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}})
    );

    let user = GpuAccess::Dra {
        version: DraVersion::V1,
        claim: Claim::UserTemplate {
            name: "mine".into(),
        },
    };
    assert_eq!(render_claim_template("default", "ns", &user, None), None);
    assert_eq!(
        render_claim_template("default", "ns", &runtime_class(), None),
        None
    );
    let desired = render(
        &config(json!({})),
        &resolution(Some(user)),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    assert_eq!(
        pod(&desired)["resourceClaims"],
        json!([{"name": "gpu", "resourceClaimTemplateName": "mine"}])
    );
}

#[test]
fn the_agent_contract_holds_in_every_mode() {
    for access in [
        runtime_class(),
        device_plugin(),
        dra_admin(DraVersion::V1beta1),
    ] {
        let desired = render_default(access.clone());
        let container = container(&desired);
        assert_eq!(container["name"], "agent");
        assert_eq!(container["command"], json!(["/agent", "idle"]));
        assert_eq!(
            container["readinessProbe"]["exec"]["command"],
            json!(["/agent", "check"])
        );
        let env = container["env"].as_array().unwrap();
        let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
        assert_eq!(
            var("NODE_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
            "spec.nodeName"
        );
        assert_eq!(var("AGENT_MODE").unwrap()["value"], "read-only");
        assert_eq!(var("AGENT_LOG_LEVEL").unwrap()["value"], "info");
        assert_eq!(var("AGENT_NVML_MODE").unwrap()["value"], "real");
        let is_runtime_class = matches!(access, GpuAccess::RuntimeClass { .. });
        assert_eq!(
            var("NVIDIA_VISIBLE_DEVICES").is_some(),
            is_runtime_class,
            "{access:?}"
        );
        let labels =
            &desired.daemon_set.as_ref().unwrap()["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/name"], "k8s-mcp-agent");
        assert_eq!(labels["app.kubernetes.io/instance"], "default");
    }
}

#[test]
fn kernel_log_adds_syslog_and_a_privileged_pod_security_namespace() {
    let desired = render_default(runtime_class());
    assert_eq!(
        container(&desired)["securityContext"]["capabilities"],
        json!({"drop": ["ALL"], "add": ["SYSLOG"]})
    );
    assert_eq!(
        container(&desired)["securityContext"].get("privileged"),
        None
    );
    let labels = &desired.namespace.as_ref().unwrap()["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "privileged");

    let quiet = render(
        &config(json!({"agent": {"kernelLog": false, "kubernetesContext": false}})),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    assert_eq!(
        container(&quiet)["securityContext"]["capabilities"],
        json!({"drop": ["ALL"]})
    );
    assert_eq!(
        quiet.namespace.as_ref().unwrap()["metadata"]["labels"]
            .get("pod-security.kubernetes.io/enforce"),
        None
    );
}

#[test]
fn the_pod_resources_directory_is_mounted_read_only_in_every_mode() {
    for access in [runtime_class(), device_plugin(), dra_admin(DraVersion::V1)] {
        let desired = render_default(access.clone());
        assert_eq!(
            pod(&desired)["volumes"][0],
            json!({"name": "pod-resources", "hostPath": {
                "path": "/var/lib/kubelet/pod-resources", "type": "Directory"}}),
            "{access:?}"
        );
        assert_eq!(
            container(&desired)["volumeMounts"][0],
            json!({"name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources",
                    "readOnly": true}),
            "{access:?}"
        );
        assert_eq!(pod(&desired).get("hostPID"), None, "{access:?}");
        let env = container(&desired)["env"].as_array().unwrap().clone();
        let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned().unwrap();
        assert_eq!(
            var("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name"
        );
        assert_eq!(
            var("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.namespace"
        );
        assert_eq!(var("AGENT_KUBERNETES_CONTEXT")["value"], "true");
    }
}

#[test]
fn host_pid_only_when_asked_and_kubernetes_context_can_be_turned_off() {
    let render_with = |agent: Value| {
        render(
            &config(json!({"agent": agent})),
            &resolution(Some(device_plugin())),
            NamespaceOwnership::CoOwned,
            VERSION,
        )
        .unwrap()
    };
    let with_pid =
        render_with(json!({"hostPID": true, "kernelLog": false, "kubernetesContext": false}));
    assert_eq!(pod(&with_pid)["hostPID"], true);
    assert_eq!(
        with_pid.namespace.as_ref().unwrap()["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged",
        "hostPID is not allowed by the baseline Pod Security level"
    );
    let off = render_with(json!({"kubernetesContext": false}));
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|v| v["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(!names(&pod(&off)["volumes"]).contains(&"pod-resources".to_owned()));
    assert!(!names(&container(&off)["volumeMounts"]).contains(&"pod-resources".to_owned()));
    let env = container(&off)["env"].as_array().unwrap().clone();
    assert!(
        env.iter()
            .any(|e| e["name"] == "AGENT_KUBERNETES_CONTEXT" && e["value"] == "false")
    );
}

#[test]
fn privileged_agent_drops_the_conflicting_escalation_setting() {
    let desired = render(
        &config(json!({"agent": {"privileged": true, "kernelLog": false}})),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    let context = &container(&desired)["securityContext"];
    assert_eq!(context["privileged"], true);
    assert_eq!(context.get("allowPrivilegeEscalation"), None);
    assert_eq!(
        desired.namespace.as_ref().unwrap()["metadata"]["labels"]["pod-security.kubernetes.io/audit"],
        "privileged"
    );
}

#[test]
fn dra_admin_resolution_labels_the_namespace_for_both_releases() {
    let mut resolution = resolution(Some(dra_admin(DraVersion::V1)));
    resolution.namespace_admin_labels = true;
    let desired = render(
        &config(json!({})),
        &resolution,
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    let labels = &desired.namespace.as_ref().unwrap()["metadata"]["labels"];
    assert_eq!(labels["resource.k8s.io/admin-access"], "true");
    assert_eq!(labels["resource.kubernetes.io/admin-access"], "true");
}

#[test]
fn a_pre_existing_namespace_is_labelled_but_not_adopted() {
    let desired = render(
        &config(json!({})),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::Foreign,
        VERSION,
    )
    .unwrap();
    assert_eq!(
        desired.namespace.as_ref().unwrap()["metadata"].get("ownerReferences"),
        None
    );
    let not_created = render(
        &config(json!({"namespace": {"create": false, "name": "shared"}})),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    assert_eq!(not_created.namespace, None);
    assert_eq!(
        not_created.daemon_set.as_ref().unwrap()["metadata"]["namespace"],
        "shared"
    );
}

#[test]
fn user_tolerations_are_added_to_the_gpu_toleration() {
    let desired = render(
        &config(json!({"tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoExecute"}]})),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    assert_eq!(
        pod(&desired)["tolerations"],
        json!([
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoExecute"}
        ])
    );
}

#[test]
fn device_plugin_limit_joins_the_user_resources() {
    let desired = render(
        &config(json!({"resources": {"limits": {"memory": "1Gi"}, "requests": {"nvidia.com/gpu": "3", "cpu": "50m"}}})),
        &resolution(Some(GpuAccess::DevicePlugin {
            resource: "nvidia.com/gpu".into(),
            count: 2,
        })),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    assert_eq!(
        container(&desired)["resources"],
        json!({"limits": {"memory": "1Gi", "nvidia.com/gpu": "2"}, "requests": {"cpu": "50m", "nvidia.com/gpu": "2"}})
    );
}

#[test]
fn image_tag_defaults_to_the_operator_version_and_accepts_digests() {
    let default = config(json!({}));
    assert_eq!(
        image_reference(&default.spec, "1.2.3"),
        "ghcr.io/k8s-mcp-agent/agent:1.2.3"
    );
    let tagged = config(json!({"image": {"repository": "registry.local/agent", "tag": "dev"}}));
    assert_eq!(
        image_reference(&tagged.spec, "1.2.3"),
        "registry.local/agent:dev"
    );
    let digest = config(json!({"image": {"tag": "sha256:0123abcd"}}));
    assert_eq!(
        image_reference(&digest.spec, "1.2.3"),
        "ghcr.io/k8s-mcp-agent/agent@sha256:0123abcd"
    );
}

#[test]
fn service_account_settings_follow_the_chart() {
    let existing = render(
        &config(json!({"serviceAccount": {"create": false}})),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    assert_eq!(existing.service_account, None);
    assert_eq!(pod(&existing)["serviceAccountName"], "default");
    assert_eq!(
        existing.cluster_role_binding["subjects"][0]["name"],
        "default"
    );

    let named = render(
        &config(json!({"serviceAccount": {"name": "gpu-agent", "annotations": {"iam": "role"}}})),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    let sa = named.service_account.as_ref().unwrap();
    assert_eq!(sa["metadata"]["name"], "gpu-agent");
    assert_eq!(sa["metadata"]["annotations"]["iam"], "role");
}

#[test]
fn passthrough_settings_reach_the_pod() {
    let desired = render(
        &config(json!({
            "priorityClassName": "system-node-critical",
            "imagePullSecrets": [{"name": "regcred"}],
            "podAnnotations": {"team": "gpu"},
            "podLabels": {"tier": "diag", "app.kubernetes.io/name": "mine"},
            "nodeSelector": {},
            "agent": {"mode": "read-only", "logLevel": "debug"},
            "image": {"pullPolicy": "Always"}
        })),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    let pod = pod(&desired);
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(
        pod.get("nodeSelector"),
        None,
        "an empty nodeSelector selects every node"
    );
    let template = &desired.daemon_set.as_ref().unwrap()["spec"]["template"]["metadata"];
    assert_eq!(template["annotations"]["team"], "gpu");
    assert_eq!(template["labels"]["tier"], "diag");
    assert_eq!(
        template["labels"]["app.kubernetes.io/name"], "k8s-mcp-agent",
        "selector labels win"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["imagePullPolicy"], "Always");
    let env = container["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "AGENT_MODE", "value": "read-only"})));
    assert!(env.contains(&json!({"name": "AGENT_LOG_LEVEL", "value": "debug"})));
}

#[test]
fn no_access_method_means_no_daemon_set_but_rbac_stays() {
    let desired = render(
        &config(json!({})),
        &resolution(None),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    assert_eq!(desired.daemon_set, None);
    assert!(desired.service_account.is_some());
    assert_eq!(
        desired.cluster_role["rules"],
        json!([
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
            {"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"], "verbs": ["list"]}
        ])
    );
}

#[test]
fn objects_read_from_nowhere_are_refused() {
    let mut config = config(json!({}));
    config.metadata.uid = None;
    assert_eq!(
        render(
            &config,
            &resolution(None),
            NamespaceOwnership::CoOwned,
            VERSION
        )
        .unwrap_err(),
        RenderError::MissingMetadata("uid")
    );
}

#[test]
fn the_flight_recorder_gets_a_memory_volume_and_its_settings() {
    let desired = render_default(runtime_class());
    let c = container(&desired);
    let env = c["env"].as_array().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        var("AGENT_HISTORY_DIR"),
        Some(json!("/var/lib/k8s-mcp-agent/history"))
    );
    assert_eq!(var("AGENT_SAMPLE_INTERVAL"), Some(json!("10s")));
    assert_eq!(var("AGENT_HISTORY_RETENTION"), Some(json!("24h")));
    assert_eq!(var("AGENT_HISTORY_MAX_BYTES"), Some(json!("30198987")));
    assert_eq!(
        c["volumeMounts"][1],
        json!({"name": "history", "mountPath": "/var/lib/k8s-mcp-agent/history"})
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        pod(&desired)["volumes"][1],
        json!({"name": "history", "emptyDir": {"medium": "Memory", "sizeLimit": "32Mi"}})
    );

    let spec = json!({"agent": {"history": {"sampleInterval": "30s", "retention": "6h"}}});
    let desired = render(
        &config(spec),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    let env = container(&desired)["env"].as_array().unwrap().clone();
    assert!(env.contains(&json!({"name": "AGENT_SAMPLE_INTERVAL", "value": "30s"})));
    assert!(env.contains(&json!({"name": "AGENT_HISTORY_RETENTION", "value": "6h"})));

    let spec = json!({"agent": {"history": {"enabled": false}}});
    let desired = render(
        &config(spec),
        &resolution(Some(runtime_class())),
        NamespaceOwnership::CoOwned,
        VERSION,
    )
    .unwrap();
    let c = container(&desired);
    let has_history = |list: &Value| {
        list.as_array()
            .into_iter()
            .flatten()
            .any(|v| v["name"] == "history")
    };
    assert!(!has_history(&c["volumeMounts"]));
    assert!(!has_history(&pod(&desired)["volumes"]));
    assert!(
        !c["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "AGENT_HISTORY_DIR")
    );
}
