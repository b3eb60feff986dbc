//! The generated CRD as the API server sees it: defaults it applies, CEL rules it enforces (evaluated
//! client-side with kube's CEL engine), printer columns `kubectl get gdc` shows.

use crds::{CEL_RULES, GpuDiagnosticsConfigSpec};
use kube::core::cel::{Validator, apply_defaults, compile_schema};
use serde_json::{Value, json};

/// The openAPIV3Schema of the served version, as JSON.
fn schema() -> Value {
    let crd = crds::crd();
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("the CRD has a schema"),
    )
    .expect("schema serializes")
}

fn object(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "gpu.k8s-mcp-agent.io/v1alpha1",
        "kind": "GpuDiagnosticsConfig",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// Structural defaulting as the API server does it: a default that was just filled in is itself
/// defaulted (kube-cel's single pass does not descend into inserted defaults, so repeat to a
/// fixpoint).
fn default_like_apiserver(schema: &Value, obj: &Value) -> Value {
    let mut current = obj.clone();
    loop {
        let next = apply_defaults(schema, &current);
        if next == current {
            return current;
        }
        current = next;
    }
}

/// Validates like the API server: defaults first, then the CEL rules. Returns the failure
/// messages (empty when accepted).
fn admit(obj: &Value, old: Option<&Value>) -> Vec<String> {
    let schema = schema();
    let obj = default_like_apiserver(&schema, obj);
    let old = old.map(|o| default_like_apiserver(&schema, o));
    match Validator::new().validate(&schema, &obj, old.as_ref()) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

#[test]
fn an_empty_object_defaults_to_exactly_the_rust_defaults() {
    let schema = schema();
    for spec in [json!({}), Value::Null] {
        let mut obj = object("default", spec);
        if obj["spec"].is_null() {
            obj.as_object_mut().unwrap().remove("spec");
        }
        let defaulted = default_like_apiserver(&schema, &obj);
        let expected = serde_json::to_value(GpuDiagnosticsConfigSpec::default()).unwrap();
        assert_eq!(defaulted["spec"], expected);
    }
}

#[test]
fn rust_defaults_match_serde_defaults_for_an_empty_spec() {
    let from_empty: GpuDiagnosticsConfigSpec = serde_json::from_value(json!({})).unwrap();
    assert_eq!(from_empty, GpuDiagnosticsConfigSpec::default());
}

#[test]
fn defaults_are_visible_in_the_schema() {
    insta::assert_yaml_snapshot!(
        "defaults",
        schema()["properties"]["spec"]["properties"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["default"].clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    );
}

#[test]
fn names_printer_columns_and_subresources() {
    let crd = crds::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some(crds::CRD_NAME));
    assert_eq!(crd.spec.scope, "Cluster");
    assert_eq!(crd.spec.names.short_names, Some(vec!["gdc".to_owned()]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, crds::VERSION);
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    insta::assert_yaml_snapshot!("printer_columns", version.additional_printer_columns);
}

#[test]
fn every_cel_rule_is_in_the_schema_where_documented() {
    let schema = schema();
    for (path, (rule, message)) in CEL_RULES {
        let mut node = &schema;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            node = &node["properties"][part];
        }
        let rules = node["x-kubernetes-validations"]
            .as_array()
            .unwrap_or_else(|| panic!("no x-kubernetes-validations at {path}"));
        assert!(
            rules
                .iter()
                .any(|r| r["rule"] == *rule && r["message"] == *message),
            "rule {rule:?} missing at {path}"
        );
    }
}

#[test]
fn every_cel_rule_compiles() {
    let compiled = compile_schema(&schema());
    let errors: Vec<String> = compiled
        .compilation_errors()
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "CEL compilation errors: {errors:?}");
}

#[test]
fn accepts_the_original_charts_documented_combinations() {
    let accepted = [
        json!({}),
        json!({"gpu": {"runtimeClass": {"enabled": true}}}),
        json!({"gpu": {"runtimeClass": {"enabled": false}, "resourceRequest": {"enabled": true}}}),
        json!({"gpu": {"runtimeClass": {"enabled": false}, "resourceClaim": {"enabled": true,
            "templateName": "gpu-template"}}}),
        json!({"gpu": {"runtimeClass": {"enabled": false}, "resourceClaim": {"enabled": true,
            "spec": {"devices": {"requests": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com"}]}}}}}),
        json!({"gpu": {"mode": "DRA", "resourceClaim": {"enabled": true}}}),
        json!({"gpu": {"mode": "Auto", "resourceRequest": {"enabled": true}}}),
        json!({"gpu": {"mode": "RuntimeClass", "resourceRequest": {"enabled": false}}}),
        json!({"namespace": {"create": false, "name": "kube-system"}}),
    ];
    for spec in accepted {
        assert_eq!(
            admit(&object("ok", spec.clone()), None),
            Vec::<String>::new(),
            "{spec}"
        );
    }
}

#[test]
fn rejects_contradictions_with_a_message_naming_the_fields() {
    let cases = [
        (
            json!({"gpu": {"runtimeClass": {"enabled": true}, "resourceRequest": {"enabled": true}}}),
            "at most one of gpu.runtimeClass.enabled",
        ),
        (
            json!({"gpu": {"resourceRequest": {"enabled": true}, "resourceClaim": {"enabled": true}}}),
            "at most one of gpu.runtimeClass.enabled",
        ),
        (
            json!({"gpu": {"mode": "DevicePlugin", "runtimeClass": {"enabled": true}}}),
            "gpu.runtimeClass.enabled=true picks the RuntimeClass mode",
        ),
        (
            json!({"gpu": {"mode": "DRA", "resourceRequest": {"enabled": true}}}),
            "gpu.resourceRequest.enabled=true picks the DevicePlugin mode",
        ),
        (
            json!({"gpu": {"mode": "RuntimeClass", "resourceClaim": {"enabled": true}}}),
            "gpu.resourceClaim.enabled=true picks the DRA mode",
        ),
        (
            json!({"gpu": {"mode": "RuntimeClass", "runtimeClass": {"enabled": false}}}),
            "gpu.mode is RuntimeClass but gpu.runtimeClass.enabled is false",
        ),
        (
            json!({"gpu": {"mode": "DevicePlugin", "resourceRequest": {"enabled": false}}}),
            "gpu.mode is DevicePlugin but gpu.resourceRequest.enabled is false",
        ),
        (
            json!({"gpu": {"mode": "DRA", "resourceClaim": {"enabled": false}}}),
            "gpu.mode is DRA but gpu.resourceClaim.enabled is false",
        ),
        (
            json!({"gpu": {"resourceClaim": {"templateName": "mine", "spec": {"devices": {}}}}}),
            "gpu.resourceClaim.templateName and gpu.resourceClaim.spec are mutually exclusive",
        ),
        (
            json!({"namespace": {"name": "kube-system"}}),
            "namespace.create=true would label a shared system namespace",
        ),
    ];
    for (spec, expected) in cases {
        let messages = admit(&object("bad", spec.clone()), None);
        assert_eq!(messages.len(), 1, "{spec}: {messages:?}");
        assert!(messages[0].starts_with(expected), "{spec}: {messages:?}");
    }
}

#[test]
fn rejects_names_too_long_for_the_derived_object_names() {
    let ok = "a".repeat(crds::MAX_CONFIG_NAME_LEN);
    let long = "a".repeat(crds::MAX_CONFIG_NAME_LEN + 1);
    assert!(admit(&object(&ok, json!({})), None).is_empty());
    let messages = admit(&object(&long, json!({})), None);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].starts_with("metadata.name must be at most 49 characters"));
}

#[test]
fn namespace_name_is_immutable_but_other_fields_may_change() {
    let old = object("cfg", json!({"namespace": {"name": "gpu-a"}}));
    let moved = object("cfg", json!({"namespace": {"name": "gpu-b"}}));
    let messages = admit(&moved, Some(&old));
    assert_eq!(messages.len(), 1);
    assert!(messages[0].starts_with("namespace.name is immutable"));

    let changed = object(
        "cfg",
        json!({"namespace": {"name": "gpu-a"}, "agent": {"logLevel": "debug"}}),
    );
    assert!(admit(&changed, Some(&old)).is_empty());
    // Spelling out the default is no change either.
    let implicit = object("cfg", json!({}));
    let explicit = object("cfg", json!({"namespace": {"name": "gpu-diagnostics"}}));
    assert!(admit(&explicit, Some(&implicit)).is_empty());
}

#[test]
fn agent_mode_accepts_only_read_only_and_says_so() {
    let mode = &schema()["properties"]["spec"]["properties"]["agent"]["properties"]["mode"];
    assert_eq!(mode["enum"], json!(["read-only"]));
    let description = mode["description"].as_str().unwrap();
    assert!(
        description.contains("Only `read-only` is accepted"),
        "{description}"
    );
    let refused =
        serde_json::from_value::<GpuDiagnosticsConfigSpec>(json!({"agent": {"mode": "operator"}}))
            .unwrap_err()
            .to_string();
    assert!(
        refused.contains("unknown variant `operator`, expected `read-only`"),
        "{refused}"
    );
}
