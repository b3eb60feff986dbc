//! Behaviour of the API semantics, driven through the engine directly (no HTTP).

use serde_json::{Value, json};

use super::*;
use crate::catalog::DraVersion;
use crate::patch::PatchType;
use crate::store::ChangeKind;

fn state() -> State {
    state_with(true)
}

fn state_with(admin_access: bool) -> State {
    let settings = Settings {
        admin_access,
        garbage_collection: true,
        admin_access_label: admin_access_label("v1.35.0"),
    };
    let mut state = State::new(
        Catalog::new(&[DraVersion::V1, DraVersion::V1beta1]),
        settings,
        1000,
    );
    // "gpu" admits DRA adminAccess requests (the admin label), "default" does not.
    for (ns, labels) in [
        ("default", json!({})),
        (
            "gpu",
            json!({"resource.kubernetes.io/admin-access": "true"}),
        ),
    ] {
        let target = state
            .target("", "v1", "namespaces", None, None, false)
            .unwrap();
        state
            .create(
                &target,
                json!({"metadata": {"name": ns, "labels": labels}}),
                &http(),
            )
            .unwrap();
    }
    state
}

fn http() -> WriteOptions {
    WriteOptions {
        default_manager: "test".into(),
        ..WriteOptions::default()
    }
}

fn manager(name: &str) -> WriteOptions {
    WriteOptions {
        field_manager: Some(name.into()),
        ..http()
    }
}

fn forced(name: &str) -> WriteOptions {
    WriteOptions {
        force: true,
        ..manager(name)
    }
}

fn target(
    state: &State,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
    name: Option<&str>,
) -> Target {
    state
        .target(group, version, plural, ns, name, false)
        .unwrap()
}

fn status_target(
    state: &State,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
    name: &str,
) -> Target {
    state
        .target(group, version, plural, ns, Some(name), true)
        .unwrap()
}

fn daemonset(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"spec": {"containers": [{"name": "agent", "image": image}]}}}
    })
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "configs.gpu.example.com"},
        "spec": {
            "group": "gpu.example.com", "scope": "Cluster",
            "names": {"plural": "configs", "kind": "Config", "shortNames": ["gdc"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"mode": {"type": "string", "default": "Auto"}, "replicas": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {"mode": {"type": "string"}}}
                }}}
            }]
        }
    })
}

