//! What reconciles read from watches instead of the API server: the Nodes ([`NodeStore`]), the
//! RuntimeClasses and DeviceClasses (whole kinds, a few small objects), and the objects the
//! operator wrote (DaemonSets, ClusterRoles, ClusterRoleBindings, claim templates: one or two per
//! config, selected by the operator's label). The watches that keep them current are the ones that
//! trigger reconciles (`controller::run`), so a no-op reconcile sends no request for them.
//!
//! A cached object is as fresh as its watch: an object the cache lacks is read with a GET
//! (an object of the operator's name it did not label, or one written a moment ago), and a cache
//! whose watch has not listed yet answers nothing, so tests and a starting operator read everything.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::core::ApiResource;
use serde_json::Value;

use crate::error::Result;
use crate::kube_api::KubeApi;
use crate::nodes::NodeStore;

/// An object's namespace (none for cluster-scoped kinds) and name.
type Key = (Option<String>, String);

/// What a cache says about one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// The object as the watch last delivered it (managed fields removed).
    Found(Value),
    /// The watch lists the whole kind and has no such object.
    Absent,
    /// The cache cannot tell: read it from the API server.
    Unknown,
}

/// Which objects a cache's watch lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every object of the kind: a missing object does not exist.
    WholeKind,
    /// Only the objects the operator labelled: a missing object may still exist.
    Labelled,
}

#[derive(Debug, Default)]
struct CacheState {
    /// `apiVersion/plural` of the watched resource; lookups of another version are not answered.
    source: Option<String>,
    synced: bool,
    objects: HashMap<Key, Arc<Value>>,
    /// A listing in progress (the watch's initial list or a re-list after it dropped).
    listing: Option<HashMap<Key, Arc<Value>>>,
}

/// One watched kind's objects by namespace and name.
#[derive(Debug)]
pub struct ObjectCache {
    coverage: Coverage,
    state: RwLock<CacheState>,
}

fn source_of(resource: &ApiResource) -> String {
    format!("{}/{}", resource.api_version, resource.plural)
}

/// The cache key of an object and the object without `metadata.managedFields` (never read, and
/// often the largest part of a small object).
fn keyed(mut object: Value) -> (Key, Arc<Value>) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    let meta = &object["metadata"];
    let key = (
        meta["namespace"].as_str().map(str::to_owned),
        meta["name"].as_str().unwrap_or_default().to_owned(),
    );
    (key, Arc::new(object))
}

impl ObjectCache {
    /// An empty cache whose watch lists `coverage`.
    pub fn new(coverage: Coverage) -> Self {
        Self {
            coverage,
            state: RwLock::new(CacheState::default()),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheState> {
        // A panic while holding the lock leaves a consistent map behind: keep using it.
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A watch of `resource` starts feeding this cache (forgetting what another version left).
    pub fn watching(&self, resource: &ApiResource) {
        *self.write() = CacheState {
            source: Some(source_of(resource)),
            ..CacheState::default()
        };
    }

    /// The watch starts a (re-)listing.
    pub fn listing_started(&self) {
        self.write().listing = Some(HashMap::new());
    }

    /// An object of the listing in progress.
    pub fn listed(&self, object: Value) {
        let (key, object) = keyed(object);
        self.write()
            .listing
            .get_or_insert_with(HashMap::new)
            .insert(key, object);
    }

    /// The listing is complete: it replaces what was cached.
    pub fn listing_done(&self) {
        let mut state = self.write();
        state.objects = state.listing.take().unwrap_or_default();
        state.synced = true;
    }

    /// An object was added or changed.
    pub fn applied(&self, object: Value) {
        let (key, object) = keyed(object);
        self.write().objects.insert(key, object);
    }

    /// An object was deleted.
    pub fn deleted(&self, object: &Value) {
        let (key, _) = keyed(object.clone());
        self.write().objects.remove(&key);
    }

    /// What the cache knows of `namespace/name` of `resource`.
    pub fn lookup(&self, resource: &ApiResource, namespace: Option<&str>, name: &str) -> Cached {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if !state.synced || state.source.as_deref() != Some(source_of(resource).as_str()) {
            return Cached::Unknown;
        }
        let key = (namespace.map(str::to_owned), name.to_owned());
        match (state.objects.get(&key), self.coverage) {
            (Some(object), _) => Cached::Found(object.as_ref().clone()),
            (None, Coverage::WholeKind) => Cached::Absent,
            (None, Coverage::Labelled) => Cached::Unknown,
        }
    }
}

/// Every cache a reconcile reads, shared by all reconciles and fed by the controller's watches.
#[derive(Debug)]
pub struct Caches {
    /// Every Node, slim.
    pub nodes: NodeStore,
    /// Every RuntimeClass.
    pub runtime_classes: ObjectCache,
    /// Every DeviceClass of the DRA version watched.
    pub device_classes: ObjectCache,
    /// The agent DaemonSets the operator wrote.
    pub daemon_sets: ObjectCache,
    /// The agent ClusterRoles the operator wrote.
    pub cluster_roles: ObjectCache,
    /// The agent ClusterRoleBindings the operator wrote.
    pub cluster_role_bindings: ObjectCache,
    /// The ResourceClaimTemplates the operator wrote.
    pub claim_templates: ObjectCache,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            nodes: NodeStore::default(),
            runtime_classes: ObjectCache::new(Coverage::WholeKind),
            device_classes: ObjectCache::new(Coverage::WholeKind),
            daemon_sets: ObjectCache::new(Coverage::Labelled),
            cluster_roles: ObjectCache::new(Coverage::Labelled),
            cluster_role_bindings: ObjectCache::new(Coverage::Labelled),
            claim_templates: ObjectCache::new(Coverage::Labelled),
        }
    }
}

/// The object from `cache`, or from the API server when the cache cannot tell.
pub async fn get(
    cache: &ObjectCache,
    api: &KubeApi,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>> {
    match cache.lookup(resource, namespace, name) {
        Cached::Found(object) => Ok(Some(object)),
        Cached::Absent => Ok(None),
        Cached::Unknown => api.get(resource, namespace, name).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resource;
    use serde_json::json;

    fn daemon_sets() -> ApiResource {
        resource("apps", "v1", "DaemonSet", "daemonsets")
    }

    fn ds(name: &str, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "gpu", "managedFields": [{"manager": "op"}]},
            "spec": {"image": image}})
    }

