//! kube-rs `Api`, discovery and the library API against the server.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{self, Discovery};
use serde_json::{Value, json};
use test_apiserver::{Config, DraVersion, TestApiServer};

use crate::common::config_crd;

fn api_error(error: kube::Error) -> (u16, String, String) {
    match error {
        kube::Error::Api(status) => (status.code, status.reason, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_serves_the_configured_dra_versions() {
    let server = TestApiServer::start(
        Config::default()
            .kubernetes_version("v1.33.4")
            .dra_versions(&[DraVersion::V1beta1, DraVersion::V1beta2]),
    )
    .await
    .unwrap();
    let client = server.client().unwrap();
    assert_eq!(
        client.apiserver_version().await.unwrap().git_version,
        "v1.33.4"
    );

    let dra = discovery::group(&client, "resource.k8s.io").await.unwrap();
    assert_eq!(dra.preferred_version_or_latest(), "v1beta2");
    let (resource, caps) = dra.recommended_kind("DeviceClass").unwrap();
    assert_eq!(
        (resource.version.as_str(), resource.plural.as_str()),
        ("v1beta2", "deviceclasses")
    );
    assert_eq!(caps.scope, discovery::Scope::Cluster);

    for aggregated in [false, true] {
        let discovery = Discovery::new(client.clone());
        let discovery = if aggregated {
            discovery.run_aggregated().await
        } else {
            discovery.run().await
        }
        .unwrap();
        let (daemonsets, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "DaemonSet"))
            .unwrap();
        assert_eq!(daemonsets.plural, "daemonsets");
        assert!(
            caps.subresources
                .iter()
                .any(|(r, _)| r.plural == "daemonsets/status" || r.plural == "status"),
            "{caps:?}"
        );
        assert!(
            discovery.has_group("resource.k8s.io"),
            "aggregated={aggregated}"
        );
    }

    server.set_dra_versions(&[]);
    assert!(discovery::group(&client, "resource.k8s.io").await.is_err());
    server.set_dra_versions(&[DraVersion::V1]);
    assert_eq!(
        discovery::group(&client, "resource.k8s.io")
            .await
            .unwrap()
            .preferred_version_or_latest(),
        "v1"
    );
}

#[tokio::test]
async fn typed_crud_and_real_error_bodies() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));

    let (code, reason, message) =
        api_error(api.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (409, "AlreadyExists", "configmaps \"c\" already exists")
    );
    let (code, reason, _) = api_error(api.get("missing").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));

    let mut stale = created.clone();
    let mut fresh = created.clone();
    fresh.data = Some([("a".to_string(), "2".to_string())].into());
    api.replace("c", &PostParams::default(), &fresh)
        .await
        .unwrap();
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let (code, reason, _) = api_error(
        api.replace("c", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    api.delete("c", &DeleteParams::default()).await.unwrap();
    assert!(server.get::<ConfigMap>(Some("default"), "c").is_none());

    for (name, app) in [("x", "agent"), ("y", "agent"), ("z", "other")] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}}))
                .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=agent"),
    )
    .await
    .unwrap();
    let left: Vec<String> = server
        .list::<ConfigMap>(Some("default"))
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["z"]);
}

#[tokio::test]
async fn server_side_apply_field_ownership() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let api: Api<RuntimeClass> = Api::all(server.client().unwrap());
    let operator = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia", "labels": {"by": "operator"}}, "handler": "nvidia"});
    api.patch(
        "nvidia",
        &PatchParams::apply("operator"),
        &Patch::Apply(&operator),
    )
    .await
    .unwrap();
    let admin = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia", "labels": {"team": "gpu"}}});
    api.patch(
        "nvidia",
        &PatchParams::apply("admin"),
        &Patch::Apply(&admin),
    )
    .await
    .unwrap();

    let without_label = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"});
    let after = api
        .patch(
            "nvidia",
            &PatchParams::apply("operator"),
            &Patch::Apply(&without_label),
        )
        .await
        .unwrap();
    let labels = after.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("gpu"),
        "the second manager's field survives"
    );
    assert!(
        !labels.contains_key("by"),
        "the field the operator stopped applying is gone"
    );

    let takeover = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "runc"});
    let (code, reason, message) = api_error(
        api.patch(
            "nvidia",
            &PatchParams::apply("admin"),
            &Patch::Apply(&takeover),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("conflict with \"operator\"") && message.contains(".handler"),
        "{message}"
    );
    let forced = api
        .patch(
            "nvidia",
            &PatchParams::apply("admin").force(),
            &Patch::Apply(&takeover),
        )
        .await
        .unwrap();
    assert_eq!(forced.handler, "runc");

    let mark = server.mark();
    api.patch(
        "nvidia",
        &PatchParams::apply("admin").force(),
        &Patch::Apply(&takeover),
    )
    .await
    .unwrap();
    assert_eq!(
        server.count_changes(
            mark,
            &test_apiserver::RequestMatch::resource("runtimeclasses").writes()
        ),
        0
    );
}

