//! The reconciler, one pass per reconcile: watch event → observe the world → ensure the namespace
//! → probe DRA admin access when the resolution would rely on it unverified → resolve the access
//! method once → render once → apply what differs once → read back admin access → status, patched
//! only when it changed. Decisions live in the pure modules; this file only sequences I/O around
//! them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crds::{DraStatus, GpuDiagnosticsConfig, GpuDiagnosticsConfigStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::core::error_boundary::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use tracing::{Instrument, info, info_span, warn};

use crate::access::{Claim, GpuAccess, Issue, IssueReason, Resolution, resolve_access};
use crate::apply;
use crate::dra::{self, DraVersion};
use crate::error::{Error, Result};
use crate::facts::{AdminAccess, ClusterFacts, UserTemplate};
use crate::kube_api::KubeApi;
use crate::metrics::Metrics;
use crate::observe::{Observed, observe};
use crate::problems::{ProblemInput, node_problems, pods_rejected};

mod admin_access;
mod children;
mod report;
mod run;

pub use run::run;

use crate::names;
use crate::render::{self, NamespaceOwnership};
use crate::status::{self, StatusInput};
use admin_access::{
    admin_access_fact, dropped_admin_access, probe_admin_access, remember_admin_access,
};
use children::{apply_children, ensure_namespace};
use report::{publish_transitions, report_invalid, truncate_note};

/// The type the controller watches: a config, or what it could read of a malformed one.
pub type Guarded = DeserializeGuard<GpuDiagnosticsConfig>;

/// Tunables of the reconciler (flags of the binary).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requeue after a successful reconcile (re-reads node capacity and pod problems).
    pub resync: Duration,
    /// How long a DRA admin-access probe result is trusted.
    pub admin_access_recheck: Duration,
    /// Agent image tag used when `image.tag` is empty.
    pub operator_version: String,
    /// Configs reconciled at once.
    pub concurrency: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(60),
            admin_access_recheck: Duration::from_secs(600),
            operator_version: env!("CARGO_PKG_VERSION").to_owned(),
            concurrency: 4,
        }
    }
}

/// Shared state of all reconciles.
pub struct Context {
    /// API access.
    pub api: KubeApi,
    /// Publishes Kubernetes events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Tunables.
    pub settings: Settings,
    /// What the watches keep current: Nodes, RuntimeClasses, DeviceClasses, owned objects.
    pub caches: crate::cache::Caches,
    memory: Mutex<Memory>,
}

/// What the reconciler remembers between runs (all of it can be lost on restart).
#[derive(Default)]
struct Memory {
    /// DRA admin-access probe results by (config uid, version), with when they were taken.
    admin_access: HashMap<(String, DraVersion), (AdminAccess, Instant)>,
    /// Consecutive failures by config name, for backoff.
    failures: HashMap<String, u32>,
    /// `uid/generation` of malformed configs already reported.
    reported_invalid: HashMap<String, String>,
    /// Last failure message published as an event, by config name.
    last_failure: HashMap<String, String>,
    /// The status last written, by config uid, with the config's resourceVersion at the time: until
    /// the watch delivers the write, the cached config still shows the older status.
    written_status: HashMap<String, (Option<String>, GpuDiagnosticsConfigStatus)>,
}

impl Context {
    /// A context over `client`.
    pub fn new(client: kube::Client, metrics: Arc<Metrics>, settings: Settings) -> Self {
        let reporter = Reporter {
            controller: names::MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            api: KubeApi::new(client),
            metrics,
            settings,
            caches: crate::cache::Caches::default(),
            memory: Mutex::new(Memory::default()),
        }
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        // A panic while holding the lock leaves only caches behind: keep using them.
        self.memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn publish(
        &self,
        config: &GpuDiagnosticsConfig,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate_note(note)),
            action: "Reconcile".into(),
            secondary: None,
        };
        match self.recorder.publish(&event, &config.object_ref(&())).await {
            Ok(()) => self.metrics.wrote("event"),
            Err(error) => warn!(%error, reason, "could not publish an event"),
        }
    }
}

