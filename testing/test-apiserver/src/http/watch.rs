//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`)
//! in resourceVersion order, with selector transitions, periodic bookmarks, the streaming-list
//! `initial-events-end` bookmark, `timeoutSeconds`, and closing on a test's request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body_util::{Either, channel::Channel};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use super::Body;
use crate::engine::{ListQuery, Target, WatchStart};
use crate::error::{ApiError, StatusReason};
use crate::request::{RequestInfo, RequestMatch};
use crate::server::Shared;
use crate::store::{Change, ChangeKind};

/// Everything a watch stream needs, taken under the state lock.
pub struct WatchPlan {
    /// What is watched.
    pub target: Target,
    /// Selectors.
    pub query: ListQuery,
    /// First events.
    pub start: WatchStart,
    /// Live changes after the start.
    pub receiver: broadcast::Receiver<Arc<Change>>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// The request, for closing watches by matcher.
    pub info: RequestInfo,
}

/// Open watches, so a test can close them.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    next: u64,
    open: HashMap<u64, (RequestInfo, Arc<Notify>)>,
}

impl WatchRegistry {
    fn register(&mut self, info: RequestInfo) -> (u64, Arc<Notify>) {
        self.next += 1;
        let notify = Arc::new(Notify::new());
        self.open.insert(self.next, (info, notify.clone()));
        (self.next, notify)
    }

    /// Ends every open watch the matcher selects; returns how many.
    pub fn close(&mut self, matcher: &RequestMatch) -> usize {
        let mut closed = 0;
        for (info, notify) in self.open.values() {
            if matcher.matches(info) {
                notify.notify_one();
                closed += 1;
            }
        }
        closed
    }

    /// How many open watches the matcher selects.
    pub fn count(&self, matcher: &RequestMatch) -> usize {
        self.open
            .values()
            .filter(|(info, _)| matcher.matches(info))
            .count()
    }
}

/// Unregisters a watch when its stream ends, however it ends.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut watches) = self.shared.watches.lock() {
            watches.open.remove(&self.id);
        }
    }
}

/// Starts streaming and returns the response head.
pub fn respond(shared: Arc<Shared>, plan: WatchPlan) -> Response<Body> {
    let (sender, body) = Channel::<Bytes, Infallible>::new(64);
    let (id, close) = shared
        .watches
        .lock()
        .expect("watches lock")
        .register(plan.info.clone());
    let registration = Registration {
        shared: shared.clone(),
        id,
    };
    let bookmark_interval = shared.bookmark_interval;
    tokio::spawn(async move {
        let _registration = registration;
        stream(sender, plan, close, bookmark_interval).await;
    });
    let mut response = Response::new(Either::Right(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

type Sender = http_body_util::channel::Sender<Bytes, Infallible>;

async fn send(sender: &mut Sender, event_type: &str, object: Value) -> bool {
    let line = format!("{}\n", json!({"type": event_type, "object": object}));
    sender.send_data(Bytes::from(line)).await.is_ok()
}

fn bookmark(target: &Target, resource_version: u64, initial_events_end: bool) -> Value {
    let mut metadata =
        json!({"resourceVersion": resource_version.to_string(), "creationTimestamp": null});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": target.resource.kind, "apiVersion": target.api_version(), "metadata": metadata})
}

fn expired_status(requested: u64, oldest: u64) -> Value {
    ApiError::new(
        StatusReason::Expired,
        format!("too old resource version: {requested} ({oldest})"),
    )
    .to_status()
}

/// The event a change becomes for this watch, if any: selector transitions turn into ADDED/DELETED.
fn event_for(target: &Target, query: &ListQuery, change: &Change) -> Option<(&'static str, Value)> {
    if change.store != target.resource.store {
        return None;
    }
    if target.resource.namespaced
        && let Some(namespace) = &target.namespace
        && change
            .object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            != Some(namespace.as_str())
    {
        return None;
    }
    let new = target.encode(change.object.clone());
    let new_matches = query.matches(&new);
    match change.kind {
        ChangeKind::Added => new_matches.then_some(("ADDED", new)),
        ChangeKind::Deleted => new_matches.then_some(("DELETED", new)),
        ChangeKind::Modified => {
            let old_matches = change
                .old
                .as_ref()
                .is_some_and(|old| query.matches(&target.encode(old.clone())));
            match (old_matches, new_matches) {
                (true, true) => Some(("MODIFIED", new)),
                (false, true) => Some(("ADDED", new)),
                (true, false) => Some(("DELETED", new)),
                (false, false) => None,
            }
        }
    }
}

async fn stream(
    mut sender: Sender,
    plan: WatchPlan,
    close: Arc<Notify>,
    bookmark_interval: Duration,
) {
    let WatchPlan {
        target,
        query,
        start,
        mut receiver,
        bookmarks,
        timeout,
        ..
    } = plan;
    let mut last_seen = match start {
        WatchStart::Snapshot {
            objects,
            resource_version,
            initial_events_end,
        } => {
            for object in objects {
                if !send(&mut sender, "ADDED", object).await {
                    return;
                }
            }
            if initial_events_end
                && !send(
                    &mut sender,
                    "BOOKMARK",
                    bookmark(&target, resource_version, true),
                )
                .await
            {
                return;
            }
            resource_version
        }
        WatchStart::Replay {
            changes,
            resource_version,
        } => {
            for change in changes {
                if let Some((event_type, object)) = event_for(&target, &query, &change)
                    && !send(&mut sender, event_type, object).await
                {
                    return;
                }
            }
            resource_version
        }
        WatchStart::Expired { requested, oldest } => {
            let _ = send(&mut sender, "ERROR", expired_status(requested, oldest)).await;
            return;
        }
    };
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(30 * 60)));
    tokio::pin!(deadline);
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + bookmark_interval,
        bookmark_interval,
    );
    loop {
        // Biased, close first: a change made after a test closed the watch must not slip out on it.
        tokio::select! {
            biased;
            _ = close.notified() => return,
            received = receiver.recv() => match received {
                Ok(change) => {
                    last_seen = change.resource_version;
                    if let Some((event_type, object)) = event_for(&target, &query, &change)
                        && !send(&mut sender, event_type, object).await
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let status = ApiError::new(StatusReason::Expired, "the watch fell too far behind; start a new watch").to_status();
                    let _ = send(&mut sender, "ERROR", status).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = &mut deadline => return,
            _ = ticks.tick(), if bookmarks => {
                if !send(&mut sender, "BOOKMARK", bookmark(&target, last_seen, false)).await {
                    return;
                }
            }
        }
    }
}
