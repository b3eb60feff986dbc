//! Wiring the controller: the watched config stream, the watches that fill the reconcilers' caches
//! and re-trigger reconciles (owned DaemonSets, ClusterRoles, ClusterRoleBindings and claim
//! templates; RuntimeClasses, DeviceClasses, Node changes), readiness.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use tracing::{debug, info, warn};

use super::{Context, Guarded};
use crate::cache::{Caches, ObjectCache};
use crate::dra::{self};
use crate::http::{Health, Readiness};
use crate::kube_api::resource_of;
use crate::names;
use crate::nodes::SlimNode;

use super::{error_policy, reconcile};

/// Runs the controller until `shutdown` resolves (in-flight reconciles finish first). `health`
/// turns ready once the configs' cache has synced.
pub async fn run(
    ctx: Arc<Context>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.api.client().clone();
    let configs = Api::<Guarded>::all(client.clone());
    // Status writes re-trigger a reconcile, which then finds nothing to write (no loop).
    let controller = Controller::new(configs, watcher::Config::default().any_semantic());
    let reader = controller.store();

    {
        let reader = reader.clone();
        let health = health.clone();
        tokio::spawn(async move {
            // Re-poll: `wait_until_ready` keeps one waker, and the controller waits on the same
            // store, so a single long wait here can miss its wake-up.
            loop {
                match tokio::time::timeout(Duration::from_millis(200), reader.wait_until_ready())
                    .await
                {
                    Ok(Ok(())) => {
                        info!("GpuDiagnosticsConfig cache synced");
                        health.set(Readiness::Ready);
                        return;
                    }
                    Ok(Err(_)) => return,
                    Err(_) => {}
                }
            }
        });
    }

    // Every watch feeds a cache that reconciles read (`cache.rs`) and triggers reconciles: the
    // configs an owned object belongs to, or every config for cluster facts.
    let (every, every_changes) = futures::channel::mpsc::unbounded::<()>();
    let (owner, owner_changes) = futures::channel::mpsc::unbounded::<ObjectRef<Guarded>>();
    let managed = watcher::Config::default().labels(&names::managed_selector());
    let owned = |cache: CachePick| Feed {
        cache,
        trigger: Trigger::Owner(owner.clone()),
    };
    let cluster_fact = |cache: CachePick| Feed {
        cache,
        trigger: Trigger::Every(every.clone()),
    };
    watch_objects(
        &ctx,
        resource_of::<DaemonSet>(),
        managed.clone(),
        owned(|c| &c.daemon_sets),
    );
    watch_objects(
        &ctx,
        resource_of::<ClusterRole>(),
        managed.clone(),
        owned(|c| &c.cluster_roles),
    );
    watch_objects(
        &ctx,
        resource_of::<ClusterRoleBinding>(),
        managed.clone(),
        owned(|c| &c.cluster_role_bindings),
    );
    watch_objects(
        &ctx,
        resource_of::<RuntimeClass>(),
        watcher::Config::default(),
        cluster_fact(|c| &c.runtime_classes),
    );
    match ctx.api.served_versions(dra::GROUP).await {
        Ok(served) => {
            if let Some(version) = served
                .as_ref()
                .and_then(|s| dra::pick_version(s.iter().map(String::as_str)))
            {
                info!(
                    version = version.as_str(),
                    "watching DRA DeviceClasses and claim templates"
                );
                watch_objects(
                    &ctx,
                    version.device_classes(),
                    watcher::Config::default(),
                    cluster_fact(|c| &c.device_classes),
                );
                watch_objects(
                    &ctx,
                    version.resource_claim_templates(),
                    managed,
                    owned(|c| &c.claim_templates),
                );
            }
        }
        Err(error) => {
            warn!(%error, "DRA discovery failed; DeviceClass changes are noticed at resync only")
        }
    }
    watch_nodes(ctx.clone(), every);

    let metrics = ctx.metrics.clone();
    controller
        .reconcile_all_on(every_changes)
        .reconcile_on(owner_changes)
        .with_config(
            ControllerConfig::default()
                .concurrency(ctx.settings.concurrency)
                .debounce(Duration::from_millis(200)),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            let metrics = metrics.clone();
            async move {
                match result {
                    Ok((object, _)) => debug!(config = %object.name, "reconciled"),
                    // A deleted config: its series go with it.
                    Err(kube::runtime::controller::Error::ObjectNotFound(object)) => {
                        metrics.forget_config(&object.name)
                    }
                    Err(error) => debug!(%error, "controller event"),
                }
            }
        })
        .await;
    health.set(Readiness::Stopping);
}