/// Reconciles one config (the controller's reconcile callback).
pub async fn reconcile(object: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action> {
    let name = object.name_any();
    ctx.metrics.reconciliations.inc();
    let started = Instant::now();
    let span = info_span!("reconcile", config = %name);
    let result = match &object.0 {
        Ok(config) => reconcile_config(config, &ctx).instrument(span).await,
        Err(invalid) => report_invalid(invalid, &ctx).instrument(span).await,
    };
    ctx.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(Error::metric_label),
    );
    match &result {
        Ok(_) => {
            let mut memory = ctx.memory();
            memory.failures.remove(&name);
            memory.last_failure.remove(&name);
        }
        Err(error) => {
            warn!(config = %name, %error, "reconcile failed");
            if let Ok(config) = &object.0 {
                let message = error.to_string();
                let new = ctx
                    .memory()
                    .last_failure
                    .insert(name.clone(), message.clone())
                    != Some(message.clone());
                if new {
                    report_failure_in_status(config, &message, &ctx).await;
                    ctx.publish(config, EventType::Warning, "ReconcileFailed", message)
                        .await;
                }
            }
        }
    }
    result
}

/// The status this config last had: the one this operator wrote for the config's current
/// resourceVersion (the watch may not have delivered it yet), else the one the API server sent.
fn last_known_status(
    config: &GpuDiagnosticsConfig,
    uid: &str,
    ctx: &Context,
) -> Option<GpuDiagnosticsConfigStatus> {
    let seen_version = &config.metadata.resource_version;
    ctx.memory()
        .written_status
        .get(uid)
        .filter(|(version, _)| version == seen_version)
        .map(|(_, status)| status.clone())
        .or_else(|| config.status.clone())
}

/// Best effort: puts a failed reconcile's error in the config's status (once per distinct error), so
/// `kubectl get gdc` and the conditions show it, not only an event.
async fn report_failure_in_status(config: &GpuDiagnosticsConfig, message: &str, ctx: &Context) {
    let name = config.name_any();
    let Some(uid) = config.uid() else { return };
    let previous = last_known_status(config, &uid, ctx);
    let now =
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    let status = status::with_reconcile_failure(
        previous.as_ref(),
        config.metadata.generation,
        &truncate_note(message.to_owned()),
        &Time(now),
    );
    if previous.as_ref() == Some(&status) {
        return;
    }
    let Ok(value) = serde_json::to_value(&status) else {
        return;
    };
    match ctx.api.apply_status(&name, &value, names::MANAGER).await {
        Ok(()) => {
            ctx.metrics.wrote("status");
            ctx.memory()
                .written_status
                .insert(uid, (config.metadata.resource_version.clone(), status));
        }
        Err(error) => warn!(config = %name, %error, "could not report the failure in status"),
    }
}

/// Retry policy after a failed reconcile: exponential backoff from 2 s, capped at 5 minutes, so
/// a persistently failing API server is not hammered.
pub fn error_policy(object: Arc<Guarded>, _error: &Error, ctx: Arc<Context>) -> Action {
    let mut memory = ctx.memory();
    let failures = memory.failures.entry(object.name_any()).or_insert(0);
    *failures = failures.saturating_add(1);
    Action::requeue(backoff(*failures))
}

/// Delay before retry number `failures` (1-based).
pub fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    Duration::from_secs(2u64.saturating_mul(1 << exponent)).min(Duration::from_secs(300))
}

/// Requeue delay after a pass whose apply contradicted its resolution (the API server dropped
/// `adminAccess`): the next pass resolves with that fact at once.
const AFTER_A_CONTRADICTION: Duration = Duration::ZERO;

/// What one pass decided and applied: the status is computed from it.
struct Pass {
    resolution: Resolution,
    issues: Vec<Issue>,
    /// When the next pass must come sooner than the resync.
    requeue: Option<Duration>,
}

