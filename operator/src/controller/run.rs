//! Wiring the controller: the watched config stream, the watches that re-trigger reconciles
//! (owned DaemonSets and claim templates, RuntimeClasses, DeviceClasses, Node changes), readiness.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::{Context, Guarded};
use crate::dra::{self};
use crate::http::{Health, Readiness};
use crate::names;
use crate::nodes::{ChangeFilter, WatchedNode};

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
    let mut controller = Controller::new(configs, watcher::Config::default().any_semantic());
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

    let managed = watcher::Config::default().labels(&names::managed_selector());
    controller = controller
        .watches(
            Api::<DaemonSet>::all(client.clone()),
            managed.clone(),
            by_instance_label,
        )
        .watches(
            Api::<RuntimeClass>::all(client.clone()),
            watcher::Config::default(),
            every_config(reader.clone()),
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
                let classes = version.device_classes();
                let templates = version.resource_claim_templates();
                controller = controller
                    .watches_with(
                        Api::<DynamicObject>::all_with(client.clone(), &classes),
                        classes,
                        watcher::Config::default(),
                        every_config(reader.clone()),
                    )
                    .watches_with(
                        Api::<DynamicObject>::all_with(client.clone(), &templates),
                        templates,
                        managed,
                        by_instance_label,
                    );
            }
        }
        Err(error) => {
            warn!(%error, "DRA discovery failed; DeviceClass changes are noticed at resync only")
        }
    }

    let node_changes = watch_node_changes(client.clone());

    let metrics = ctx.metrics.clone();
    controller
        .reconcile_all_on(node_changes)
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

/// Starts the shared Node watch (see `nodes.rs`): the returned stream ticks whenever a Node's
/// labels, allocatable resources or runtime handlers change, so every config re-resolves at once
/// instead of at its next resync; kubelet heartbeats and image lists change no fingerprint.
fn watch_node_changes(client: kube::Client) -> futures::channel::mpsc::UnboundedReceiver<()> {
    let (ticks, changes) = futures::channel::mpsc::unbounded();
    let events = watcher::watcher(Api::<WatchedNode>::all(client), watcher::Config::default())
        .default_backoff();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut known: Option<ChangeFilter> = None;
        let mut relist = ChangeFilter::default();
        while let Some(event) = events.next().await {
            let changed = match event {
                Ok(watcher::Event::Init) => {
                    relist = ChangeFilter::default();
                    false
                }
                Ok(watcher::Event::InitApply(node)) => {
                    relist.applied(&node);
                    false
                }
                Ok(watcher::Event::InitDone) => {
                    // The first listing only establishes what is known; a re-listing after a
                    // dropped watch counts when it differs.
                    let fresh = std::mem::take(&mut relist);
                    let changed = known.as_ref().is_some_and(|k| *k != fresh);
                    if known.is_none() {
                        debug!("Node watch synced");
                    }
                    known = Some(fresh);
                    changed
                }
                Ok(watcher::Event::Apply(node)) => known
                    .get_or_insert_with(ChangeFilter::default)
                    .applied(&node),
                Ok(watcher::Event::Delete(node)) => known
                    .get_or_insert_with(ChangeFilter::default)
                    .deleted(&node),
                Err(error) => {
                    warn!(%error, "Node watch failed; retrying with backoff (node changes are noticed at resync meanwhile)");
                    false
                }
            };
            if changed && ticks.unbounded_send(()).is_err() {
                return;
            }
        }
    });
    changes
}

/// Maps an object the operator labelled to its config.
fn by_instance_label<K: Resource>(object: K) -> Option<ObjectRef<Guarded>> {
    names::config_of(object.labels()).map(ObjectRef::new)
}

/// Maps any object to every config (RuntimeClass or DeviceClass changes affect them all).
fn every_config<K>(
    reader: Store<Guarded>,
) -> impl Fn(K) -> Vec<ObjectRef<Guarded>> + Clone + Send + Sync + 'static {
    move |_| {
        reader
            .state()
            .iter()
            .map(|config| ObjectRef::from_obj(config.as_ref()))
            .collect()
    }
}
