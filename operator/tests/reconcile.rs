//! Reconcile tests against the test API server, in-process (`support/`): the writes each situation
//! causes, in order; that a reconcile with nothing to do writes nothing; and that every request
//! is covered by `operator::rbac::RBAC_RULES`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use crds::{GpuDiagnosticsConfig, GpuDiagnosticsConfigSpec, GpuDiagnosticsConfigStatus};
use kube::runtime::controller::Action;
use operator::controller::{Context, Guarded, Settings, backoff, error_policy, reconcile};
use operator::metrics::Metrics;
use serde_json::{Value, json};
use support::FakeApi;
use test_apiserver::{DraVersion, Fault, RequestMatch, Verb};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::core::ApiResource;
use operator::cache::ObjectCache;
use operator::kube_api::resource_of;
use operator::nodes::SlimNode;

const NS: &str = "gpu-diagnostics";
const DS: &str = "k8s-mcp-agent-default";

fn context(fake: &FakeApi) -> Arc<Context> {
    Arc::new(Context::new(
        fake.client(),
        Arc::new(Metrics::default()),
        Settings {
            resync: Duration::from_secs(60),
            admin_access_recheck: Duration::from_secs(600),
            operator_version: "0.1.0".into(),
            concurrency: 1,
        },
    ))
}

/// A spec with the CRD's defaults applied (the fake does not default).
fn spec(overrides: Value) -> Value {
    let spec: GpuDiagnosticsConfigSpec =
        serde_json::from_value(overrides).expect("test spec parses");
    serde_json::to_value(spec).unwrap()
}

fn seed_config(fake: &FakeApi, name: &str, overrides: Value) {
    fake.insert(json!({
        "apiVersion": "gpu.k8s-mcp-agent.io/v1alpha1",
        "kind": "GpuDiagnosticsConfig",
        "metadata": {"name": name},
        "spec": spec(overrides),
    }));
}

fn read_config(fake: &FakeApi, name: &str) -> Arc<Guarded> {
    let object = fake
        .get("gpu.k8s-mcp-agent.io", "gpudiagnosticsconfigs", None, name)
        .expect("config exists");
    Arc::new(serde_json::from_value(object).expect("a guard always deserializes"))
}

fn status_of(fake: &FakeApi, name: &str) -> GpuDiagnosticsConfigStatus {
    let object = fake
        .get("gpu.k8s-mcp-agent.io", "gpudiagnosticsconfigs", None, name)
        .unwrap();
    serde_json::from_value(object["status"].clone()).expect("status parses")
}

fn status_text(fake: &FakeApi) -> String {
    serde_json::to_string(&status_of(fake, "default")).unwrap()
}

fn condition(status: &GpuDiagnosticsConfigStatus, type_: &str) -> (String, String, String) {
    let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// Plays the Node watch: the store holds the fake's Nodes, as after a listing.
fn list_nodes(fake: &FakeApi, ctx: &Context) {
    let nodes: Vec<SlimNode> = fake
        .all("", "nodes")
        .into_iter()
        .map(|node| serde_json::from_value(node).expect("a Node decodes"))
        .collect();
    ctx.caches.nodes.replace(&nodes);
}

/// Plays the other watches: each cache holds what its watch would have listed (the operator's
/// labelled objects, every RuntimeClass).
fn list_watched_objects(fake: &FakeApi, ctx: &Context) {
    let managed = |object: &Value| {
        object["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "k8s-mcp-agent-operator"
    };
    let caches = &ctx.caches;
    let feeds: [(&ObjectCache, ApiResource, &str, bool); 4] = [
        (
            &caches.runtime_classes,
            resource_of::<RuntimeClass>(),
            "node.k8s.io",
            false,
        ),
        (
            &caches.daemon_sets,
            resource_of::<DaemonSet>(),
            "apps",
            true,
        ),
        (
            &caches.cluster_roles,
            resource_of::<ClusterRole>(),
            "rbac.authorization.k8s.io",
            true,
        ),
        (
            &caches.cluster_role_bindings,
            resource_of::<ClusterRoleBinding>(),
            "rbac.authorization.k8s.io",
            true,
        ),
    ];
    for (cache, resource, group, labelled) in feeds {
        cache.watching(&resource);
        cache.listing_started();
        for object in fake.all(group, &resource.plural) {
            if !labelled || managed(&object) {
                cache.listed(object);
            }
        }
        cache.listing_done();
    }
}

async fn run(fake: &FakeApi, ctx: &Arc<Context>, name: &str) -> operator::Result<Action> {
    list_nodes(fake, ctx);
    reconcile(read_config(fake, name), ctx.clone()).await
}

/// Reconciles once more and asserts that nothing was written.
async fn assert_idle(fake: &FakeApi, ctx: &Arc<Context>, name: &str) {
    fake.clear_log();
    run(fake, ctx, name).await.unwrap();
    assert_eq!(
        fake.writes(),
        Vec::<String>::new(),
        "a reconcile with nothing to do wrote"
    );
    assert!(
        !fake.requests().iter().any(|r| r.query.contains("dryRun")),
        "no probe expected: {:?}",
        fake.requests()
            .iter()
            .map(|r| r.summary())
            .collect::<Vec<_>>()
    );
    fake.assert_rbac_covers_requests();
}

fn gpu_node(name: &str, gpus: u32) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.present": "true"}},
        "status": {"allocatable": {"cpu": "64", "nvidia.com/gpu": gpus.to_string()}}})
}