#[test]
fn create_fills_metadata_and_refuses_duplicates() {
    let mut state = state();
    let ds = target(&state, "apps", "v1", "daemonsets", Some("gpu"), None);
    let created = state
        .create(&ds, daemonset("agent", "a:1"), &http())
        .unwrap();
    let object = &created.object;
    assert!(created.created && created.changed);
    assert_eq!(object["metadata"]["namespace"], "gpu");
    assert_eq!(object["metadata"]["generation"], 1);
    assert_eq!(object["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(object["metadata"]["creationTimestamp"].is_string());
    assert_eq!(object["metadata"]["managedFields"][0]["manager"], "test");

    let error = state
        .create(&ds, daemonset("agent", "a:1"), &http())
        .unwrap_err();
    assert_eq!(
        (error.code, error.message.as_str()),
        (409, "daemonsets.apps \"agent\" already exists")
    );
}

#[test]
fn create_checks_names_and_namespaces() {
    let mut state = state();
    let gpu = target(&state, "", "v1", "configmaps", Some("gpu"), None);
    let missing = target(&state, "", "v1", "configmaps", Some("missing"), None);
    let generated = state
        .create(&gpu, json!({"metadata": {"generateName": "cfg-"}}), &http())
        .unwrap();
    let name = generated.object["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
    assert!(
        generated.object["metadata"].get("generation").is_none(),
        "ConfigMaps carry no generation"
    );

    let error = state
        .create(&gpu, json!({"metadata": {}}), &http())
        .unwrap_err();
    assert_eq!(error.code, 422);
    assert!(
        error.message.contains("name or generateName is required"),
        "{}",
        error.message
    );
    let error = state
        .create(&gpu, json!({"metadata": {"name": "Bad_Name"}}), &http())
        .unwrap_err();
    assert!(error.message.contains("RFC 1123"), "{}", error.message);
    let error = state
        .create(&missing, json!({"metadata": {"name": "x"}}), &http())
        .unwrap_err();
    assert_eq!(
        (error.code, error.message.as_str()),
        (404, "namespaces \"missing\" not found")
    );
    let error = state
        .create(
            &gpu,
            json!({"metadata": {"name": "x", "namespace": "other"}}),
            &http(),
        )
        .unwrap_err();
    assert_eq!(error.code, 400);
    let error = state
        .create(
            &gpu,
            json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            &http(),
        )
        .unwrap_err();
    assert!(
        error
            .message
            .contains("does not match the expected API version"),
        "{}",
        error.message
    );
}

#[test]
fn stale_updates_conflict_and_unchanged_writes_are_no_ops() {
    let mut state = state();
    let ds = target(&state, "apps", "v1", "daemonsets", Some("gpu"), None);
    let created = state
        .create(&ds, daemonset("agent", "a:1"), &http())
        .unwrap()
        .object;
    let one = target(
        &state,
        "apps",
        "v1",
        "daemonsets",
        Some("gpu"),
        Some("agent"),
    );

    let mut changed = created.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("a:2");
    let updated = state.update(&one, changed.clone(), &http()).unwrap().object;
    assert_eq!(updated["metadata"]["generation"], 2);
    assert!(rv(&updated) > rv(&created));

    let error = state.update(&one, changed, &http()).unwrap_err();
    assert_eq!(error.code, 409);
    assert!(
        error
            .message
            .starts_with("Operation cannot be fulfilled on daemonsets.apps \"agent\""),
        "{}",
        error.message
    );

    let before = state.store.resource_version();
    let same = state.update(&one, updated.clone(), &http()).unwrap();
    assert!(!same.changed);
    assert_eq!(state.store.resource_version(), before);
}

#[test]
fn status_is_written_separately_and_never_bumps_generation() {
    let mut state = state();
    let ds = target(&state, "apps", "v1", "daemonsets", Some("gpu"), None);
    let mut with_status = daemonset("agent", "a:1");
    with_status["status"] = json!({"numberReady": 9});
    let created = state.create(&ds, with_status, &http()).unwrap().object;
    assert!(
        created.get("status").is_none(),
        "create through the API drops status"
    );

    let status = status_target(&state, "apps", "v1", "daemonsets", Some("gpu"), "agent");
    let mut write = created.clone();
    write["status"] = json!({"numberReady": 1});
    write["spec"]["template"]["spec"]["containers"][0]["image"] = json!("ignored:1");
    let after_status = state.update(&status, write, &http()).unwrap().object;
    assert_eq!(after_status["status"]["numberReady"], 1);
    assert_eq!(
        after_status["spec"]["template"]["spec"]["containers"][0]["image"],
        "a:1"
    );
    assert_eq!(after_status["metadata"]["generation"], 1);

    let main = target(
        &state,
        "apps",
        "v1",
        "daemonsets",
        Some("gpu"),
        Some("agent"),
    );
    let mut spec_write = after_status.clone();
    spec_write["status"] = json!({"numberReady": 42});
    spec_write["metadata"]["labels"] = json!({"a": "b"});
    let after_labels = state.update(&main, spec_write, &http()).unwrap().object;
    assert_eq!(
        after_labels["status"]["numberReady"], 1,
        "main writes keep the stored status"
    );
    assert_eq!(
        after_labels["metadata"]["generation"], 1,
        "metadata-only change"
    );

    let patched = state
        .patch(
            &main,
            PatchType::Merge,
            json!({"spec": {"minReadySeconds": 3}}),
            &http(),
        )
        .unwrap()
        .object;
    assert_eq!(patched["metadata"]["generation"], 2);
}

#[test]
fn server_side_apply_creates_updates_and_conflicts() {
    let mut state = state();
    let rc = target(
        &state,
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        None,
        Some("nvidia"),
    );
    let applied = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia", "labels": {"a": "1"}}, "handler": "nvidia"});
    let created = state
        .patch(&rc, PatchType::Apply, applied.clone(), &manager("operator"))
        .unwrap();
    assert!(created.created);
    let before = state.store.resource_version();
    let again = state
        .patch(&rc, PatchType::Apply, applied, &manager("operator"))
        .unwrap();
    assert!(!again.changed);
    assert_eq!(
        state.store.resource_version(),
        before,
        "an identical apply writes nothing"
    );

    let other = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "runc"});
    let error = state
        .patch(&rc, PatchType::Apply, other.clone(), &manager("intruder"))
        .unwrap_err();
    assert_eq!(error.code, 409);
    assert_eq!(
        error.message,
        "Apply failed with 1 conflict: conflict with \"operator\" using node.k8s.io/v1: .handler"
    );
    assert_eq!(
        error.to_status()["details"]["causes"][0]["field"],
        ".handler"
    );
    let forced = state
        .patch(&rc, PatchType::Apply, other, &forced("intruder"))
        .unwrap()
        .object;
    assert_eq!(forced["handler"], "runc");
    assert_eq!(
        forced["metadata"]["labels"]["a"], "1",
        "the first manager keeps its label"
    );

    let error = state
        .patch(
            &rc,
            PatchType::Apply,
            json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass"}),
            &http(),
        )
        .unwrap_err();
    assert!(
        error.message.contains("fieldManager: Required value"),
        "{}",
        error.message
    );
}

#[test]
fn strategic_merge_patch_is_refused_for_custom_resources() {
    let mut state = state();
    let crds = target(
        &state,
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        None,
        None,
    );
    state.create(&crds, crd(), &http()).unwrap();
    let configs = target(&state, "gpu.example.com", "v1", "configs", None, None);
    state
        .create(&configs, json!({"metadata": {"name": "default"}}), &http())
        .unwrap();
    let one = target(
        &state,
        "gpu.example.com",
        "v1",
        "configs",
        None,
        Some("default"),
    );
    let error = state
        .patch(&one, PatchType::Strategic, json!({"spec": {}}), &http())
        .unwrap_err();
    assert_eq!(error.code, 415);
}

#[test]
fn crds_register_prune_default_and_unregister() {
    let mut state = state();
    let crds = target(
        &state,
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        None,
        None,
    );
    let stored = state.create(&crds, crd(), &http()).unwrap().object;
    let established = stored["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established, "{stored}");

    let configs = target(&state, "gpu.example.com", "v1", "configs", None, None);
    let created = state
        .create(
            &configs,
            json!({"metadata": {"name": "default"}, "spec": {"replicas": 2, "bogus": true}}),
            &http(),
        )
        .unwrap();
    assert_eq!(
        created.object["spec"],
        json!({"mode": "Auto", "replicas": 2})
    );
    assert_eq!(created.warnings, ["unknown field \"spec.bogus\""]);
    let strict = WriteOptions {
        strict_fields: true,
        ..http()
    };
    let error = state
        .create(
            &configs,
            json!({"metadata": {"name": "other"}, "spec": {"bogus": 1}}),
            &strict,
        )
        .unwrap_err();
    assert_eq!(error.code, 400);
    assert!(
        error.message.contains("unknown field \"spec.bogus\""),
        "{}",
        error.message
    );

    let one = target(
        &state,
        "gpu.example.com",
        "v1",
        "configs",
        None,
        Some("default"),
    );
    let error = state
        .patch(
            &one,
            PatchType::Apply,
            json!({"apiVersion": "gpu.example.com/v1", "kind": "Config", "spec": {"bogus": 1}}),
            &manager("op"),
        )
        .unwrap_err();
    assert!(
        error
            .message
            .contains(".spec.bogus: field not declared in schema"),
        "{}",
        error.message
    );
    assert_eq!(
        error.code, 500,
        "as the real server (kubernetes/kubernetes#139253)"
    );

    let crd_one = target(
        &state,
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        None,
        Some("configs.gpu.example.com"),
    );
    state.delete(&crd_one, &DeleteOptions::default()).unwrap();
    assert!(
        state
            .catalog
            .find("gpu.example.com", "v1", "configs")
            .is_none()
    );
    assert_eq!(
        state.store.list(&configs.resource.store, None).count(),
        0,
        "custom resources go with their CRD"
    );
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let mut state = state();
    let cm = target(&state, "", "v1", "configmaps", Some("gpu"), None);
    state
        .create(
            &cm,
            json!({"metadata": {"name": "held", "finalizers": ["example.com/keep"]}}),
            &http(),
        )
        .unwrap();
    let one = target(&state, "", "v1", "configmaps", Some("gpu"), Some("held"));
    let terminating = state.delete(&one, &DeleteOptions::default()).unwrap();
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    assert!(state.get(&one).is_ok());
    state
        .patch(
            &one,
            PatchType::Merge,
            json!({"metadata": {"finalizers": null}}),
            &http(),
        )
        .unwrap();
    assert_eq!(state.get(&one).unwrap_err().code, 404);
}

fn owner_ref(owner: &Value) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "controller": true})
}

