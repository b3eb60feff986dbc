//! Scenarios 1–5: which GPU access method the operator picks from what the cluster has, what it
//! renders for it, and what the config's status and `kubectl get gdc` tell the user.

use std::time::Duration;

use serde_json::{Value, json};
use test_apiserver::{Config, DraVersion, LogMark, RequestMatch};

use crate::fixtures::{
    NAMESPACE, agent_name, config, crd, device_class, device_plugin_node, dra_version, gpu_node,
    runtime_class,
};
use crate::harness::{
    Cluster, agent_container, condition, config_events, env_value, has_condition, table,
};

/// The pod template of a DaemonSet.
fn pod_spec(daemon_set: &Value) -> &Value {
    &daemon_set["spec"]["template"]["spec"]
}

/// Scenario 1: a RuntimeClass `nvidia` exists.
#[test]
fn runtime_class_mode_when_the_nvidia_runtime_class_exists() {
    let cluster = Cluster::start(
        Config::default().objects([
            crd(),
            runtime_class("nvidia"),
            gpu_node("gpu-a"),
            config("default", json!({})),
        ]),
        &[],
    );

    let ds = cluster.wait_daemon_set("default", "rendered", |_| true);
    let pod = pod_spec(&ds);
    let agent = agent_container(&ds);
    assert_eq!(pod["runtimeClassName"], "nvidia");
    assert_eq!(env_value(agent, "NVIDIA_VISIBLE_DEVICES"), Some("all"));
    assert!(
        agent["resources"]["limits"].get("nvidia.com/gpu").is_none(),
        "RuntimeClass mode consumes no GPU: {}",
        agent["resources"]
    );
    assert!(pod["resourceClaims"].is_null(), "no DRA claim: {pod}");
    assert_eq!(agent["command"], json!(["/agent", "idle"]));
    assert_eq!(
        agent["readinessProbe"]["exec"]["command"],
        json!(["/agent", "check"])
    );
    assert_eq!(
        pod["nodeSelector"],
        json!({"nvidia.com/gpu.present": "true"})
    );
    let labels = &pod_template_labels(&ds);
    assert_eq!(labels["app.kubernetes.io/name"], "k8s-mcp-agent");
    assert_eq!(labels["app.kubernetes.io/instance"], "default");

    let status = cluster.wait_status("default", "mode RuntimeClass", |s| {
        s["mode"] == "RuntimeClass"
    });
    let resolved = condition(&status, "GpuAccessResolved");
    assert_eq!(
        (&resolved["status"], &resolved["reason"]),
        (&json!("True"), &json!("RuntimeClassFound")),
        "{status}"
    );
    assert!(
        status["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("RuntimeClass \"nvidia\" exists"),
        "{status}"
    );

    // The DaemonSet controller schedules the agent on the GPU node and it becomes ready.
    cluster.daemon_set_rolled_out("default", 1, 1);
    let status = cluster.wait_status("default", "Ready", |s| {
        has_condition(s, "Ready", "True", "AgentsReady")
    });
    assert!(
        has_condition(&status, "Degraded", "False", "AsExpected"),
        "{status}"
    );

    let rows = table(&cluster.kubectl_ok(&["get", "gdc"]));
    assert_eq!(rows[0], ["NAME", "MODE", "READY", "DESIRED", "AGE"]);
    assert_eq!(rows[1][..4], ["default", "RuntimeClass", "1", "1"]);
    let wide = cluster.kubectl_ok(&["get", "gdc", "default", "-o", "wide"]);
    assert!(wide.contains("REASON"), "{wide}");
    assert!(wide.contains("RuntimeClass \"nvidia\" exists"), "{wide}");
    cluster.stop_operator();
}

fn pod_template_labels(daemon_set: &Value) -> Value {
    daemon_set["spec"]["template"]["metadata"]["labels"].clone()
}

