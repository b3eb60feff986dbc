//! Scenario 6: the cluster changes under a running operator and the agent follows within seconds.
//! The resync interval is long (60 s), so only the operator's watches can explain a quick change.

use std::time::{Duration, Instant};

use serde_json::json;
use test_apiserver::{Config, DraVersion};

use crate::fixtures::{config, crd, device_class, gpu_node, runtime_class};
use crate::harness::{Cluster, agent_container, env_value};

/// The bound for following a change.
const FOLLOW: Duration = Duration::from_secs(5);

#[test]
fn deleting_the_runtime_class_switches_to_dra_within_5s_and_recreating_it_switches_back() {
    let cluster = Cluster::start(
        Config::default().dra_versions(&[DraVersion::V1]).objects([
            crd(),
            runtime_class("nvidia"),
            device_class(DraVersion::V1, "gpu.nvidia.com"),
            gpu_node("gpu-a"),
            config("default", json!({})),
        ]),
        &["--resync-interval=60s"],
    );
    cluster.wait_status("default", "mode RuntimeClass", |s| {
        s["mode"] == "RuntimeClass"
    });
    assert!(cluster.claim_template(DraVersion::V1, "default").is_none());

    let deleted = Instant::now();
    cluster
        .server
        .delete_object("node.k8s.io/v1", "RuntimeClass", None, "nvidia")
        .expect("the RuntimeClass is deleted");
    cluster.wait(
        "the DaemonSet re-rendered for DRA, its claim template and status mode DRA",
        FOLLOW,
        |_| {
            let ds = cluster.daemon_set("default")?;
            let pod = &ds["spec"]["template"]["spec"];
            let template = cluster.claim_template(DraVersion::V1, "default")?;
            let status = &cluster.config("default")?["status"];
            (pod["runtimeClassName"].is_null()
                && pod["resourceClaims"][0]["resourceClaimTemplateName"] == "k8s-mcp-agent-default"
                && env_value(agent_container(&ds), "NVIDIA_VISIBLE_DEVICES").is_none()
                && template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["adminAccess"]
                    == true
                && status["mode"] == "DRA")
                .then_some(())
        },
    );
    eprintln!(
        "followed the RuntimeClass deletion in {:?}",
        deleted.elapsed()
    );

    let created = Instant::now();
    cluster
        .server
        .create_object(runtime_class("nvidia"))
        .expect("the RuntimeClass is created");
    cluster.wait(
        "the DaemonSet back on RuntimeClass, the claim template gone, status mode RuntimeClass",
        FOLLOW,
        |_| {
            let ds = cluster.daemon_set("default")?;
            let pod = &ds["spec"]["template"]["spec"];
            let status = &cluster.config("default")?["status"];
            (pod["runtimeClassName"] == "nvidia"
                && pod["resourceClaims"].is_null()
                && env_value(agent_container(&ds), "NVIDIA_VISIBLE_DEVICES") == Some("all")
                && cluster.claim_template(DraVersion::V1, "default").is_none()
                && status["mode"] == "RuntimeClass")
                .then_some(())
        },
    );
    eprintln!(
        "followed the RuntimeClass creation in {:?}",
        created.elapsed()
    );
    cluster.stop_operator();
}

#[test]
fn a_device_plugin_appearing_on_a_node_is_followed_within_5s_but_heartbeats_are_ignored() {
    // No RuntimeClass, no DRA: nothing works until the device plugin advertises GPUs on the node.
    let cluster = Cluster::start(
        Config::default().objects([crd(), gpu_node("gpu-a"), config("default", json!({}))]),
        &["--resync-interval=60s"],
    );
    cluster.wait_status("default", "no GPU access method", |s| {
        s["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "GpuAccessResolved" && c["status"] == "False")
        })
    });
    // Give the Node watch its first sync before counting what a heartbeat costs.
    std::thread::sleep(Duration::from_millis(500));

    // A kubelet heartbeat (conditions, a new resourceVersion) changes nothing the operator reads:
    // no reconcile follows.
    let reconciles = cluster.reconciliations();
    cluster
        .server
        .modify_object("v1", "Node", None, "gpu-a", |node| {
            node["status"]["conditions"][0]["lastHeartbeatTime"] = json!("2026-01-01T00:00:00Z");
        })
        .expect("the heartbeat is stored");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        cluster.reconciliations(),
        reconciles,
        "a heartbeat triggers no reconcile"
    );

    let advertised = Instant::now();
    cluster
        .server
        .modify_object("v1", "Node", None, "gpu-a", |node| {
            node["status"]["allocatable"]["nvidia.com/gpu"] = json!("8");
            node["status"]["capacity"]["nvidia.com/gpu"] = json!("8");
        })
        .expect("the device plugin's resource is stored");
    cluster.wait("the DaemonSet in device-plugin mode", FOLLOW, |_| {
        let ds = cluster.daemon_set("default")?;
        (agent_container(&ds)["resources"]["limits"]["nvidia.com/gpu"] == "1"
            && cluster.config("default")?["status"]["mode"] == "DevicePlugin")
            .then_some(())
    });
    eprintln!(
        "followed the device plugin's resource in {:?}",
        advertised.elapsed()
    );
    cluster.stop_operator();
}
