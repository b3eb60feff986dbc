//! A minimal OpenAPI v3 surface: the index and one document per group-version whose paths carry the
//! `x-kubernetes-group-version-kind` and `fieldValidation` markers. That is what kubectl and helm read
//! to decide that the server validates fields itself (they then send `fieldValidation=Strict` and skip
//! client-side schema checks). Schemas are not served; kubectl then computes strategic merge patches from
//! its compiled-in types, as it does against any server without them.

use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, ResourceType};

/// `/openapi/v3`: every served group-version with the URL of its document.
pub fn index(catalog: &Catalog, version_tag: &str) -> Value {
    let mut paths = Map::new();
    for group in catalog.groups() {
        for version in &group.versions {
            let key = if group.name.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{}/{version}", group.name)
            };
            let hash = format!(
                "{:016x}",
                fingerprint(&format!(
                    "{key}:{version_tag}:{}",
                    document_seed(catalog, &group.name, version)
                ))
            );
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`, or `None` when not served.
pub fn document(
    catalog: &Catalog,
    group: &str,
    version: &str,
    kubernetes_version: &str,
) -> Option<Value> {
    let resources = catalog.resources_in(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for (resource, _) in resources {
        add_paths(&mut paths, resource, version);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": kubernetes_version},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

fn query_parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn add_paths(paths: &mut Map<String, Value>, resource: &ResourceType, version: &str) {
    let prefix = if resource.group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{}/{version}", resource.group)
    };
    let scope = if resource.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let collection = format!("{prefix}{scope}/{}", resource.plural);
    let gvk = json!({"group": resource.group, "version": version, "kind": resource.kind});
    let write_parameters = json!([
        query_parameter(
            "dryRun",
            "When present, indicates that modifications should not be persisted."
        ),
        query_parameter(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes."
        ),
        query_parameter(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields."
        ),
    ]);
    let operation = |action: &str, id: &str, parameters: &Value| {
        json!({
            "operationId": format!("{id}{}", resource.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": parameters,
            "responses": {"200": {"description": "OK"}},
        })
    };
    let none = json!([]);
    let mut patch_parameters = write_parameters.clone();
    if let Some(list) = patch_parameters.as_array_mut() {
        list.push(query_parameter(
            "force",
            "Force is going to \"force\" Apply requests.",
        ));
    }
    let mut patch = operation("patch", "patch", &patch_parameters);
    patch["requestBody"] = json!({"content": {
        "application/json-patch+json": {"schema": {"type": "object"}},
        "application/merge-patch+json": {"schema": {"type": "object"}},
        "application/apply-patch+yaml": {"schema": {"type": "object"}},
    }});
    paths.insert(
        collection.clone(),
        json!({"get": operation("list", "list", &none), "post": operation("post", "create", &write_parameters)}),
    );
    paths.insert(
        format!("{collection}/{{name}}"),
        json!({
            "get": operation("get", "read", &none),
            "put": operation("put", "replace", &write_parameters),
            "patch": patch,
            "delete": operation("delete", "delete", &none),
        }),
    );
}

fn document_seed(catalog: &Catalog, group: &str, version: &str) -> String {
    catalog
        .resources_in(group, version)
        .iter()
        .map(|(r, _)| format!("{}/{};", r.plural, r.kind))
        .collect()
}

/// FNV-1a: a stable hash so clients re-fetch a document when what it describes changes.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DraVersion;

    #[test]
    fn index_lists_every_served_group_version() {
        let catalog = Catalog::new(&[DraVersion::V1beta1]);
        let index = index(&catalog, "v1.35.0");
        let paths = index["paths"].as_object().unwrap();
        assert!(paths.contains_key("api/v1"));
        assert!(paths.contains_key("apis/apps/v1"));
        assert!(paths.contains_key("apis/resource.k8s.io/v1beta1"));
        assert!(
            paths["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
    }

    #[test]
    fn patch_operations_advertise_field_validation() {
        let doc = document(&Catalog::new(&[]), "apps", "v1", "v1.35.0").unwrap();
        let path = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"];
        assert_eq!(
            path["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "DaemonSet"
        );
        assert!(
            path["patch"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(doc["paths"]["/apis/node.k8s.io/v1/runtimeclasses/{name}"].is_null());
        assert!(document(&Catalog::new(&[]), "node.k8s.io", "v1", "v1.35.0").unwrap()["paths"]["/apis/node.k8s.io/v1/runtimeclasses/{name}"].is_object());
    }
}
