//! kube-runtime's watcher and Controller, and kube-lease-manager, against the server's watches.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use test_apiserver::{Config, Fault, RequestMatch, TestApiServer, Verb};

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn name_of(event: &Event<ConfigMap>) -> Option<String> {
    match event {
        Event::Apply(cm) | Event::InitApply(cm) | Event::Delete(cm) => cm.metadata.name.clone(),
        _ => None,
    }
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin),
) -> Event<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watch event within 10 s")
        .expect("stream open")
        .expect("no watch error")
}

/// Polls a watcher on its own task (a watcher only opens its watch while polled) and hands events over.
fn drive(
    api: Api<ConfigMap>,
    config: watcher::Config,
) -> tokio::sync::mpsc::UnboundedReceiver<Result<Event<ConfigMap>, watcher::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, config).boxed();
        while let Some(event) = stream.next().await {
            if sender.send(event).is_err() {
                return;
            }
        }
    });
    receiver
}

#[tokio::test]
async fn raw_watch_events_arrive_in_resource_version_order() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(&PostParams::default(), &config_map("before", json!({})))
        .await
        .unwrap();
    let list = api.list(&ListParams::default()).await.unwrap();
    let start = list.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(30), &start)
        .await
        .unwrap()
        .boxed();
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &config_map(name, json!({})))
            .await
            .unwrap();
    }
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    api.delete("b", &Default::default()).await.unwrap();
    let mut seen = Vec::new();
    let mut last = start.parse::<u64>().unwrap();
    while seen.len() < 5 {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let (kind, cm) = match event {
            WatchEvent::Added(cm) => ("ADDED", cm),
            WatchEvent::Modified(cm) => ("MODIFIED", cm),
            WatchEvent::Deleted(cm) => ("DELETED", cm),
            other => panic!("unexpected {other:?}"),
        };
        let rv: u64 = cm.metadata.resource_version.unwrap().parse().unwrap();
        assert!(rv > last, "resourceVersion {rv} after {last}");
        last = rv;
        seen.push(format!("{kind} {}", cm.metadata.name.unwrap()));
    }
    assert_eq!(
        seen,
        ["ADDED a", "ADDED b", "ADDED c", "MODIFIED a", "DELETED b"]
    );
}

#[tokio::test]
async fn bookmarks_and_timeouts() {
    let server =
        TestApiServer::start(Config::default().bookmark_interval(Duration::from_millis(100)))
            .await
            .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    let current = server.resource_version();
    let started = std::time::Instant::now();
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), &current.to_string())
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Bookmark(bookmark) => {
            assert_eq!(bookmark.metadata.resource_version, current.to_string())
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        assert!(matches!(event, WatchEvent::Bookmark(_)), "{event:?}");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "timeoutSeconds=1 ended the stream after {elapsed:?}"
    );
}

#[tokio::test]
async fn watcher_lists_then_follows_with_selectors() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(
        &PostParams::default(),
        &config_map("pre", json!({"app": "agent"})),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &config_map("other", json!({"app": "other"})),
    )
    .await
    .unwrap();
    let mut stream =
        watcher::watcher(api.clone(), watcher::Config::default().labels("app=agent")).boxed();
    assert!(matches!(next_event(&mut stream).await, Event::Init));
    assert_eq!(
        name_of(&next_event(&mut stream).await).as_deref(),
        Some("pre")
    );
    assert!(matches!(next_event(&mut stream).await, Event::InitDone));

    api.create(
        &PostParams::default(),
        &config_map("late", json!({"app": "agent"})),
    )
    .await
    .unwrap();
    assert_eq!(
        name_of(&next_event(&mut stream).await).as_deref(),
        Some("late")
    );
    // Relabelling out of the selector is a delete for this watch.
    api.patch(
        "late",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .unwrap();
    let event = next_event(&mut stream).await;
    assert!(
        matches!(&event, Event::Delete(cm) if cm.metadata.name.as_deref() == Some("late")),
        "{event:?}"
    );
}

#[tokio::test]
async fn streaming_list_watcher_gets_the_initial_events_end_bookmark() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(&PostParams::default(), &config_map("pre", json!({})))
        .await
        .unwrap();
    let mut stream =
        watcher::watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    assert!(matches!(next_event(&mut stream).await, Event::Init));
    assert_eq!(
        name_of(&next_event(&mut stream).await).as_deref(),
        Some("pre")
    );
    assert!(matches!(next_event(&mut stream).await, Event::InitDone));
    api.create(&PostParams::default(), &config_map("next", json!({})))
        .await
        .unwrap();
    assert_eq!(
        name_of(&next_event(&mut stream).await).as_deref(),
        Some("next")
    );
    let watches = server.matching_requests(
        test_apiserver::LogMark(0),
        &RequestMatch::resource("configmaps").verb(Verb::Watch),
    );
    assert!(
        watches[0].query.contains("sendInitialEvents=true"),
        "{}",
        watches[0].query
    );
}