#[test]
fn cluster_scoped_owner_takes_namespaced_dependents_with_it() {
    let mut state = state();
    let crds = target(
        &state,
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        None,
        None,
    );
    state.create(&crds, crd(), &http()).unwrap();
    let configs = target(&state, "gpu.example.com", "v1", "configs", None, None);
    let owner = state
        .create(&configs, json!({"metadata": {"name": "default"}}), &http())
        .unwrap()
        .object;
    let ds = target(&state, "apps", "v1", "daemonsets", Some("gpu"), None);
    let mut child = daemonset("agent", "a:1");
    child["metadata"]["ownerReferences"] = json!([owner_ref(&owner)]);
    state.create(&ds, child, &http()).unwrap();
    let templates = target(
        &state,
        "resource.k8s.io",
        "v1",
        "resourceclaimtemplates",
        Some("gpu"),
        None,
    );
    let template = json!({"metadata": {"name": "t", "ownerReferences": [owner_ref(&owner)]}, "spec": {"spec": {"devices": {"requests": []}}}});
    state.create(&templates, template, &http()).unwrap();

    let one = target(
        &state,
        "gpu.example.com",
        "v1",
        "configs",
        None,
        Some("default"),
    );
    let mark = state.store.resource_version();
    state
        .delete(
            &one,
            &DeleteOptions {
                propagation: Some(Propagation::Foreground),
                ..DeleteOptions::default()
            },
        )
        .unwrap();
    assert_eq!(state.store.list(&ds.resource.store, None).count(), 0);
    assert_eq!(state.store.list(&templates.resource.store, None).count(), 0);
    let deleted: Vec<String> = state
        .store
        .changes_since(mark)
        .unwrap()
        .iter()
        .filter(|c| c.kind == ChangeKind::Deleted)
        .map(|c| c.object["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        deleted.last().map(String::as_str),
        Some("Config"),
        "foreground: owner last ({deleted:?})"
    );
}

#[test]
fn orphan_propagation_keeps_dependents_without_the_reference() {
    let mut state = state();
    let cms = target(&state, "", "v1", "configmaps", Some("gpu"), None);
    let owner = state
        .create(&cms, json!({"metadata": {"name": "owner"}}), &http())
        .unwrap()
        .object;
    state
        .create(
            &cms,
            json!({"metadata": {"name": "child", "ownerReferences": [owner_ref(&owner)]}}),
            &http(),
        )
        .unwrap();
    let one = target(&state, "", "v1", "configmaps", Some("gpu"), Some("owner"));
    state
        .delete(
            &one,
            &DeleteOptions {
                propagation: Some(Propagation::Orphan),
                ..DeleteOptions::default()
            },
        )
        .unwrap();
    let child = state
        .get(&target(
            &state,
            "",
            "v1",
            "configmaps",
            Some("gpu"),
            Some("child"),
        ))
        .unwrap();
    assert!(child["metadata"].get("ownerReferences").is_none());
}

#[test]
fn namespaces_delete_their_contents() {
    let mut state = state();
    let cms = target(&state, "", "v1", "configmaps", Some("gpu"), None);
    state
        .create(&cms, json!({"metadata": {"name": "a"}}), &http())
        .unwrap();
    state
        .create(
            &cms,
            json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}),
            &http(),
        )
        .unwrap();
    let ns = target(&state, "", "v1", "namespaces", None, Some("gpu"));
    let terminating = state.delete(&ns, &DeleteOptions::default()).unwrap();
    assert_eq!(terminating["status"]["phase"], "Terminating");
    let error = state
        .create(&cms, json!({"metadata": {"name": "late"}}), &http())
        .unwrap_err();
    assert_eq!(error.code, 403);
    let held = target(&state, "", "v1", "configmaps", Some("gpu"), Some("held"));
    state
        .patch(
            &held,
            PatchType::Json,
            json!([{"op": "remove", "path": "/metadata/finalizers"}]),
            &http(),
        )
        .unwrap();
    assert_eq!(
        state.get(&ns).unwrap_err().code,
        404,
        "the namespace goes once empty"
    );
}

