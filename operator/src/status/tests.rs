//! Status computation: conditions, counters, and stability (no change, no new timestamps).

use crds::{AccessMethod, NodeProblemReason};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::access::{GpuAccess, ResolutionReason};

fn time(text: &str) -> Time {
    Time(text.parse::<Timestamp>().unwrap())
}

fn resolved() -> Resolution {
    Resolution {
        access: Some(GpuAccess::RuntimeClass {
            name: "nvidia".into(),
        }),
        reason: ResolutionReason::RuntimeClassFound,
        message: "RuntimeClass \"nvidia\" exists".into(),
        issues: Vec::new(),
        consumes_gpus: false,
        namespace_admin_labels: false,
        needs_admin_probe: false,
    }
}

fn unresolved() -> Resolution {
    let message = "No GPU access method found: ...".to_owned();
    Resolution {
        access: None,
        reason: ResolutionReason::NoGpuAccessMethod,
        issues: vec![Issue {
            reason: IssueReason::NoGpuAccessMethod,
            message: message.clone(),
        }],
        message,
        consumes_gpus: false,
        namespace_admin_labels: false,
        needs_admin_probe: false,
    }
}

fn daemon_set(generation: i64, observed: i64, desired: i64, ready: i64, updated: i64) -> Value {
    json!({"metadata": {"name": "k8s-mcp-agent-default", "namespace": "gpu-diagnostics", "generation": generation},
        "status": {"observedGeneration": observed, "desiredNumberScheduled": desired, "numberReady": ready,
            "updatedNumberScheduled": updated, "numberAvailable": ready}})
}

fn input<'a>(resolution: &'a Resolution, ds: Option<&'a Value>) -> StatusInput<'a> {
    StatusInput {
        generation: Some(3),
        resolution,
        issues: Vec::new(),
        daemon_set: ds,
        selected_nodes: 2,
        node_problems: Vec::new(),
        dra: None,
    }
}

fn condition<'a>(status: &'a GpuDiagnosticsConfigStatus, type_: &str) -> &'a Condition {
    status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn a_healthy_config_reports_mode_ready_and_not_degraded() {
    let resolution = resolved();
    let ds = daemon_set(2, 2, 2, 2, 2);
    let status = compute(
        None,
        input(&resolution, Some(&ds)),
        &time("2026-03-01T12:00:00Z"),
    );
    insta::assert_yaml_snapshot!(status);
    assert_eq!(status.mode, Some(AccessMethod::RuntimeClass));
    assert_eq!(condition(&status, READY).status, "True");
    assert_eq!(condition(&status, DEGRADED).status, "False");
}

#[test]
fn transition_times_change_only_when_a_condition_flips() {
    let resolution = resolved();
    let rolling = daemon_set(2, 2, 2, 1, 2);
    let ready = daemon_set(2, 2, 2, 2, 2);
    let t1 = time("2026-03-01T12:00:00Z");
    let t2 = time("2026-03-01T12:05:00Z");
    let t3 = time("2026-03-01T12:10:00Z");
    let first = compute(None, input(&resolution, Some(&rolling)), &t1);
    assert_eq!(condition(&first, READY).reason, "AgentsNotReady");
    assert_eq!(
        condition(&first, READY).message,
        "1 of 2 agent pods ready (2 up to date)"
    );

    let same = compute(Some(&first), input(&resolution, Some(&rolling)), &t2);
    assert_eq!(same, first, "nothing changed, nothing to write");

    let flipped = compute(Some(&first), input(&resolution, Some(&ready)), &t3);
    assert_eq!(condition(&flipped, READY).last_transition_time, t3);
    assert_eq!(
        condition(&flipped, GPU_ACCESS_RESOLVED).last_transition_time,
        t1
    );
    assert_eq!(condition(&flipped, DEGRADED).last_transition_time, t1);
}

#[test]
fn a_daemon_set_not_yet_seen_by_its_controller_is_not_ready() {
    let resolution = resolved();
    let fresh = json!({"metadata": {"name": "ds", "namespace": "ns", "generation": 1}});
    let status = compute(
        None,
        input(&resolution, Some(&fresh)),
        &time("2026-03-01T12:00:00Z"),
    );
    assert_eq!(condition(&status, READY).reason, "RolloutInProgress");
    let stale = daemon_set(3, 2, 2, 2, 2);
    let status = compute(
        None,
        input(&resolution, Some(&stale)),
        &time("2026-03-01T12:00:00Z"),
    );
    assert_eq!(condition(&status, READY).reason, "RolloutInProgress");
}

