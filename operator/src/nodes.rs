//! The Nodes as the operator sees them: one watch on Nodes for every config feeds a [`NodeStore`]
//! of slim records (name, labels, allocatable resources, runtime handlers; nothing else is decoded).
//! Reconciles select their nodes from the store ([`NodeIndex::select`]) instead of listing them, and
//! a config is re-reconciled only when a record changes, so a device plugin appearing is followed at
//! once while kubelet heartbeats and image lists trigger nothing.
//!
//! Memory stays bounded: label and allocatable entries are interned as one shared `key=value`
//! string each, so the nodes of a pool, which carry the same labels, share their strings and a
//! record costs a pointer per label plus the few values unique to its node (hostname, memory).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::facts::NodeFacts;

/// A Node as the watch decodes it: name, resourceVersion (which the watch resumes from), labels,
/// allocatable resources and runtime handlers. Spec, annotations, managed fields, conditions and
/// images are skipped by the decoder, never allocated.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "RawNode")]
pub struct SlimNode {
    /// Name and resourceVersion only.
    pub metadata: ObjectMeta,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `status.allocatable`.
    pub allocatable: BTreeMap<String, String>,
    /// Names in `status.runtimeHandlers` (empty when the CRI reports none).
    pub runtime_handlers: Vec<String>,
}

#[derive(Deserialize)]
struct RawNode {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    status: RawStatus,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    #[serde(default)]
    allocatable: BTreeMap<String, String>,
    #[serde(default)]
    runtime_handlers: Vec<RawHandler>,
}

#[derive(Deserialize)]
struct RawHandler {
    #[serde(default)]
    name: Option<String>,
}

impl From<RawNode> for SlimNode {
    fn from(raw: RawNode) -> Self {
        Self {
            metadata: ObjectMeta {
                name: raw.metadata.name,
                resource_version: raw.metadata.resource_version,
                ..ObjectMeta::default()
            },
            labels: raw.metadata.labels,
            allocatable: raw.status.allocatable,
            runtime_handlers: raw
                .status
                .runtime_handlers
                .into_iter()
                .filter_map(|h| h.name)
                .collect(),
        }
    }
}

impl k8s_openapi::Resource for SlimNode {
    const API_VERSION: &'static str = "v1";
    const GROUP: &'static str = "";
    const KIND: &'static str = "Node";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "nodes";
    type Scope = k8s_openapi::ClusterResourceScope;
}

impl k8s_openapi::Metadata for SlimNode {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What the operator keeps of one Node: interned `key=value` entries, each sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeRecord {
    labels: Box<[Arc<str>]>,
    allocatable: Box<[Arc<str>]>,
    runtime_handlers: Box<[Arc<str>]>,
}

impl NodeRecord {
    /// Whether the node carries `label` (`key=value`).
    fn has_label(&self, label: &str) -> bool {
        self.labels
            .binary_search_by(|l| l.as_ref().cmp(label))
            .is_ok()
    }

    fn allocatable(&self, resource: &str) -> Option<&str> {
        self.allocatable.iter().find_map(|entry| {
            entry
                .strip_prefix(resource)
                .and_then(|rest| rest.strip_prefix('='))
        })
    }
}

/// Shared strings: one allocation per distinct label, allocatable entry or handler name.
#[derive(Debug, Default)]
struct Interner {
    strings: HashSet<Arc<str>>,
    /// Size after the last prune; the next prune runs when the set has doubled.
    pruned_at: usize,
}

impl Interner {
    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.strings.insert(shared.clone());
        shared
    }

    fn pairs<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Box<[Arc<str>]> {
        let mut interned: Vec<Arc<str>> = pairs
            .into_iter()
            .map(|(k, v)| self.intern(&format!("{k}={v}")))
            .collect();
        interned.sort();
        interned.into_boxed_slice()
    }

    /// Drops strings no record uses any more, once the set has doubled since the last prune.
    fn prune_if_grown(&mut self) {
        if self.strings.len() > 2 * self.pruned_at + 1024 {
            self.strings.retain(|s| Arc::strong_count(s) > 1);
            self.pruned_at = self.strings.len();
        }
    }
}

/// Every Node's record by name: pure data, fed by the watch's events, read by reconciles.
#[derive(Debug, Default)]
pub struct NodeIndex {
    /// By name, so that selecting yields the nodes in name order without sorting.
    nodes: BTreeMap<Box<str>, NodeRecord>,
    /// A listing in progress (the watch's initial list or a re-list after it dropped); the last
    /// complete one stays readable meanwhile.
    listing: Option<BTreeMap<Box<str>, NodeRecord>>,
    interner: Interner,
}

