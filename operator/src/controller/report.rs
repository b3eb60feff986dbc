//! Telling humans: events on status transitions, and the report of a config the operator cannot
//! read.

use crds::{GpuDiagnosticsConfig, GpuDiagnosticsConfigStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use tracing::warn;

use super::Context;
use crate::error::Result;
use crate::names;
use crate::status::{self, DEGRADED, GPU_ACCESS_RESOLVED};

/// Events for what changed between two statuses (mode, resolution failure, degradation).
pub(super) async fn publish_transitions(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    old: Option<&GpuDiagnosticsConfigStatus>,
    new: &GpuDiagnosticsConfigStatus,
) {
    let condition = |status: Option<&GpuDiagnosticsConfigStatus>, type_: &str| {
        status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let old_mode = old.and_then(|s| s.mode);
    if new.mode.is_some() && new.mode != old_mode {
        let mode = new.mode.map(|m| m.as_str()).unwrap_or_default();
        ctx.publish(
            config,
            EventType::Normal,
            "GpuAccessModeSelected",
            format!("{mode}: {}", new.reason),
        )
        .await;
    }
    if let Some((status, reason, message)) = condition(Some(new), GPU_ACCESS_RESOLVED)
        && status == "False"
        && condition(old, GPU_ACCESS_RESOLVED).map(|(s, r, _)| (s, r))
            != Some((status.clone(), reason.clone()))
    {
        ctx.publish(config, EventType::Warning, &reason, message)
            .await;
    }
    let resolved =
        condition(Some(new), GPU_ACCESS_RESOLVED).is_some_and(|(status, _, _)| status == "True");
    if let Some((status, reason, message)) = condition(Some(new), DEGRADED)
        && resolved
        && status == "True"
        && condition(old, DEGRADED).map(|(s, r, _)| (s, r))
            != Some((status.clone(), reason.clone()))
    {
        ctx.publish(config, EventType::Warning, &reason, message)
            .await;
    }
}

/// Reports a config that does not match the Rust types (for example written under a newer CRD):
/// once per generation, as a Warning event and a `Ready=False` status. Other configs are
/// unaffected.
pub(super) async fn report_invalid(invalid: &InvalidObject, ctx: &Context) -> Result<Action> {
    let meta = &invalid.metadata;
    let name = meta.name.clone().unwrap_or_default();
    let marker = format!(
        "{}/{}",
        meta.uid.as_deref().unwrap_or_default(),
        meta.generation.unwrap_or_default()
    );
    if ctx.memory().reported_invalid.get(&name) == Some(&marker) {
        return Ok(Action::await_change());
    }
    warn!(config = %name, error = %invalid.error, "GpuDiagnosticsConfig does not match the operator's API types");
    let message = format!(
        "the spec cannot be read by this operator version ({}): fix the object, or upgrade the operator if it \
         was written for a newer API",
        invalid.error
    );
    let status = serde_json::json!({
        "observedGeneration": meta.generation,
        "conditions": [{
            "type": status::READY,
            "status": "False",
            "reason": "InvalidSpec",
            "message": truncate_note(message.clone()),
            "observedGeneration": meta.generation,
            "lastTransitionTime": Time(Timestamp::now()),
        }],
    });
    ctx.api.apply_status(&name, &status, names::MANAGER).await?;
    ctx.metrics.wrote("status");
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(format!("{}/{}", crds::GROUP, crds::VERSION)),
        kind: Some("GpuDiagnosticsConfig".into()),
        name: Some(name.clone()),
        uid: meta.uid.clone(),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidSpec".into(),
        note: Some(truncate_note(message)),
        action: "Reconcile".into(),
        secondary: None,
    };
    match ctx.recorder.publish(&event, &reference).await {
        Ok(()) => ctx.metrics.wrote("event"),
        Err(error) => warn!(%error, "could not publish an event"),
    }
    ctx.memory().reported_invalid.insert(name, marker);
    Ok(Action::await_change())
}

pub(super) fn truncate_note(mut note: String) -> String {
    const MAX: usize = 1000;
    if note.len() > MAX {
        let mut cut = MAX;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    note
}
