//! The API semantics over the store: what get, list, create, update, patch, apply and delete do to
//! objects (metadata, generation, status subresource, field ownership, finalizers, garbage collection).
//! Everything here is synchronous and runs under the server's state lock; HTTP lives in `http`.

mod checks;
mod defaults;
mod delete;
mod gc;
mod read;
mod rules;
mod write;

use serde_json::{Value, json};

pub use defaults::canonical_quantity;
pub use delete::{DeleteOptions, Propagation};
pub use read::{ListQuery, WatchStart};
pub use rules::admin_access_label;
pub use write::{WriteOptions, Written};

use crate::catalog::{Catalog, ResourceType, ServedVersion, StoreKey};
use crate::error::ApiError;
use crate::store::Store;

/// Server behaviour a test can switch.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether the DRA admin-access feature gate is on (off: `adminAccess` is silently dropped on write).
    pub admin_access: bool,
    /// Whether owner-reference garbage collection runs.
    pub garbage_collection: bool,
    /// The namespace label that admits DRA `adminAccess` requests (see [`admin_access_label`]).
    pub admin_access_label: &'static str,
}

/// Catalog, objects and settings: the state behind the server's lock.
pub struct State {
    /// What is served.
    pub catalog: Catalog,
    /// The objects.
    pub store: Store,
    /// Switchable behaviour.
    pub settings: Settings,
    ids: Ids,
}

/// What a request addresses, resolved against the catalog.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource.
    pub resource: ResourceType,
    /// The version the client reads or writes.
    pub version: ServedVersion,
    /// Namespace from the path (namespaced resources).
    pub namespace: Option<String>,
    /// Object name from the path (object requests).
    pub name: Option<String>,
    /// Whether the request is for the `/status` subresource.
    pub status: bool,
}

impl Target {
    /// `apiVersion` the client uses.
    pub fn api_version(&self) -> String {
        self.resource.api_version(&self.version.version)
    }

    fn store(&self) -> &StoreKey {
        &self.resource.store
    }

    fn namespace_key(&self) -> &str {
        if self.resource.namespaced {
            self.namespace.as_deref().unwrap_or_default()
        } else {
            ""
        }
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(&self.resource.group, &self.resource.plural, name)
    }

    /// Stored form → what the client reads.
    pub fn encode(&self, hub: Value) -> Value {
        self.version
            .codec
            .from_hub(&self.resource.kind, hub, &self.api_version())
    }

    /// What the client wrote → stored form.
    fn decode(&self, served: Value) -> Value {
        self.version.codec.to_hub(
            &self.resource.kind,
            served,
            &self.resource.storage_api_version,
        )
    }
}

impl State {
    /// A fresh state.
    pub fn new(catalog: Catalog, settings: Settings, history_limit: usize) -> Self {
        Self {
            catalog,
            store: Store::new(history_limit),
            settings,
            ids: Ids::new(),
        }
    }

    /// Resolves `group/version/plural` (+ namespace, name, status) to a target, or 404.
    pub fn target(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        status: bool,
    ) -> Result<Target, ApiError> {
        let (resource, served) = self
            .catalog
            .find(group, version, plural)
            .ok_or_else(ApiError::no_route)?;
        if status && !resource.status_subresource {
            return Err(ApiError::no_route());
        }
        Ok(Target {
            resource: resource.clone(),
            version: served.clone(),
            namespace: namespace.map(String::from),
            name: name.map(String::from),
            status,
        })
    }

    /// Resolves `apiVersion` + `kind` (+ namespace, name) to a target, or 404 naming the kind.
    pub fn target_for_kind(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<Target, ApiError> {
        let (resource, served) = self.catalog.find_kind(api_version, kind).ok_or_else(|| {
            ApiError::new(
                crate::error::StatusReason::NotFound,
                format!("no resource of kind {kind} is served at {api_version} (enable it, or create its CRD first)"),
            )
        })?;
        Ok(Target {
            resource: resource.clone(),
            version: served.clone(),
            namespace: if resource.namespaced {
                Some(namespace.unwrap_or("default").to_string())
            } else {
                None
            },
            name: name.map(String::from),
            status: false,
        })
    }
}

/// RFC 3339 UTC time with second precision, as in `creationTimestamp`.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Unique ids and random name suffixes.
struct Ids {
    state: u64,
}

impl Ids {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        Self {
            state: nanos ^ (u64::from(std::process::id()) << 32),
        }
    }

    /// splitmix64: good enough to make names unique, not for anything secret.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    /// The 5-character suffix `generateName` gets.
    fn suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.next();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
                n /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }
}

/// `metadata.<field>` as a string.
pub(crate) fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// `metadata.finalizers`.
pub(crate) fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn terminating(object: &Value) -> bool {
    meta_str(object, "deletionTimestamp").is_some()
}

/// Ensures `object.metadata` is an object.
pub(crate) fn metadata_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn uids_look_like_uuids_and_differ() {
        let mut ids = Ids::new();
        let (a, b) = (ids.uid(), ids.uid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        let suffix = ids.suffix();
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
    }
}
