//! Scenario 7: once converged, resyncs every second for 30 s change nothing. Counted two ways: the
//! API server's request log (every write request; `changed` marks those that altered stored state,
//! and dry runs, such as the DRA admin-access probe, never do) and the operator's own
//! `api_writes_total` metric.

use std::time::Duration;

use serde_json::json;
use test_apiserver::{Config, DraVersion, RequestMatch};

use crate::fixtures::{config, crd, device_class, device_plugin_node, runtime_class};
use crate::harness::{Cluster, has_condition};

/// The operator's `api_writes_total` series other than dry runs, as exposed.
fn real_write_counters(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|line| line.starts_with("k8s_mcp_agent_operator_api_writes_total"))
        .filter(|line| !line.contains("dry-run"))
        .map(String::from)
        .collect()
}

#[test]
fn thirty_seconds_of_resyncs_after_convergence_write_nothing() {
    let configs = [
        ("runtime", json!({})),
        ("dra", json!({"gpu": {"mode": "DRA"}})),
        ("plugin", json!({"gpu": {"mode": "DevicePlugin"}})),
    ];
    let mut objects = vec![
        crd(),
        runtime_class("nvidia"),
        device_class(DraVersion::V1, "gpu.nvidia.com"),
        device_plugin_node("gpu-a", 8),
    ];
    objects.extend(
        configs
            .iter()
            .map(|(name, spec)| config(name, spec.clone())),
    );
    let cluster = Cluster::start(
        Config::default()
            .dra_versions(&[DraVersion::V1])
            .objects(objects),
        &["--resync-interval=1s"],
    );

    for (name, mode) in [
        ("runtime", "RuntimeClass"),
        ("dra", "DRA"),
        ("plugin", "DevicePlugin"),
    ] {
        cluster.wait_status(name, &format!("mode {mode}"), |s| s["mode"] == mode);
        cluster.daemon_set_rolled_out(name, 1, 1);
    }
    for (name, _) in &configs {
        cluster.wait_status(name, "Ready and not Degraded", |s| {
            has_condition(s, "Ready", "True", "AgentsReady")
                && has_condition(s, "Degraded", "False", "AsExpected")
        });
    }

    // The operator counts a write once the API server has answered it: wait until the count
    // stops moving before taking it.
    let mut writes_before = real_write_counters(&cluster.metrics());
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = real_write_counters(&cluster.metrics());
        if now == writes_before {
            break;
        }
        writes_before = now;
    }
    let mark = cluster.server.mark();
    let reconciles_before = cluster.reconciliations();
    cluster.assert_stays("the operator running", Duration::from_secs(30), |_| true);

    let writes = assert_no_writes_since(&cluster, mark, "30 s of resyncs");
    assert_eq!(
        real_write_counters(&cluster.metrics()),
        writes_before,
        "api_writes_total moved"
    );
    // The resyncs did run.
    let reconciles = cluster.reconciliations() - reconciles_before;
    assert!(
        reconciles >= 3 * 10,
        "expected at least 10 resyncs per config in 30 s with --resync-interval=1s, saw {reconciles} reconciles"
    );
    eprintln!(
        "30 s after convergence: {reconciles} reconciles, {} write requests, all dry runs",
        writes.len()
    );

    // A new operator process (an upgrade, a rescheduled pod) finds nothing to do either.
    let mark = cluster.server.mark();
    cluster.restart_operator();
    cluster.wait(
        "three resyncs of every config by the new operator process",
        crate::harness::CONVERGE,
        |_| (cluster.reconciliations() >= 3 * 3).then_some(()),
    );
    assert_no_writes_since(&cluster, mark, "an operator restart");
    cluster.stop_operator();
}

/// Fails if a write request other than a dry run arrived since `mark`, or any write changed state;
/// returns the write requests (dry runs).
fn assert_no_writes_since(
    cluster: &Cluster,
    mark: test_apiserver::LogMark,
    during: &str,
) -> Vec<test_apiserver::RequestRecord> {
    let writes = cluster
        .server
        .matching_requests(mark, &RequestMatch::any().writes());
    let summary: Vec<String> = writes
        .iter()
        .map(|r| format!("{} {}?{} changed={}", r.method, r.path, r.query, r.changed))
        .collect();
    assert!(
        writes.iter().all(|r| !r.changed),
        "writes that changed state during {during}: {summary:#?}"
    );
    assert!(
        writes.iter().all(|r| r.query.contains("dryRun=All")),
        "write requests other than dry runs during {during}: {summary:#?}"
    );
    writes
}