fn runtime_class() -> Value {
    json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"})
}

fn device_class(version: &str) -> Value {
    json!({"apiVersion": format!("resource.k8s.io/{version}"), "kind": "DeviceClass",
        "metadata": {"name": "gpu.nvidia.com"}, "spec": {}})
}

fn daemon_set(fake: &FakeApi) -> Value {
    fake.get("apps", "daemonsets", Some(NS), DS)
        .expect("DaemonSet exists")
}

fn template(fake: &FakeApi) -> Option<Value> {
    fake.get("resource.k8s.io", "resourceclaimtemplates", Some(NS), DS)
}

/// Plays the DaemonSet controller: every wanted pod is scheduled, up to date and ready.
fn roll_out(fake: &FakeApi, pods: i64) {
    fake.edit("apps", "daemonsets", Some(NS), DS, |ds| {
        let generation = ds["metadata"]["generation"].clone();
        ds["status"] = json!({"observedGeneration": generation, "desiredNumberScheduled": pods,
            "currentNumberScheduled": pods, "numberReady": pods, "updatedNumberScheduled": pods,
            "numberAvailable": pods, "numberMisscheduled": 0});
    });
}

#[tokio::test]
async fn runtime_class_mode_is_applied_once_then_left_alone() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    fake.insert(gpu_node("gpu-a", 8));
    fake.insert(gpu_node("gpu-b", 8));
    // Quantities the server rewrites (1000m -> 1, 1024Mi -> 1Gi) must not look like drift.
    seed_config(
        &fake,
        "default",
        json!({"resources": {"requests": {"cpu": "1000m"}, "limits": {"memory": "1024Mi"}}}),
    );
    let ctx = context(&fake);

    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        fake.writes(),
        [
            "PATCH namespaces gpu-diagnostics",
            "PATCH serviceaccounts gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH clusterroles k8s-mcp-agent-default",
            "PATCH clusterrolebindings k8s-mcp-agent-default",
            "PATCH daemonsets gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH gpudiagnosticsconfigs/status default",
            "EVENT",
        ]
    );
    fake.assert_rbac_covers_requests();
    let ds = daemon_set(&fake);
    assert_eq!(ds["spec"]["template"]["spec"]["runtimeClassName"], "nvidia");
    assert!(
        ds["metadata"]["annotations"]["gpu.k8s-mcp-agent.io/applied-hash"].is_string(),
        "applied objects carry their content hash"
    );
    let status = status_of(&fake, "default");
    assert_eq!(status.mode, Some(crds::AccessMethod::RuntimeClass));
    assert_eq!(
        condition(&status, "GpuAccessResolved").1,
        "RuntimeClassFound"
    );
    assert_eq!(condition(&status, "Ready").1, "RolloutInProgress");

    assert_idle(&fake, &ctx, "default").await;

    // The DaemonSet controller reports the pods ready: only the status changes.
    roll_out(&fake, 2);
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        fake.writes(),
        ["PATCH gpudiagnosticsconfigs/status default"]
    );
    let status = status_of(&fake, "default");
    assert_eq!(
        (status.desired_number_scheduled, status.number_ready),
        (2, 2)
    );
    assert_eq!(
        condition(&status, "Ready"),
        (
            "True".into(),
            "AgentsReady".into(),
            "2 of 2 agent pods ready".into()
        )
    );
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn a_no_op_reconcile_reads_nodes_and_owned_objects_from_the_watches() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    for i in 0..3 {
        fake.insert(gpu_node(&format!("gpu-{i}"), 8));
    }
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);
    run(&fake, &ctx, "default").await.unwrap();
    // The DaemonSet controller places no pod: the status counts the selected nodes.
    roll_out(&fake, 0);
    run(&fake, &ctx, "default").await.unwrap();
    assert!(status_text(&fake).contains("3 nodes match spec.nodeSelector"));

    list_watched_objects(&fake, &ctx);
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    let reads: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| match r.resource() {
            None => format!("GET {} (discovery)", r.path),
            Some(_) => r.summary(),
        })
        .collect();
    assert_eq!(
        reads,
        [
            "GET /apis/resource.k8s.io (discovery)",
            "GET namespaces gpu-diagnostics",
            "GET serviceaccounts in gpu-diagnostics",
            "GET pods in gpu-diagnostics",
            "GET events in gpu-diagnostics",
        ],
        "no Node LIST; the RuntimeClass, RBAC objects and DaemonSet come from the caches"
    );

    // A new node reaches the next reconcile through the Node watch (no LIST).
    fake.insert(gpu_node("gpu-3", 8));
    run(&fake, &ctx, "default").await.unwrap();
    assert!(status_text(&fake).contains("4 nodes match spec.nodeSelector"));

    // An object the caches do not hold is read from the API server.
    fake.delete("apps", "daemonsets", Some(NS), DS);
    list_watched_objects(&fake, &ctx);
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.summary() == "GET daemonsets gpu-diagnostics/k8s-mcp-agent-default"),
        "a DaemonSet missing from the cache is read"
    );
    assert!(
        fake.writes()
            .contains(&"PATCH daemonsets gpu-diagnostics/k8s-mcp-agent-default".to_string()),
        "and re-created"
    );
}