#[test]
fn unresolved_means_no_daemon_set_and_degraded() {
    let resolution = unresolved();
    let status = compute(
        None,
        input(&resolution, None),
        &time("2026-03-01T12:00:00Z"),
    );
    assert_eq!(status.mode, None);
    assert_eq!(condition(&status, GPU_ACCESS_RESOLVED).status, "False");
    assert_eq!(
        condition(&status, GPU_ACCESS_RESOLVED).reason,
        "NoGpuAccessMethod"
    );
    assert_eq!(condition(&status, READY).reason, "NoDaemonSet");
    assert_eq!(condition(&status, DEGRADED).reason, "NoGpuAccessMethod");
    assert_eq!(status.reason, resolution.message);
    assert_eq!(status.daemon_set, None);
}

#[test]
fn degraded_names_the_most_severe_issue_and_lists_all() {
    let resolution = resolved();
    let ds = daemon_set(2, 2, 2, 1, 2);
    let mut input = input(&resolution, Some(&ds));
    input.node_problems = vec![crds::NodeProblem {
        node: "gpu-a".into(),
        pod: Some("agent-a".into()),
        reason: NodeProblemReason::RuntimeHandlerMissing,
        message: "no handler".into(),
        fix: "install".into(),
    }];
    input.issues = vec![Issue {
        reason: IssueReason::ObjectConflict,
        message: "ClusterRole k8s-mcp-agent-default exists but was not created by the operator"
            .into(),
    }];
    let status = compute(None, input, &time("2026-03-01T12:00:00Z"));
    let degraded = condition(&status, DEGRADED);
    assert_eq!(degraded.status, "True");
    assert_eq!(degraded.reason, "ObjectConflict");
    assert!(
        degraded
            .message
            .contains("ClusterRole k8s-mcp-agent-default")
    );
    assert!(
        degraded
            .message
            .contains("the agent cannot run on 1 node(s): gpu-a (RuntimeHandlerMissing)")
    );
    assert_eq!(status.node_problems.len(), 1);
}

#[test]
fn zero_matching_nodes_is_ready_but_degraded() {
    let resolution = resolved();
    let ds = daemon_set(1, 1, 0, 0, 0);
    let mut none_selected = input(&resolution, Some(&ds));
    none_selected.selected_nodes = 0;
    let status = compute(None, none_selected, &time("2026-03-01T12:00:00Z"));
    assert_eq!(condition(&status, READY).status, "True");
    assert_eq!(condition(&status, DEGRADED).reason, "NoMatchingNodes");
    assert!(
        condition(&status, DEGRADED)
            .message
            .contains("kubectl label node NODE nvidia.com/gpu.present=true")
    );

    let tainted = compute(
        None,
        input(&resolution, Some(&ds)),
        &time("2026-03-01T12:00:00Z"),
    );
    assert!(
        condition(&tainted, DEGRADED)
            .message
            .contains("add tolerations")
    );
}

#[test]
fn a_failed_reconcile_is_reported_in_status_without_losing_what_was_known() {
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let later = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_100).unwrap());
    // Nothing reported yet: Ready=False and Degraded=True, both ReconcileFailed, and a reason.
    let first = with_reconcile_failure(None, Some(3), "applying DaemonSet: 403 Forbidden", &now);
    let by_type = |s: &crds::GpuDiagnosticsConfigStatus, t: &str| {
        s.conditions.iter().find(|c| c.type_ == t).cloned().unwrap()
    };
    assert_eq!(by_type(&first, READY).status, "False");
    assert_eq!(by_type(&first, DEGRADED).reason, RECONCILE_FAILED);
    assert!(by_type(&first, DEGRADED).message.contains("403 Forbidden"));
    assert_eq!(by_type(&first, DEGRADED).observed_generation, Some(3));
    assert!(first.reason.contains("403 Forbidden"));
    // A known status keeps its mode, reason, Ready and counters; only Degraded changes.
    let mut known = first.clone();
    known.reason = "RuntimeClass nvidia exists".into();
    known.number_ready = 4;
    known.conditions.retain(|c| c.type_ != DEGRADED);
    let again = with_reconcile_failure(Some(&known), Some(3), "boom", &later);
    assert_eq!(again.reason, "RuntimeClass nvidia exists");
    assert_eq!(again.number_ready, 4);
    assert_eq!(by_type(&again, READY), by_type(&known, READY));
    assert_eq!(by_type(&again, DEGRADED).last_transition_time, later);
    // The same failure again keeps the transition time: nothing new to write but the message.
    let same = with_reconcile_failure(
        Some(&again),
        Some(3),
        "boom",
        &Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_200).unwrap()),
    );
    assert_eq!(same, again);
    let types: Vec<&str> = same.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, [READY, DEGRADED]);
}
