//! Field ownership and server-side apply, on plain objects.

use serde_json::{Value, json};

use super::*;
use crate::fieldset::{Part, display};
use crate::schema::ListTypes;

const NOW: &str = "2026-01-01T00:00:00Z";

fn writer(manager: &str) -> Writer<'_> {
    Writer {
        manager,
        api_version: "apps/v1",
        subresource: "",
        part: Part::Main {
            exclude_status: true,
        },
        list_types: ListTypes::new(None),
        now: NOW,
    }
}

fn ds(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "a", "namespace": "n"}, "spec": spec})
}

fn managers(object: &Value) -> Vec<(String, Vec<String>)> {
    Managed::of(object)
        .0
        .into_iter()
        .map(|e| (e.manager, e.fields.paths().map(|p| display(p)).collect()))
        .collect()
}

#[test]
fn apply_creates_and_owns_what_it_applied() {
    let created = apply(
        None,
        &ds(json!({"minReadySeconds": 5})),
        &writer("op"),
        false,
    )
    .unwrap();
    assert_eq!(created["spec"]["minReadySeconds"], 5);
    assert_eq!(created["metadata"]["name"], "a");
    assert_eq!(
        managers(&created),
        [("op".to_string(), vec![".spec.minReadySeconds".to_string()])]
    );
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );
}

#[test]
fn second_managers_fields_survive_and_dropped_fields_go() {
    let v1 = apply(
        None,
        &ds(json!({"minReadySeconds": 5, "revisionHistoryLimit": 3})),
        &writer("op"),
        false,
    )
    .unwrap();
    let v2 = apply(
        Some(&v1),
        &ds(json!({"paused": true})),
        &writer("other"),
        false,
    )
    .unwrap();
    let v3 = apply(
        Some(&v2),
        &ds(json!({"minReadySeconds": 6})),
        &writer("op"),
        false,
    )
    .unwrap();
    assert_eq!(v3["spec"], json!({"minReadySeconds": 6, "paused": true}));
}

#[test]
fn conflicting_value_is_refused_unless_forced() {
    let v1 = apply(
        None,
        &ds(json!({"minReadySeconds": 5})),
        &writer("op"),
        false,
    )
    .unwrap();
    let conflicts = apply(
        Some(&v1),
        &ds(json!({"minReadySeconds": 7})),
        &writer("other"),
        false,
    )
    .unwrap_err();
    assert_eq!(
        conflicts,
        [Conflict {
            manager: "op".into(),
            api_version: "apps/v1".into(),
            field: ".spec.minReadySeconds".into()
        }]
    );
    let forced = apply(
        Some(&v1),
        &ds(json!({"minReadySeconds": 7})),
        &writer("other"),
        true,
    )
    .unwrap();
    assert_eq!(forced["spec"]["minReadySeconds"], 7);
    assert_eq!(
        managers(&forced),
        [(
            "other".to_string(),
            vec![".spec.minReadySeconds".to_string()]
        )]
    );
}

#[test]
fn shared_field_survives_when_one_owner_drops_it() {
    let v1 = apply(
        None,
        &ds(json!({"minReadySeconds": 5, "paused": false})),
        &writer("op"),
        false,
    )
    .unwrap();
    let v2 = apply(
        Some(&v1),
        &ds(json!({"minReadySeconds": 5})),
        &writer("other"),
        false,
    )
    .unwrap();
    let v3 = apply(
        Some(&v2),
        &ds(json!({"paused": false})),
        &writer("op"),
        false,
    )
    .unwrap();
    assert_eq!(v3["spec"]["minReadySeconds"], 5);
}

#[test]
fn updates_take_ownership_of_changed_fields() {
    let v1 = apply(
        None,
        &ds(json!({"minReadySeconds": 5})),
        &writer("op"),
        false,
    )
    .unwrap();
    let mut v2 = v1.clone();
    v2["spec"]["minReadySeconds"] = json!(9);
    track_update(Some(&v1), &mut v2, &writer("kubectl-edit"));
    assert_eq!(
        managers(&v2),
        [(
            "kubectl-edit".to_string(),
            vec![".spec.minReadySeconds".to_string()]
        )]
    );
    let conflicts = apply(
        Some(&v2),
        &ds(json!({"minReadySeconds": 5})),
        &writer("op"),
        false,
    )
    .unwrap_err();
    assert_eq!(conflicts[0].manager, "kubectl-edit");
}

#[test]
fn unchanged_update_keeps_entries() {
    let v1 = apply(
        None,
        &ds(json!({"minReadySeconds": 5})),
        &writer("op"),
        false,
    )
    .unwrap();
    let mut v2 = v1.clone();
    track_update(Some(&v1), &mut v2, &writer("someone"));
    assert_eq!(v2, v1);
}

#[test]
fn removed_fields_lose_their_owners() {
    let lease = |spec: Value| json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": spec});
    let v1 = apply(
        None,
        &lease(json!({"holderIdentity": "a"})),
        &writer("a"),
        false,
    )
    .unwrap();
    let mut released = lease(json!({}));
    released["metadata"] = v1["metadata"].clone();
    track_update(Some(&v1), &mut released, &writer("a"));
    let v3 = apply(
        Some(&released),
        &lease(json!({"holderIdentity": "b"})),
        &writer("b"),
        false,
    )
    .unwrap();
    assert_eq!(v3["spec"]["holderIdentity"], "b");
}

#[test]
fn list_maps_merge_by_key_across_managers() {
    let containers = |c: Value| ds(json!({"template": {"spec": {"containers": c}}}));
    let v1 = apply(
        None,
        &containers(json!([{"name": "agent", "image": "a:1"}])),
        &writer("op"),
        false,
    )
    .unwrap();
    let v2 = apply(
        Some(&v1),
        &containers(json!([{"name": "sidecar", "image": "s:1"}])),
        &writer("other"),
        false,
    )
    .unwrap();
    let names: Vec<&str> = v2["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["agent", "sidecar"]);
    let v3 = apply(Some(&v2), &containers(json!([])), &writer("op"), false).unwrap();
    assert_eq!(
        v3["spec"]["template"]["spec"]["containers"],
        json!([{"name": "sidecar", "image": "s:1"}])
    );
}

#[test]
fn dropped_labels_are_removed() {
    let mut labelled = ds(json!({}));
    labelled["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    let v1 = apply(None, &labelled, &writer("op"), false).unwrap();
    let mut fewer = ds(json!({}));
    fewer["metadata"]["labels"] = json!({"a": "1"});
    let v2 = apply(Some(&v1), &fewer, &writer("op"), false).unwrap();
    assert_eq!(v2["metadata"]["labels"], json!({"a": "1"}));
    let v3 = apply(Some(&v2), &ds(json!({})), &writer("op"), false).unwrap();
    assert!(v3["metadata"].get("labels").is_none(), "{v3}");
    assert_eq!(v3["metadata"]["name"], "a");
}