#[tokio::test]
async fn drift_is_repaired_with_one_apply() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);
    run(&fake, &ctx, "default").await.unwrap();
    run(&fake, &ctx, "default").await.unwrap();

    fake.edit("apps", "daemonsets", Some(NS), DS, |ds| {
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("attacker/agent:evil");
    });
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        fake.writes(),
        ["PATCH daemonsets gpu-diagnostics/k8s-mcp-agent-default"]
    );
    assert_eq!(
        daemon_set(&fake)["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/k8s-mcp-agent/agent:0.1.0"
    );
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn dra_admin_access_is_probed_applied_and_verified() {
    let fake = FakeApi::new();
    fake.serve_dra(&[DraVersion::V1, DraVersion::V1beta2, DraVersion::V1beta1]);
    fake.insert(device_class("v1"));
    fake.insert(gpu_node("gpu-a", 0));
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);

    run(&fake, &ctx, "default").await.unwrap();
    let all: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.summary())
        .collect();
    assert_eq!(
        all,
        [
            "PATCH namespaces gpu-diagnostics",
            "PATCH resourceclaimtemplates gpu-diagnostics/k8s-mcp-agent-default (dry run)",
            "PATCH serviceaccounts gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH clusterroles k8s-mcp-agent-default",
            "PATCH clusterrolebindings k8s-mcp-agent-default",
            "PATCH daemonsets gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH resourceclaimtemplates gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH gpudiagnosticsconfigs/status default",
            "EVENT",
        ]
    );
    fake.assert_rbac_covers_requests();

    let namespace = fake.get("", "namespaces", None, NS).unwrap();
    assert_eq!(
        namespace["metadata"]["labels"]["resource.kubernetes.io/admin-access"],
        "true"
    );
    assert_eq!(
        namespace["metadata"]["labels"]["resource.k8s.io/admin-access"],
        "true"
    );
    let template = template(&fake).unwrap();
    assert_eq!(template["apiVersion"], "resource.k8s.io/v1");
    assert_eq!(
        template["spec"]["spec"]["devices"]["requests"][0]["exactly"],
        json!({"deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true})
    );
    let ds = daemon_set(&fake);
    assert_eq!(
        template["metadata"]["ownerReferences"][0]["uid"], ds["metadata"]["uid"],
        "owned by the DaemonSet"
    );
    assert_eq!(
        ds["spec"]["template"]["spec"]["resourceClaims"],
        json!([{"name": "gpu", "resourceClaimTemplateName": DS}])
    );
    let status = status_of(&fake, "default");
    assert_eq!(status.mode, Some(crds::AccessMethod::Dra));
    let dra = status.dra.unwrap();
    assert_eq!(
        (dra.api_version.as_str(), dra.admin_access),
        ("resource.k8s.io/v1", true)
    );

    assert_idle(&fake, &ctx, "default").await;

    // Deleting the config's DaemonSet takes the template with it (garbage collection follows
    // the owner reference), and the next reconcile restores both.
    fake.delete("apps", "daemonsets", Some(NS), DS);
    assert!(self::template(&fake).is_none());
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        fake.writes(),
        [
            "PATCH daemonsets gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH resourceclaimtemplates gpu-diagnostics/k8s-mcp-agent-default",
        ],
        "the status names the DaemonSet, which has not changed"
    );
}