impl NodeIndex {
    fn record(&mut self, node: &SlimNode) -> NodeRecord {
        let mut handlers: Vec<Arc<str>> = node
            .runtime_handlers
            .iter()
            .map(|h| self.interner.intern(h))
            .collect();
        handlers.sort();
        NodeRecord {
            labels: self.interner.pairs(&node.labels),
            allocatable: self.interner.pairs(&node.allocatable),
            runtime_handlers: handlers.into_boxed_slice(),
        }
    }

    /// A Node was added or updated: true when it is new or something the operator reads changed.
    pub fn apply(&mut self, node: &SlimNode) -> bool {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let record = self.record(node);
        let changed = self.nodes.get(name) != Some(&record);
        if changed {
            self.nodes.insert(name.into(), record);
            self.interner.prune_if_grown();
        }
        changed
    }

    /// A Node was deleted: true when it was known.
    pub fn delete(&mut self, name: &str) -> bool {
        self.nodes.remove(name).is_some()
    }

    /// A (re-)listing starts.
    pub fn listing_started(&mut self) {
        self.listing = Some(BTreeMap::new());
    }

    /// A Node of the listing in progress.
    pub fn listed(&mut self, node: &SlimNode) {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let record = self.record(node);
        self.listing
            .get_or_insert_with(BTreeMap::new)
            .insert(name.into(), record);
    }

    /// The listing is complete and replaces every record: true when anything differs.
    pub fn listing_done(&mut self) -> bool {
        let fresh = self.listing.take().unwrap_or_default();
        let changed = fresh != self.nodes;
        self.nodes = fresh;
        self.interner.strings.retain(|s| Arc::strong_count(s) > 1);
        self.interner.pruned_at = self.interner.strings.len();
        changed
    }

    /// Replaces every record with `nodes` (a whole listing at once): true when anything differs.
    pub fn replace(&mut self, nodes: &[SlimNode]) -> bool {
        self.listing_started();
        for node in nodes {
            self.listed(node);
        }
        self.listing_done()
    }

    /// Number of known Nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no Node is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The facts of the nodes carrying every label of `selector`, by name; `gpu_resource` is the
    /// extended resource whose allocatable amount is counted.
    pub fn select(
        &self,
        selector: &BTreeMap<String, String>,
        gpu_resource: &str,
    ) -> Vec<NodeFacts> {
        let wanted: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.nodes
            .iter()
            .filter(|(_, node)| wanted.iter().all(|label| node.has_label(label)))
            .map(|(name, node)| {
                let handlers: Vec<String> = node
                    .runtime_handlers
                    .iter()
                    .map(|h| h.to_string())
                    .collect();
                NodeFacts::new(
                    name.to_string(),
                    node.allocatable(gpu_resource),
                    Some(handlers),
                )
            })
            .collect()
    }
}

/// Whether the watch has listed every Node yet, and its last error.
#[derive(Debug, Clone, Default)]
struct SyncState {
    synced: bool,
    last_error: Option<String>,
}

/// The shared [`NodeIndex`] plus whether it has been filled: reconciles wait for the first full
/// listing, so a fresh operator never resolves a config against an empty cluster.
#[derive(Debug)]
pub struct NodeStore {
    index: RwLock<NodeIndex>,
    sync: tokio::sync::watch::Sender<SyncState>,
    sync_timeout: Duration,
}