#[tokio::test]
async fn custom_resources_status_and_generation() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let client = server.client().unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(config_crd()).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = crds
        .get("gpudiagnosticsconfigs.gpu.example.com")
        .await
        .unwrap();
    let conditions = established
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gpu.example.com", "v1alpha1", "GpuDiagnosticsConfig"),
        "gpudiagnosticsconfigs",
    );
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let config = json!({"apiVersion": "gpu.example.com/v1alpha1", "kind": "GpuDiagnosticsConfig", "metadata": {"name": "default"}, "spec": {"nodeSelector": {"gpu": "true"}}});
    let created = api
        .patch(
            "default",
            &PatchParams::apply("user"),
            &Patch::Apply(&config),
        )
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"]["mode"], "Auto",
        "schema default filled"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let undeclared = json!({"apiVersion": "gpu.example.com/v1alpha1", "kind": "GpuDiagnosticsConfig", "status": {"extra": 1}});
    let (code, _, message) = api_error(
        api.patch_status(
            "default",
            &PatchParams::apply("operator"),
            &Patch::Apply(&undeclared),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        code, 500,
        "a real server answers 500 to undeclared fields in an apply"
    );
    assert!(
        message.ends_with(".status.extra: field not declared in schema"),
        "{message}"
    );
    let merged = api
        .patch_status(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"extra": 1}})),
        )
        .await
        .unwrap();
    assert!(
        merged.data["status"].get("extra").is_none(),
        "non-apply writes prune undeclared fields"
    );

    let status = json!({"apiVersion": "gpu.example.com/v1alpha1", "kind": "GpuDiagnosticsConfig", "status": {
        "mode": "RuntimeClass", "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Rendered"}]
    }});
    let with_status = api
        .patch_status(
            "default",
            &PatchParams::apply("operator").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"]["mode"], "RuntimeClass");
    assert_eq!(
        with_status.metadata.generation,
        Some(1),
        "status writes never bump generation"
    );

    let spec_change = json!({"spec": {"mode": "DevicePlugin"}});
    let changed = api
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(&spec_change),
        )
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(
        changed.data["status"]["mode"], "RuntimeClass",
        "main-resource writes keep status"
    );
    let labels_only = json!({"metadata": {"labels": {"x": "y"}}});
    let relabelled = api
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(&labels_only),
        )
        .await
        .unwrap();
    assert_eq!(relabelled.metadata.generation, Some(2));
}

