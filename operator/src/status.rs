//! The config's status, computed from what the reconcile saw (pure). Equal inputs give an equal
//! status: a condition keeps its `lastTransitionTime` unless its `status` flips, so a reconcile
//! that changes nothing leaves nothing to write.

use crds::{DraStatus, GpuDiagnosticsConfigStatus, NodeProblem, ObjectRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::Value;

use crate::access::{Issue, IssueReason, Resolution};

/// Condition type: a GPU access method was resolved.
pub const GPU_ACCESS_RESOLVED: &str = "GpuAccessResolved";
/// Condition type: every wanted agent pod runs the current spec and is ready.
pub const READY: &str = "Ready";
/// Condition type: something needs a human.
pub const DEGRADED: &str = "Degraded";

/// What the status is computed from.
pub struct StatusInput<'a> {
    /// `metadata.generation` of the config.
    pub generation: Option<i64>,
    /// The resolution the reconcile rendered.
    pub resolution: &'a Resolution,
    /// Issues found while applying (conflicts, missing namespace, rejected pods), on top of the
    /// resolution's.
    pub issues: Vec<Issue>,
    /// The DaemonSet as stored, when it exists.
    pub daemon_set: Option<&'a Value>,
    /// Number of nodes the nodeSelector matches.
    pub selected_nodes: usize,
    /// Per-node problems.
    pub node_problems: Vec<NodeProblem>,
    /// DRA details, in DRA mode.
    pub dra: Option<DraStatus>,
}

/// The new status; `old` supplies the transition times of unchanged conditions.
pub fn compute(
    old: Option<&GpuDiagnosticsConfigStatus>,
    input: StatusInput<'_>,
    now: &Time,
) -> GpuDiagnosticsConfigStatus {
    let resolution = input.resolution;
    let conditions = Conditions {
        old: old.map(|s| s.conditions.as_slice()).unwrap_or_default(),
        generation: input.generation,
        now,
    };
    let rollout = daemon_set_rollout(input.daemon_set);
    let issues = all_issues(&input, &rollout);
    let resolved = conditions.make(
        GPU_ACCESS_RESOLVED,
        resolution.access.is_some(),
        resolution.reason.as_str(),
        resolution.message.clone(),
    );
    let ready = ready_condition(&conditions, &input, &rollout);
    let degraded = degraded_condition(&conditions, &issues);
    GpuDiagnosticsConfigStatus {
        observed_generation: input.generation,
        mode: resolution.access.as_ref().map(|a| a.method()),
        reason: resolution.message.clone(),
        conditions: vec![resolved, ready, degraded],
        daemon_set: input.daemon_set.and_then(|ds| {
            Some(ObjectRef {
                namespace: ds["metadata"]["namespace"].as_str()?.to_owned(),
                name: ds["metadata"]["name"].as_str()?.to_owned(),
            })
        }),
        desired_number_scheduled: rollout.desired,
        number_ready: rollout.ready,
        node_problems: input.node_problems,
        dra: input.dra,
    }
}

/// Builds conditions that keep their `lastTransitionTime` while their `status` stays.
struct Conditions<'a> {
    old: &'a [Condition],
    generation: Option<i64>,
    now: &'a Time,
}

impl Conditions<'_> {
    fn make(&self, type_: &str, ok: bool, reason: &str, message: String) -> Condition {
        let status = if ok { "True" } else { "False" };
        let last_transition_time = self
            .old
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| self.now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation: self.generation,
            last_transition_time,
        }
    }
}

/// The resolution's issues, the reconcile's, and those the rollout and node problems show, most
/// severe first, without duplicates.
fn all_issues(input: &StatusInput<'_>, rollout: &Rollout) -> Vec<Issue> {
    let mut issues = input.resolution.issues.clone();
    issues.extend(input.issues.iter().cloned());
    if input.resolution.access.is_some() && input.daemon_set.is_some() {
        if input.selected_nodes == 0 {
            issues.push(Issue {
                reason: IssueReason::NoMatchingNodes,
                message: "no node matches spec.nodeSelector: label the GPU nodes (`kubectl label node NODE \
                          nvidia.com/gpu.present=true`, or deploy GPU Feature Discovery) or change spec.nodeSelector"
                    .into(),
            });
        } else if rollout.observed && rollout.desired == 0 {
            issues.push(Issue {
                reason: IssueReason::NoMatchingNodes,
                message: format!(
                    "{} nodes match spec.nodeSelector but the DaemonSet places no agent on them: add tolerations \
                     for their taints to spec.tolerations",
                    input.selected_nodes
                ),
            });
        }
    }
    if !input.node_problems.is_empty() {
        let nodes: Vec<String> = input
            .node_problems
            .iter()
            .map(|p| format!("{} ({:?})", p.node, p.reason))
            .collect();
        issues.push(Issue {
            reason: IssueReason::NodeProblems,
            message: format!(
                "the agent cannot run on {} node(s): {}; see status.nodeProblems for causes and fixes",
                nodes.len(),
                nodes.join(", ")
            ),
        });
    }
    issues.sort();
    issues.dedup();
    issues
}

