//! The resource catalog: which groups, versions and resources the server serves right now (built-ins,
//! the DRA versions a test enabled, registered CRDs). Discovery, routing and storage all read it.

mod builtin;

use std::sync::Arc;

use serde_json::Value;

pub use builtin::DraVersion;
use builtin::builtin_types;

use crate::convert::Codec;

/// Where objects of a resource are stored: several served resources may share one store
/// (`events` in the core group and in `events.k8s.io`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey {
    /// API group of the stored form (`""` for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

/// One column of `kubectl get` output (a CRD's `additionalPrinterColumns` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub column_type: String,
    /// Optional format hint.
    pub format: String,
    /// Column description.
    pub description: String,
    /// 0 = shown by default, > 0 = only with `-o wide`.
    pub priority: i64,
    /// JSONPath into the object.
    pub json_path: String,
}

/// One served version of a resource.
#[derive(Debug, Clone)]
pub struct ServedVersion {
    /// The version (`v1`, `v1beta1`).
    pub version: String,
    /// How objects at this version map to the stored form.
    pub codec: Codec,
    /// The CRD's `openAPIV3Schema` for pruning, defaulting and list types; `None` for built-ins.
    pub schema: Option<Arc<Value>>,
    /// Printer columns; empty means Name and Age.
    pub printer_columns: Vec<PrinterColumn>,
}

/// Whether a resource is built in or comes from a CustomResourceDefinition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Part of the default catalog.
    BuiltIn,
    /// Registered by the CRD of this name.
    Crd(String),
}

/// A served resource and everything the server needs to know about it.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group (`""` for core).
    pub group: String,
    /// Plural name used in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind of one object.
    pub kind: String,
    /// Kind of a list.
    pub list_kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// `kubectl` short names.
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Served versions, preferred first.
    pub versions: Vec<ServedVersion>,
    /// Whether `/status` is a separate subresource.
    pub status_subresource: bool,
    /// Whether objects carry `metadata.generation` (workloads, DRA classes and slices, CRDs, custom
    /// resources; not ConfigMaps, Secrets, Namespaces, …).
    pub tracks_generation: bool,
    /// Where the objects live.
    pub store: StoreKey,
    /// `apiVersion` of the stored form.
    pub storage_api_version: String,
    /// Built in or CRD.
    pub origin: Origin,
}

impl ResourceType {
    /// The served version called `version`.
    pub fn version(&self, version: &str) -> Option<&ServedVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self, version: &str) -> String {
        api_version(&self.group, version)
    }

    /// The preferred served version.
    pub fn preferred(&self) -> &ServedVersion {
        self.versions
            .first()
            .expect("a resource type always has a served version")
    }
}

/// `group/version`, or `version` for the core group.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Splits an `apiVersion` into group and version.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// A served API group for discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Group name (`""` for core).
    pub name: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
}

/// Everything served now.
#[derive(Debug, Clone)]
pub struct Catalog {
    builtins: Vec<ResourceType>,
    crds: Vec<ResourceType>,
}

impl Catalog {
    /// The default built-ins with the given DRA versions served.
    pub fn new(dra_versions: &[DraVersion]) -> Self {
        Self {
            builtins: builtin_types(dra_versions),
            crds: Vec::new(),
        }
    }

    /// Re-serves `resource.k8s.io` at these versions (stored DRA objects stay).
    pub fn set_dra_versions(&mut self, dra_versions: &[DraVersion]) {
        self.builtins = builtin_types(dra_versions);
    }

    /// Every served resource type, built-ins first.
    pub fn types(&self) -> impl Iterator<Item = &ResourceType> {
        self.builtins.iter().chain(self.crds.iter())
    }

