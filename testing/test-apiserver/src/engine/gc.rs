//! Garbage collection, run synchronously after every write so tests see a settled state: dependents
//! whose owners are all gone are deleted, dangling owner references are dropped, and terminating
//! objects (foreground owners, namespaces, CRDs) finish once nothing holds them.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::delete::{FOREGROUND, Propagation};
use super::{State, finalizers, meta_str, metadata_mut, terminating};
use crate::catalog::{Catalog, StoreKey, split_api_version};
use crate::crd;

/// One step the collector takes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Every owner is gone: delete the dependent (background).
    Delete(StoreKey, String, String),
    /// Some owners are gone: drop those references.
    DropOwners(StoreKey, String, String, Vec<String>),
    /// A terminating object nothing holds any more: remove `foregroundDeletion` and, if no finalizer is
    /// left, the object.
    Finish(StoreKey, String, String),
}

struct Owner<'a> {
    namespace: &'a str,
    group: &'a str,
    kind: &'a str,
}

/// The collector's decisions for one snapshot of all objects.
fn plan(
    objects: &[(&StoreKey, &Value)],
    catalog: &Catalog,
    collect_dependents: bool,
) -> Vec<Action> {
    let name_of = |o: &Value| meta_str(o, "name").unwrap_or_default().to_string();
    let namespace_of = |o: &Value| meta_str(o, "namespace").unwrap_or_default().to_string();
    let mut by_uid: HashMap<&str, Owner<'_>> = HashMap::new();
    let mut referenced: BTreeSet<&str> = BTreeSet::new();
    let mut populated_namespaces: BTreeSet<&str> = BTreeSet::new();
    let mut populated_stores: BTreeSet<&StoreKey> = BTreeSet::new();
    for (store, object) in objects {
        populated_stores.insert(store);
        if let Some(namespace) = meta_str(object, "namespace").filter(|n| !n.is_empty()) {
            populated_namespaces.insert(namespace);
        }
        if let Some(uid) = meta_str(object, "uid") {
            let (group, _) = split_api_version(
                object
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            by_uid.insert(
                uid,
                Owner {
                    namespace: meta_str(object, "namespace").unwrap_or_default(),
                    group,
                    kind: object
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                },
            );
        }
        for reference in owner_references(object) {
            if let Some(uid) = reference.get("uid").and_then(Value::as_str) {
                referenced.insert(uid);
            }
        }
    }

    let mut actions = Vec::new();
    for (store, object) in objects {
        let references = owner_references(object);
        if collect_dependents && !references.is_empty() {
            let dependent_namespace = meta_str(object, "namespace").unwrap_or_default();
            let dangling: Vec<String> = references
                .iter()
                .filter(|r| !owner_present(r, dependent_namespace, &by_uid, catalog))
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
                .collect();
            if dangling.len() == references.len() {
                if !terminating(object) {
                    actions.push(Action::Delete(
                        (*store).clone(),
                        namespace_of(object),
                        name_of(object),
                    ));
                }
                continue;
            }
            if !dangling.is_empty() {
                actions.push(Action::DropOwners(
                    (*store).clone(),
                    namespace_of(object),
                    name_of(object),
                    dangling,
                ));
            }
        }
        if terminating(object) {
            let held = finalizers(object);
            if held.iter().any(|f| f != FOREGROUND) {
                continue;
            }
            let uid = meta_str(object, "uid").unwrap_or_default();
            if held.iter().any(|f| f == FOREGROUND) && referenced.contains(uid) {
                continue;
            }
            let name = name_of(object);
            let is_namespace = store.group.is_empty() && store.resource == "namespaces";
            if is_namespace && populated_namespaces.contains(name.as_str()) {
                continue;
            }
            let crd_store = (store.group == "apiextensions.k8s.io"
                && store.resource == "customresourcedefinitions")
                .then(|| crd::resource_type(object).ok().map(|t| t.store))
                .flatten();
            if crd_store.is_some_and(|s| populated_stores.contains(&s)) {
                continue;
            }
            actions.push(Action::Finish((*store).clone(), namespace_of(object), name));
        }
    }
    actions
}

fn owner_references(object: &Value) -> Vec<&Value> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default()
}

/// Whether an owner reference resolves: same uid, group and kind, and a namespace the dependent may use
/// (a cluster-scoped owner, or a namespaced owner in the dependent's own namespace). References to kinds
/// the server does not serve are left alone, as the real collector cannot judge them either.
fn owner_present(
    reference: &Value,
    dependent_namespace: &str,
    by_uid: &HashMap<&str, Owner<'_>>,
    catalog: &Catalog,
) -> bool {
    let uid = reference
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, _) = split_api_version(
        reference
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    let kind = reference
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(owner_type) = catalog.find_group_kind(group, kind) else {
        return true;
    };
    let Some(owner) = by_uid.get(uid) else {
        return false;
    };
    let same_kind = owner.kind == kind && (owner.group == group || owner_type.store.group != group);
    let reachable = !owner_type.namespaced
        || (!dependent_namespace.is_empty() && owner.namespace == dependent_namespace);
    same_kind && reachable
}

impl State {
    /// Runs the collector until nothing is left to do.
    pub(super) fn collect_garbage(&mut self) {
        for _ in 0..64 {
            let actions = {
                let objects: Vec<(&StoreKey, &Value)> = self.store.all().collect();
                plan(&objects, &self.catalog, self.settings.garbage_collection)
            };
            if actions.is_empty() {
                return;
            }
            for action in actions {
                match action {
                    Action::Delete(store, namespace, name) => {
                        self.delete_object(&store, &namespace, &name, Propagation::Background);
                    }
                    Action::DropOwners(store, namespace, name, uids) => {
                        self.drop_owner_references(&store, &namespace, &name, &uids);
                    }
                    Action::Finish(store, namespace, name) => {
                        self.finish_terminating(&store, &namespace, &name)
                    }
                }
            }
        }
        tracing::warn!(
            "garbage collection did not settle after 64 rounds; owner references may form a cycle"
        );
    }