/// One pass: observe, resolve once (the admin-access probe answered first), render once, apply
/// what differs once, then the status.
async fn reconcile_config(config: &GpuDiagnosticsConfig, ctx: &Context) -> Result<Action> {
    let name = config.name_any();
    if config.metadata.deletion_timestamp.is_some() {
        // Owner references hand the cleanup to the garbage collector; the claim template is
        // owned by the DaemonSet, so it goes after the DaemonSet and its pods.
        ctx.metrics.forget_config(&name);
        return Ok(Action::await_change());
    }
    let uid = config
        .uid()
        .ok_or(Error::Render(render::RenderError::MissingMetadata("uid")))?;
    let (mut facts, mut observed) = observe(&ctx.api, &ctx.caches, &name, &config.spec).await?;
    facts.admin_access = admin_access_fact(ctx, &uid, &facts, &observed);
    let pass = apply_pass(ctx, config, &uid, &mut facts, &mut observed).await?;
    write_status(
        ctx,
        config,
        &uid,
        &facts,
        &observed,
        pass.resolution,
        pass.issues,
    )
    .await?;
    Ok(Action::requeue(pass.requeue.unwrap_or(ctx.settings.resync)))
}

/// Settles the resolution and applies it: the namespace first (namespaced objects and the
/// admin-access probe need it; its labels mark an attempt at admin access, not the probe's
/// answer, so the draft resolution and the final one label it alike), then the probe when the
/// draft relies on unverified admin access, then the final resolution's objects, once.
async fn apply_pass(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    uid: &str,
    facts: &mut ClusterFacts,
    observed: &mut Observed,
) -> Result<Pass> {
    let mut issues = Vec::new();
    let draft = resolve_access(&config.spec, facts);
    let ownership = namespace_ownership(observed);
    let namespace_ready = match name_too_long(config) {
        Some(issue) => {
            issues.push(issue);
            false
        }
        None => {
            let namespace = render::namespace(config, &draft, ownership)?;
            ensure_namespace(ctx, config, &draft, namespace, observed, &mut issues).await?
        }
    };
    let resolution = if namespace_ready && draft.needs_admin_probe {
        facts.admin_access = probe_admin_access(ctx, config, uid, facts).await?;
        resolve_access(&config.spec, facts)
    } else {
        draft
    };
    let mut requeue = None;
    if namespace_ready {
        let desired = render::render(
            config,
            &resolution,
            ownership,
            &ctx.settings.operator_version,
        )?;
        apply_children(ctx, config, &resolution, desired, observed, &mut issues).await?;
        if let Some(issue) =
            admin_access_contradiction(ctx, config, uid, facts, &resolution, observed)
        {
            issues.push(issue);
            requeue = Some(AFTER_A_CONTRADICTION);
        }
        if let Some(issue) = observed
            .daemon_set
            .as_ref()
            .and_then(|ds| pods_rejected(&observed.events, ds))
        {
            issues.push(issue);
        }
    }
    Ok(Pass {
        resolution,
        issues,
        requeue,
    })
}

/// The config co-owns a namespace the operator created for any config (so deleting one config
/// does not delete another's agent); it never adopts one somebody else created.
fn namespace_ownership(observed: &Observed) -> NamespaceOwnership {
    if observed
        .namespace
        .as_ref()
        .is_none_or(apply::is_owned_by_a_config)
    {
        NamespaceOwnership::CoOwned
    } else {
        NamespaceOwnership::Foreign
    }
}

fn name_too_long(config: &GpuDiagnosticsConfig) -> Option<Issue> {
    let length = config.name_any().len();
    (length > crds::MAX_CONFIG_NAME_LEN).then(|| Issue {
        reason: IssueReason::NameTooLong,
        message: format!(
            "metadata.name is {length} characters but at most {} fit the agent's object names (k8s-mcp-agent-<name>): \
             re-create the GpuDiagnosticsConfig with a shorter name",
            crds::MAX_CONFIG_NAME_LEN
        ),
    })
}

