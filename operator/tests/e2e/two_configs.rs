//! Scenario 11: two configs with different node selectors get two DaemonSets and statuses that
//! do not influence each other, including when one of them is deleted.

use serde_json::json;
use test_apiserver::{Config, LogMark, RequestMatch};

use crate::fixtures::{NAMESPACE, config, crd, node, runtime_class};
use crate::harness::{CONVERGE, Cluster, condition, has_condition};

#[test]
fn two_configs_with_different_node_selectors_get_two_daemon_sets_and_independent_statuses() {
    let cluster = Cluster::start(
        Config::default().objects([
            crd(),
            runtime_class("nvidia"),
            node("a100-1", json!({"gpu-type": "a100"}), json!({})),
            node("h100-1", json!({"gpu-type": "h100"}), json!({})),
            node("h100-2", json!({"gpu-type": "h100"}), json!({})),
            config("a100", json!({"nodeSelector": {"gpu-type": "a100"}})),
            // Explicit device-plugin mode on nodes whose device plugin advertises nothing.
            config(
                "h100",
                json!({"nodeSelector": {"gpu-type": "h100"}, "gpu": {"mode": "DevicePlugin"}}),
            ),
        ]),
        &[],
    );

    let a100 = cluster.wait_status("a100", "mode RuntimeClass", |s| s["mode"] == "RuntimeClass");
    let h100 = cluster.wait_status("h100", "mode DevicePlugin, prerequisite missing", |s| {
        s["mode"] == "DevicePlugin" && has_condition(s, "Degraded", "True", "PrerequisiteMissing")
    });
    assert_eq!(
        a100["daemonSet"],
        json!({"namespace": NAMESPACE, "name": "k8s-mcp-agent-a100"})
    );
    assert_eq!(
        h100["daemonSet"],
        json!({"namespace": NAMESPACE, "name": "k8s-mcp-agent-h100"})
    );
    let h100_degraded = condition(&h100, "Degraded")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        h100_degraded.contains("none of the 2 nodes matching nodeSelector gpu-type=h100 advertises allocatable nvidia.com/gpu"),
        "{h100_degraded}"
    );

    let a100_ds = cluster.daemon_set("a100").expect("DaemonSet of a100");
    let h100_ds = cluster.daemon_set("h100").expect("DaemonSet of h100");
    assert_eq!(
        a100_ds["spec"]["template"]["spec"]["nodeSelector"],
        json!({"gpu-type": "a100"})
    );
    assert_eq!(
        h100_ds["spec"]["template"]["spec"]["nodeSelector"],
        json!({"gpu-type": "h100"})
    );
    assert_eq!(a100_ds["metadata"]["ownerReferences"][0]["name"], "a100");
    assert_eq!(h100_ds["metadata"]["ownerReferences"][0]["name"], "h100");
    assert_eq!(
        a100_ds["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
        "a100"
    );
    assert_eq!(
        h100_ds["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
        "h100"
    );

    // The a100 agent becomes ready; only a100's status says so.
    cluster.daemon_set_rolled_out("a100", 1, 1);
    let a100 = cluster.wait_status("a100", "Ready", |s| {
        has_condition(s, "Ready", "True", "AgentsReady")
    });
    assert!(
        has_condition(&a100, "Degraded", "False", "AsExpected"),
        "{a100}"
    );
    assert_eq!(
        (
            a100["desiredNumberScheduled"].as_i64(),
            a100["numberReady"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let h100_now = cluster.config("h100").expect("h100")["status"].clone();
    assert_eq!(h100_now, h100, "a100's rollout changed h100's status");

    // Deleting h100 leaves a100 alone: its DaemonSet, its status and the shared namespace.
    let mark = cluster.server.mark();
    cluster.kubectl_ok(&["delete", "gdc", "h100"]);
    cluster.wait("h100's DaemonSet gone", CONVERGE, |_| {
        cluster.daemon_set("h100").is_none().then_some(())
    });
    cluster.assert_stays(
        "a100's objects intact",
        std::time::Duration::from_secs(2),
        |s| {
            s.get_object("v1", "Namespace", None, NAMESPACE).is_some()
                && s.get_object(
                    "apps/v1",
                    "DaemonSet",
                    Some(NAMESPACE),
                    "k8s-mcp-agent-a100",
                )
                .is_some()
        },
    );
    assert_eq!(cluster.config("a100").expect("a100")["status"], a100);
    let a100_writes = cluster.server.count(
        mark,
        &RequestMatch::any().writes().name("k8s-mcp-agent-a100"),
    );
    assert_eq!(a100_writes, 0, "deleting h100 rewrote a100's objects");
    assert!(
        cluster
            .server
            .count(LogMark(0), &RequestMatch::resource("daemonsets").writes())
            >= 2
    );
    cluster.stop_operator();
}
