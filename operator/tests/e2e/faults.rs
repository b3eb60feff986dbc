//! Scenario 9: API failures. The operator converges without a restart, never exits, and backs off
//! instead of hot-looping while a failure persists.

use std::time::{Duration, Instant};

use serde_json::json;
use test_apiserver::{Config, Fault, LogMark, RequestMatch, Verb};

use crate::fixtures::{config, crd, device_plugin_node, gpu_node, runtime_class};
use crate::harness::{Cluster, agent_container, config_events, env_value};

/// Longest a retry may take after failures (the operator's backoff doubles from 2 s).
const AFTER_BACKOFF: Duration = Duration::from_secs(40);

fn runtime_class_cluster_objects() -> Vec<serde_json::Value> {
    vec![
        crd(),
        runtime_class("nvidia"),
        gpu_node("gpu-a"),
        config("default", json!({})),
    ]
}

#[test]
fn transient_500s_on_apply_and_a_409_on_status_converge_without_a_restart() {
    let daemon_set_applies = RequestMatch::resource("daemonsets").apply();
    let status_writes = RequestMatch::resource("gpudiagnosticsconfigs")
        .status()
        .writes();
    let cluster = Cluster::start_with(
        Config::default().objects(runtime_class_cluster_objects()),
        &[],
        |server| {
            server.inject(Fault::fail(daemon_set_applies.clone(), 500).times(2));
            server.inject(Fault::fail(status_writes.clone(), 409).times(1));
        },
    );

    cluster.wait(
        "the DaemonSet and status after the failures",
        AFTER_BACKOFF,
        |_| {
            let ds = cluster.daemon_set("default")?;
            let status = &cluster.config("default")?["status"];
            (ds["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
                && status["mode"] == "RuntimeClass")
                .then_some(())
        },
    );
    let injected = |matcher: &RequestMatch, code: u16| {
        cluster
            .server
            .matching_requests(LogMark(0), matcher)
            .iter()
            .filter(|r| r.injected && r.status == code)
            .count()
    };
    assert_eq!(injected(&daemon_set_applies, 500), 2, "both 500s were met");
    assert_eq!(injected(&status_writes, 409), 1, "the 409 was met");
    cluster.wait(
        "the failure reported as a Warning event",
        crate::harness::CONVERGE,
        |s| {
            config_events(s, "default")
                .iter()
                .any(|(type_, reason, note)| {
                    type_ == "Warning" && reason == "ReconcileFailed" && note.contains("500")
                })
                .then_some(())
        },
    );
    cluster.stop_operator();
}

#[test]
fn a_persistent_500_is_retried_with_backoff_not_hot_looped_then_converges() {
    let daemon_set_applies = RequestMatch::resource("daemonsets").apply();
    let cluster = Cluster::start_with(
        Config::default().objects(runtime_class_cluster_objects()),
        &[],
        |server| server.inject(Fault::fail(daemon_set_applies.clone(), 500)),
    );
    let failing = |s: &test_apiserver::TestApiServer| {
        s.matching_requests(LogMark(0), &daemon_set_applies)
            .iter()
            .any(|r| r.injected)
            .then_some(())
    };
    cluster.wait(
        "the first failed DaemonSet apply",
        Duration::from_secs(20),
        failing,
    );

    let mark = cluster.server.mark();
    let window = Instant::now();
    cluster.assert_stays("the operator running", Duration::from_secs(10), |_| true);
    let elapsed = window.elapsed().as_secs_f64();
    let applies = cluster.server.count(mark, &daemon_set_applies);
    let requests = cluster
        .server
        .requests_since(mark)
        .iter()
        .filter(|r| r.info.verb != Some(Verb::Watch))
        .count();
    let per_second = requests as f64 / elapsed;
    eprintln!(
        "under a persistent 500 for {elapsed:.1} s: {applies} DaemonSet applies, {requests} requests ({per_second:.1}/s)"
    );
    assert!(
        (1..=6).contains(&applies),
        "expected a few retries with backoff (2 s, 4 s, 8 s…) in 10 s, saw {applies} DaemonSet applies"
    );
    assert!(
        per_second < 10.0,
        "{per_second:.1} requests/s under a persistent failure: the operator is hot-looping"
    );
    assert!(cluster.daemon_set("default").is_none());

    cluster.server.clear_faults();
    cluster.wait(
        "the DaemonSet once the failure stops",
        AFTER_BACKOFF,
        |_| {
            let status = &cluster.config("default")?["status"];
            (cluster.daemon_set("default").is_some() && status["mode"] == "RuntimeClass")
                .then_some(())
        },
    );
    cluster.stop_operator();
}

#[test]
fn dropped_watches_and_compacted_history_are_recovered_from() {
    let cluster = Cluster::start(
        Config::default().objects([
            crd(),
            runtime_class("nvidia"),
            device_plugin_node("gpu-a", 1),
            config("default", json!({})),
        ]),
        // Only watches can explain a quick reaction.
        &["--resync-interval=60s"],
    );
    cluster.wait_status("default", "mode RuntimeClass", |s| {
        s["mode"] == "RuntimeClass"
    });
    let runtime_class_watches = RequestMatch::resource("runtimeclasses").verb(Verb::Watch);
    cluster.wait("a RuntimeClass watch", Duration::from_secs(10), |s| {
        (s.open_watches(&runtime_class_watches) > 0).then_some(())
    });

    let config_watches = RequestMatch::resource("gpudiagnosticsconfigs").verb(Verb::Watch);
    let watching = |s: &test_apiserver::TestApiServer| {
        s.open_watches(&runtime_class_watches) > 0 && s.open_watches(&config_watches) > 0
    };

    // A dropped watch (an API server restart): the operator resumes from where it was.
    let closed = cluster.server.close_watches(&RequestMatch::any());
    assert!(
        closed >= 3,
        "the operator had its watches open ({closed} closed)"
    );
    cluster.wait("the watches resumed", Duration::from_secs(10), |s| {
        watching(s).then_some(())
    });
    cluster
        .server
        .delete_object("node.k8s.io/v1", "RuntimeClass", None, "nvidia")
        .expect("the RuntimeClass is deleted");
    cluster.wait(
        "DevicePlugin mode after the RuntimeClass deletion",
        Duration::from_secs(5),
        |_| {
            let ds = cluster.daemon_set("default")?;
            (ds["spec"]["template"]["spec"]["runtimeClassName"].is_null()
                && agent_container(&ds)["resources"]["limits"]["nvidia.com/gpu"] == "1")
                .then_some(())
        },
    );

    // Dropped again, and the history compacted: resuming gets 410 Gone, the operator re-lists.
    // (kube-runtime backs off before re-listing after the error, up to several seconds.)
    let mark = cluster.server.mark();
    // An unrelated change first, so that no watch is already at the newest resourceVersion through
    // a bookmark: every one of them must find its position compacted away.
    cluster
        .server
        .create_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "unrelated", "namespace": "default"}}))
        .expect("an unrelated object");
    cluster.server.compact_history();
    cluster.server.close_watches(&RequestMatch::any());
    cluster.wait(
        "the watches re-established after a re-list",
        Duration::from_secs(20),
        |s| {
            let relisted = s.count(
                mark,
                &RequestMatch::resource("runtimeclasses").verb(Verb::List),
            ) > 0;
            (relisted && watching(s)).then_some(())
        },
    );
    cluster
        .server
        .create_object(runtime_class("nvidia"))
        .expect("the RuntimeClass is created");
    cluster.wait(
        "RuntimeClass mode after the RuntimeClass creation",
        Duration::from_secs(5),
        |_| {
            let ds = cluster.daemon_set("default")?;
            (ds["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia").then_some(())
        },
    );
    cluster
        .server
        .modify_object(
            "gpu.k8s-mcp-agent.io/v1alpha1",
            "GpuDiagnosticsConfig",
            None,
            "default",
            |c| c["spec"]["agent"]["logLevel"] = json!("debug"),
        )
        .expect("the config is changed");
    cluster.wait("the config change followed", Duration::from_secs(5), |_| {
        let ds = cluster.daemon_set("default")?;
        (env_value(agent_container(&ds), "AGENT_LOG_LEVEL") == Some("debug")).then_some(())
    });
    cluster.stop_operator();
}