/// After the apply: the API server stored the generated admin-access template without
/// `adminAccess` (the probe's answer was cached, or the feature gate changed since). The fact is
/// remembered, so the next pass, requeued at once, resolves to a one-device claim.
fn admin_access_contradiction(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    uid: &str,
    facts: &ClusterFacts,
    resolution: &Resolution,
    observed: &Observed,
) -> Option<Issue> {
    let why = dropped_admin_access(config, resolution, observed)?;
    warn!(config = %config.name_any(), "{why}");
    if let Some(dra) = &facts.dra {
        remember_admin_access(ctx, uid, dra.version, AdminAccess::Unusable(why.clone()));
    }
    Some(Issue {
        reason: IssueReason::AdminAccessUnavailable,
        message: format!(
            "{why}: the stored claim template asks for every GPU without admin access; the operator \
             falls back to a one-device claim in the next reconcile"
        ),
    })
}

/// Computes the status of this pass and writes it when it changed.
async fn write_status(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    uid: &str,
    facts: &ClusterFacts,
    observed: &Observed,
    resolution: Resolution,
    issues: Vec<Issue>,
) -> Result<()> {
    let name = config.name_any();
    // Whole seconds: the API server stores condition times with second precision.
    let now =
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    let problems = node_problems(&ProblemInput {
        pods: &observed.pods,
        events: &observed.events,
        nodes: &facts.nodes,
        access: resolution.access.as_ref(),
        runtime_handler: facts.runtime_class_handler.as_deref(),
        namespace: &config.spec.namespace.name,
        now,
    });
    let problem_count = problems.len();
    let previous = last_known_status(config, uid, ctx);
    let new_status = status::compute(
        previous.as_ref(),
        StatusInput {
            generation: config.metadata.generation,
            resolution: &resolution,
            issues,
            daemon_set: observed.daemon_set.as_ref(),
            selected_nodes: facts.nodes.len(),
            node_problems: problems,
            dra: dra_status(&name, &resolution, facts, observed),
        },
        &Time(now),
    );
    ctx.metrics.observe_config(
        &name,
        new_status.mode.map(|m| m.as_str()),
        new_status.desired_number_scheduled,
        new_status.number_ready,
        problem_count,
    );
    if previous.as_ref() == Some(&new_status) {
        return Ok(());
    }
    let value = serde_json::to_value(&new_status).map_err(|source| Error::Decode {
        action: "serializing the status".into(),
        source,
    })?;
    ctx.api.apply_status(&name, &value, names::MANAGER).await?;
    ctx.metrics.wrote("status");
    info!(config = %name, mode = ?new_status.mode, "status updated");
    publish_transitions(ctx, config, previous.as_ref(), &new_status).await;
    ctx.memory().written_status.insert(
        uid.to_owned(),
        (config.metadata.resource_version.clone(), new_status),
    );
    Ok(())
}

fn dra_status(
    config: &str,
    resolution: &Resolution,
    facts: &ClusterFacts,
    observed: &Observed,
) -> Option<DraStatus> {
    let GpuAccess::Dra { version, claim } = resolution.access.as_ref()? else {
        return None;
    };
    let (template, admin_access) = match claim {
        Claim::UserTemplate { name } => (
            name.clone(),
            matches!(
                facts.dra.as_ref().and_then(|d| d.user_template),
                Some(UserTemplate::Found { admin_access: true })
            ),
        ),
        Claim::Generated(_) | Claim::Inline(_) => (
            names::object_name(config),
            observed
                .claim_template
                .as_ref()
                .is_some_and(dra::template_requests_admin_access),
        ),
    };
    Some(DraStatus {
        api_version: version.api_version(),
        resource_claim_template: template,
        admin_access,
    })
}