impl Default for NodeStore {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl NodeStore {
    /// An empty, unsynced store; reconciles wait up to `sync_timeout` for the first listing.
    pub fn new(sync_timeout: Duration) -> Self {
        Self {
            index: RwLock::new(NodeIndex::default()),
            sync: tokio::sync::watch::Sender::new(SyncState::default()),
            sync_timeout,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, NodeIndex> {
        // A panic while holding the lock leaves a consistent map behind: keep using it.
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A watch event added or changed a Node: true when a record changed.
    pub fn apply(&self, node: &SlimNode) -> bool {
        self.write().apply(node)
    }

    /// A watch event deleted a Node: true when it was known.
    pub fn delete(&self, name: &str) -> bool {
        self.write().delete(name)
    }

    /// The watch starts a (re-)listing.
    pub fn listing_started(&self) {
        self.write().listing_started();
    }

    /// A Node of the listing in progress.
    pub fn listed(&self, node: &SlimNode) {
        self.write().listed(node);
    }

    /// The listing is complete: it replaces every record and the store is synced. True when the
    /// store was synced before and anything differs (a re-listing after the watch dropped).
    pub fn listing_done(&self) -> bool {
        let changed = self.write().listing_done();
        let was_synced = self.sync.send_replace(SyncState {
            synced: true,
            last_error: None,
        });
        was_synced.synced && changed
    }

    /// A whole listing at once (what `listing_started`, `listed` and `listing_done` do).
    pub fn replace(&self, nodes: &[SlimNode]) -> bool {
        self.listing_started();
        for node in nodes {
            self.listed(node);
        }
        self.listing_done()
    }

    /// Records a watch failure (reported by reconciles still waiting for the first listing).
    pub fn failed(&self, error: String) {
        self.sync.send_modify(|s| s.last_error = Some(error));
    }

    /// Whether the first listing arrived.
    pub fn is_synced(&self) -> bool {
        self.sync.borrow().synced
    }

    /// The selected nodes' facts, once the first listing arrived (waiting for it at most the
    /// store's sync timeout).
    pub async fn select(
        &self,
        selector: &BTreeMap<String, String>,
        gpu_resource: &str,
    ) -> Result<Vec<NodeFacts>, NodesNotSynced> {
        let mut sync = self.sync.subscribe();
        let waited = tokio::time::timeout(self.sync_timeout, sync.wait_for(|s| s.synced)).await;
        if !matches!(waited, Ok(Ok(_))) {
            return Err(NodesNotSynced {
                waited: self.sync_timeout,
                last_error: self.sync.borrow().last_error.clone(),
            });
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        Ok(index.select(selector, gpu_resource))
    }
}

/// The Node watch has not listed the Nodes yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the Node watch has not listed the cluster's Nodes after {:?}{}; the operator needs list and watch \
     on nodes (see operator::rbac::RBAC_RULES) and a reachable API server",
    waited,
    last_error.as_ref().map(|e| format!(" (last watch error: {e})")).unwrap_or_default()
)]
pub struct NodesNotSynced {
    /// How long the reconcile waited.
    pub waited: Duration,
    /// The watch's last error, when it failed.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, gpus: &str, pool: &str, heartbeat: &str) -> SlimNode {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"nvidia.com/gpu.present": "true", "pool": pool,
                                                  "kubernetes.io/hostname": name},
                         "resourceVersion": heartbeat,
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                         "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": gpus},
                       "capacity": {"cpu": "8"},
                       "images": [{"names": ["nvcr.io/big:1"], "sizeBytes": 1}],
                       "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": heartbeat}],
                       "runtimeHandlers": [{"name": "nvidia"}, {"name": "runc"}]}
        }))
        .unwrap()
    }

    fn selector(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_slim_node_keeps_only_what_the_operator_reads() {
        let n = node("gpu-a", "8", "a", "7");
        assert_eq!(n.metadata.name.as_deref(), Some("gpu-a"));
        assert_eq!(n.metadata.resource_version.as_deref(), Some("7"));
        assert!(n.metadata.annotations.is_none() && n.metadata.managed_fields.is_none());
        assert_eq!(n.labels["pool"], "a");
        assert_eq!(n.allocatable["nvidia.com/gpu"], "8");
        assert_eq!(n.runtime_handlers, ["nvidia", "runc"]);
        let bare: SlimNode = serde_json::from_value(json!({"metadata": {"name": "bare"}})).unwrap();
        assert!(bare.labels.is_empty() && bare.allocatable.is_empty());
    }

    #[test]
    fn only_changes_to_what_the_operator_reads_count() {
        let mut index = NodeIndex::default();
        assert!(index.apply(&node("gpu-a", "8", "a", "1")), "a new node");
        assert!(
            !index.apply(&node("gpu-a", "8", "a", "2")),
            "a kubelet heartbeat (new conditions and resourceVersion) changes nothing"
        );
        assert!(
            index.apply(&node("gpu-a", "7", "a", "3")),
            "allocatable GPUs"
        );
        assert!(index.apply(&node("gpu-a", "7", "b", "4")), "labels");
        let mut no_handlers = node("gpu-a", "7", "b", "5");
        no_handlers.runtime_handlers.clear();
        assert!(index.apply(&no_handlers), "runtime handlers");
        assert!(index.apply(&node("gpu-b", "8", "a", "1")), "another node");
        assert!(index.delete("gpu-a"));
        assert!(!index.delete("gpu-a"), "already gone");
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_relisting_counts_only_when_it_differs() {
        let mut index = NodeIndex::default();
        let listing = [node("gpu-a", "8", "a", "1"), node("gpu-b", "8", "a", "1")];
        assert!(index.replace(&listing));
        let later = [node("gpu-a", "8", "a", "9"), node("gpu-b", "8", "a", "9")];
        assert!(!index.replace(&later), "heartbeats only");
        assert!(
            index.replace(&listing[..1]),
            "a node went away while the watch was down"
        );
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn nodes_are_selected_by_every_label_of_the_selector() {
        let mut index = NodeIndex::default();
        for (name, pool) in [("gpu-b", "a"), ("gpu-a", "a"), ("gpu-c", "b")] {
            index.apply(&node(name, "8", pool, "1"));
        }
        let names = |sel: &[(&str, &str)]| -> Vec<String> {
            index
                .select(&selector(sel), "nvidia.com/gpu")
                .into_iter()
                .map(|n| n.name)
                .collect()
        };
        assert_eq!(names(&[]), ["gpu-a", "gpu-b", "gpu-c"], "empty selects all");
        assert_eq!(names(&[("pool", "a")]), ["gpu-a", "gpu-b"]);
        assert_eq!(
            names(&[("pool", "a"), ("nvidia.com/gpu.present", "true")]),
            ["gpu-a", "gpu-b"]
        );
        assert_eq!(
            names(&[("pool", "a"), ("kubernetes.io/hostname", "gpu-b")]),
            ["gpu-b"]
        );
        assert!(names(&[("pool", "c")]).is_empty());
        assert!(
            names(&[("pool", "")]).is_empty(),
            "a value must match exactly"
        );
        assert!(
            names(&[("poo", "l=a")]).is_empty(),
            "key and value are not concatenated loosely"
        );
    }

    #[test]
    fn selected_facts_count_the_configured_resource_and_keep_handlers() {
        let mut index = NodeIndex::default();
        index.apply(&node("gpu-a", "8", "a", "1"));
        let mut silent = node("gpu-z", "0", "a", "1");
        silent.runtime_handlers.clear();
        index.apply(&silent);
        let all = selector(&[]);
        let facts = index.select(&all, "nvidia.com/gpu");
        assert_eq!(facts[0].gpu_allocatable, 8);
        assert_eq!(facts[0].has_runtime_handler("nvidia"), Some(true));
        assert_eq!(facts[0].has_runtime_handler("kata"), Some(false));
        assert_eq!(facts[1].gpu_allocatable, 0, "zero allocatable");
        assert_eq!(
            facts[1].has_runtime_handler("nvidia"),
            None,
            "no handlers: unknown"
        );
        let other = index.select(&all, "nvidia.com/mig-1g.10gb");
        assert_eq!(other[0].gpu_allocatable, 0, "another resource is absent");
        assert_eq!(
            index.select(&all, "nvidia.com/gp")[0].gpu_allocatable,
            0,
            "no prefix match"
        );
    }

    #[test]
    fn nodes_of_a_pool_share_their_label_strings() {
        let mut index = NodeIndex::default();
        for i in 0..100 {
            index.apply(&node(&format!("gpu-{i}"), "8", "a", "1"));
        }
        // Shared: two labels, cpu and GPU allocatable, two handlers; per node: its hostname label.
        assert_eq!(index.interner.strings.len(), 6 + 100);
        for i in 0..100 {
            index.delete(&format!("gpu-{i}"));
        }
        index.replace(&[]);
        assert!(
            index.interner.strings.is_empty(),
            "unused strings are dropped"
        );
    }

    #[tokio::test]
    async fn reconciles_wait_for_the_first_listing() {
        let impatient = NodeStore::new(Duration::from_millis(50));
        impatient.failed("nodes is forbidden".into());
        let error = impatient
            .select(&selector(&[]), "nvidia.com/gpu")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the Node watch has not listed the cluster's Nodes after 50ms (last watch error: nodes is \
             forbidden); the operator needs list and watch on nodes (see operator::rbac::RBAC_RULES) \
             and a reachable API server"
        );

        let store = Arc::new(NodeStore::new(Duration::from_secs(60)));

        let waiting = {
            let store = store.clone();
            tokio::spawn(async move { store.select(&selector(&[]), "nvidia.com/gpu").await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            !store.replace(&[node("gpu-a", "8", "a", "1")]),
            "the first listing"
        );
        let selected = waiting.await.unwrap().unwrap();
        assert_eq!(
            selected.len(),
            1,
            "a waiting reconcile gets the listed nodes"
        );
        assert!(store.is_synced());
        assert!(
            store.replace(&[]),
            "a re-listing that differs triggers reconciles; the store stays synced"
        );
        assert!(store.select(&selector(&[]), "x").await.unwrap().is_empty());
    }
}