#[tokio::test]
async fn v1beta1_clusters_get_the_flat_request_shape() {
    let fake = FakeApi::new();
    fake.serve_dra(&[DraVersion::V1beta1]);
    fake.insert(device_class("v1beta1"));
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);
    run(&fake, &ctx, "default").await.unwrap();
    let template = template(&fake).unwrap();
    assert_eq!(template["apiVersion"], "resource.k8s.io/v1beta1");
    assert_eq!(
        template["spec"]["spec"]["devices"]["requests"][0],
        json!({"name": "gpus", "deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true})
    );
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn a_cluster_that_drops_admin_access_gets_a_one_device_claim_and_a_warning() {
    let fake = FakeApi::new();
    fake.serve_dra(&[DraVersion::V1beta2]);
    fake.insert(device_class("v1beta2"));
    fake.server.set_admin_access(false);
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);

    run(&fake, &ctx, "default").await.unwrap();
    let template = template(&fake).unwrap();
    assert_eq!(
        template["spec"]["spec"]["devices"]["requests"][0]["exactly"],
        json!({"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1})
    );
    let status = status_of(&fake, "default");
    assert_eq!(
        condition(&status, "GpuAccessResolved").1,
        "DRADeviceRequestFallback"
    );
    let (degraded, reason, message) = condition(&status, "Degraded");
    assert_eq!(
        (degraded.as_str(), reason.as_str()),
        ("True", "AdminAccessUnavailable")
    );
    assert!(message.contains("DRAAdminAccess feature gate"), "{message}");
    assert!(!status.dra.unwrap().admin_access);
    // The result of the probe is remembered: no dry run, no write on the next reconcile.
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn admin_access_dropped_at_store_time_is_caught_by_reading_back() {
    let fake = FakeApi::new();
    fake.serve_dra(&[DraVersion::V1]);
    fake.insert(device_class("v1"));
    // The dry run reaches an API server instance with the DRAAdminAccess gate on, the apply one
    // with it off.
    fake.inject(Fault::admin_access(
        RequestMatch::resource("resourceclaimtemplates")
            .apply()
            .dry_run(false),
        false,
    ));
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);

    let template_writes = |fake: &FakeApi| -> Vec<String> {
        fake.writes()
            .into_iter()
            .filter(|w| w.contains("resourceclaimtemplates"))
            .collect()
    };
    // One pass applies one resolution: the admin template. Reading it back shows the drop, which
    // is reported and remembered, and the config is requeued at once.
    let action = run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        template_writes(&fake),
        ["PATCH resourceclaimtemplates gpu-diagnostics/k8s-mcp-agent-default"],
        "the admin template"
    );
    assert_eq!(action, Action::requeue(Duration::ZERO));
    let (_, reason, message) = condition(&status_of(&fake, "default"), "Degraded");
    assert_eq!(reason, "AdminAccessUnavailable");
    assert!(message.contains(
        "dropped adminAccess from ResourceClaimTemplate gpu-diagnostics/k8s-mcp-agent-default"
    ));
    assert!(
        message.contains("falls back to a one-device claim"),
        "{message}"
    );

    // The next pass resolves with the remembered answer: the fallback, without a probe.
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        template_writes(&fake),
        ["PATCH resourceclaimtemplates gpu-diagnostics/k8s-mcp-agent-default"],
        "the fallback"
    );
    assert!(!fake.requests().iter().any(|r| r.query.contains("dryRun")));
    let template = template(&fake).unwrap();
    assert_eq!(
        template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["allocationMode"],
        "ExactCount"
    );
    let (_, reason, message) = condition(&status_of(&fake, "default"), "Degraded");
    assert_eq!(reason, "AdminAccessUnavailable");
    assert!(message.contains(
        "dropped adminAccess from ResourceClaimTemplate gpu-diagnostics/k8s-mcp-agent-default"
    ));
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn a_refused_admin_access_in_an_unlabelled_namespace_is_explained() {
    let fake = FakeApi::new();
    fake.serve_dra(&[DraVersion::V1]);
    fake.insert(device_class("v1"));
    fake.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shared"}}));
    seed_config(
        &fake,
        "default",
        json!({"namespace": {"create": false, "name": "shared"}}),
    );
    let ctx = context(&fake);

    run(&fake, &ctx, "default").await.unwrap();
    assert!(
        !fake.writes().iter().any(|w| w.contains("namespaces")),
        "namespace.create=false: the namespace is never modified"
    );
    let (_, reason, message) = condition(&status_of(&fake, "default"), "Degraded");
    assert_eq!(reason, "AdminAccessUnavailable");
    assert!(
        message.contains(
            "refuses adminAccess: ResourceClaimTemplate.resource.k8s.io \"k8s-mcp-agent-default\" is invalid: \
             spec.spec.devices.requests[0].exactly.adminAccess: Forbidden: admin access to devices requires \
             the `resource.kubernetes.io/admin-access: true` label on the containing namespace"
        ),
        "{message}"
    );
    assert!(
        message.contains("kubectl label namespace shared resource.kubernetes.io/admin-access=true"),
        "{message}"
    );
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn switching_from_dra_to_runtime_class_updates_the_daemon_set_then_removes_the_template() {
    let fake = FakeApi::new();
    fake.serve_dra(&[DraVersion::V1]);
    fake.insert(device_class("v1"));
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);
    run(&fake, &ctx, "default").await.unwrap();
    assert!(template(&fake).is_some());

    fake.insert(runtime_class());
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        fake.writes(),
        [
            "PATCH namespaces gpu-diagnostics",
            "PATCH daemonsets gpu-diagnostics/k8s-mcp-agent-default",
            "DELETE resourceclaimtemplates gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH gpudiagnosticsconfigs/status default",
            "EVENT",
        ]
    );
    let pod = &daemon_set(&fake)["spec"]["template"]["spec"];
    assert_eq!(pod["runtimeClassName"], "nvidia");
    assert!(
        pod.get("resourceClaims").is_none(),
        "the claim is gone from the pod: {pod}"
    );
    let namespace = fake.get("", "namespaces", None, NS).unwrap();
    assert!(
        namespace["metadata"]["labels"]
            .get("resource.k8s.io/admin-access")
            .is_none()
    );
    fake.assert_rbac_covers_requests();
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn losing_every_access_method_removes_the_daemon_set_and_says_why() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);
    run(&fake, &ctx, "default").await.unwrap();

    fake.delete("node.k8s.io", "runtimeclasses", None, "nvidia");
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        fake.writes(),
        [
            "DELETE daemonsets gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH gpudiagnosticsconfigs/status default",
            "EVENT",
        ]
    );
    let status = status_of(&fake, "default");
    assert_eq!(status.mode, None);
    let (resolved, reason, message) = condition(&status, "GpuAccessResolved");
    assert_eq!(
        (resolved.as_str(), reason.as_str()),
        ("False", "NoGpuAccessMethod")
    );
    assert!(
        message.starts_with("No GPU access method found: no RuntimeClass \"nvidia\""),
        "{message}"
    );
    assert_eq!(status.reason, message);
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn a_foreign_object_with_our_name_is_reported_not_taken_over() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    fake.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    fake.insert(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": DS, "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "Helm"}},
        "spec": {"selector": {"matchLabels": {"app": "old"}}, "template": {"spec": {"containers": []}}}}));
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);

    run(&fake, &ctx, "default").await.unwrap();
    assert!(
        !fake.writes().iter().any(|w| w.contains("daemonsets")),
        "{:?}",
        fake.writes()
    );
    let namespace = fake.get("", "namespaces", None, NS).unwrap();
    assert!(
        namespace["metadata"].get("ownerReferences").is_none(),
        "a pre-existing namespace is not adopted"
    );
    let (_, reason, message) = condition(&status_of(&fake, "default"), "Degraded");
    assert_eq!(reason, "ObjectConflict");
    assert!(message.contains(
        "DaemonSet gpu-diagnostics/k8s-mcp-agent-default exists but was not created by the operator"
    ));
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn an_object_the_api_server_rejects_is_reported_in_the_status() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    seed_config(&fake, "default", json!({}));
    fake.inject(Fault::fail(
        RequestMatch::resource("daemonsets").verb(Verb::Patch),
        422,
    ));
    let ctx = context(&fake);
    assert_eq!(
        run(&fake, &ctx, "default").await.unwrap(),
        Action::requeue(Duration::from_secs(60))
    );
    let (_, reason, message) = condition(&status_of(&fake, "default"), "Degraded");
    assert_eq!(reason, "ObjectRejected");
    assert!(
        message.starts_with("the API server rejected DaemonSet gpu-diagnostics/k8s-mcp-agent-default: injected fault: 422 Invalid"),
        "{message}"
    );
    fake.heal();
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert!(
        fake.writes()
            .contains(&"PATCH daemonsets gpu-diagnostics/k8s-mcp-agent-default".to_owned())
    );
    assert_eq!(
        condition(&status_of(&fake, "default"), "Degraded").1,
        "NoMatchingNodes"
    );
}