#[tokio::test]
async fn tables_use_the_crd_printer_columns() {
    let server = TestApiServer::start(Config::default().object(config_crd()))
        .await
        .unwrap();
    server
        .create_object(json!({
            "apiVersion": "gpu.example.com/v1alpha1", "kind": "GpuDiagnosticsConfig", "metadata": {"name": "default"},
            "status": {"mode": "RuntimeClass", "desired": 3, "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
    let client = server.client().unwrap();
    let request = http::Request::get("/apis/gpu.example.com/v1alpha1/gpudiagnosticsconfigs")
        .header(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let table: Value = client.request(request).await.unwrap();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Mode", "Ready", "Desired", "Age"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        (&cells[0], &cells[1], &cells[2], &cells[3]),
        (
            &json!("default"),
            &json!("RuntimeClass"),
            &json!("True"),
            &json!(3)
        )
    );
    assert!(
        cells[4].as_str().unwrap().ends_with('s'),
        "age like 0s: {}",
        cells[4]
    );
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn library_api_reads_and_writes_state() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "gpu"}})).unwrap();
    server.create(&ns).unwrap();
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": "gpu"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}}
    }))
    .unwrap();
    let created = server.create(&ds).unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let updated = server
        .modify::<DaemonSet>(Some("gpu"), "agent", |ds| {
            ds.status = Some(serde_json::from_value(json!({"desiredNumberScheduled": 2, "numberReady": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0})).unwrap());
        })
        .unwrap();
    assert_eq!(updated.status.unwrap().number_ready, 2);
    assert_eq!(updated.metadata.generation, Some(1));

    let api: Api<DaemonSet> = Api::namespaced(server.client().unwrap(), "gpu");
    assert_eq!(
        api.get_status("agent")
            .await
            .unwrap()
            .status
            .unwrap()
            .desired_number_scheduled,
        2
    );
    assert_eq!(server.list::<DaemonSet>(None).len(), 1);
    server.delete::<DaemonSet>(Some("gpu"), "agent").unwrap();
    assert!(api.get_opt("agent").await.unwrap().is_none());
}

#[tokio::test]
async fn events_from_the_kube_recorder_are_visible_as_core_events() {
    use kube::runtime::events::{Event as Published, EventType, Recorder, Reporter};
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let client = server.client().unwrap();
    let reporter = Reporter {
        controller: "gpu-diag-operator".into(),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    let node = server.create(&node).unwrap();
    let reference = kube::Resource::object_ref(&node, &());
    recorder
        .publish(
            &Published {
                type_: EventType::Warning,
                reason: "RuntimeHandlerMissing".into(),
                note: Some("no nvidia handler".into()),
                action: "Check".into(),
                secondary: None,
            },
            &reference,
        )
        .await
        .unwrap();
    let events: Api<Event> = Api::all(client);
    let found = events
        .list(&ListParams::default().fields("involvedObject.name=n1,reason=RuntimeHandlerMissing"))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].message.as_deref(), Some("no nvidia handler"));
}

#[tokio::test]
async fn admin_access_gate_off_drops_the_field_silently() {
    let server = TestApiServer::start(
        Config::default()
            .dra_versions(&[DraVersion::V1beta1])
            .admin_access(false),
    )
    .await
    .unwrap();
    server
        .create_object(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "gpu", "labels": {"resource.kubernetes.io/admin-access": "true"}}}))
        .unwrap();
    let client = server.client().unwrap();
    let (resource, _) = discovery::group(&client, "resource.k8s.io")
        .await
        .unwrap()
        .recommended_kind("ResourceClaimTemplate")
        .unwrap();
    assert_eq!(resource.version, "v1beta1");
    let api: Api<DynamicObject> = Api::namespaced_with(client, "gpu", &resource);
    let template = json!({
        "apiVersion": "resource.k8s.io/v1beta1", "kind": "ResourceClaimTemplate", "metadata": {"name": "admin"},
        "spec": {"spec": {"devices": {"requests": [
            {"name": "gpus", "deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true}
        ]}}}
    });
    api.patch(
        "admin",
        &PatchParams::apply("operator"),
        &Patch::Apply(&template),
    )
    .await
    .unwrap();
    let stored = api.get("admin").await.unwrap();
    let request = &stored.data["spec"]["spec"]["devices"]["requests"][0];
    assert_eq!(request["allocationMode"], "All");
    assert!(request.get("adminAccess").is_none(), "{request}");

    server.set_admin_access(true);
    api.patch(
        "admin",
        &PatchParams::apply("operator"),
        &Patch::Apply(&template),
    )
    .await
    .unwrap();
    let stored = server
        .get_object(
            "resource.k8s.io/v1beta1",
            "ResourceClaimTemplate",
            Some("gpu"),
            "admin",
        )
        .unwrap();
    assert_eq!(
        stored["spec"]["spec"]["devices"]["requests"][0]["adminAccess"],
        true
    );
}
