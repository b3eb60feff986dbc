//! Deletes: preconditions, finalizers (`deletionTimestamp`), propagation policies, namespaces that take
//! their contents with them and CRDs that take their custom resources.

use serde_json::{Value, json};

use super::{State, Target, finalizers, meta_str, metadata_mut, terminating};
use crate::catalog::StoreKey;
use crate::crd;
use crate::error::{ApiError, StatusReason};

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents lose the owner reference and stay.
    Orphan,
    /// The owner goes now; the garbage collector removes dependents after it.
    Background,
    /// Dependents go first; the owner waits (finalizer `foregroundDeletion`).
    Foreground,
}

impl Propagation {
    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "Orphan" => Ok(Self::Orphan),
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

/// Options of a delete (query parameters and `DeleteOptions` body).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy` (default Background).
    pub propagation: Option<Propagation>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

pub(super) const FOREGROUND: &str = "foregroundDeletion";

impl State {
    /// DELETE one object; returns its last state (or its terminating state while finalizers hold it).
    pub fn delete(&mut self, target: &Target, options: &DeleteOptions) -> Result<Value, ApiError> {
        let name = target.name.clone().unwrap_or_default();
        let namespace = target.namespace_key().to_string();
        let object = self
            .store
            .get(target.store(), &namespace, &name)
            .cloned()
            .ok_or_else(|| target.not_found(&name))?;
        let precondition = |what: &str, wanted: &Option<String>, actual: Option<&str>| match wanted
        {
            Some(wanted) if Some(wanted.as_str()) != actual => Err(ApiError::new(
                StatusReason::Conflict,
                format!(
                    "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {}",
                    actual.unwrap_or_default()
                ),
            )),
            _ => Ok(()),
        };
        precondition("UID", &options.precondition_uid, meta_str(&object, "uid"))?;
        precondition(
            "ResourceVersion",
            &options.precondition_resource_version,
            meta_str(&object, "resourceVersion"),
        )?;
        if options.dry_run {
            return Ok(target.encode(object));
        }
        let propagation = options.propagation.unwrap_or(Propagation::Background);
        let last = self
            .delete_object(target.store(), &namespace, &name, propagation)
            .unwrap_or(object);
        self.collect_garbage();
        Ok(target.encode(last))
    }

    /// Deletes (or starts terminating) one stored object and applies its propagation policy.
    pub(super) fn delete_object(
        &mut self,
        store: &StoreKey,
        namespace: &str,
        name: &str,
        propagation: Propagation,
    ) -> Option<Value> {
        let object = self.store.get(store, namespace, name)?.clone();
        if terminating(&object) {
            return Some(object);
        }
        let uid = meta_str(&object, "uid").unwrap_or_default().to_string();
        let is_namespace = store.group.is_empty() && store.resource == "namespaces";
        let is_crd =
            store.group == "apiextensions.k8s.io" && store.resource == "customresourcedefinitions";

        if propagation == Propagation::Foreground && !self.dependents(&uid).is_empty() {
            let mut held = object.clone();
            self.mark_terminating(&mut held, is_namespace);
            let mut held_finalizers = finalizers(&held);
            held_finalizers.push(FOREGROUND.to_string());
            metadata_mut(&mut held).insert("finalizers".into(), json!(held_finalizers));
            let held = self.store.replace(store, held);
            for (dep_store, dep_namespace, dep_name) in self.dependents(&uid) {
                self.delete_object(
                    &dep_store,
                    &dep_namespace,
                    &dep_name,
                    Propagation::Foreground,
                );
            }
            return Some(held);
        }
        if propagation == Propagation::Orphan {
            for (dep_store, dep_namespace, dep_name) in self.dependents(&uid) {
                self.drop_owner_references(
                    &dep_store,
                    &dep_namespace,
                    &dep_name,
                    std::slice::from_ref(&uid),
                );
            }
        }
        if is_namespace {
            let contents: Vec<(StoreKey, String)> = self
                .store
                .all()
                .filter(|(_, o)| meta_str(o, "namespace") == Some(name))
                .map(|(s, o)| {
                    (
                        s.clone(),
                        meta_str(o, "name").unwrap_or_default().to_string(),
                    )
                })
                .collect();
            for (content_store, content_name) in contents {
                self.delete_object(&content_store, name, &content_name, Propagation::Background);
            }
        }
        let crd_store = if is_crd {
            crd::resource_type(&object).ok().map(|t| t.store)
        } else {
            None
        };
        if let Some(crd_store) = &crd_store {
            let contents: Vec<(String, String)> = self
                .store
                .list(crd_store, None)
                .map(|o| {
                    (
                        meta_str(o, "namespace").unwrap_or_default().to_string(),
                        meta_str(o, "name").unwrap_or_default().to_string(),
                    )
                })
                .collect();
            for (content_namespace, content_name) in contents {
                self.delete_object(
                    crd_store,
                    &content_namespace,
                    &content_name,
                    Propagation::Background,
                );
            }
        }
        let blocked = !finalizers(&object).is_empty()
            || (is_namespace
                && self
                    .store
                    .all()
                    .any(|(_, o)| meta_str(o, "namespace") == Some(name)))
            || crd_store
                .as_ref()
                .is_some_and(|s| self.store.list(s, None).next().is_some());
        if blocked {
            let mut held = self.store.get(store, namespace, name)?.clone();
            self.mark_terminating(&mut held, is_namespace);
            return Some(self.store.replace(store, held));
        }
        let removed = self.store.remove(store, namespace, name);
        if is_crd {
            self.catalog.unregister_crd(name);
        }
        removed
    }

    fn mark_terminating(&self, object: &mut Value, is_namespace: bool) {
        let metadata = metadata_mut(object);
        metadata.insert("deletionTimestamp".into(), json!(super::now()));
        metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
        if is_namespace {
            object["status"] = json!({"phase": "Terminating"});
        }
    }

    /// Objects with an owner reference to `uid`.
    pub(super) fn dependents(&self, uid: &str) -> Vec<(StoreKey, String, String)> {
        if uid.is_empty() {
            return Vec::new();
        }
        self.store
            .all()
            .filter(|(_, o)| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                    })
            })
            .map(|(s, o)| {
                (
                    s.clone(),
                    meta_str(o, "namespace").unwrap_or_default().to_string(),
                    meta_str(o, "name").unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Removes owner references to the given uids from one object.
    pub(super) fn drop_owner_references(
        &mut self,
        store: &StoreKey,
        namespace: &str,
        name: &str,
        uids: &[String],
    ) {
        let Some(mut object) = self.store.get(store, namespace, name).cloned() else {
            return;
        };
        let metadata = metadata_mut(&mut object);
        if let Some(Value::Array(refs)) = metadata.get_mut("ownerReferences") {
            refs.retain(|r| {
                !uids
                    .iter()
                    .any(|u| r.get("uid").and_then(Value::as_str) == Some(u))
            });
            if refs.is_empty() {
                metadata.remove("ownerReferences");
            }
        }
        self.store.replace(store, object);
    }
}