#[tokio::test]
async fn watcher_survives_closed_streams_and_expired_history() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let mut stream = tokio_stream_of(drive(api.clone(), watcher::Config::default()));
    assert!(matches!(next_event(&mut stream).await, Event::Init));
    assert!(matches!(next_event(&mut stream).await, Event::InitDone));
    server
        .wait_for("the watch to open", Duration::from_secs(5), |s| {
            (s.open_watches(&RequestMatch::resource("configmaps")) == 1).then_some(())
        })
        .await
        .unwrap();

    assert_eq!(server.close_watches(&RequestMatch::any()), 1);
    api.create(
        &PostParams::default(),
        &config_map("after-close", json!({})),
    )
    .await
    .unwrap();
    assert_eq!(
        name_of(&next_event(&mut stream).await).as_deref(),
        Some("after-close"),
        "resumed from its resourceVersion"
    );

    server
        .wait_for("the watch to reopen", Duration::from_secs(5), |s| {
            (s.open_watches(&RequestMatch::any()) == 1).then_some(())
        })
        .await
        .unwrap();
    api.create(&PostParams::default(), &config_map("while-away", json!({})))
        .await
        .unwrap();
    assert_eq!(
        name_of(&next_event(&mut stream).await).as_deref(),
        Some("while-away")
    );

    // Hold the reconnect back while the history it would resume from is compacted away: the resume
    // gets 410 Gone and the watcher re-lists, finding the object created during the outage.
    server.inject(
        Fault::delay(
            RequestMatch::resource("configmaps").verb(Verb::Watch),
            Duration::from_millis(500),
        )
        .times(1),
    );
    server.close_watches(&RequestMatch::any());
    api.create(
        &PostParams::default(),
        &config_map("during-outage", json!({})),
    )
    .await
    .unwrap();
    server.compact_history();
    let mut relisted = Vec::new();
    let mut gone = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
        {
            Err(watcher::Error::WatchError(status)) if status.code == 410 => gone = true,
            Ok(Event::Init) => relisted.clear(),
            Ok(Event::InitApply(cm)) => relisted.push(cm.metadata.name.unwrap()),
            Ok(Event::InitDone) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(gone, "the resume was refused with 410 Gone");
    assert_eq!(relisted, ["after-close", "during-outage", "while-away"]);
}

fn tokio_stream_of<T>(
    mut receiver: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Unpin {
    Box::pin(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
}

#[tokio::test]
async fn controller_reconciles_owned_objects_and_garbage_collection_follows() {
    use std::sync::Arc;
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let client = server.client().unwrap();
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");

    async fn reconcile(
        cm: Arc<ConfigMap>,
        secrets: Arc<Api<Secret>>,
    ) -> Result<Action, kube::Error> {
        let owner = kube::Resource::controller_owner_ref(cm.as_ref(), &()).unwrap();
        let name = format!("{}-copy", cm.metadata.name.as_deref().unwrap());
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "ownerReferences": [owner]}, "stringData": cm.data});
        secrets
            .patch(
                &name,
                &PatchParams::apply("copier").force(),
                &Patch::Apply(&secret),
            )
            .await?;
        Ok(Action::await_change())
    }
    let controller = Controller::new(configs.clone(), watcher::Config::default())
        .owns(secrets.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _: &kube::Error, _| Action::requeue(Duration::from_secs(1)),
            Arc::new(secrets.clone()),
        )
        .for_each(|_| async {});
    let running = tokio::spawn(controller);

    configs
        .create(&PostParams::default(), &config_map("source", json!({})))
        .await
        .unwrap();
    server
        .wait_for("the copy", Duration::from_secs(10), |s| {
            s.get::<Secret>(Some("default"), "source-copy")
        })
        .await
        .unwrap();
    let mark = server.mark();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.count_changes(mark, &RequestMatch::resource("secrets").writes()),
        0,
        "the controller settles"
    );

    configs.delete("source", &Default::default()).await.unwrap();
    assert!(
        server
            .get::<Secret>(Some("default"), "source-copy")
            .is_none(),
        "garbage collected with its owner"
    );
    running.abort();
}

#[tokio::test]
async fn lease_manager_elects_one_leader_at_a_time() {
    use kube_lease_manager::LeaseManagerBuilder;
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let build = |identity: &str| {
        LeaseManagerBuilder::new(server.client().unwrap(), "operator-leader")
            .with_namespace("default")
            .with_identity(identity)
            .with_duration(5)
            .with_grace(2)
            .build()
    };
    let first = build("first").await.unwrap();
    let second = build("second").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), first.changed())
            .await
            .unwrap()
            .unwrap(),
        "first becomes leader"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(2), second.changed())
            .await
            .is_err(),
        "second waits while the lease is held"
    );
    first.release().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), second.changed())
            .await
            .unwrap()
            .unwrap(),
        "second takes over"
    );
    let lease: k8s_openapi::api::coordination::v1::Lease =
        server.get(Some("default"), "operator-leader").unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("second")
    );
}
