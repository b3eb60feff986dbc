//! Object storage: one map per store, a global monotonically increasing resourceVersion, a bounded
//! history of changes for watches that resume from a resourceVersion, and a broadcast of new changes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::catalog::StoreKey;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

impl ChangeKind {
    /// The watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change, in stored form.
#[derive(Debug, Clone)]
pub struct Change {
    /// resourceVersion of the change.
    pub resource_version: u64,
    /// Which store.
    pub store: StoreKey,
    /// Added, modified or deleted.
    pub kind: ChangeKind,
    /// The object after the change (for deletes: the last state, with the delete's resourceVersion).
    pub object: Value,
    /// The object before the change (modifications and deletes).
    pub old: Option<Value>,
}

/// A watch asked for changes the server no longer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The oldest resourceVersion a watch can still start from.
    pub oldest: u64,
}

/// `namespace` (`""` for cluster-scoped) and name.
pub type ObjectKey = (String, String);

/// The key of a stored object.
pub fn object_key(object: &Value) -> ObjectKey {
    let get = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (get("/metadata/namespace"), get("/metadata/name"))
}

/// All stored objects and their change history.
pub struct Store {
    resource_version: u64,
    collections: BTreeMap<StoreKey, BTreeMap<ObjectKey, Value>>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Watches from a resourceVersion below this one get 410 Gone.
    oldest_resumable: u64,
    changes: broadcast::Sender<Arc<Change>>,
    revision: watch::Sender<u64>,
}

impl Store {
    /// An empty store keeping at most `history_limit` changes for resuming watches.
    pub fn new(history_limit: usize) -> Self {
        let (changes, _) = broadcast::channel(4096);
        let (revision, _) = watch::channel(0);
        Self {
            resource_version: 0,
            collections: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            oldest_resumable: 0,
            changes,
            revision,
        }
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// One object.
    pub fn get(&self, store: &StoreKey, namespace: &str, name: &str) -> Option<&Value> {
        self.collections
            .get(store)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Objects of a store, optionally in one namespace, ordered by namespace and name.
    pub fn list<'a>(
        &'a self,
        store: &StoreKey,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.collections
            .get(store)
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|wanted| ns == wanted))
            .map(|(_, object)| object)
    }

    /// Every stored object with its store.
    pub fn all(&self) -> impl Iterator<Item = (&StoreKey, &Value)> {
        self.collections
            .iter()
            .flat_map(|(key, objects)| objects.values().map(move |o| (key, o)))
    }

    /// Stores a new object (the caller checked it does not exist); returns it with its resourceVersion.
    pub fn insert(&mut self, store: &StoreKey, object: Value) -> Value {
        self.commit(store, ChangeKind::Added, object, None)
    }

    /// Replaces an existing object; returns it with its new resourceVersion.
    pub fn replace(&mut self, store: &StoreKey, object: Value) -> Value {
        let old = self
            .collections
            .get(store)
            .and_then(|c| c.get(&object_key(&object)))
            .cloned();
        self.commit(store, ChangeKind::Modified, object, old)
    }

    /// Removes an object; returns its last state with the deletion's resourceVersion.
    pub fn remove(&mut self, store: &StoreKey, namespace: &str, name: &str) -> Option<Value> {
        let old = self
            .collections
            .get_mut(store)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        Some(self.commit(store, ChangeKind::Deleted, old.clone(), Some(old)))
    }

    fn commit(
        &mut self,
        store: &StoreKey,
        kind: ChangeKind,
        mut object: Value,
        old: Option<Value>,
    ) -> Value {
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        if kind != ChangeKind::Deleted {
            self.collections
                .entry(store.clone())
                .or_default()
                .insert(object_key(&object), object.clone());
        }
        let change = Arc::new(Change {
            resource_version: self.resource_version,
            store: store.clone(),
            kind,
            object: object.clone(),
            old,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest_resumable = dropped.resource_version;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(change);
        self.revision.send_replace(self.resource_version);
        object
    }

    /// Subscribes to changes committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// A receiver that wakes on every commit (for tests waiting on state).
    pub fn revisions(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Changes after `resource_version`, or `Expired` when they are no longer kept.
    pub fn changes_since(&self, resource_version: u64) -> Result<Vec<Arc<Change>>, Expired> {
        if resource_version < self.oldest_resumable {
            return Err(Expired {
                oldest: self.oldest_resumable,
            });
        }
        Ok(self
            .history
            .iter()
            .filter(|c| c.resource_version > resource_version)
            .cloned()
            .collect())
    }

    /// Forgets the change history: watches resuming from any earlier resourceVersion get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.oldest_resumable = self.resource_version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StoreKey {
        StoreKey {
            group: String::new(),
            resource: "pods".into(),
        }
    }

    fn pod(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}})
    }

    #[test]
    fn every_change_gets_a_higher_resource_version() {
        let mut store = Store::new(100);
        let a = store.insert(&key(), pod("a"));
        let b = store.insert(&key(), pod("b"));
        let a2 = store.replace(&key(), a.clone());
        let gone = store.remove(&key(), "default", "b").unwrap();
        let versions: Vec<&str> = [&a, &b, &a2, &gone]
            .iter()
            .map(|o| o["metadata"]["resourceVersion"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["1", "2", "3", "4"]);
        assert_eq!(store.list(&key(), Some("default")).count(), 1);
        let kinds: Vec<ChangeKind> = store
            .changes_since(1)
            .unwrap()
            .iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(
            kinds,
            [ChangeKind::Added, ChangeKind::Modified, ChangeKind::Deleted]
        );
    }

    #[test]
    fn old_history_expires() {
        let mut store = Store::new(2);
        for name in ["a", "b", "c", "d"] {
            store.insert(&key(), pod(name));
        }
        assert_eq!(store.changes_since(1).unwrap_err(), Expired { oldest: 2 });
        assert_eq!(store.changes_since(2).unwrap().len(), 2);
        store.compact();
        assert!(store.changes_since(3).is_err());
        assert_eq!(store.changes_since(4).unwrap().len(), 0);
    }
}