/// Scenario 2, at each served DRA version: no RuntimeClass, DeviceClass `gpu.nvidia.com` exists.
fn dra_with_admin_access(version: DraVersion) {
    let v = dra_version(version);
    let cluster = Cluster::start(
        Config::default().dra_versions(&[version]).objects([
            crd(),
            device_class(version, "gpu.nvidia.com"),
            gpu_node("gpu-a"),
            config("default", json!({})),
        ]),
        &[],
    );

    let status = cluster.wait_status("default", "mode DRA with admin access", |s| {
        s["mode"] == "DRA" && s["dra"]["adminAccess"] == true
    });
    assert!(
        has_condition(
            &status,
            "GpuAccessResolved",
            "True",
            "DRAAdminAccessAvailable"
        ),
        "{status}"
    );
    assert_eq!(
        status["dra"],
        json!({"apiVersion": format!("resource.k8s.io/{v}"), "resourceClaimTemplate": "k8s-mcp-agent-default",
               "adminAccess": true})
    );

    let template = cluster
        .claim_template(version, "default")
        .expect("the ResourceClaimTemplate exists");
    let requests = &template["spec"]["spec"]["devices"]["requests"];
    assert_eq!(requests.as_array().map(Vec::len), Some(1), "{template}");
    let request = &requests[0];
    let selection = if version == DraVersion::V1beta1 {
        assert!(
            request.get("exactly").is_none(),
            "v1beta1 has the flat shape: {request}"
        );
        request
    } else {
        assert!(
            request["exactly"].is_object(),
            "{v} nests `exactly`: {request}"
        );
        &request["exactly"]
    };
    assert_eq!(selection["deviceClassName"], "gpu.nvidia.com");
    assert_eq!(selection["allocationMode"], "All");
    assert_eq!(selection["adminAccess"], true);
    // Written at the served version (the server converts on read, so the request log tells).
    let applies: Vec<_> = cluster
        .server
        .matching_requests(
            LogMark(0),
            &RequestMatch::resource("resourceclaimtemplates").apply(),
        )
        .into_iter()
        .filter(|r| !r.query.contains("dryRun=All"))
        .collect();
    assert!(!applies.is_empty(), "the template was applied");
    assert!(
        applies.iter().all(|r| r.info.version.as_deref() == Some(v)),
        "applied at {:?}, served only {v}",
        applies.iter().map(|r| &r.path).collect::<Vec<_>>()
    );

    let namespace = cluster
        .server
        .get_object("v1", "Namespace", None, NAMESPACE)
        .expect("the agent namespace exists");
    let ns_labels = &namespace["metadata"]["labels"];
    assert_eq!(
        ns_labels["resource.k8s.io/admin-access"], "true",
        "{namespace}"
    );
    assert_eq!(
        ns_labels["resource.kubernetes.io/admin-access"], "true",
        "{namespace}"
    );

    let ds = cluster.daemon_set("default").expect("the DaemonSet exists");
    let pod = pod_spec(&ds);
    let agent = agent_container(&ds);
    assert_eq!(
        pod["resourceClaims"],
        json!([{"name": "gpu", "resourceClaimTemplateName": agent_name("default")}])
    );
    assert_eq!(agent["resources"]["claims"], json!([{"name": "gpu"}]));
    assert!(pod["runtimeClassName"].is_null(), "{pod}");
    assert!(agent["resources"]["limits"].get("nvidia.com/gpu").is_none());
    assert_eq!(env_value(agent, "NVIDIA_VISIBLE_DEVICES"), None);
    cluster.stop_operator();
}

#[test]
fn dra_admin_access_claim_template_at_v1() {
    dra_with_admin_access(DraVersion::V1);
}

#[test]
fn dra_admin_access_claim_template_at_v1beta2() {
    dra_with_admin_access(DraVersion::V1beta2);
}

#[test]
fn dra_admin_access_claim_template_at_v1beta1_has_the_flat_request_shape() {
    dra_with_admin_access(DraVersion::V1beta1);
}