    /// The resource served at `group/version/plural`.
    pub fn find(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<(&ResourceType, &ServedVersion)> {
        self.types()
            .filter(|t| t.group == group && t.plural == plural)
            .find_map(|t| t.version(version).map(|v| (t, v)))
    }

    /// The resource served for `apiVersion` + `kind`.
    pub fn find_kind(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Option<(&ResourceType, &ServedVersion)> {
        let (group, version) = split_api_version(api_version);
        self.types()
            .filter(|t| t.group == group && t.kind == kind)
            .find_map(|t| t.version(version).map(|v| (t, v)))
    }

    /// The resource type of `kind` in `group` at any served version (owner-reference resolution).
    pub fn find_group_kind(&self, group: &str, kind: &str) -> Option<&ResourceType> {
        self.types().find(|t| t.group == group && t.kind == kind)
    }

    /// The type whose own group and plural name a store (the primary one when several share it).
    pub fn by_store(&self, key: &StoreKey) -> Option<&ResourceType> {
        self.types()
            .find(|t| &t.store == key && t.group == key.group && t.plural == key.resource)
    }

    /// Served groups in discovery order: core, built-ins in catalog order, then CRD groups by name.
    pub fn groups(&self) -> Vec<GroupInfo> {
        let mut groups: Vec<GroupInfo> = Vec::new();
        let mut crd_groups: Vec<&ResourceType> = self.crds.iter().collect();
        crd_groups.sort_by(|a, b| a.group.cmp(&b.group));
        for t in self.builtins.iter().chain(crd_groups) {
            let versions = t.versions.iter().map(|v| v.version.clone());
            match groups.iter_mut().find(|g| g.name == t.group) {
                Some(group) => {
                    for version in versions {
                        if !group.versions.contains(&version) {
                            group.versions.push(version);
                        }
                    }
                    group
                        .versions
                        .sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
                }
                None => groups.push(GroupInfo {
                    name: t.group.clone(),
                    versions: versions.collect(),
                }),
            }
        }
        groups
    }

    /// Resources served at `group/version`.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<(&ResourceType, &ServedVersion)> {
        self.types()
            .filter(|t| t.group == group)
            .filter_map(|t| t.version(version).map(|v| (t, v)))
            .collect()
    }

    /// Registers (or re-registers) the resource a CRD defines.
    pub fn register_crd(&mut self, resource_type: ResourceType) {
        self.crds.retain(|t| t.origin != resource_type.origin);
        self.crds.push(resource_type);
    }

    /// Removes the resource the named CRD defined.
    pub fn unregister_crd(&mut self, crd_name: &str) {
        self.crds
            .retain(|t| t.origin != Origin::Crd(crd_name.to_string()));
    }
}

/// Kubernetes' version ordering: GA > beta > alpha > anything else, higher numbers first.
/// Returns a sortable key; larger is preferred.
pub fn version_priority(version: &str) -> (u8, u32, u32, std::cmp::Reverse<String>) {
    let parsed = version.strip_prefix('v').and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u32 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        for (prefix, level) in [("beta", 2), ("alpha", 1)] {
            if let Some(minor) = tail.strip_prefix(prefix) {
                return Some((level, major, minor.parse().ok()?));
            }
        }
        None
    });
    match parsed {
        Some((level, major, minor)) => (level, major, minor, std::cmp::Reverse(String::new())),
        None => (0, 0, 0, std::cmp::Reverse(version.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut versions = vec![
            "v1beta1", "foo", "v1alpha3", "v2", "v1", "v1beta2", "v10beta1",
        ];
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(
            versions,
            [
                "v2", "v1", "v10beta1", "v1beta2", "v1beta1", "v1alpha3", "foo"
            ]
        );
    }

    #[test]
    fn dra_versions_are_served_as_configured() {
        let catalog = Catalog::new(&[DraVersion::V1beta1, DraVersion::V1]);
        let dra = catalog
            .groups()
            .into_iter()
            .find(|g| g.name == "resource.k8s.io")
            .unwrap();
        assert_eq!(dra.versions, ["v1", "v1beta1"]);
        assert!(
            catalog
                .find("resource.k8s.io", "v1beta2", "deviceclasses")
                .is_none()
        );
        let (t, v) = catalog
            .find("resource.k8s.io", "v1beta1", "resourceclaimtemplates")
            .unwrap();
        assert_eq!(v.codec, Codec::DraV1beta1);
        assert_eq!(t.storage_api_version, "resource.k8s.io/v1");

        let none = Catalog::new(&[]);
        assert!(none.groups().iter().all(|g| g.name != "resource.k8s.io"));
    }

    #[test]
    fn both_event_apis_share_one_store() {
        let catalog = Catalog::new(&[]);
        let (core, _) = catalog.find("", "v1", "events").unwrap();
        let (new, version) = catalog.find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.store, new.store);
        assert_eq!(version.codec, Codec::EventsV1);
        assert_eq!(catalog.by_store(&new.store).unwrap().group, "");
    }

    #[test]
    fn kinds_resolve_through_api_version() {
        let catalog = Catalog::new(&[]);
        let (t, _) = catalog.find_kind("apps/v1", "DaemonSet").unwrap();
        assert_eq!(t.plural, "daemonsets");
        assert!(t.status_subresource);
        assert!(catalog.find_kind("apps/v2", "DaemonSet").is_none());
        assert!(
            !catalog
                .find_kind("node.k8s.io/v1", "RuntimeClass")
                .unwrap()
                .0
                .namespaced
        );
    }
}
