//! Reads: get, list (selectors, `limit`/`continue` pages) and the snapshot a watch starts from.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{State, Target};
use crate::error::{ApiError, StatusReason};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Change, Expired, object_key};

/// Selectors and paging of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0 = all).
    pub limit: usize,
    /// `continue` token of the previous page.
    pub continue_token: Option<String>,
}

impl ListQuery {
    /// Whether an object (as served) is selected.
    pub fn matches(&self, served: &Value) -> bool {
        self.labels.matches_object(served) && self.fields.matches(served)
    }
}

/// Where a watch starts.
pub enum WatchStart {
    /// Synthetic ADDED events for the current objects, then live changes after `resource_version`.
    /// `initial_events_end` asks for the streaming-list bookmark after the synthetic events.
    Snapshot {
        /// The current objects (as served, selected).
        objects: Vec<Value>,
        /// resourceVersion of the snapshot.
        resource_version: u64,
        /// Whether to send the `k8s.io/initial-events-end` bookmark.
        initial_events_end: bool,
    },
    /// Replayed changes after the requested resourceVersion, then live changes.
    Replay {
        /// The changes to replay, oldest first.
        changes: Vec<Arc<Change>>,
        /// The latest resourceVersion when the watch started (everything up to it is replayed).
        resource_version: u64,
    },
    /// The requested resourceVersion is no longer kept: send 410 Gone.
    Expired {
        /// The resourceVersion the client asked for.
        requested: u64,
        /// The oldest one still kept.
        oldest: u64,
    },
}

impl State {
    /// GET one object.
    pub fn get(&self, target: &Target) -> Result<Value, ApiError> {
        let name = target.name.as_deref().unwrap_or_default();
        let object = self
            .store
            .get(target.store(), target.namespace_key(), name)
            .ok_or_else(|| target.not_found(name))?;
        Ok(target.encode(object.clone()))
    }

    /// The selected objects of a target's collection, as served.
    pub fn select(&self, target: &Target, query: &ListQuery) -> Vec<Value> {
        let namespace = target
            .namespace
            .as_deref()
            .filter(|_| target.resource.namespaced);
        self.store
            .list(target.store(), namespace)
            .map(|object| target.encode(object.clone()))
            .filter(|served| query.matches(served))
            .collect()
    }

    /// LIST a collection: a `<Kind>List` with the current resourceVersion, paged by `limit`/`continue`.
    pub fn list(&self, target: &Target, query: &ListQuery) -> Result<Value, ApiError> {
        let mut items = self.select(target, query);
        let resource_version = self.store.resource_version().to_string();
        if let Some(token) = &query.continue_token {
            let after = decode_continue(token)?;
            items.retain(|item| object_key(item) > after);
        }
        let mut metadata = json!({"resourceVersion": resource_version});
        if query.limit > 0 && items.len() > query.limit {
            let remaining = items.len() - query.limit;
            items.truncate(query.limit);
            let last = object_key(items.last().expect("limit > 0 keeps an item"));
            metadata["continue"] = json!(encode_continue(&last));
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "apiVersion": target.api_version(),
            "kind": target.resource.list_kind,
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Everything a watch needs to start consistently: its first events and a subscription taken under the
    /// same lock, so no change falls between them.
    pub fn start_watch(
        &self,
        target: &Target,
        query: &ListQuery,
        resource_version: Option<&str>,
        send_initial_events: bool,
    ) -> Result<(WatchStart, broadcast::Receiver<Arc<Change>>), ApiError> {
        let receiver = self.store.subscribe();
        let start = match resource_version.filter(|rv| !rv.is_empty() && *rv != "0") {
            Some(rv) if !send_initial_events => {
                let rv: u64 = rv.parse().map_err(|_| {
                    ApiError::new(
                        StatusReason::BadRequest,
                        format!("invalid resource version \"{rv}\": must be a decimal number"),
                    )
                })?;
                match self.store.changes_since(rv) {
                    Ok(changes) => WatchStart::Replay {
                        changes,
                        resource_version: self.store.resource_version(),
                    },
                    Err(Expired { oldest }) => WatchStart::Expired {
                        requested: rv,
                        oldest,
                    },
                }
            }
            _ => WatchStart::Snapshot {
                objects: self.select(target, query),
                resource_version: self.store.resource_version(),
                initial_events_end: send_initial_events,
            },
        };
        Ok((start, receiver))
    }
}

fn encode_continue(key: &(String, String)) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!([key.0, key.1]).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "invalid continue token \"{token}\": pass the token of the previous page unchanged"
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid())?;
    let (namespace, name): (String, String) =
        serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    Ok((namespace, name))
}
