//! CustomResourceDefinitions: turning a stored CRD into a served resource type, and the status the
//! real apiextensions controller writes (`Established`, `NamesAccepted`) that helm and kubectl wait for.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::catalog::{
    Origin, PrinterColumn, ResourceType, ServedVersion, StoreKey, api_version, version_priority,
};
use crate::convert::Codec;

/// A CRD field that fails validation: `(field path, problem)`.
pub type Invalid = (String, String);

/// The served resource a CRD defines, or the first validation problem.
pub fn resource_type(crd: &Value) -> Result<ResourceType, Invalid> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec = crd.get("spec").ok_or_else(|| required("spec"))?;
    let group = string(spec, "group").ok_or_else(|| required("spec.group"))?;
    let names = spec.get("names").ok_or_else(|| required("spec.names"))?;
    let plural = string(names, "plural").ok_or_else(|| required("spec.names.plural"))?;
    let kind = string(names, "kind").ok_or_else(|| required("spec.names.kind"))?;
    if name != format!("{plural}.{group}") {
        return Err((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let namespaced = match string(spec, "scope").as_deref() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => {
            return Err((
                "spec.scope".into(),
                format!(
                    "Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
                ),
            ));
        }
    };
    let all_versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if all_versions.is_empty() {
        return Err((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    let storage: Vec<&Value> = all_versions
        .iter()
        .filter(|v| v.get("storage") == Some(&json!(true)))
        .collect();
    let [storage] = storage.as_slice() else {
        return Err((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    };
    let storage_version =
        string(storage, "name").ok_or_else(|| required("spec.versions[].name"))?;

    let mut served: Vec<&Value> = all_versions
        .iter()
        .filter(|v| v.get("served") == Some(&json!(true)))
        .collect();
    served.sort_by(|a, b| {
        let name = |v: &Value| string(v, "name").unwrap_or_default();
        version_priority(&name(b)).cmp(&version_priority(&name(a)))
    });
    if served.is_empty() {
        return Err((
            "spec.versions".into(),
            "Invalid value: must have at least one served version".into(),
        ));
    }
    let status_subresource = served
        .iter()
        .any(|v| v.pointer("/subresources/status").is_some());
    let versions = served
        .iter()
        .map(|v| ServedVersion {
            version: string(v, "name").unwrap_or_default(),
            codec: Codec::Identity,
            schema: v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new),
            printer_columns: printer_columns(v),
        })
        .collect();

    let strings = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(ResourceType {
        singular: string(names, "singular").unwrap_or_else(|| kind.to_lowercase()),
        list_kind: string(names, "listKind").unwrap_or_else(|| format!("{kind}List")),
        short_names: strings("shortNames"),
        categories: strings("categories"),
        namespaced,
        versions,
        status_subresource,
        tracks_generation: true,
        store: StoreKey {
            group: group.clone(),
            resource: plural.clone(),
        },
        storage_api_version: api_version(&group, &storage_version),
        origin: Origin::Crd(name.to_string()),
        group,
        plural,
        kind,
    })
}

fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    let Some(columns) = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    columns
        .iter()
        .map(|c| PrinterColumn {
            name: string(c, "name").unwrap_or_default(),
            column_type: string(c, "type").unwrap_or_else(|| "string".into()),
            format: string(c, "format").unwrap_or_default(),
            description: string(c, "description").unwrap_or_default(),
            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            json_path: string(c, "jsonPath").unwrap_or_default(),
        })
        .collect()
}

/// A name another CRD of the same group already claims, as the apiextensions naming controller reports
/// it: the condition reason (`PluralConflict`, `SingularConflict`, `ShortNamesConflict`, `KindConflict`,
/// `ListKindConflict`) and message (`"gdc" is already in use`).
pub type NameConflict = (&'static str, String);

/// The first name of `crd` that `others` (the group's other CRDs) already accepted, unless `crd` itself
/// accepted it earlier.
pub fn name_conflict<'a>(
    crd: &Value,
    others: impl Iterator<Item = &'a Value>,
) -> Option<NameConflict> {
    let group = crd.pointer("/spec/group");
    let mut resources: Vec<String> = Vec::new();
    let mut kinds: Vec<String> = Vec::new();
    for other in others.filter(|o| o.pointer("/spec/group") == group) {
        let accepted = other.pointer("/status/acceptedNames");
        let names = |key: &str| -> Vec<String> {
            match accepted.and_then(|a| a.get(key)) {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(many)) => many
                    .iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            }
        };
        resources.extend(
            ["plural", "singular", "shortNames"]
                .into_iter()
                .flat_map(names),
        );
        kinds.extend(["kind", "listKind"].into_iter().flat_map(names));
    }
    let requested = |key: &str| {
        crd.pointer(&format!("/spec/names/{key}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let accepted = |key: &str| {
        crd.pointer(&format!("/status/acceptedNames/{key}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let taken = |name: &str, used: &[String]| used.iter().any(|u| u == name);
    let checks = [
        ("plural", "PluralConflict", &resources),
        ("singular", "SingularConflict", &resources),
        ("shortNames", "ShortNamesConflict", &resources),
        ("kind", "KindConflict", &kinds),
        ("listKind", "ListKindConflict", &kinds),
    ];
    for (key, reason, used) in checks {
        let (requested, accepted) = (requested(key), accepted(key));
        let already: Vec<&str> = match &accepted {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let wanted: Vec<&str> = match &requested {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if let Some(name) = wanted
            .into_iter()
            .find(|name| !already.contains(name) && taken(name, used))
        {
            return Some((reason, format!("{name:?} is already in use")));
        }
    }
    None
}

/// Sets the status the apiextensions controllers would: names accepted and established, stored versions;
/// with a name conflict, `NamesAccepted=False` and `Established=False` (the resource is not served).
pub fn set_established(crd: &mut Value, now: &str, conflict: Option<NameConflict>) {
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let storage = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v.get("storage") == Some(&json!(true))))
        .and_then(|v| v.get("name"))
        .cloned();
    let mut stored_versions: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(storage) = storage
        && !stored_versions.contains(&storage)
    {
        stored_versions.push(storage);
    }
    let condition = |kind: &str, status: &str, reason: &str, message: &str| json!({"type": kind, "status": status, "lastTransitionTime": now, "reason": reason, "message": message});
    let (accepted_names, conditions) = match conflict {
        None => (
            names,
            vec![
                condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                condition(
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                ),
            ],
        ),
        Some((reason, message)) => (
            crd.pointer("/status/acceptedNames")
                .cloned()
                .unwrap_or_else(|| json!({"plural": "", "kind": ""})),
            vec![
                condition("NamesAccepted", "False", reason, &message),
                condition(
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                ),
            ],
        ),
    };
    crd["status"] = json!({
        "acceptedNames": accepted_names,
        "conditions": conditions,
        "storedVersions": stored_versions,
    });
}

/// Whether the CRD's resource is served (its `Established` condition is true).
pub fn established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

fn string(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn required(field: &str) -> Invalid {
    (field.to_string(), "Required value".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "gpudiagnosticsconfigs.gpu.example.com"},
            "spec": {
                "group": "gpu.example.com",
                "scope": "Cluster",
                "names": {"plural": "gpudiagnosticsconfigs", "kind": "GpuDiagnosticsConfig", "shortNames": ["gdc"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "schema": {"openAPIV3Schema": {"type": "object"}},
                     "additionalPrinterColumns": [{"name": "Mode", "type": "string", "jsonPath": ".status.mode"}]},
                    {"name": "v0", "served": false, "storage": false}
                ]
            }
        })
    }

    #[test]
    fn crd_becomes_a_served_type() {
        let t = resource_type(&crd()).unwrap();
        assert_eq!(t.kind, "GpuDiagnosticsConfig");
        assert_eq!(t.list_kind, "GpuDiagnosticsConfigList");
        assert_eq!(t.singular, "gpudiagnosticsconfig");
        assert!(!t.namespaced);
        assert!(t.status_subresource);
        assert_eq!(t.short_names, ["gdc"]);
        let versions: Vec<&str> = t.versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(versions, ["v1", "v1alpha1"]);
        assert_eq!(t.storage_api_version, "gpu.example.com/v1");
        assert_eq!(t.preferred().printer_columns[0].json_path, ".status.mode");
    }

    #[test]
    fn invalid_crds_name_the_field() {
        let mut wrong_name = crd();
        wrong_name["metadata"]["name"] = json!("configs.gpu.example.com");
        assert_eq!(resource_type(&wrong_name).unwrap_err().0, "metadata.name");

        let mut two_storage = crd();
        two_storage["spec"]["versions"][0]["storage"] = json!(true);
        assert_eq!(resource_type(&two_storage).unwrap_err().0, "spec.versions");

        let mut bad_scope = crd();
        bad_scope["spec"]["scope"] = json!("Galaxy");
        assert_eq!(resource_type(&bad_scope).unwrap_err().0, "spec.scope");
    }

    #[test]
    fn established_status() {
        let mut object = crd();
        set_established(&mut object, "2026-01-01T00:00:00Z", None);
        let conditions = object["status"]["conditions"].as_array().unwrap();
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        );
        assert_eq!(object["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(
            object["status"]["acceptedNames"]["kind"],
            "GpuDiagnosticsConfig"
        );
    }

    #[test]
    fn a_name_another_crd_of_the_group_accepted_is_refused() {
        let mut other = json!({"metadata": {"name": "profiles.gpu.example.com"},
            "spec": {"group": "gpu.example.com", "names": {"plural": "profiles", "kind": "Profile", "shortNames": ["gdc"]}}});
        set_established(&mut other, "2026-01-01T00:00:00Z", None);
        let elsewhere = json!({"spec": {"group": "other.example.com"},
            "status": {"acceptedNames": {"plural": "gpudiagnosticsconfigs", "kind": "GpuDiagnosticsConfig"}}});
        let mut object = crd();
        assert_eq!(
            name_conflict(&object, [&elsewhere].into_iter()),
            None,
            "other groups do not count"
        );
        let conflict = name_conflict(&object, [&elsewhere, &other].into_iter());
        assert_eq!(
            conflict,
            Some((
                "ShortNamesConflict",
                "\"gdc\" is already in use".to_string()
            ))
        );
        set_established(&mut object, "2026-01-01T00:00:00Z", conflict);
        assert!(!established(&object));
        assert_eq!(object["status"]["conditions"][0]["status"], "False");
        assert_eq!(object["status"]["conditions"][1]["reason"], "NotAccepted");

        let mut accepted = crd();
        set_established(&mut accepted, "2026-01-01T00:00:00Z", None);
        assert_eq!(
            name_conflict(&accepted, [&other].into_iter()),
            None,
            "names a CRD accepted before stay its own"
        );
    }
}