#[test]
fn dra_objects_read_back_at_every_served_version() {
    let mut state = state();
    let v1beta1 = target(
        &state,
        "resource.k8s.io",
        "v1beta1",
        "resourceclaimtemplates",
        Some("gpu"),
        None,
    );
    let template = json!({"metadata": {"name": "admin"}, "spec": {"spec": {"devices": {"requests": [
        {"name": "gpus", "deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true}
    ]}}}});
    let written = state.create(&v1beta1, template, &http()).unwrap().object;
    assert_eq!(written["apiVersion"], "resource.k8s.io/v1beta1");
    assert_eq!(
        written["spec"]["spec"]["devices"]["requests"][0]["adminAccess"],
        true
    );
    let v1 = target(
        &state,
        "resource.k8s.io",
        "v1",
        "resourceclaimtemplates",
        Some("gpu"),
        Some("admin"),
    );
    let read = state.get(&v1).unwrap();
    assert_eq!(
        read["spec"]["spec"]["devices"]["requests"][0]["exactly"]["adminAccess"],
        true
    );
}

#[test]
fn admin_access_needs_the_namespace_label() {
    let mut state = state();
    for (version, request, field) in [
        (
            "v1",
            json!({"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true}}),
            "spec.spec.devices.requests[0].exactly.adminAccess",
        ),
        (
            "v1beta1",
            json!({"name": "gpus", "deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true}),
            "spec.spec.devices.requests[0].adminAccess",
        ),
    ] {
        let templates = target(
            &state,
            "resource.k8s.io",
            version,
            "resourceclaimtemplates",
            Some("default"),
            None,
        );
        let template = json!({"metadata": {"name": "admin"}, "spec": {"spec": {"devices": {"requests": [request]}}}});
        let error = state
            .create(
                &templates,
                template.clone(),
                &WriteOptions {
                    dry_run: true,
                    ..http()
                },
            )
            .unwrap_err();
        assert_eq!(error.code, 422, "{version}: dry runs are validated too");
        assert_eq!(
            error.message,
            format!(
                "ResourceClaimTemplate.resource.k8s.io \"admin\" is invalid: {field}: Forbidden: admin access to devices \
                 requires the `resource.kubernetes.io/admin-access: true` label on the containing namespace"
            )
        );
    }
    assert_eq!(
        admin_access_label("v1.33.4"),
        "resource.k8s.io/admin-access"
    );
    assert_eq!(
        admin_access_label("v1.34.0"),
        "resource.kubernetes.io/admin-access"
    );
}

#[test]
fn admin_access_is_silently_dropped_when_the_gate_is_off() {
    let mut state = state_with(false);
    for version in ["v1", "v1beta1"] {
        let templates = target(
            &state,
            "resource.k8s.io",
            version,
            "resourceclaimtemplates",
            Some("gpu"),
            None,
        );
        let request = if version == "v1" {
            json!({"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true}})
        } else {
            json!({"name": "gpus", "deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true})
        };
        let name = format!("admin-{version}");
        let template = json!({"metadata": {"name": name}, "spec": {"spec": {"devices": {"requests": [request]}}}});
        let stored = state.create(&templates, template, &http()).unwrap().object;
        let request = &stored["spec"]["spec"]["devices"]["requests"][0];
        assert!(
            request.get("adminAccess").is_none()
                && request.pointer("/exactly/adminAccess").is_none(),
            "{version}: {request}"
        );
        assert_eq!(
            request
                .get("allocationMode")
                .or(request.pointer("/exactly/allocationMode")),
            Some(&json!("All"))
        );
    }
}

#[test]
fn secret_string_data_is_folded_into_data() {
    let mut state = state();
    let secrets = target(&state, "", "v1", "secrets", Some("gpu"), None);
    let stored = state
        .create(
            &secrets,
            json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "hi"}}),
            &http(),
        )
        .unwrap()
        .object;
    assert_eq!(stored["data"], json!({"a": "eA==", "b": "aGk="}));
    assert!(stored.get("stringData").is_none());
}

#[test]
fn lists_select_and_page() {
    let mut state = state();
    let pods = target(&state, "", "v1", "pods", Some("gpu"), None);
    for (name, node) in [("a", "n1"), ("b", "n2"), ("c", "n1")] {
        let pod = json!({"metadata": {"name": name, "labels": {"app": "agent"}}, "spec": {"nodeName": node}});
        state.create(&pods, pod, &http()).unwrap();
    }
    let query = ListQuery {
        fields: crate::selector::FieldSelector::parse("spec.nodeName=n1").unwrap(),
        ..ListQuery::default()
    };
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&state.list(&pods, &query).unwrap()), ["a", "c"]);
    let page = state
        .list(
            &pods,
            &ListQuery {
                limit: 2,
                ..ListQuery::default()
            },
        )
        .unwrap();
    assert_eq!(names(&page), ["a", "b"]);
    assert_eq!(page["metadata"]["remainingItemCount"], 1);
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    let rest = state
        .list(
            &pods,
            &ListQuery {
                limit: 2,
                continue_token: Some(token),
                ..ListQuery::default()
            },
        )
        .unwrap();
    assert_eq!(names(&rest), ["c"]);
    assert!(rest["metadata"].get("continue").is_none());
    let all = target(&state, "", "v1", "pods", None, None);
    assert_eq!(
        state.list(&all, &ListQuery::default()).unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn events_written_through_either_api_are_one_object() {
    let mut state = state();
    let new_api = target(&state, "events.k8s.io", "v1", "events", Some("gpu"), None);
    let event = json!({"metadata": {"name": "e1"}, "regarding": {"kind": "Pod", "name": "agent-x"}, "reason": "FailedCreatePodSandBox", "note": "no runtime for \"nvidia\"", "type": "Warning", "eventTime": null});
    state.create(&new_api, event, &http()).unwrap();
    let core = target(&state, "", "v1", "events", Some("gpu"), None);
    let query = ListQuery {
        fields: crate::selector::FieldSelector::parse(
            "involvedObject.name=agent-x,reason=FailedCreatePodSandBox",
        )
        .unwrap(),
        ..ListQuery::default()
    };
    let list = state.list(&core, &query).unwrap();
    assert_eq!(list["items"][0]["message"], "no runtime for \"nvidia\"");
}