    fn finish_terminating(&mut self, store: &StoreKey, namespace: &str, name: &str) {
        let Some(mut object) = self.store.get(store, namespace, name).cloned() else {
            return;
        };
        let mut remaining = finalizers(&object);
        let had_foreground = remaining.iter().any(|f| f == FOREGROUND);
        remaining.retain(|f| f != FOREGROUND);
        if remaining.is_empty() {
            let is_crd = store.group == "apiextensions.k8s.io"
                && store.resource == "customresourcedefinitions";
            self.store.remove(store, namespace, name);
            if is_crd {
                self.catalog.unregister_crd(name);
            }
        } else if had_foreground {
            metadata_mut(&mut object).insert("finalizers".into(), json!(remaining));
            self.store.replace(store, object);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(group: &str, resource: &str) -> StoreKey {
        StoreKey {
            group: group.into(),
            resource: resource.into(),
        }
    }

    fn object(
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        uid: &str,
        owners: Value,
    ) -> Value {
        let mut o = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "uid": uid, "ownerReferences": owners}});
        if let Some(ns) = namespace {
            o["metadata"]["namespace"] = json!(ns);
        }
        o
    }

    fn owner_ref(api_version: &str, kind: &str, uid: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind, "name": "x", "uid": uid})
    }

    #[test]
    fn cluster_scoped_owner_keeps_namespaced_dependents() {
        let catalog = Catalog::new(&[]);
        let crd_owner_kind = ("gpu.example.com/v1", "Config");
        let rc = object(
            "node.k8s.io/v1",
            "RuntimeClass",
            None,
            "nvidia",
            "u-rc",
            json!([]),
        );
        let ds = object(
            "apps/v1",
            "DaemonSet",
            Some("gpu"),
            "agent",
            "u-ds",
            json!([owner_ref("node.k8s.io/v1", "RuntimeClass", "u-rc")]),
        );
        let unknown = object(
            "v1",
            "ConfigMap",
            Some("gpu"),
            "cm",
            "u-cm",
            json!([owner_ref(crd_owner_kind.0, crd_owner_kind.1, "gone")]),
        );
        let (s1, s2, s3) = (
            key("node.k8s.io", "runtimeclasses"),
            key("apps", "daemonsets"),
            key("", "configmaps"),
        );
        let objects = vec![(&s1, &rc), (&s2, &ds), (&s3, &unknown)];
        assert_eq!(plan(&objects, &catalog, true), []);
        let objects = vec![(&s2, &ds)];
        assert_eq!(
            plan(&objects, &catalog, true),
            [Action::Delete(s2.clone(), "gpu".into(), "agent".into())]
        );
        assert_eq!(plan(&objects, &catalog, false), []);
    }

    #[test]
    fn namespaced_owner_in_another_namespace_does_not_count() {
        let catalog = Catalog::new(&[]);
        let owner = object("apps/v1", "DaemonSet", Some("a"), "ds", "u-ds", json!([]));
        let pod = object(
            "v1",
            "Pod",
            Some("b"),
            "p",
            "u-p",
            json!([owner_ref("apps/v1", "DaemonSet", "u-ds")]),
        );
        let (s1, s2) = (key("apps", "daemonsets"), key("", "pods"));
        assert_eq!(
            plan(&[(&s1, &owner), (&s2, &pod)], &catalog, true),
            [Action::Delete(s2.clone(), "b".into(), "p".into())]
        );
    }

    #[test]
    fn partially_dangling_references_are_dropped() {
        let catalog = Catalog::new(&[]);
        let owner = object("v1", "ConfigMap", Some("a"), "cm", "u-cm", json!([]));
        let pod = object(
            "v1",
            "Pod",
            Some("a"),
            "p",
            "u-p",
            json!([
                owner_ref("v1", "ConfigMap", "u-cm"),
                owner_ref("v1", "Secret", "gone")
            ]),
        );
        let (s1, s2) = (key("", "configmaps"), key("", "pods"));
        assert_eq!(
            plan(&[(&s1, &owner), (&s2, &pod)], &catalog, true),
            [Action::DropOwners(
                s2.clone(),
                "a".into(),
                "p".into(),
                vec!["gone".into()]
            )]
        );
    }

    #[test]
    fn terminating_objects_finish_when_nothing_holds_them() {
        let catalog = Catalog::new(&[]);
        let mut ns = object("v1", "Namespace", None, "gpu", "u-ns", json!([]));
        ns["metadata"]["deletionTimestamp"] = json!("t");
        let pod = object("v1", "Pod", Some("gpu"), "p", "u-p", json!([]));
        let (s1, s2) = (key("", "namespaces"), key("", "pods"));
        assert_eq!(plan(&[(&s1, &ns), (&s2, &pod)], &catalog, true), []);
        assert_eq!(
            plan(&[(&s1, &ns)], &catalog, true),
            [Action::Finish(s1.clone(), String::new(), "gpu".into())]
        );

        let mut held = object("v1", "ConfigMap", Some("gpu"), "cm", "u-cm", json!([]));
        held["metadata"]["deletionTimestamp"] = json!("t");
        held["metadata"]["finalizers"] = json!(["example.com/keep"]);
        let s3 = key("", "configmaps");
        assert_eq!(plan(&[(&s3, &held)], &catalog, true), []);
    }
}
