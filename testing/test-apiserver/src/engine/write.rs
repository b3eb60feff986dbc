//! Writes: create, update (PUT), patch (merge, strategic, JSON), server-side apply. All end in
//! `finish`, which keeps the rules every write shares: status subresource separation, generation,
//! disabled-feature stripping, no-op detection, CRD registration and garbage collection.

use serde_json::{Value, json};

use super::checks::{
    check_name, check_resource_version, check_type_meta, conflict_error, invalid_name,
    place_namespace,
};
use super::rules::{
    admin_access_field, fold_string_data, keep_server_metadata, namespace_defaults,
    outside_metadata_and_status, same_object, separate_status, strip_admin_access,
    uses_admin_access,
};
use super::{State, Target, finalizers, meta_str, metadata_mut, terminating};
use crate::crd;
use crate::error::{ApiError, StatusReason};
use crate::fieldset::Part;
use crate::managed::{self, Writer};
use crate::patch::{self, PatchType};
use crate::schema::{ListTypes, prune_and_default};

/// Request options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// Manager used when the request names none (from the User-Agent, as the real server does).
    pub default_manager: String,
    /// `force=true` (server-side apply).
    pub force: bool,
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields of a custom resource are an error instead of a warning.
    pub strict_fields: bool,
    /// Written by a test directly (kubelet-like: a created object keeps its `status`).
    pub direct: bool,
}

impl WriteOptions {
    fn manager(&self) -> &str {
        self.field_manager
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or(&self.default_manager)
    }
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object as stored, in the request's version.
    pub object: Value,
    /// Whether stored state changed (false for no-op writes and dry runs).
    pub changed: bool,
    /// Whether the write created the object (HTTP 201).
    pub created: bool,
    /// `Warning` headers (pruned unknown fields).
    pub warnings: Vec<String>,
}

impl State {
    /// POST: creates an object.
    pub fn create(
        &mut self,
        target: &Target,
        mut body: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if target.status {
            return Err(ApiError::method_not_allowed(
                "create is not supported on the status subresource",
            ));
        }
        check_type_meta(target, &mut body)?;
        let mut warnings = self.prune(target, &mut body, options)?;
        self.prepare_create(target, &mut body)?;
        if !options.direct
            && target.resource.status_subresource
            && let Some(map) = body.as_object_mut()
        {
            map.remove("status");
        }
        let stamp = Stamp::new(target);
        managed::track_update(None, &mut body, &Self::writer(target, options, &stamp, ""));
        let written = self.finish(target, None, body, options)?;
        warnings.extend(written.warnings.iter().cloned());
        Ok(Written {
            warnings,
            ..written
        })
    }

    /// PUT: replaces an object (optionally only its status).
    pub fn update(
        &mut self,
        target: &Target,
        mut body: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (old_hub, old) = self.current(target)?;
        check_type_meta(target, &mut body)?;
        check_name(target, &mut body)?;
        check_resource_version(target, &old, &body)?;
        let warnings = self.prune(target, &mut body, options)?;
        self.update_from(target, old_hub, &old, body, options, warnings)
    }

