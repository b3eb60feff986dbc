//! Discovery documents built from the catalog: `/version`, `/api`, `/apis`, `/apis/<group>`,
//! `/apis/<group>/<version>`, and the aggregated (`apidiscovery.k8s.io/v2`) form kubectl and kube-rs
//! ask for first.

use serde_json::{Value, json};

use crate::catalog::{Catalog, ResourceType, ServedVersion, api_version};

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

/// `/version` for a `gitVersion` like `v1.35.0`.
pub fn version(git_version: &str) -> Value {
    let numbers: Vec<&str> = git_version
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .collect();
    json!({
        "major": numbers.first().copied().unwrap_or("1"),
        "minor": numbers.get(1).copied().unwrap_or("0"),
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": api_version(name, v), "version": v}))
        .collect();
    json!({"name": name, "versions": entries, "preferredVersion": entries.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`.
pub fn group_list(catalog: &Catalog) -> Value {
    let groups: Vec<Value> = catalog
        .groups()
        .iter()
        .filter(|g| !g.name.is_empty())
        .map(|g| group_json(&g.name, &g.versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, or `None` when the group is not served.
pub fn group(catalog: &Catalog, name: &str) -> Option<Value> {
    let group = catalog
        .groups()
        .into_iter()
        .find(|g| g.name == name && !name.is_empty())?;
    let mut document = group_json(&group.name, &group.versions);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

/// `/api/v1` or `/apis/<group>/<version>`, or `None` when not served.
pub fn resource_list(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    let served = catalog.resources_in(group, version);
    if served.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for (resource, _) in served {
        let mut entry = json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": VERBS,
        });
        if !resource.short_names.is_empty() {
            entry["shortNames"] = json!(resource.short_names);
        }
        if !resource.categories.is_empty() {
            entry["categories"] = json!(resource.categories);
        }
        resources.push(entry);
        if resource.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", resource.plural),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": STATUS_VERBS,
            }));
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": api_version(group, version),
        "resources": resources,
    }))
}

fn aggregated_resource(resource: &ResourceType, version: &ServedVersion) -> Value {
    let response_kind =
        json!({"group": resource.group, "version": version.version, "kind": resource.kind});
    let mut entry = json!({
        "resource": resource.plural,
        "responseKind": response_kind,
        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": resource.singular,
        "verbs": VERBS,
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    if resource.status_subresource {
        entry["subresources"] = json!([{"subresource": "status", "responseKind": response_kind, "verbs": STATUS_VERBS}]);
    }
    entry
}

/// Aggregated discovery (`APIGroupDiscoveryList`) of the core group (`core = true`) or of all named groups.
pub fn aggregated(catalog: &Catalog, core: bool) -> Value {
    let items: Vec<Value> = catalog
        .groups()
        .iter()
        .filter(|g| g.name.is_empty() == core)
        .map(|g| {
            let versions: Vec<Value> = g
                .versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = catalog
                        .resources_in(&g.name, v)
                        .into_iter()
                        .map(|(r, sv)| aggregated_resource(r, sv))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g.name, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DraVersion;

    #[test]
    fn version_splits_major_and_minor() {
        let v = version("v1.34.2");
        assert_eq!(
            (v["major"].as_str(), v["minor"].as_str()),
            (Some("1"), Some("34"))
        );
        assert_eq!(v["gitVersion"], "v1.34.2");
    }

    #[test]
    fn dra_group_prefers_the_newest_version() {
        let catalog = Catalog::new(&[DraVersion::V1beta1, DraVersion::V1beta2]);
        let dra = group(&catalog, "resource.k8s.io").unwrap();
        assert_eq!(dra["preferredVersion"]["version"], "v1beta2");
        assert!(group(&Catalog::new(&[]), "resource.k8s.io").is_none());
        assert!(resource_list(&catalog, "resource.k8s.io", "v1").is_none());
    }

    #[test]
    fn status_subresources_are_listed() {
        let list = resource_list(&Catalog::new(&[]), "apps", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"daemonsets") && names.contains(&"daemonsets/status"),
            "{names:?}"
        );
    }

    #[test]
    fn aggregated_core_has_only_v1() {
        let core = aggregated(&Catalog::new(&[]), true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert_eq!(core["items"][0]["versions"][0]["version"], "v1");
        let named = aggregated(&Catalog::new(&[]), false);
        assert!(
            named["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| g["metadata"]["name"] != "")
        );
    }
}
