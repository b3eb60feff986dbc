//! Scenario 8: `kubectl delete gdc` removes everything the config owns, and in DRA mode the
//! DaemonSet goes before the claim template its pods use. The order is read back from the API
//! server's watch history (every deletion gets its own, increasing resourceVersion), so it shows what
//! any watcher of the cluster would see.

use std::time::Duration;

use futures::TryStreamExt;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, WatchEvent, WatchParams};
use serde_json::json;
use test_apiserver::{Config, DraVersion, TestApiServer};

use crate::fixtures::{GDC_KIND, NAMESPACE, agent_name, config, crd, device_class, gpu_node};
use crate::harness::{CONVERGE, Cluster};

/// `(resourceVersion, "Kind name")` of every deletion of these kinds after `since`, oldest first.
fn deletions_since(
    server: &TestApiServer,
    since: u64,
    kinds: &[(&str, &str, &str, &str)],
) -> Vec<(u64, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to watch with");
    runtime.block_on(async {
        let client = server.client().expect("a client for the test server");
        let mut deletions = Vec::new();
        for (group, version, kind, plural) in kinds {
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, version, kind),
                plural,
            );
            let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
            let events = api
                .watch(&WatchParams::default().timeout(1), &since.to_string())
                .await
                .expect("the watch starts");
            let events: Vec<WatchEvent<DynamicObject>> = events
                .try_collect()
                .await
                .expect("the watch replays history");
            for event in events {
                if let WatchEvent::Deleted(object) = event {
                    let version = object
                        .resource_version()
                        .and_then(|v| v.parse().ok())
                        .expect("a deleted object carries the deletion's resourceVersion");
                    deletions.push((version, format!("{kind} {}", object.name_any())));
                }
            }
        }
        deletions.sort();
        deletions
    })
}

#[test]
fn deleting_the_config_removes_everything_it_owns_daemon_set_before_claim_template() {
    let cluster = Cluster::start(
        Config::default().dra_versions(&[DraVersion::V1]).objects([
            crd(),
            device_class(DraVersion::V1, "gpu.nvidia.com"),
            gpu_node("gpu-a"),
            config("default", json!({})),
        ]),
        &[],
    );
    cluster.wait_status("default", "mode DRA", |s| s["mode"] == "DRA");
    let name = agent_name("default");
    let owned = [
        ("apps/v1", "DaemonSet", Some(NAMESPACE)),
        (
            "resource.k8s.io/v1",
            "ResourceClaimTemplate",
            Some(NAMESPACE),
        ),
        ("v1", "ServiceAccount", Some(NAMESPACE)),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", None),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None),
    ];
    for (api_version, kind, namespace) in owned {
        assert!(
            cluster
                .server
                .get_object(api_version, kind, namespace, &name)
                .is_some(),
            "{kind} {name} exists before the deletion"
        );
    }
    assert!(
        cluster
            .server
            .get_object("v1", "Namespace", None, NAMESPACE)
            .is_some()
    );
    // What orders the deletion on any cluster: the template is owned by the DaemonSet, which is
    // owned by the config.
    let ds = cluster.daemon_set("default").expect("the DaemonSet");
    let template = cluster
        .claim_template(DraVersion::V1, "default")
        .expect("the claim template");
    let owner = &template["metadata"]["ownerReferences"];
    assert_eq!(owner.as_array().map(Vec::len), Some(1), "{template}");
    assert_eq!(
        (&owner[0]["kind"], &owner[0]["name"], &owner[0]["uid"]),
        (&json!("DaemonSet"), &json!(name), &ds["metadata"]["uid"]),
        "the claim template is owned by the DaemonSet"
    );
    assert_eq!(ds["metadata"]["ownerReferences"][0]["kind"], GDC_KIND);

    let before = cluster.server.resource_version();
    let deleted = cluster.kubectl_ok(&["delete", "gdc", "default"]);
    assert!(deleted.contains("\"default\" deleted"), "{deleted}");

    cluster.wait("every object of the config gone", CONVERGE, |s| {
        let left: Vec<&str> = owned
            .iter()
            .filter(|(api_version, kind, namespace)| {
                s.get_object(api_version, kind, *namespace, &name).is_some()
            })
            .map(|(_, kind, _)| *kind)
            .collect();
        (left.is_empty() && s.get_object("v1", "Namespace", None, NAMESPACE).is_none())
            .then_some(())
    });

    let deletions = deletions_since(
        &cluster.server,
        before,
        &[
            ("apps", "v1", "DaemonSet", "daemonsets"),
            (
                "resource.k8s.io",
                "v1",
                "ResourceClaimTemplate",
                "resourceclaimtemplates",
            ),
        ],
    );
    eprintln!("deletions after `kubectl delete gdc default`, in order: {deletions:?}");
    let position = |what: &str| deletions.iter().position(|(_, d)| d == what);
    let daemon_set = position(&format!("DaemonSet {name}"));
    let template = position(&format!("ResourceClaimTemplate {name}"));
    assert!(
        daemon_set.is_some() && template.is_some() && daemon_set < template,
        "the DaemonSet must be deleted before its claim template; deletions in order: {deletions:?}"
    );

    // Nothing comes back: the operator does not re-create the objects of a deleted config.
    let mark = cluster.server.mark();
    cluster.assert_stays(
        "the config's objects stay deleted",
        Duration::from_secs(3),
        |s| {
            s.get_object("apps/v1", "DaemonSet", Some(NAMESPACE), &name)
                .is_none()
                && s.get_object("v1", "Namespace", None, NAMESPACE).is_none()
        },
    );
    let writes = cluster
        .server
        .count(mark, &test_apiserver::RequestMatch::any().writes());
    assert_eq!(writes, 0, "the operator wrote after its config was deleted");
    cluster.stop_operator();
}