/// Scenario 2, admin access gate off: the API server drops `adminAccess` silently.
#[test]
fn without_the_admin_access_gate_dra_falls_back_to_one_device_and_says_so() {
    let cluster = Cluster::start(
        Config::default()
            .dra_versions(&[DraVersion::V1])
            .admin_access(false)
            .objects([
                crd(),
                device_class(DraVersion::V1, "gpu.nvidia.com"),
                gpu_node("gpu-a"),
                config("default", json!({})),
            ]),
        // Re-probe often, to see that probing again changes nothing.
        &["--admin-access-recheck-interval=2s"],
    );

    let status = cluster.wait_status("default", "DRA one-device fallback, degraded", |s| {
        s["mode"] == "DRA" && has_condition(s, "Degraded", "True", "AdminAccessUnavailable")
    });
    assert!(
        has_condition(
            &status,
            "GpuAccessResolved",
            "True",
            "DRADeviceRequestFallback"
        ),
        "{status}"
    );
    let reason = status["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("each agent pod claims one device")
            && reason.contains("taken away from workloads"),
        "status.reason warns that a GPU is consumed: {reason}"
    );
    let degraded = condition(&status, "Degraded")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        degraded.contains("drops adminAccess") && degraded.contains("DRAAdminAccess feature gate"),
        "Degraded says why and what to do: {degraded}"
    );
    assert_eq!(status["dra"]["adminAccess"], false);

    let template = cluster
        .claim_template(DraVersion::V1, "default")
        .expect("the fallback ResourceClaimTemplate exists");
    assert_eq!(
        template["spec"]["spec"]["devices"]["requests"],
        json!([{"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1}}])
    );
    // Detected by a dry-run apply, which stores nothing.
    let probes: Vec<_> = cluster
        .server
        .matching_requests(
            LogMark(0),
            &RequestMatch::resource("resourceclaimtemplates").apply(),
        )
        .into_iter()
        .filter(|r| r.query.contains("dryRun=All"))
        .collect();
    assert!(!probes.is_empty(), "admin access was probed with a dry run");
    assert!(probes.iter().all(|r| !r.changed), "dry runs change nothing");
    // Events are published right after the status write: wait for it rather than race it.
    cluster.wait(
        "a Warning event AdminAccessUnavailable",
        crate::harness::CONVERGE,
        |s| {
            config_events(s, "default")
                .iter()
                .any(|(type_, reason, _)| type_ == "Warning" && reason == "AdminAccessUnavailable")
                .then_some(())
        },
    );

    // Steady state: the probe repeats (dry runs: write requests that store nothing), nothing else
    // is written.
    let mark = cluster.server.mark();
    let dry_runs = RequestMatch::resource("resourceclaimtemplates").apply();
    cluster.wait("two more probes", Duration::from_secs(15), |s| {
        let probes = s
            .matching_requests(mark, &dry_runs)
            .iter()
            .filter(|r| r.query.contains("dryRun=All") && r.status == 200)
            .count();
        (probes >= 2).then_some(())
    });
    let writes: Vec<String> = cluster
        .server
        .matching_requests(mark, &RequestMatch::any().writes())
        .iter()
        .filter(|r| r.changed || !r.query.contains("dryRun=All"))
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(writes.is_empty(), "re-probing wrote: {writes:#?}");
    cluster.stop_operator();
}

/// Scenario 3: only nodes advertising allocatable `nvidia.com/gpu` (the device plugin).
#[test]
fn device_plugin_mode_when_only_nodes_advertise_gpus_and_status_warns() {
    let cluster = Cluster::start(
        Config::default().objects([
            crd(),
            device_plugin_node("gpu-a", 8),
            device_plugin_node("gpu-b", 8),
            config("default", json!({})),
        ]),
        &[],
    );

    let ds = cluster.wait_daemon_set("default", "rendered", |_| true);
    let agent = agent_container(&ds);
    assert_eq!(agent["resources"]["limits"]["nvidia.com/gpu"], "1");
    assert!(pod_spec(&ds)["runtimeClassName"].is_null());
    assert!(pod_spec(&ds)["resourceClaims"].is_null());
    assert_eq!(env_value(agent, "NVIDIA_VISIBLE_DEVICES"), None);

    let status = cluster.wait_status("default", "mode DevicePlugin", |s| {
        s["mode"] == "DevicePlugin"
    });
    assert!(
        has_condition(
            &status,
            "GpuAccessResolved",
            "True",
            "DevicePluginResourceFound"
        ),
        "{status}"
    );
    let reason = status["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("2 of 2 selected nodes advertise allocatable nvidia.com/gpu")
            && reason
                .contains("each agent pod requests 1 nvidia.com/gpu: taken away from workloads"),
        "status.reason warns that every agent takes a GPU: {reason}"
    );
    let events = cluster.wait("the mode-selected event", crate::harness::CONVERGE, |s| {
        let events = config_events(s, "default");
        events
            .iter()
            .any(|(_, reason, _)| reason == "GpuAccessModeSelected")
            .then_some(events)
    });
    assert!(
        events
            .iter()
            .any(|(_, reason, note)| reason == "GpuAccessModeSelected"
                && note.starts_with("DevicePlugin:")
                && note.contains("taken away from workloads")),
        "{events:?}"
    );
    cluster.stop_operator();
}

/// Scenario 4: no RuntimeClass, no DRA, no device plugin.
#[test]
fn nothing_available_creates_no_daemon_set_and_explains_what_to_install() {
    let cluster = Cluster::start(
        Config::default().objects([crd(), gpu_node("gpu-a"), config("default", json!({}))]),
        &[],
    );

    let status = cluster.wait_status("default", "GpuAccessResolved=False", |s| {
        has_condition(s, "GpuAccessResolved", "False", "NoGpuAccessMethod")
    });
    let message = condition(&status, "GpuAccessResolved")["message"]
        .as_str()
        .unwrap_or_default();
    for looked_for in [
        "no RuntimeClass \"nvidia\"",
        "the API server does not serve resource.k8s.io",
        "none of the 1 nodes matching nodeSelector nvidia.com/gpu.present=true advertises allocatable nvidia.com/gpu",
        "Install the NVIDIA GPU Operator or container toolkit",
        "the NVIDIA DRA driver, or the NVIDIA device plugin",
    ] {
        assert!(
            message.contains(looked_for),
            "{looked_for:?} missing from: {message}"
        );
    }
    assert!(status["mode"].is_null(), "{status}");
    assert!(
        has_condition(&status, "Ready", "False", "NoDaemonSet"),
        "{status}"
    );
    assert!(
        has_condition(&status, "Degraded", "True", "NoGpuAccessMethod"),
        "{status}"
    );
    assert!(cluster.daemon_set("default").is_none());
    assert_eq!(
        cluster
            .server
            .count(LogMark(0), &RequestMatch::resource("daemonsets").writes()),
        0,
        "no DaemonSet was ever written"
    );
    let rows = table(&cluster.kubectl_ok(&["get", "gdc"]));
    assert_eq!(rows[1][..4], ["default", "", "0", "0"], "{rows:?}");
    cluster.stop_operator();
}

/// Scenario 5: the original chart's fallback flags win over Auto's search.
#[test]
fn the_original_charts_fallback_flags_pick_device_plugin_despite_the_runtime_class() {
    let cluster = Cluster::start(
        Config::default().objects([
            crd(),
            runtime_class("nvidia"),
            device_plugin_node("gpu-a", 1),
            config(
                "default",
                json!({"gpu": {"runtimeClass": {"enabled": false}, "resourceRequest": {"enabled": true}}}),
            ),
        ]),
        &[],
    );

    let status = cluster.wait_status("default", "mode DevicePlugin", |s| {
        s["mode"] == "DevicePlugin"
    });
    assert!(
        has_condition(&status, "GpuAccessResolved", "True", "ModeSetInSpec"),
        "{status}"
    );
    let ds = cluster.daemon_set("default").expect("the DaemonSet exists");
    assert!(pod_spec(&ds)["runtimeClassName"].is_null(), "{ds}");
    assert_eq!(
        agent_container(&ds)["resources"]["limits"]["nvidia.com/gpu"],
        "1"
    );
    cluster.stop_operator();
}

#[test]
fn large_clusters_are_listed_page_by_page_and_every_node_counts() {
    // 1,234 GPU nodes: the Node watch's initial list reads them in pages of 500, keeping only the
    // fields the operator needs, and reconciles, which select from what it keeps, see every node.
    let mut objects = vec![crd(), config("default", json!({}))];
    objects.extend((0..1234).map(|i| device_plugin_node(&format!("gpu-{i:04}"), 8)));
    let cluster = Cluster::start(Config::default().objects(objects), &[]);
    let status = cluster.wait_status("default", "mode DevicePlugin", |s| {
        s["mode"] == "DevicePlugin"
    });
    let reason = status["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("1234 of 1234 selected nodes advertise allocatable nvidia.com/gpu"),
        "every page was read: {reason}"
    );
    let reconciles = cluster.reconciliations();
    let node_lists: Vec<String> = cluster
        .server
        .matching_requests(LogMark(0), &RequestMatch::resource("nodes"))
        .into_iter()
        .filter(|r| r.method == "GET" && !r.query.contains("watch=true"))
        .map(|r| r.query)
        .collect();
    assert!(
        node_lists.iter().all(|q| q.contains("limit=500")),
        "every Node LIST is paged: {node_lists:?}"
    );
    assert!(
        node_lists.iter().any(|q| q.contains("continue=")),
        "later pages follow the continue token: {node_lists:?}"
    );
    assert!(reconciles >= 1);
    assert_eq!(
        node_lists.len(),
        3,
        "the watch's initial list is the only Node LIST; {reconciles} reconciles listed none: {node_lists:?}"
    );
    cluster.stop_operator();
}