#[tokio::test]
async fn a_missing_namespace_that_may_not_be_created_is_reported() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    seed_config(
        &fake,
        "default",
        json!({"namespace": {"create": false, "name": "absent"}}),
    );
    let ctx = context(&fake);
    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        fake.writes(),
        [
            "PATCH gpudiagnosticsconfigs/status default",
            "EVENT",
            "EVENT"
        ],
        "status, the mode event and the Degraded warning"
    );
    let (_, reason, message) = condition(&status_of(&fake, "default"), "Degraded");
    assert_eq!(reason, "NamespaceMissing");
    assert!(message.contains("kubectl create namespace absent"));
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn two_configs_share_a_namespace_without_fighting() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    fake.insert(gpu_node("gpu-a", 8));
    seed_config(&fake, "a", json!({"agent": {"kernelLog": false}}));
    seed_config(&fake, "b", json!({"gpu": {"mode": "DevicePlugin"}}));
    let ctx = context(&fake);
    run(&fake, &ctx, "a").await.unwrap();
    run(&fake, &ctx, "b").await.unwrap();

    let names: Vec<String> = fake
        .all("apps", "daemonsets")
        .iter()
        .map(|ds| ds["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["k8s-mcp-agent-a", "k8s-mcp-agent-b"]);
    let namespace = fake.get("", "namespaces", None, NS).unwrap();
    let owners: Vec<&str> = namespace["metadata"]["ownerReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["a", "b"]);
    // b needs CAP_SYSLOG (kernelLog defaults to true); a does not — the union stays.
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    assert_idle(&fake, &ctx, "a").await;
    assert_idle(&fake, &ctx, "b").await;
}

#[tokio::test]
async fn a_renamed_service_account_replaces_the_old_one() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);
    run(&fake, &ctx, "default").await.unwrap();

    fake.edit(
        "gpu.k8s-mcp-agent.io",
        "gpudiagnosticsconfigs",
        None,
        "default",
        |config| {
            config["spec"]["serviceAccount"]["name"] = json!("gpu-agent");
            config["metadata"]["generation"] = json!(2);
        },
    );
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    assert_eq!(
        fake.writes(),
        [
            "PATCH serviceaccounts gpu-diagnostics/gpu-agent",
            "DELETE serviceaccounts gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH clusterrolebindings k8s-mcp-agent-default",
            "PATCH daemonsets gpu-diagnostics/k8s-mcp-agent-default",
            "PATCH gpudiagnosticsconfigs/status default",
        ]
    );
    fake.assert_rbac_covers_requests();
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn agent_pods_stuck_on_a_missing_runtime_handler_are_reported_per_node() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    fake.insert(gpu_node("gpu-a", 8));
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);
    run(&fake, &ctx, "default").await.unwrap();

    let pod = fake.insert(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "k8s-mcp-agent-default-x7k2p", "namespace": NS,
            "labels": {"app.kubernetes.io/name": "k8s-mcp-agent", "app.kubernetes.io/instance": "default"}},
        "spec": {"nodeName": "gpu-a", "containers": [{"name": "agent"}]},
        "status": {"phase": "Pending"}}));
    fake.insert(json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "k8s-mcp-agent-default-x7k2p.1", "namespace": NS},
        "involvedObject": {"kind": "Pod", "name": "k8s-mcp-agent-default-x7k2p", "uid": pod["metadata"]["uid"]},
        "reason": "FailedCreatePodSandBox", "type": "Warning",
        "message": "Failed to create pod sandbox: rpc error: code = Unknown desc = RuntimeHandler \"nvidia\" not supported"}));
    fake.clear_log();
    run(&fake, &ctx, "default").await.unwrap();
    let status = status_of(&fake, "default");
    assert_eq!(status.node_problems.len(), 1);
    let problem = &status.node_problems[0];
    assert_eq!(problem.node, "gpu-a");
    assert_eq!(problem.pod.as_deref(), Some("k8s-mcp-agent-default-x7k2p"));
    assert_eq!(
        problem.reason,
        crds::NodeProblemReason::RuntimeHandlerMissing
    );
    assert_eq!(condition(&status, "Degraded").1, "NodeProblems");
    assert_eq!(
        fake.writes(),
        ["PATCH gpudiagnosticsconfigs/status default", "EVENT"],
        "a new problem: status and one Warning event"
    );
    assert_idle(&fake, &ctx, "default").await;
}

