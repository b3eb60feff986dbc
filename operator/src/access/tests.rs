//! Mode resolution over a table of cluster situations: every branch of `Auto`, every served DRA
//! version, explicit modes, and the original chart's documented flag combinations.

use serde_json::{Value, json};

use super::*;
use crate::facts::{AdminAccess, NodeFacts, UserTemplate};

fn spec(value: Value) -> GpuDiagnosticsConfigSpec {
    serde_json::from_value(value).expect("test spec parses")
}

/// A cluster with nothing GPU-related.
fn bare() -> ClusterFacts {
    ClusterFacts::default()
}

fn with_runtime_class(mut facts: ClusterFacts) -> ClusterFacts {
    facts.runtime_class_handler = Some("nvidia".into());
    facts
}

fn with_dra(mut facts: ClusterFacts, version: DraVersion, device_class: bool) -> ClusterFacts {
    facts.dra = Some(crate::facts::DraFacts {
        version,
        device_class_exists: device_class,
        user_template: None,
    });
    facts
}

fn with_user_template(mut facts: ClusterFacts, template: UserTemplate) -> ClusterFacts {
    if let Some(dra) = facts.dra.as_mut() {
        dra.user_template = Some(template);
    }
    facts
}

fn with_admin(mut facts: ClusterFacts, admin: AdminAccess) -> ClusterFacts {
    facts.admin_access = admin;
    facts
}

fn node(name: &str, gpus: u64, handlers: Option<&[&str]>) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        gpu_allocatable: gpus,
        runtime_handlers: handlers.map(|h| h.iter().map(|s| (*s).to_owned()).collect()),
    }
}

fn with_nodes(mut facts: ClusterFacts, nodes: Vec<NodeFacts>) -> ClusterFacts {
    facts.nodes = nodes;
    facts
}

fn gpu_nodes(facts: ClusterFacts) -> ClusterFacts {
    with_nodes(facts, vec![node("gpu-a", 8, None), node("gpu-b", 8, None)])
}

fn dropped() -> AdminAccess {
    AdminAccess::Unusable("the API server drops adminAccess".into())
}

/// A compact, comparable description of a resolution.
fn describe(resolution: &Resolution) -> String {
    let access = match &resolution.access {
        None => "none".to_owned(),
        Some(GpuAccess::RuntimeClass { name }) => format!("RuntimeClass {name}"),
        Some(GpuAccess::DevicePlugin { resource, count }) => {
            format!("DevicePlugin {resource} x{count}")
        }
        Some(GpuAccess::Dra { version, claim }) => {
            let claim = match claim {
                Claim::Generated(DeviceRequest::AdminAll { device_class }) => {
                    format!("admin-all {device_class}")
                }
                Claim::Generated(DeviceRequest::One { device_class }) => {
                    format!("one {device_class}")
                }
                Claim::UserTemplate { name } => format!("template {name}"),
                Claim::Inline(_) => "inline".to_owned(),
            };
            format!("DRA {} {claim}", version.as_str())
        }
    };
    let mut flags = Vec::new();
    if resolution.consumes_gpus {
        flags.push("consumes");
    }
    if resolution.needs_admin_probe {
        flags.push("probe");
    }
    if resolution.namespace_admin_labels {
        flags.push("admin-labels");
    }
    let issues: Vec<&str> = resolution
        .issues
        .iter()
        .map(|i| i.reason.as_str())
        .collect();
    format!(
        "{access} | {} | [{}] | issues [{}]",
        resolution.reason.as_str(),
        flags.join(","),
        issues.join(",")
    )
}

struct Case {
    name: &'static str,
    spec: Value,
    facts: ClusterFacts,
    expect: &'static str,
}