    #[test]
    fn a_cache_answers_only_once_its_watch_has_listed() {
        let cache = ObjectCache::new(Coverage::Labelled);
        let resource = daemon_sets();
        assert_eq!(cache.lookup(&resource, Some("gpu"), "a"), Cached::Unknown);
        cache.watching(&resource);
        cache.listing_started();
        cache.listed(ds("a", "v1"));
        assert_eq!(
            cache.lookup(&resource, Some("gpu"), "a"),
            Cached::Unknown,
            "not before the listing is complete"
        );
        cache.listing_done();
        let Cached::Found(found) = cache.lookup(&resource, Some("gpu"), "a") else {
            panic!("listed object not found");
        };
        assert_eq!(found["spec"]["image"], "v1");
        assert!(
            found["metadata"]["managedFields"].is_null(),
            "managed fields are dropped"
        );
        assert_eq!(
            cache.lookup(&resource, Some("gpu"), "b"),
            Cached::Unknown,
            "an unlabelled object of that name may exist"
        );
        assert_eq!(cache.lookup(&resource, Some("other"), "a"), Cached::Unknown);
        let other_version = crate::kube_api::resource("apps", "v2", "DaemonSet", "daemonsets");
        assert_eq!(
            cache.lookup(&other_version, Some("gpu"), "a"),
            Cached::Unknown
        );
    }

    #[test]
    fn watch_events_and_relistings_keep_the_cache_current() {
        let cache = ObjectCache::new(Coverage::WholeKind);
        let resource = daemon_sets();
        cache.watching(&resource);
        cache.listing_started();
        cache.listing_done();
        assert_eq!(cache.lookup(&resource, Some("gpu"), "a"), Cached::Absent);
        cache.applied(ds("a", "v1"));
        cache.applied(ds("a", "v2"));
        assert!(
            matches!(cache.lookup(&resource, Some("gpu"), "a"), Cached::Found(o) if o["spec"]["image"] == "v2")
        );
        cache.deleted(&ds("a", "v2"));
        assert_eq!(cache.lookup(&resource, Some("gpu"), "a"), Cached::Absent);

        cache.applied(ds("a", "v2"));
        cache.listing_started();
        cache.listed(ds("b", "v1"));
        assert!(
            matches!(cache.lookup(&resource, Some("gpu"), "a"), Cached::Found(_)),
            "a re-listing in progress leaves the last known state readable"
        );
        cache.listing_done();
        assert_eq!(
            cache.lookup(&resource, Some("gpu"), "a"),
            Cached::Absent,
            "deleted while the watch was down"
        );
        assert!(matches!(
            cache.lookup(&resource, Some("gpu"), "b"),
            Cached::Found(_)
        ));
    }
}