#[tokio::test]
async fn api_failures_are_errors_with_growing_backoff_and_one_event() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);
    fake.inject(Fault::fail(
        RequestMatch::resource("namespaces")
            .group("")
            .verb(Verb::Get)
            .name("gpu-diagnostics"),
        500,
    ));

    let error = run(&fake, &ctx, "default").await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("GET v1 namespaces gpu-diagnostics failed"),
        "{error}"
    );
    assert_eq!(error.metric_label(), "server_error");
    let config = read_config(&fake, "default");
    assert_eq!(
        error_policy(config.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(2))
    );
    assert_eq!(
        fake.writes(),
        ["PATCH gpudiagnosticsconfigs/status default", "EVENT"],
        "the failure in status, and one ReconcileFailed event"
    );
    let status = status_of(&fake, "default");
    assert_eq!(condition(&status, "Degraded").1, "ReconcileFailed");
    assert_eq!(condition(&status, "Ready").1, "ReconcileFailed");
    assert!(
        status
            .reason
            .contains("GET v1 namespaces gpu-diagnostics failed"),
        "{}",
        status.reason
    );

    fake.clear_log();
    let error = run(&fake, &ctx, "default").await.unwrap_err();
    assert_eq!(
        error_policy(config.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(4))
    );
    assert_eq!(
        fake.writes(),
        Vec::<String>::new(),
        "the same failure is not re-announced"
    );
    assert!(
        ctx.metrics
            .encode()
            .contains("k8s_mcp_agent_operator_reconcile_errors_total{error=\"server_error\"} 2")
    );

    fake.heal();
    assert_eq!(
        run(&fake, &ctx, "default").await.unwrap(),
        Action::requeue(Duration::from_secs(60))
    );
    assert_eq!(backoff(1), Duration::from_secs(2));
    assert_eq!(backoff(30), Duration::from_secs(300));
}

