//! Properties of the operator's pure core over generated specs and cluster facts (proptest):
//! resolve_access is total and its message names the facts behind its reason; the admin-access
//! probe's answer never changes the namespace labels; a reconcile over unchanged facts has nothing
//! to apply; status::compute is idempotent.

use operator::access::{ResolutionReason, resolve_access};
use operator::facts::{AdminAccess, ClusterFacts};
use operator::harness::{
    FACT_BYTES, config, decide, facts_from_bytes, rendered_objects, status_at,
};
use operator::{apply, dra::DraVersion};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Specs as users write them, valid or not (`enabled` flags that contradict `mode` included:
/// the API server's CEL rules refuse those, but resolve_access must still answer).
fn spec() -> impl Strategy<Value = crds::GpuDiagnosticsConfigSpec> {
    let flag = || prop_oneof![Just(Value::Null), Just(json!(true)), Just(json!(false))];
    (
        prop_oneof![
            Just("Auto"),
            Just("RuntimeClass"),
            Just("DevicePlugin"),
            Just("DRA")
        ],
        (flag(), flag(), flag()),
        any::<bool>(),
        prop_oneof![Just(""), Just("gpu-template")],
        any::<bool>(),
        prop_oneof![Just("nvidia"), Just("nvidia-cdi")],
        any::<bool>(),
    )
        .prop_map(
            |(mode, (rc, rr, claim), admin, template, ns_create, rc_name, kernel_log)| {
                let drop_null = |v: Value| match v {
                    Value::Object(m) => {
                        Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect())
                    }
                    v => v,
                };
                serde_json::from_value(json!({
                    "gpu": {
                        "mode": mode,
                        "runtimeClass": drop_null(json!({"enabled": rc, "name": rc_name})),
                        "resourceRequest": drop_null(json!({"enabled": rr})),
                        "resourceClaim": drop_null(json!({
                            "enabled": claim, "adminAccess": admin, "templateName": template
                        })),
                    },
                    "namespace": {"create": ns_create, "name": "gpu-diagnostics"},
                    "agent": {"kernelLog": kernel_log},
                }))
                .expect("generated specs parse")
            },
        )
}

fn facts() -> impl Strategy<Value = ClusterFacts> {
    any::<[u8; FACT_BYTES]>().prop_map(facts_from_bytes)
}

fn api_version(version: DraVersion) -> String {
    version.api_version()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resolve_access_is_total_and_names_the_facts_behind_its_reason(spec in spec(), facts in facts()) {
        let resolution = resolve_access(&spec, &facts);
        let m = &resolution.message;
        prop_assert!(!m.is_empty());
        let rc = spec.gpu.runtime_class.name.as_str();
        match resolution.reason {
            ResolutionReason::RuntimeClassFound => {
                let handler = facts.runtime_class_handler.as_deref().unwrap();
                prop_assert!(m.contains(&format!("RuntimeClass \"{rc}\"")), "{m}");
                prop_assert!(m.contains(&format!("handler \"{handler}\"")), "{m}");
            }
            ResolutionReason::DraAdminAccessAvailable | ResolutionReason::DraDeviceRequestFallback => {
                let version = facts.dra.as_ref().unwrap().version;
                prop_assert!(m.contains(&api_version(version)), "{m}");
            }
            ResolutionReason::DevicePluginResourceFound => {
                let with_gpu = facts.nodes.iter().filter(|n| n.gpu_allocatable > 0).count();
                prop_assert!(m.contains(&format!("{with_gpu} of {} selected nodes", facts.nodes.len())), "{m}");
                prop_assert!(m.contains("nvidia.com/gpu"), "{m}");
            }
            ResolutionReason::NoGpuAccessMethod => {
                // Every method Auto tried or skipped is named with why.
                prop_assert!(m.contains("RuntimeClass"), "{m}");
                prop_assert!(m.contains("DRA") || m.contains("resource.k8s.io"), "{m}");
                prop_assert!(m.contains("device-plugin") || m.contains("nodeSelector"), "{m}");
            }
            ResolutionReason::ModeSetInSpec | ResolutionReason::DraNotServed => {
                prop_assert!(
                    m.contains("RuntimeClass") || m.contains("DevicePlugin") || m.contains("DRA"),
                    "{m}"
                );
            }
        }
        // Auto explains a method it passed over before the one it chose.
        if matches!(
            resolution.reason,
            ResolutionReason::DevicePluginResourceFound | ResolutionReason::DraDeviceRequestFallback
        ) {
            prop_assert!(m.contains("RuntimeClass"), "{m}");
        }
    }

    /// One pass applies the namespace from the draft resolution, before the admin-access probe
    /// answers: that is only right if the answer never changes the namespace's labels.
    #[test]
    fn the_admin_access_answer_never_changes_the_namespace_labels(spec in spec(), facts in facts()) {
        let labels = |admin_access: AdminAccess| {
            let facts = ClusterFacts { admin_access, ..facts.clone() };
            resolve_access(&spec, &facts).namespace_admin_labels
        };
        let unknown = labels(AdminAccess::Unknown);
        prop_assert_eq!(unknown, labels(AdminAccess::Usable));
        prop_assert_eq!(unknown, labels(AdminAccess::Unusable("dropped".into())));
    }

    #[test]
    fn a_reconcile_over_unchanged_facts_has_nothing_to_apply(spec in spec(), facts in facts()) {
        let config = config(spec);
        let (resolution, desired) = decide(&config, &facts);
        let (again, desired_again) = decide(&config, &facts);
        prop_assert_eq!(&resolution, &again);
        prop_assert_eq!(&desired, &desired_again);
        for object in rendered_objects(&desired) {
            let stamped = apply::stamp(object.clone());
            // What the API server stores: ours plus its own fields.
            let mut live = stamped.clone();
            live["metadata"]["uid"] = json!("live-uid");
            live["metadata"]["resourceVersion"] = json!("42");
            live["metadata"]["creationTimestamp"] = json!("2026-12-01T00:00:00Z");
            live["metadata"]["managedFields"] = json!([{"manager": "k8s-mcp-agent-operator"}]);
            live["status"] = json!({"observedGeneration": 1});
            prop_assert!(apply::up_to_date(&stamped, Some(&live)), "would re-apply {}", stamped);
        }
    }

    #[test]
    fn status_compute_is_idempotent(spec in spec(), facts in facts(), later in 1i64..100_000) {
        let config = config(spec);
        let (resolution, desired) = decide(&config, &facts);
        let first = status_at(None, &resolution, &desired, &facts, 1_800_000_000);
        let second = status_at(Some(&first), &resolution, &desired, &facts, 1_800_000_000 + later);
        prop_assert_eq!(&first, &second);
    }
}