    /// PATCH with a merge, strategic-merge, JSON or apply patch.
    pub fn patch(
        &mut self,
        target: &Target,
        patch_type: PatchType,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if patch_type == PatchType::Apply {
            return self.apply(target, body, options);
        }
        let (old_hub, old) = self.current(target)?;
        let mut new = old.clone();
        match patch_type {
            PatchType::Merge => patch::merge(&mut new, &body),
            PatchType::Json => patch::json(&mut new, &body)?,
            PatchType::Strategic => {
                if target.version.schema.is_some()
                    || matches!(target.resource.origin, crate::catalog::Origin::Crd(_))
                {
                    return Err(ApiError::new(
                        StatusReason::UnsupportedMediaType,
                        "the body of the request was in an unknown format - accepted media types include: \
                         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                    ));
                }
                patch::strategic(&mut new, &body, ListTypes::new(None));
            }
            PatchType::Apply => unreachable!("handled above"),
        }
        check_type_meta(target, &mut new)?;
        check_name(target, &mut new)?;
        check_resource_version(target, &old, &new)?;
        let warnings = self.prune(target, &mut new, options)?;
        self.update_from(target, old_hub, &old, new, options, warnings)
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply (creates when missing).
    pub fn apply(
        &mut self,
        target: &Target,
        mut applied: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let manager = options.field_manager.clone().filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::new(
                StatusReason::Invalid,
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            )
        })?;
        for field in ["apiVersion", "kind"] {
            if applied
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request(format!(
                    "{field} must be set in an apply patch"
                )));
            }
        }
        check_type_meta(target, &mut applied)?;
        check_name(target, &mut applied)?;
        if let Some(schema) = target.version.schema.clone() {
            let mut pruned_copy = applied.clone();
            let unknown = prune_and_default(&mut pruned_copy, &schema);
            if let Some(field) = unknown.first() {
                // The real server answers this with a bare 500 (kubernetes/kubernetes#139253).
                return Err(ApiError::internal(format!(
                    "failed to create typed patch object ({}, Kind={}): {field}: field not declared in schema",
                    target.api_version(),
                    target.resource.kind
                )));
            }
        }
        let options = WriteOptions {
            field_manager: Some(manager),
            ..options.clone()
        };
        let subresource = if target.status { "status" } else { "" };
        let stamp = Stamp::new(target);
        let writer = Self::writer(target, &options, &stamp, subresource);
        let name = target.name.clone().unwrap_or_default();
        match self
            .store
            .get(target.store(), target.namespace_key(), &name)
            .cloned()
        {
            None if target.status => Err(target.not_found(&name)),
            None => {
                let mut created = managed::apply(None, &applied, &writer, options.force)
                    .map_err(|c| conflict_error(target, &c))?;
                self.prune(target, &mut created, &options)?;
                self.prepare_create(target, &mut created)?;
                self.finish(target, None, created, &options)
            }
            Some(old_hub) => {
                let old = target.encode(old_hub.clone());
                check_resource_version(target, &old, &applied)?;
                let mut merged = managed::apply(Some(&old), &applied, &writer, options.force)
                    .map_err(|c| conflict_error(target, &c))?;
                self.prune(target, &mut merged, &options)?;
                separate_status(target, &old, &mut merged);
                keep_server_metadata(&old, &mut merged);
                self.finish(target, Some(old_hub), merged, &options)
            }
        }
    }

    fn current(&self, target: &Target) -> Result<(Value, Value), ApiError> {
        let name = target.name.as_deref().unwrap_or_default();
        let hub = self
            .store
            .get(target.store(), target.namespace_key(), name)
            .cloned()
            .ok_or_else(|| target.not_found(name))?;
        let served = target.encode(hub.clone());
        Ok((hub, served))
    }

    fn update_from(
        &mut self,
        target: &Target,
        old_hub: Value,
        old: &Value,
        mut new: Value,
        options: &WriteOptions,
        mut warnings: Vec<String>,
    ) -> Result<Written, ApiError> {
        if !options.direct {
            separate_status(target, old, &mut new);
        }
        keep_server_metadata(old, &mut new);
        let subresource = if target.status { "status" } else { "" };
        let incoming_managed = new.pointer("/metadata/managedFields").cloned();
        if incoming_managed.is_none()
            || incoming_managed.as_ref() == old.pointer("/metadata/managedFields")
        {
            if let Some(m) = old.pointer("/metadata/managedFields").cloned() {
                metadata_mut(&mut new).insert("managedFields".into(), m);
            }
            let stamp = Stamp::new(target);
            managed::track_update(
                Some(old),
                &mut new,
                &Self::writer(target, options, &stamp, subresource),
            );
        }
        let written = self.finish(target, Some(old_hub), new, options)?;
        warnings.extend(written.warnings.iter().cloned());
        Ok(Written {
            warnings,
            ..written
        })
    }

    fn writer<'a>(
        target: &'a Target,
        options: &'a WriteOptions,
        stamp: &'a Stamp,
        subresource: &'a str,
    ) -> Writer<'a> {
        Writer {
            manager: options.manager(),
            api_version: &stamp.api_version,
            subresource,
            part: if target.status {
                Part::Status
            } else {
                Part::Main {
                    exclude_status: target.resource.status_subresource,
                }
            },
            list_types: ListTypes::new(target.version.schema.as_deref()),
            now: &stamp.now,
        }
    }

    /// Prunes undeclared fields of a custom resource and fills defaults; warnings, or an error when strict.
    fn prune(
        &self,
        target: &Target,
        object: &mut Value,
        options: &WriteOptions,
    ) -> Result<Vec<String>, ApiError> {
        let Some(schema) = target.version.schema.as_deref() else {
            return Ok(Vec::new());
        };
        let pruned = prune_and_default(object, schema);
        if options.strict_fields && !pruned.is_empty() {
            let name = meta_str(object, "name").unwrap_or_default().to_string();
            let causes: Vec<Value> = pruned
                .iter()
                .map(|f| json!({"reason": "FieldValueInvalid", "message": format!("unknown field \"{}\"", &f[1..]), "field": &f[1..]}))
                .collect();
            let mut error = ApiError::new(
                StatusReason::BadRequest,
                format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                    target.resource.kind,
                    target.api_version(),
                    target.resource.kind,
                    pruned
                        .iter()
                        .map(|f| format!("unknown field \"{}\"", &f[1..]))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            error.details =
                Some(json!({"name": name, "kind": target.resource.kind, "causes": causes}));
            return Err(error);
        }
        Ok(pruned
            .iter()
            .map(|f| format!("unknown field \"{}\"", &f[1..]))
            .collect())
    }

    /// Name, namespace and uniqueness checks of a new object; fills server-owned metadata.
    fn prepare_create(&mut self, target: &Target, object: &mut Value) -> Result<(), ApiError> {
        let namespace = place_namespace(target, object)?;
        let generate_name = meta_str(object, "generateName").map(String::from);
        let mut name = meta_str(object, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            match generate_name.filter(|g| !g.is_empty()) {
                Some(prefix) => name = format!("{prefix}{}", self.ids.suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &target.resource.group,
                        &target.resource.kind,
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ));
                }
            }
        }
        if let Some(problem) = invalid_name(&name) {
            return Err(ApiError::invalid(
                &target.resource.group,
                &target.resource.kind,
                &name,
                "metadata.name",
                &format!("Invalid value: \"{name}\": {problem}"),
            ));
        }
        if let Some(url_name) = target.name.as_deref().filter(|n| *n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({url_name})"
            )));
        }
        if target.resource.namespaced {
            match self.store.get(&namespace_store(), "", &namespace) {
                None => return Err(ApiError::not_found("", "namespaces", &namespace)),
                Some(ns) if terminating(ns) => {
                    return Err(ApiError::new(
                        StatusReason::Forbidden,
                        format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                            crate::error::qualified(
                                &target.resource.group,
                                &target.resource.plural
                            )
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if self.store.get(target.store(), &namespace, &name).is_some() {
            return Err(ApiError::already_exists(
                &target.resource.group,
                &target.resource.plural,
                &name,
            ));
        }
        let uid = self.ids.uid();
        let metadata = metadata_mut(object);
        metadata.insert("name".into(), json!(name));
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("creationTimestamp".into(), json!(super::now()));
        for field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "generation",
        ] {
            metadata.remove(field);
        }
        Ok(())
    }

    /// The shared tail of every write.
    fn finish(
        &mut self,
        target: &Target,
        old_hub: Option<Value>,
        new: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let mut hub = target.decode(new);
        let kind = target.resource.kind.as_str();
        if target.resource.tracks_generation {
            let generation = match &old_hub {
                None => 1,
                Some(old) => {
                    let old_generation = old
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    let spec_changed =
                        outside_metadata_and_status(old) != outside_metadata_and_status(&hub);
                    if spec_changed {
                        old_generation + 1
                    } else {
                        old_generation
                    }
                }
            };
            metadata_mut(&mut hub).insert("generation".into(), json!(generation));
        } else {
            metadata_mut(&mut hub).remove("generation");
        }
        if !self.settings.admin_access
            && matches!(kind, "ResourceClaim" | "ResourceClaimTemplate")
            && target.resource.group == "resource.k8s.io"
        {
            let in_use = old_hub.as_ref().is_some_and(uses_admin_access);
            if !in_use {
                strip_admin_access(&mut hub);
            }
        }
        if self.settings.admin_access
            && !target.status
            && matches!(kind, "ResourceClaim" | "ResourceClaimTemplate")
            && target.resource.group == "resource.k8s.io"
        {
            self.authorize_admin_access(target, &hub)?;
        }
        match (target.resource.group.as_str(), kind) {
            ("", "Namespace") => namespace_defaults(&mut hub),
            ("apps", "DaemonSet") => super::defaults::daemon_set(&mut hub),
            ("", "Secret") => fold_string_data(&mut hub),
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                if let Err((field, problem)) = crd::resource_type(&hub) {
                    let name = meta_str(&hub, "name").unwrap_or_default();
                    return Err(ApiError::invalid(
                        "apiextensions.k8s.io",
                        "CustomResourceDefinition",
                        name,
                        &field,
                        &problem,
                    ));
                }
                if !terminating(&hub) {
                    let name = meta_str(&hub, "name").unwrap_or_default();
                    let others = self
                        .store
                        .list(target.store(), None)
                        .filter(|other| meta_str(other, "name") != Some(name));
                    let conflict = crd::name_conflict(&hub, others);
                    crd::set_established(&mut hub, &super::now(), conflict);
                }
            }
            _ => {}
        }
        if let Some(schema) = target.version.schema.as_deref() {
            let violations = match &old_hub {
                Some(old) => crate::schema::validate_update(&hub, old, schema),
                None => crate::schema::validate(&hub, schema),
            };
            if !violations.is_empty() {
                let name = meta_str(&hub, "name").unwrap_or_default();
                return Err(ApiError::invalid_fields(
                    &target.resource.group,
                    kind,
                    name,
                    &violations,
                ));
            }
        }
        if let Some(old) = &old_hub
            && same_object(old, &hub)
        {
            return Ok(Written {
                object: target.encode(old.clone()),
                changed: false,
                created: false,
                warnings: Vec::new(),
            });
        }
        if options.dry_run {
            return Ok(Written {
                object: target.encode(hub),
                changed: false,
                created: old_hub.is_none(),
                warnings: Vec::new(),
            });
        }
        let created = old_hub.is_none();
        let needs_collection = ownership_changed(old_hub.as_ref(), &hub);
        let stored = match old_hub {
            None => self.store.insert(target.store(), hub),
            Some(_) => self.store.replace(target.store(), hub),
        };
        if let ("apiextensions.k8s.io", "CustomResourceDefinition") =
            (target.resource.group.as_str(), kind)
            && crd::established(&stored)
            && let Ok(resource_type) = crd::resource_type(&stored)
        {
            self.catalog.register_crd(resource_type);
        }
        if needs_collection {
            self.collect_garbage();
        }
        Ok(Written {
            object: target.encode(stored),
            changed: true,
            created,
            warnings: Vec::new(),
        })
    }
}

impl State {
    /// What the API server's `AuthorizedForAdmin` check does: a claim or template asking for
    /// `adminAccess` is Invalid unless its namespace carries the admin label with value `"true"`.
    fn authorize_admin_access(&self, target: &Target, hub: &Value) -> Result<(), ApiError> {
        let Some(field) = admin_access_field(hub, &target.version.version) else {
            return Ok(());
        };
        let label = self.settings.admin_access_label;
        let namespace = target.namespace_key();
        let labelled = self
            .store
            .get(&namespace_store(), "", namespace)
            .and_then(|ns| ns.pointer("/metadata/labels"))
            .and_then(|labels| labels.get(label))
            .is_some_and(|value| value == "true");
        if labelled {
            return Ok(());
        }
        Err(ApiError::invalid(
            &target.resource.group,
            &target.resource.kind,
            meta_str(hub, "name").unwrap_or_default(),
            &field,
            &format!(
                "Forbidden: admin access to devices requires the `{label}: true` label on the containing namespace"
            ),
        ))
    }
}

/// Whether a write can give the garbage collector work: owner references, deletion or finalizers
/// changed (a write that leaves them alone cannot orphan, adopt or finish anything, and scanning every
/// object on each such write makes bulk creation quadratic).
fn ownership_changed(old: Option<&Value>, new: &Value) -> bool {
    let facts = |object: &Value| {
        (
            object.pointer("/metadata/ownerReferences").cloned(),
            object.pointer("/metadata/deletionTimestamp").is_some(),
            finalizers(object),
        )
    };
    let after = facts(new);
    match old.map(facts) {
        None => after.0.is_some() || after.1 || !after.2.is_empty(),
        Some(before) => before != after || after.1,
    }
}

/// The apiVersion and time a write records in `managedFields`.
struct Stamp {
    api_version: String,
    now: String,
}

impl Stamp {
    fn new(target: &Target) -> Self {
        Self {
            api_version: target.api_version(),
            now: super::now(),
        }
    }
}

fn namespace_store() -> crate::catalog::StoreKey {
    crate::catalog::StoreKey {
        group: String::new(),
        resource: "namespaces".into(),
    }
}

#[cfg(test)]
mod collection_tests {
    use super::*;

    #[test]
    fn only_ownership_deletion_and_finalizer_changes_need_collection() {
        let plain = json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}});
        let owned = json!({"metadata": {"name": "p", "ownerReferences": [{"uid": "u1"}]}});
        let other_owner = json!({"metadata": {"name": "p", "ownerReferences": [{"uid": "u2"}]}});
        let owned_status = json!({"metadata": {"name": "p", "ownerReferences": [{"uid": "u1"}]}, "status": {"phase": "Failed"}});
        let terminating =
            json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        let finalized = json!({"metadata": {"name": "p", "finalizers": ["x"]}});
        for (old, new, needed) in [
            (None, &plain, false),
            (None, &owned, true),
            (None, &finalized, true),
            (Some(&plain), &plain, false),
            (Some(&owned), &owned_status, false),
            (Some(&owned), &other_owner, true),
            (Some(&owned), &plain, true),
            (Some(&finalized), &plain, true),
            (Some(&terminating), &terminating, true),
        ] {
            assert_eq!(ownership_changed(old, new), needed, "{old:?} → {new}");
        }
    }
}