#[tokio::test]
async fn a_malformed_config_is_reported_once_and_does_not_stop_others() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    fake.insert_unvalidated(
        json!({"apiVersion": "gpu.k8s-mcp-agent.io/v1alpha1", "kind": "GpuDiagnosticsConfig",
        "metadata": {"name": "broken"}, "spec": {"gpu": {"mode": "Quantum"}}}),
    );
    seed_config(&fake, "default", json!({}));
    let ctx = context(&fake);

    let broken = read_config(&fake, "broken");
    assert!(broken.0.is_err());
    assert_eq!(
        reconcile(broken.clone(), ctx.clone()).await.unwrap(),
        Action::await_change()
    );
    assert_eq!(
        fake.writes(),
        ["PATCH gpudiagnosticsconfigs/status broken", "EVENT"]
    );
    let status = fake
        .get(
            "gpu.k8s-mcp-agent.io",
            "gpudiagnosticsconfigs",
            None,
            "broken",
        )
        .unwrap()["status"]
        .clone();
    assert_eq!(status["conditions"][0]["reason"], "InvalidSpec");
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "Unknown variant Quantum. Expected one of Auto, RuntimeClass, DevicePlugin, DRA"
        ),
        "{message}"
    );

    fake.clear_log();
    reconcile(broken, ctx.clone()).await.unwrap();
    assert_eq!(fake.writes(), Vec::<String>::new());

    run(&fake, &ctx, "default").await.unwrap();
    assert!(fake.writes().iter().any(|w| w.contains("daemonsets")));
    fake.assert_rbac_covers_requests();
}

/// A config stored before `agent.mode` accepted only `read-only` (an older CRD allowed `operator`)
/// is reported in its status, naming the one value that works; nothing is applied for it.
#[tokio::test]
async fn an_agent_mode_other_than_read_only_is_reported_as_invalid() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    fake.insert_unvalidated(
        json!({"apiVersion": "gpu.k8s-mcp-agent.io/v1alpha1", "kind": "GpuDiagnosticsConfig",
        "metadata": {"name": "writer"}, "spec": {"agent": {"mode": "operator"}}}),
    );
    let ctx = context(&fake);
    reconcile(read_config(&fake, "writer"), ctx.clone())
        .await
        .unwrap();
    assert_eq!(
        fake.writes(),
        ["PATCH gpudiagnosticsconfigs/status writer", "EVENT"]
    );
    let status = fake
        .get(
            "gpu.k8s-mcp-agent.io",
            "gpudiagnosticsconfigs",
            None,
            "writer",
        )
        .unwrap()["status"]
        .clone();
    assert_eq!(status["conditions"][0]["reason"], "InvalidSpec");
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("Unknown variant operator. Expected one of read-only"),
        "{message}"
    );
}