fn ready_condition(
    conditions: &Conditions<'_>,
    input: &StatusInput<'_>,
    rollout: &Rollout,
) -> Condition {
    match (&input.resolution.access, input.daemon_set) {
        (None, _) => conditions.make(
            READY,
            false,
            "NoDaemonSet",
            "no GPU access method, so no agent DaemonSet".into(),
        ),
        (Some(_), None) => conditions.make(
            READY,
            false,
            "NoDaemonSet",
            "the agent DaemonSet is not created".into(),
        ),
        (Some(_), Some(_)) if !rollout.observed => conditions.make(
            READY,
            false,
            "RolloutInProgress",
            "the DaemonSet controller has not observed the current DaemonSet spec yet".into(),
        ),
        (Some(_), Some(_))
            if rollout.updated < rollout.desired || rollout.available < rollout.desired =>
        {
            conditions.make(
                READY,
                false,
                "AgentsNotReady",
                format!(
                    "{} of {} agent pods ready ({} up to date)",
                    rollout.ready, rollout.desired, rollout.updated
                ),
            )
        }
        (Some(_), Some(_)) => conditions.make(
            READY,
            true,
            "AgentsReady",
            format!("{} of {} agent pods ready", rollout.ready, rollout.desired),
        ),
    }
}

fn degraded_condition(conditions: &Conditions<'_>, issues: &[Issue]) -> Condition {
    match issues.first() {
        Some(first) => conditions.make(
            DEGRADED,
            true,
            first.reason.as_str(),
            issues
                .iter()
                .map(|i| i.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        None => conditions.make(
            DEGRADED,
            false,
            "AsExpected",
            "nothing needs attention".into(),
        ),
    }
}

/// Reason of the `Degraded` condition (and of `Ready` when nothing was reported yet) while reconciles
/// fail: the status says what failed instead of staying silent until an event is noticed.
pub const RECONCILE_FAILED: &str = "ReconcileFailed";

/// The status after a failed reconcile: the last known status with `Degraded=True/ReconcileFailed`
/// carrying `error` (and `Ready=False` when no reconcile ever reported); everything else keeps what
/// the last successful reconcile saw, since the failure says nothing about the agents.
pub fn with_reconcile_failure(
    old: Option<&GpuDiagnosticsConfigStatus>,
    generation: Option<i64>,
    error: &str,
    now: &Time,
) -> GpuDiagnosticsConfigStatus {
    let mut status = old.cloned().unwrap_or_default();
    let message = format!(
        "the operator could not finish reconciling this config and retries with backoff: {error}"
    );
    let upsert = |conditions: &mut Vec<Condition>, type_: &str, value: &str| {
        let kept = conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == value)
            .map(|c| c.last_transition_time.clone());
        conditions.retain(|c| c.type_ != type_);
        conditions.push(Condition {
            type_: type_.to_owned(),
            status: value.to_owned(),
            reason: RECONCILE_FAILED.to_owned(),
            message: message.clone(),
            observed_generation: generation,
            last_transition_time: kept.unwrap_or_else(|| now.clone()),
        });
    };
    if !status.conditions.iter().any(|c| c.type_ == READY) {
        upsert(&mut status.conditions, READY, "False");
    }
    upsert(&mut status.conditions, DEGRADED, "True");
    let order = |c: &Condition| match c.type_.as_str() {
        GPU_ACCESS_RESOLVED => 0,
        READY => 1,
        _ => 2,
    };
    status.conditions.sort_by_key(order);
    if status.reason.is_empty() {
        status.reason = message;
    }
    status
}

/// The rollout counters of a stored DaemonSet.
#[derive(Debug, Default, PartialEq, Eq)]
struct Rollout {
    /// The DaemonSet controller has seen the current generation.
    observed: bool,
    desired: i32,
    ready: i32,
    updated: i32,
    available: i32,
}

fn daemon_set_rollout(daemon_set: Option<&Value>) -> Rollout {
    let Some(ds) = daemon_set else {
        return Rollout::default();
    };
    let status = &ds["status"];
    let count = |field: &str| {
        status[field]
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0)
    };
    let generation = ds["metadata"]["generation"].as_i64();
    let observed_generation = status["observedGeneration"].as_i64();
    Rollout {
        observed: match (generation, observed_generation) {
            (Some(generation), Some(observed)) => observed >= generation,
            _ => false,
        },
        desired: count("desiredNumberScheduled"),
        ready: count("numberReady"),
        updated: count("updatedNumberScheduled"),
        available: count("numberAvailable"),
    }
}

#[cfg(test)]
mod tests;