fn cases() -> Vec<Case> {
    use DraVersion::*;
    vec![
        // --- Auto, step by step ---
        Case {
            name: "auto: nothing on the cluster",
            spec: json!({}),
            facts: bare(),
            expect: "none | NoGpuAccessMethod | [] | issues [NoGpuAccessMethod]",
        },
        Case {
            name: "auto: RuntimeClass exists",
            spec: json!({}),
            facts: gpu_nodes(with_dra(with_runtime_class(bare()), V1, true)),
            expect: "RuntimeClass nvidia | RuntimeClassFound | [] | issues []",
        },
        Case {
            name: "auto: RuntimeClass exists, some nodes report the handler, others say nothing",
            spec: json!({}),
            facts: with_nodes(
                with_runtime_class(bare()),
                vec![
                    node("a", 0, Some(&["runc", "nvidia"])),
                    node("b", 0, None),
                    node("c", 0, Some(&["runc"])),
                ],
            ),
            expect: "RuntimeClass nvidia | RuntimeClassFound | [] | issues []",
        },
        Case {
            name: "auto: RuntimeClass exists but every node reports handlers without it",
            spec: json!({}),
            facts: with_nodes(
                with_runtime_class(bare()),
                vec![
                    node("a", 8, Some(&["runc"])),
                    node("b", 8, Some(&["runc", "crun"])),
                ],
            ),
            expect: "DevicePlugin nvidia.com/gpu x1 | DevicePluginResourceFound | [consumes] | issues []",
        },
        Case {
            name: "auto: RuntimeClass disabled by the chart flag",
            spec: json!({"gpu": {"runtimeClass": {"enabled": false}}}),
            facts: gpu_nodes(with_runtime_class(bare())),
            expect: "DevicePlugin nvidia.com/gpu x1 | DevicePluginResourceFound | [consumes] | issues []",
        },
        Case {
            name: "auto: DRA v1 with admin access not yet verified",
            spec: json!({}),
            facts: gpu_nodes(with_dra(bare(), V1, true)),
            expect: "DRA v1 admin-all gpu.nvidia.com | DRAAdminAccessAvailable | [probe,admin-labels] | issues []",
        },
        Case {
            name: "auto: DRA v1beta2 with admin access verified",
            spec: json!({}),
            facts: with_admin(with_dra(bare(), V1beta2, true), AdminAccess::Usable),
            expect: "DRA v1beta2 admin-all gpu.nvidia.com | DRAAdminAccessAvailable | [admin-labels] | issues []",
        },
        Case {
            name: "auto: DRA v1beta1 with admin access verified",
            spec: json!({}),
            facts: with_admin(with_dra(bare(), V1beta1, true), AdminAccess::Usable),
            expect: "DRA v1beta1 admin-all gpu.nvidia.com | DRAAdminAccessAvailable | [admin-labels] | issues []",
        },
        Case {
            name: "auto: admin access dropped, device plugin present",
            spec: json!({}),
            facts: gpu_nodes(with_admin(with_dra(bare(), V1, true), dropped())),
            expect: "DevicePlugin nvidia.com/gpu x1 | DevicePluginResourceFound | [consumes,admin-labels] | issues []",
        },
        Case {
            name: "auto: admin access dropped, no device plugin: one-device claim",
            spec: json!({}),
            facts: with_admin(with_dra(bare(), V1beta2, true), dropped()),
            expect: "DRA v1beta2 one gpu.nvidia.com | DRADeviceRequestFallback | [consumes,admin-labels] | \
                     issues [AdminAccessUnavailable]",
        },
        Case {
            name: "auto: admin access turned off in the spec",
            spec: json!({"gpu": {"resourceClaim": {"adminAccess": false}}}),
            facts: with_dra(bare(), V1, true),
            expect: "DRA v1 one gpu.nvidia.com | DRADeviceRequestFallback | [consumes] | issues []",
        },
        Case {
            name: "auto: DRA served but the DeviceClass is missing",
            spec: json!({}),
            facts: gpu_nodes(with_dra(bare(), V1, false)),
            expect: "DevicePlugin nvidia.com/gpu x1 | DevicePluginResourceFound | [consumes] | issues []",
        },
        Case {
            name: "auto: DRA disabled by the chart flag",
            spec: json!({"gpu": {"resourceClaim": {"enabled": false}}}),
            facts: gpu_nodes(with_admin(with_dra(bare(), V1, true), AdminAccess::Usable)),
            expect: "DevicePlugin nvidia.com/gpu x1 | DevicePluginResourceFound | [consumes] | issues []",
        },
        Case {
            name: "auto: only v1alpha3 served (Kubernetes 1.31)",
            spec: json!({}),
            facts: ClusterFacts {
                dra_unsupported_versions: vec!["v1alpha3".into()],
                ..bare()
            },
            expect: "none | NoGpuAccessMethod | [] | issues [NoGpuAccessMethod]",
        },
        Case {
            name: "auto: user template with admin access",
            spec: json!({"gpu": {"resourceClaim": {"templateName": "mine"}}}),
            facts: with_user_template(
                with_dra(bare(), V1, false),
                UserTemplate::Found { admin_access: true },
            ),
            expect: "DRA v1 template mine | DRAAdminAccessAvailable | [admin-labels] | issues []",
        },
        Case {
            name: "auto: user template without admin access, device plugin present",
            spec: json!({"gpu": {"resourceClaim": {"templateName": "mine"}}}),
            facts: gpu_nodes(with_user_template(
                with_dra(bare(), V1, true),
                UserTemplate::Found {
                    admin_access: false,
                },
            )),
            expect: "DevicePlugin nvidia.com/gpu x1 | DevicePluginResourceFound | [consumes] | issues []",
        },
        Case {
            name: "auto: user template without admin access, no device plugin",
            spec: json!({"gpu": {"resourceClaim": {"templateName": "mine"}}}),
            facts: with_user_template(
                with_dra(bare(), V1beta1, true),
                UserTemplate::Found {
                    admin_access: false,
                },
            ),
            expect: "DRA v1beta1 template mine | DRADeviceRequestFallback | [consumes] | issues []",
        },
        Case {
            name: "auto: user template missing",
            spec: json!({"gpu": {"resourceClaim": {"templateName": "mine"}}}),
            facts: with_user_template(with_dra(bare(), V1, true), UserTemplate::Missing),
            expect: "none | NoGpuAccessMethod | [] | issues [NoGpuAccessMethod]",
        },
        Case {
            name: "auto: inline claim spec with admin access",
            spec: json!({"gpu": {"resourceClaim": {"spec": {"devices": {"requests": [{"name": "g",
                "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true}}]}}}}}),
            facts: with_dra(bare(), V1, false),
            expect: "DRA v1 inline | DRAAdminAccessAvailable | [admin-labels] | issues []",
        },
        Case {
            name: "auto: device plugin only",
            spec: json!({}),
            facts: gpu_nodes(bare()),
            expect: "DevicePlugin nvidia.com/gpu x1 | DevicePluginResourceFound | [consumes] | issues []",
        },
        Case {
            name: "auto: device plugin with a MIG resource and count 2",
            spec: json!({"gpu": {"resourceRequest": {"resource": "nvidia.com/mig-1g.10gb", "count": 2}}}),
            facts: with_nodes(bare(), vec![node("mig", 7, None)]),
            expect: "DevicePlugin nvidia.com/mig-1g.10gb x2 | DevicePluginResourceFound | [consumes] | issues []",
        },
        Case {
            name: "auto: selected nodes without GPUs",
            spec: json!({}),
            facts: with_nodes(bare(), vec![node("a", 0, None), node("b", 0, None)]),
            expect: "none | NoGpuAccessMethod | [] | issues [NoGpuAccessMethod]",
        },
        Case {
            name: "auto: every method disabled",
            spec: json!({"gpu": {"runtimeClass": {"enabled": false}, "resourceRequest": {"enabled": false},
                "resourceClaim": {"enabled": false}}}),
            facts: gpu_nodes(with_admin(
                with_dra(with_runtime_class(bare()), V1, true),
                AdminAccess::Usable,
            )),
            expect: "none | NoGpuAccessMethod | [] | issues [NoGpuAccessMethod]",
        },
        // --- Explicit modes ---
        Case {
            name: "explicit RuntimeClass, present",
            spec: json!({"gpu": {"mode": "RuntimeClass"}}),
            facts: with_runtime_class(bare()),
            expect: "RuntimeClass nvidia | ModeSetInSpec | [] | issues []",
        },
        Case {
            name: "explicit RuntimeClass, missing",
            spec: json!({"gpu": {"mode": "RuntimeClass", "runtimeClass": {"name": "nvidia-cdi"}}}),
            facts: gpu_nodes(with_dra(bare(), V1, true)),
            expect: "RuntimeClass nvidia-cdi | ModeSetInSpec | [] | issues [PrerequisiteMissing]",
        },
        Case {
            name: "chart: gpu.runtimeClass.enabled=true",
            spec: json!({"gpu": {"runtimeClass": {"enabled": true}}}),
            facts: with_runtime_class(bare()),
            expect: "RuntimeClass nvidia | ModeSetInSpec | [] | issues []",
        },
        Case {
            name: "chart fallback: runtimeClass off, resourceRequest on, no device plugin yet",
            spec: json!({"gpu": {"runtimeClass": {"enabled": false}, "resourceRequest": {"enabled": true}}}),
            facts: with_runtime_class(bare()),
            expect: "DevicePlugin nvidia.com/gpu x1 | ModeSetInSpec | [consumes] | issues [PrerequisiteMissing]",
        },
        Case {
            name: "explicit DevicePlugin with GPUs",
            spec: json!({"gpu": {"mode": "DevicePlugin"}}),
            facts: gpu_nodes(with_runtime_class(bare())),
            expect: "DevicePlugin nvidia.com/gpu x1 | ModeSetInSpec | [consumes] | issues []",
        },
        Case {
            name: "explicit DRA, not served",
            spec: json!({"gpu": {"mode": "DRA"}}),
            facts: with_runtime_class(bare()),
            expect: "none | DRANotServed | [] | issues [PrerequisiteMissing]",
        },
        Case {
            name: "explicit DRA v1beta1, admin access unverified",
            spec: json!({"gpu": {"mode": "DRA"}}),
            facts: with_runtime_class(with_dra(bare(), V1beta1, true)),
            expect: "DRA v1beta1 admin-all gpu.nvidia.com | ModeSetInSpec | [probe,admin-labels] | issues []",
        },
        Case {
            name: "explicit DRA, DeviceClass missing",
            spec: json!({"gpu": {"mode": "DRA"}}),
            facts: with_admin(with_dra(bare(), V1, false), AdminAccess::Usable),
            expect: "DRA v1 admin-all gpu.nvidia.com | ModeSetInSpec | [admin-labels] | issues [PrerequisiteMissing]",
        },
        Case {
            name: "explicit DRA, admin access dropped",
            spec: json!({"gpu": {"mode": "DRA"}}),
            facts: with_admin(with_dra(bare(), V1, true), dropped()),
            expect: "DRA v1 one gpu.nvidia.com | ModeSetInSpec | [consumes,admin-labels] | issues [AdminAccessUnavailable]",
        },
        Case {
            name: "chart: resourceClaim.enabled with an existing template",
            spec: json!({"gpu": {"runtimeClass": {"enabled": false},
                "resourceClaim": {"enabled": true, "templateName": "gpu-template"}}}),
            facts: with_user_template(
                with_dra(bare(), V1beta2, true),
                UserTemplate::Found {
                    admin_access: false,
                },
            ),
            expect: "DRA v1beta2 template gpu-template | ModeSetInSpec | [consumes] | issues []",
        },
        Case {
            name: "chart: resourceClaim.enabled with a missing template",
            spec: json!({"gpu": {"resourceClaim": {"enabled": true, "templateName": "gpu-template"}}}),
            facts: with_user_template(with_dra(bare(), V1, true), UserTemplate::Missing),
            expect: "DRA v1 template gpu-template | ModeSetInSpec | [consumes] | issues [PrerequisiteMissing]",
        },
        Case {
            name: "chart: resourceClaim.enabled with an inline spec",
            spec: json!({"gpu": {"runtimeClass": {"enabled": false}, "resourceClaim": {"enabled": true,
                "spec": {"devices": {"requests": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com"}]}}}}}),
            facts: with_dra(bare(), V1beta1, true),
            expect: "DRA v1beta1 inline | ModeSetInSpec | [consumes] | issues []",
        },
        Case {
            name: "explicit DRA wins over an existing RuntimeClass",
            spec: json!({"gpu": {"mode": "DRA"}}),
            facts: with_admin(
                with_runtime_class(with_dra(bare(), V1, true)),
                AdminAccess::Usable,
            ),
            expect: "DRA v1 admin-all gpu.nvidia.com | ModeSetInSpec | [admin-labels] | issues []",
        },
    ]
}

#[test]
fn resolves_every_case_of_the_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let got = describe(&resolve_access(&spec(case.spec.clone()), &case.facts));
        let expect = case.expect.split_whitespace().collect::<Vec<_>>().join(" ");
        if got != expect {
            failures.push(format!(
                "{}:\n  expected {expect}\n  got      {got}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn messages_tell_the_user_why_and_what_to_do() {
    let messages: Vec<(String, String)> = cases()
        .into_iter()
        .map(|case| {
            let resolution = resolve_access(&spec(case.spec), &case.facts);
            let issues: Vec<String> = resolution
                .issues
                .iter()
                .map(|i| i.message.clone())
                .filter(|m| *m != resolution.message)
                .collect();
            let text = if issues.is_empty() {
                resolution.message
            } else {
                format!("{} || {}", resolution.message, issues.join(" || "))
            };
            (case.name.to_owned(), text)
        })
        .collect();
    insta::assert_yaml_snapshot!(messages);
}

#[test]
fn the_unresolved_message_names_everything_that_was_looked_for() {
    let facts = with_nodes(
        ClusterFacts {
            dra_unsupported_versions: vec!["v1alpha3".into()],
            ..bare()
        },
        vec![node("a", 0, None)],
    );
    let message = resolve_access(&spec(json!({})), &facts).message;
    assert!(message.contains("no RuntimeClass \"nvidia\""), "{message}");
    assert!(message.contains("only as v1alpha3"), "{message}");
    assert!(
        message.contains("none of the 1 nodes matching nodeSelector nvidia.com/gpu.present=true"),
        "{message}"
    );
    assert!(
        message.contains("Install the NVIDIA GPU Operator"),
        "{message}"
    );
}

#[test]
fn the_chart_flags_fold_into_a_requested_mode() {
    let cases = [
        (json!({}), Requested::Auto),
        (
            json!({"gpu": {"runtimeClass": {"enabled": false}}}),
            Requested::Auto,
        ),
        (
            json!({"gpu": {"runtimeClass": {"enabled": true}}}),
            Requested::Explicit(AccessMethod::RuntimeClass),
        ),
        (
            json!({"gpu": {"resourceRequest": {"enabled": true}}}),
            Requested::Explicit(AccessMethod::DevicePlugin),
        ),
        (
            json!({"gpu": {"resourceClaim": {"enabled": true}}}),
            Requested::Explicit(AccessMethod::Dra),
        ),
        (
            json!({"gpu": {"mode": "DRA", "runtimeClass": {"enabled": true}}}),
            Requested::Explicit(AccessMethod::Dra),
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(requested(&spec(value.clone())), expected, "{value}");
    }
}

#[test]
fn admin_labels_do_not_depend_on_the_probe_result() {
    // The namespace labels must stay put whether the probe says yes or no, or they would flap.
    let base = with_dra(bare(), DraVersion::V1, true);
    for admin in [AdminAccess::Unknown, AdminAccess::Usable, dropped()] {
        let resolution = resolve_access(&spec(json!({})), &with_admin(base.clone(), admin.clone()));
        assert!(resolution.namespace_admin_labels, "{admin:?}");
    }
}