#[tokio::test]
async fn a_name_too_long_for_derived_names_writes_only_the_status() {
    let fake = FakeApi::new();
    fake.insert(runtime_class());
    let name = "n".repeat(crds::MAX_CONFIG_NAME_LEN + 1);
    seed_config(&fake, &name, json!({}));
    let ctx = context(&fake);
    run(&fake, &ctx, &name).await.unwrap();
    assert_eq!(
        fake.writes()[0],
        format!("PATCH gpudiagnosticsconfigs/status {name}")
    );
    assert!(fake.writes()[1..].iter().all(|w| w == "EVENT"));
    let (_, reason, message) = condition(&status_of(&fake, &name), "Degraded");
    assert_eq!(reason, "NameTooLong");
    assert!(message.contains("at most 49 fit"), "{message}");
    assert_idle(&fake, &ctx, &name).await;
}

#[tokio::test]
async fn a_config_being_deleted_is_left_to_the_garbage_collector() {
    let fake = FakeApi::new();
    seed_config(&fake, "default", json!({}));
    fake.edit(
        "gpu.k8s-mcp-agent.io",
        "gpudiagnosticsconfigs",
        None,
        "default",
        |config| {
            config["metadata"]["finalizers"] = json!(["example.com/hold"]);
        },
    );
    // Held by a finalizer, the deleted config stays, terminating.
    fake.delete(
        "gpu.k8s-mcp-agent.io",
        "gpudiagnosticsconfigs",
        None,
        "default",
    );
    let ctx = context(&fake);
    assert_eq!(
        run(&fake, &ctx, "default").await.unwrap(),
        Action::await_change()
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn the_crd_is_installed_once_and_waited_for() {
    use operator::crd::{Installed, install};
    let fake = FakeApi::empty();
    let api = operator::kube_api::KubeApi::new(fake.client());
    assert_eq!(
        install(&api, Duration::from_secs(5)).await.unwrap(),
        Installed::Applied
    );
    assert_eq!(
        fake.writes(),
        ["PATCH customresourcedefinitions gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io"]
    );
    fake.clear_log();
    assert_eq!(
        install(&api, Duration::from_secs(5)).await.unwrap(),
        Installed::Unchanged
    );
    assert_eq!(fake.writes(), Vec::<String>::new());
    fake.assert_rbac_covers_requests();
    let stored = fake
        .get(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            crds::CRD_NAME,
        )
        .unwrap();
    let stored: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_json::from_value(stored).unwrap();
    assert_eq!(stored.spec, crds::crd().spec);
}

#[tokio::test]
async fn a_crd_that_never_becomes_established_is_a_clear_error() {
    use operator::crd::install;
    let fake = FakeApi::empty();
    // Another CRD of the group already claims our singular name as a short name.
    fake.insert(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gpudiagnosticsprofiles.gpu.k8s-mcp-agent.io"},
        "spec": {"group": "gpu.k8s-mcp-agent.io", "scope": "Cluster",
            "names": {"plural": "gpudiagnosticsprofiles", "singular": "gpudiagnosticsprofile",
                "kind": "GpuDiagnosticsProfile", "shortNames": ["gpudiagnosticsconfig"]},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}));
    let api = operator::kube_api::KubeApi::new(fake.client());
    let error = install(&api, Duration::from_millis(600)).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(
            "CustomResourceDefinition gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io is not Established"
        ),
        "{text}"
    );
    assert!(
        text.contains("NamesAccepted=False: \"gpudiagnosticsconfig\" is already in use"),
        "{text}"
    );
}

#[test]
fn the_spec_type_round_trips_through_the_api_object() {
    let config: GpuDiagnosticsConfig = serde_json::from_value(json!({
        "apiVersion": "gpu.k8s-mcp-agent.io/v1alpha1", "kind": "GpuDiagnosticsConfig",
        "metadata": {"name": "x"}, "spec": spec(json!({}))}))
    .unwrap();
    assert_eq!(config.spec, GpuDiagnosticsConfigSpec::default());
}