/// Starts the shared Node watch: it keeps `ctx.caches.nodes` current (see `nodes.rs`) and ticks
/// `changes` whenever a Node's labels, allocatable resources or runtime handlers change, so every
/// config re-resolves at once instead of at its next resync; kubelet heartbeats and image lists
/// change no record.
fn watch_nodes(ctx: Arc<Context>, changes: UnboundedSender<()>) {
    let events = watcher::watcher(
        Api::<SlimNode>::all(ctx.api.client().clone()),
        watcher::Config::default(),
    )
    .default_backoff();
    tokio::spawn(async move {
        let store = &ctx.caches.nodes;
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let changed = match event {
                Ok(watcher::Event::Init) => {
                    store.listing_started();
                    false
                }
                Ok(watcher::Event::InitApply(node)) => {
                    store.listed(&node);
                    false
                }
                Ok(watcher::Event::InitDone) => {
                    // The first listing only fills the store; a re-listing after a dropped watch
                    // counts when it differs.
                    if !store.is_synced() {
                        debug!("Node watch synced");
                    }
                    store.listing_done()
                }
                Ok(watcher::Event::Apply(node)) => store.apply(&node),
                Ok(watcher::Event::Delete(node)) => {
                    store.delete(node.metadata.name.as_deref().unwrap_or_default())
                }
                Err(error) => {
                    warn!(%error, "Node watch failed; retrying with backoff (reconciles use the last listing meanwhile)");
                    store.failed(error.to_string());
                    false
                }
            };
            if changed && changes.unbounded_send(()).is_err() {
                return;
            }
        }
    });
}

/// Picks one cache of [`Caches`].
type CachePick = fn(&Caches) -> &ObjectCache;

/// Whom a watched object's change concerns.
#[derive(Clone)]
enum Trigger {
    /// The config named by the object's instance label (an object the operator wrote).
    Owner(UnboundedSender<ObjectRef<Guarded>>),
    /// Every config (a RuntimeClass or DeviceClass).
    Every(UnboundedSender<()>),
}

/// Where a watch's events go.
struct Feed {
    cache: CachePick,
    trigger: Trigger,
}

/// Starts a watch of `resource` that keeps its cache current and triggers reconciles.
fn watch_objects(ctx: &Arc<Context>, resource: ApiResource, config: watcher::Config, feed: Feed) {
    (feed.cache)(&ctx.caches).watching(&resource);
    let api = Api::<DynamicObject>::all_with(ctx.api.client().clone(), &resource);
    let events = watcher::watcher(api, config).default_backoff();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let cache = (feed.cache)(&ctx.caches);
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let touched = match event {
                Ok(watcher::Event::Init) => {
                    cache.listing_started();
                    None
                }
                Ok(watcher::Event::InitApply(object)) => {
                    let labels = object.labels().clone();
                    cache.listed(to_value(object));
                    Some(labels)
                }
                Ok(watcher::Event::InitDone) => {
                    cache.listing_done();
                    // Cluster facts may have changed while the watch was down.
                    matches!(feed.trigger, Trigger::Every(_)).then(Default::default)
                }
                Ok(watcher::Event::Apply(object)) => {
                    let labels = object.labels().clone();
                    cache.applied(to_value(object));
                    Some(labels)
                }
                Ok(watcher::Event::Delete(object)) => {
                    let labels = object.labels().clone();
                    cache.deleted(&to_value(object));
                    Some(labels)
                }
                Err(error) => {
                    warn!(%error, resource = %resource.plural, "watch failed; retrying with backoff");
                    None
                }
            };
            let closed = match (&feed.trigger, touched) {
                (Trigger::Owner(owner), Some(labels)) => names::config_of(&labels)
                    .is_some_and(|config| owner.unbounded_send(ObjectRef::new(config)).is_err()),
                (Trigger::Every(every), Some(_)) => every.unbounded_send(()).is_err(),
                (_, None) => false,
            };
            if closed {
                return;
            }
        }
    });
}

fn to_value(object: DynamicObject) -> serde_json::Value {
    serde_json::to_value(object).unwrap_or_default()
}
