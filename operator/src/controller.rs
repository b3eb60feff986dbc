//! The reconciler: watch event → observe the world → resolve the mode → render → apply what
//! differs → verify admin access → status, patched only when it changed. Decisions live in the
//! pure modules; this file only sequences I/O around them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crds::{DraStatus, GpuDiagnosticsConfig, GpuDiagnosticsConfigStatus};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::core::error_boundary::{DeserializeGuard, InvalidObject};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::dra::{self, DraVersion};
use crate::error::{Error, Result, status_code};
use crate::facts::{AdminAccess, ClusterFacts, UserTemplate};
use crate::http::{Health, Readiness};
use crate::kube_api::{KubeApi, resource_of};
use crate::metrics::Metrics;
use crate::mode::{Claim, GpuAccess, Issue, IssueReason, Resolution, resolve_mode};
use crate::observe::{Observed, observe};
use crate::problems::{ProblemInput, node_problems, pods_rejected};
use crate::render::{self, DRA_ADMIN_LABELS, POD_SECURITY_LABELS};
use crate::status::{self, DEGRADED, GPU_ACCESS_RESOLVED, StatusInput};
use crate::{apply, names};

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
                    ctx.publish(config, EventType::Warning, "ReconcileFailed", message)
                        .await;
                }
            }
        }
    }
    result
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
    let spec = &config.spec;

    let (mut facts, mut observed) = observe(&ctx.api, &name, spec).await?;
    facts.admin_access = admin_access_fact(ctx, &uid, &facts, &observed);
    let mut resolution = resolve_mode(spec, &facts);
    let mut issues = Vec::new();

    let namespace_ready = if name.len() > crds::MAX_CONFIG_NAME_LEN {
        issues.push(Issue {
            reason: IssueReason::NameTooLong,
            message: format!(
                "metadata.name is {} characters but at most {} fit the agent's object names (k8s-mcp-agent-<name>): \
                 re-create the GpuDiagnosticsConfig with a shorter name",
                name.len(),
                crds::MAX_CONFIG_NAME_LEN
            ),
        });
        false
    } else {
        ensure_namespace(ctx, config, &resolution, &mut observed, &mut issues).await?
    };
    if namespace_ready && resolution.needs_admin_probe {
        facts.admin_access = probe_admin_access(ctx, config, &uid, &facts).await?;
        resolution = resolve_mode(spec, &facts);
    }
    if namespace_ready {
        apply_children(ctx, config, &resolution, &mut observed, &mut issues).await?;
        if let Some(why) = dropped_admin_access(config, &resolution, &observed) {
            warn!(config = %name, "{why}");
            if let Some(dra) = &facts.dra {
                remember_admin_access(ctx, &uid, dra.version, AdminAccess::Unusable(why.clone()));
            }
            facts.admin_access = AdminAccess::Unusable(why);
            resolution = resolve_mode(spec, &facts);
            apply_children(ctx, config, &resolution, &mut observed, &mut issues).await?;
        }
        if let Some(issue) = observed
            .daemon_set
            .as_ref()
            .and_then(|ds| pods_rejected(&observed.events, ds))
        {
            issues.push(issue);
        }
    }

    // Whole seconds: the API server stores condition times with second precision.
    let now =
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    let problems = node_problems(&ProblemInput {
        pods: &observed.pods,
        events: &observed.events,
        nodes: &facts.nodes,
        access: resolution.access.as_ref(),
        runtime_handler: facts.runtime_class_handler.as_deref(),
        namespace: &spec.namespace.name,
        now,
    });
    let problem_count = problems.len();
    let seen_version = config.metadata.resource_version.clone();
    let previous = ctx
        .memory()
        .written_status
        .get(&uid)
        .filter(|(version, _)| *version == seen_version)
        .map(|(_, status)| status.clone())
        .or_else(|| config.status.clone());
    let new_status = status::compute(
        previous.as_ref(),
        StatusInput {
            generation: config.metadata.generation,
            resolution: &resolution,
            issues,
            daemon_set: observed.daemon_set.as_ref(),
            selected_nodes: facts.nodes.len(),
            node_problems: problems,
            dra: dra_status(&name, &resolution, &facts, &observed),
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
    if previous.as_ref() != Some(&new_status) {
        let value = serde_json::to_value(&new_status).map_err(|source| Error::Decode {
            action: "serializing the status".into(),
            source,
        })?;
        ctx.api.apply_status(&name, &value, names::MANAGER).await?;
        ctx.metrics.wrote("status");
        info!(config = %name, mode = ?new_status.mode, "status updated");
        publish_transitions(ctx, config, previous.as_ref(), &new_status).await;
        ctx.memory()
            .written_status
            .insert(uid.clone(), (seen_version, new_status));
    }
    Ok(Action::requeue(ctx.settings.resync))
}

/// Creates/labels the namespace (`namespace.create`), or checks the existing one. Returns whether
/// namespaced objects can be applied.
async fn ensure_namespace(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    resolution: &Resolution,
    observed: &mut Observed,
    issues: &mut Vec<Issue>,
) -> Result<bool> {
    let name = config.name_any();
    let spec = &config.spec;
    let namespace = spec.namespace.name.as_str();
    if !spec.namespace.create {
        let Some(live) = &observed.namespace else {
            issues.push(Issue {
                reason: IssueReason::NamespaceMissing,
                message: format!(
                    "namespace.create is false and namespace \"{namespace}\" does not exist: create it \
                     (`kubectl create namespace {namespace}`) or set namespace.create=true"
                ),
            });
            return Ok(false);
        };
        issues.extend(namespace_label_issues(spec, resolution, live));
        return Ok(true);
    }
    // Co-own a namespace the operator created for any config (so deleting one config does not
    // delete another's agent); never adopt one somebody else created.
    let owned = observed
        .namespace
        .as_ref()
        .is_none_or(apply::is_owned_by_a_config);
    let desired = render::render(config, resolution, owned, &ctx.settings.operator_version)?;
    if let Some(object) = desired.namespace {
        let key = names::namespace_hash_annotation(&name);
        let stamped = apply::stamp_as(object, &key);
        if !apply::up_to_date_as(&stamped, observed.namespace.as_ref(), &key) {
            let stored = ctx
                .api
                .apply(
                    &resource_of::<Namespace>(),
                    None,
                    namespace,
                    &stamped,
                    &names::namespace_field_manager(&name),
                    false,
                )
                .await?;
            ctx.metrics.wrote("apply");
            observed.namespace = Some(stored);
        }
    }
    Ok(true)
}

/// Labels an existing namespace (`namespace.create: false`) lacks for the agent pod.
fn namespace_label_issues(
    spec: &crds::GpuDiagnosticsConfigSpec,
    resolution: &Resolution,
    namespace: &Value,
) -> Vec<Issue> {
    let name = &spec.namespace.name;
    let labels = &namespace["metadata"]["labels"];
    let mut issues = Vec::new();
    let enforce = labels[POD_SECURITY_LABELS[0]].as_str();
    if render::needs_privileged_namespace(spec)
        && let Some(level) = enforce.filter(|level| *level != "privileged")
    {
        issues.push(Issue {
            reason: IssueReason::NamespaceLabelsMissing,
            message: format!(
                "namespace \"{name}\" enforces Pod Security level \"{level}\" but the agent needs \"privileged\" \
                 (CAP_SYSLOG for agent.kernelLog, or agent.privileged): `kubectl label namespace {name} \
                 pod-security.kubernetes.io/enforce=privileged --overwrite`, or set agent.kernelLog=false"
            ),
        });
    }
    if resolution.namespace_admin_labels
        && DRA_ADMIN_LABELS.iter().all(|key| labels[*key] != "true")
    {
        issues.push(Issue {
            reason: IssueReason::NamespaceLabelsMissing,
            message: format!(
                "namespace \"{name}\" lacks the DRA admin-access label: `kubectl label namespace {name} \
                 resource.kubernetes.io/admin-access=true resource.k8s.io/admin-access=true`"
            ),
        });
    }
    issues
}

/// What is known about admin access without asking: a stored template that kept it, or a recent
/// probe.
fn admin_access_fact(
    ctx: &Context,
    uid: &str,
    facts: &ClusterFacts,
    observed: &Observed,
) -> AdminAccess {
    let Some(dra) = &facts.dra else {
        return AdminAccess::Unknown;
    };
    if observed
        .claim_template
        .as_ref()
        .is_some_and(dra::template_requests_admin_access)
    {
        return AdminAccess::Usable;
    }
    let memory = ctx.memory();
    match memory.admin_access.get(&(uid.to_owned(), dra.version)) {
        Some((access, at)) if at.elapsed() < ctx.settings.admin_access_recheck => access.clone(),
        _ => AdminAccess::Unknown,
    }
}

fn remember_admin_access(ctx: &Context, uid: &str, version: DraVersion, access: AdminAccess) {
    ctx.memory()
        .admin_access
        .insert((uid.to_owned(), version), (access, Instant::now()));
}

/// Asks the API server, with a dry-run apply, whether it keeps `adminAccess` in a claim template
/// in the agent namespace (nothing is stored).
async fn probe_admin_access(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    uid: &str,
    facts: &ClusterFacts,
) -> Result<AdminAccess> {
    let Some(dra) = &facts.dra else {
        return Ok(AdminAccess::Unknown);
    };
    let name = config.name_any();
    let spec = &config.spec;
    let namespace = spec.namespace.name.as_str();
    let probe = render::admin_access_probe(
        &name,
        namespace,
        dra.version,
        &spec.gpu.resource_claim.device_class_name,
    );
    let outcome = ctx
        .api
        .apply(
            &dra.version.resource_claim_templates(),
            Some(namespace),
            &names::object_name(&name),
            &apply::stamp(probe),
            names::MANAGER,
            true,
        )
        .await;
    ctx.metrics.wrote("dry-run");
    let access = match outcome {
        Ok(stored) if dra::template_requests_admin_access(&stored) => AdminAccess::Usable,
        Ok(_) => AdminAccess::Unusable(
            "the API server drops adminAccess from claim templates (the DRAAdminAccess feature gate is off)".into(),
        ),
        Err(Error::Kube { source, .. }) if matches!(status_code(&source), Some(400 | 422)) => {
            let detail = match &source {
                kube::Error::Api(status) => status.message.clone(),
                other => other.to_string(),
            };
            AdminAccess::Unusable(format!("the API server refuses adminAccess: {detail}"))
        }
        Err(error) => return Err(error),
    };
    debug!(config = %name, ?access, "probed DRA admin access");
    remember_admin_access(ctx, uid, dra.version, access.clone());
    Ok(access)
}

/// When the resolution generated an admin-access template but the stored one lacks it: why.
fn dropped_admin_access(
    config: &GpuDiagnosticsConfig,
    resolution: &Resolution,
    observed: &Observed,
) -> Option<String> {
    let Some(GpuAccess::Dra {
        claim: Claim::Generated(dra::DeviceRequest::AdminAll { .. }),
        ..
    }) = &resolution.access
    else {
        return None;
    };
    let template = observed.claim_template.as_ref()?;
    (!dra::template_requests_admin_access(template)).then(|| {
        format!(
            "the API server dropped adminAccess from ResourceClaimTemplate {}/{} (is the DRAAdminAccess feature \
             gate off?)",
            config.spec.namespace.name,
            names::object_name(&config.name_any())
        )
    })
}

/// Applies what differs, deletes what is no longer wanted, and records the stored objects in
/// `observed`. Objects with the operator's names that it did not write are left alone and
/// reported.
async fn apply_children(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    resolution: &Resolution,
    observed: &mut Observed,
    issues: &mut Vec<Issue>,
) -> Result<()> {
    let name = config.name_any();
    let namespace = config.spec.namespace.name.clone();
    let ns = Some(namespace.as_str());
    let desired = render::render(config, resolution, false, &ctx.settings.operator_version)?;

    // ServiceAccount (and any left behind by a rename).
    let sa_resource = resource_of::<ServiceAccount>();
    let wanted_sa = desired.service_account.as_ref().map(object_name);
    if let Some(sa) = desired.service_account {
        let sa_name = object_name(&sa);
        let live = observed
            .service_accounts
            .iter()
            .find(|s| object_name(s) == sa_name)
            .cloned();
        let stored = ensure(ctx, &sa_resource, ns, sa, live.as_ref()).await?;
        observed
            .service_accounts
            .retain(|s| object_name(s) != sa_name);
        observed.service_accounts.push(stored);
    }
    let stale: Vec<String> = observed
        .service_accounts
        .iter()
        .map(object_name)
        .filter(|n| Some(n) != wanted_sa.as_ref())
        .collect();
    for sa_name in stale {
        delete(ctx, &sa_resource, ns, &sa_name).await?;
        observed
            .service_accounts
            .retain(|s| object_name(s) != sa_name);
    }

    // The agent's RBAC.
    let role = ensure_owned(
        ctx,
        &name,
        &resource_of::<ClusterRole>(),
        None,
        desired.cluster_role,
        observed.cluster_role.as_ref(),
        issues,
    )
    .await?;
    observed.cluster_role = role.or(observed.cluster_role.take());
    let binding = ensure_owned(
        ctx,
        &name,
        &resource_of::<ClusterRoleBinding>(),
        None,
        desired.cluster_role_binding,
        observed.cluster_role_binding.as_ref(),
        issues,
    )
    .await?;
    observed.cluster_role_binding = binding.or(observed.cluster_role_binding.take());

    // The DaemonSet.
    let ds_resource = resource_of::<DaemonSet>();
    match desired.daemon_set {
        Some(ds) => {
            if let Some(stored) = ensure_owned(
                ctx,
                &name,
                &ds_resource,
                ns,
                ds,
                observed.daemon_set.as_ref(),
                issues,
            )
            .await?
            {
                observed.daemon_set = Some(stored);
            }
        }
        None => {
            if let Some(live) = observed.daemon_set.take() {
                if apply::is_ours(&live, &name) {
                    delete(ctx, &ds_resource, ns, &object_name(&live)).await?;
                } else {
                    observed.daemon_set = Some(live);
                }
            }
        }
    }

    // The claim template: owned by the DaemonSet, so written after it.
    let our_daemon_set = observed
        .daemon_set
        .as_ref()
        .filter(|ds| apply::is_ours(ds, &name) && resolution.access.is_some());
    let template = match (&resolution.access, our_daemon_set) {
        (Some(access), Some(ds)) => {
            let owner = render::daemon_set_owner(
                &object_name(ds),
                ds["metadata"]["uid"].as_str().unwrap_or_default(),
            );
            render::render_claim_template(&name, &namespace, access, Some(owner))
        }
        _ => None,
    };
    if let GpuAccess::Dra { version, .. } =
        resolution
            .access
            .as_ref()
            .unwrap_or(&GpuAccess::RuntimeClass {
                name: String::new(),
            })
    {
        let template_resource = version.resource_claim_templates();
        match template {
            Some(template) => {
                if let Some(stored) = ensure_owned(
                    ctx,
                    &name,
                    &template_resource,
                    ns,
                    template,
                    observed.claim_template.as_ref(),
                    issues,
                )
                .await?
                {
                    observed.claim_template = Some(stored);
                }
            }
            None => {
                delete_if_ours(
                    ctx,
                    &name,
                    &template_resource,
                    ns,
                    &mut observed.claim_template,
                )
                .await?
            }
        }
    } else if let Some(live) = &observed.claim_template {
        // Left over from DRA mode: the DaemonSet no longer references it.
        let resource = template_resource_of(live);
        delete_if_ours(ctx, &name, &resource, ns, &mut observed.claim_template).await?;
    }
    Ok(())
}

/// Applies `desired` unless `live` already matches; returns the stored object.
async fn ensure(
    ctx: &Context,
    resource: &ApiResource,
    namespace: Option<&str>,
    desired: Value,
    live: Option<&Value>,
) -> Result<Value> {
    let stamped = apply::stamp(desired);
    if let Some(live) = live
        && apply::up_to_date(&stamped, Some(live))
    {
        return Ok(live.clone());
    }
    let name = object_name(&stamped);
    let stored = ctx
        .api
        .apply(resource, namespace, &name, &stamped, names::MANAGER, false)
        .await?;
    ctx.metrics.wrote("apply");
    Ok(stored)
}

/// `ensure`, unless `live` exists and was not written by the operator for this config: then
/// nothing is written and the conflict is reported.
async fn ensure_owned(
    ctx: &Context,
    config: &str,
    resource: &ApiResource,
    namespace: Option<&str>,
    desired: Value,
    live: Option<&Value>,
    issues: &mut Vec<Issue>,
) -> Result<Option<Value>> {
    if let Some(live) = live
        && !apply::is_ours(live, config)
    {
        let target = match namespace {
            Some(ns) => format!("{ns}/{}", object_name(live)),
            None => object_name(live),
        };
        issues.push(Issue {
            reason: IssueReason::ObjectConflict,
            message: format!(
                "{} {target} exists but was not created by the operator for this GpuDiagnosticsConfig (it lacks the \
                 labels {}): delete it (for example a leftover Helm release) so the operator can manage it",
                resource.kind,
                names::instance_selector(config)
            ),
        });
        return Ok(None);
    }
    ensure(ctx, resource, namespace, desired, live)
        .await
        .map(Some)
}

async fn delete(
    ctx: &Context,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<()> {
    ctx.api.delete(resource, namespace, name).await?;
    ctx.metrics.wrote("delete");
    info!(kind = %resource.kind, name, "deleted an object that is no longer wanted");
    Ok(())
}

async fn delete_if_ours(
    ctx: &Context,
    config: &str,
    resource: &ApiResource,
    namespace: Option<&str>,
    live: &mut Option<Value>,
) -> Result<()> {
    if let Some(object) = live.as_ref()
        && apply::is_ours(object, config)
    {
        delete(ctx, resource, namespace, &object_name(object)).await?;
        *live = None;
    }
    Ok(())
}

fn template_resource_of(template: &Value) -> ApiResource {
    let version = template["apiVersion"]
        .as_str()
        .and_then(|v| v.strip_prefix("resource.k8s.io/"))
        .and_then(|v| dra::pick_version([v]))
        .unwrap_or(DraVersion::V1);
    version.resource_claim_templates()
}

fn object_name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
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

/// Events for what changed between two statuses (mode, resolution failure, degradation).
async fn publish_transitions(
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
async fn report_invalid(invalid: &InvalidObject, ctx: &Context) -> Result<Action> {
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

fn truncate_note(mut note: String) -> String {
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

/// Runs the controller until `shutdown` resolves (in-flight reconciles finish first). `health`
/// turns ready once the configs' cache has synced.
pub async fn run(
    ctx: Arc<Context>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.api.client().clone();
    let configs = Api::<Guarded>::all(client.clone());
    // Status writes re-trigger a reconcile, which then finds nothing to write (no loop).
    let mut controller = Controller::new(configs, watcher::Config::default().any_semantic());
    let reader = controller.store();

    {
        let reader = reader.clone();
        let health = health.clone();
        tokio::spawn(async move {
            // Re-poll: `wait_until_ready` keeps one waker, and the controller waits on the same
            // store, so a single long wait here can miss its wake-up.
            loop {
                match tokio::time::timeout(Duration::from_millis(200), reader.wait_until_ready())
                    .await
                {
                    Ok(Ok(())) => {
                        info!("GpuDiagnosticsConfig cache synced");
                        health.set(Readiness::Ready);
                        return;
                    }
                    Ok(Err(_)) => return,
                    Err(_) => {}
                }
            }
        });
    }

    let managed = watcher::Config::default().labels(&names::managed_selector());
    controller = controller
        .watches(
            Api::<DaemonSet>::all(client.clone()),
            managed.clone(),
            by_instance_label,
        )
        .watches(
            Api::<RuntimeClass>::all(client.clone()),
            watcher::Config::default(),
            every_config(reader.clone()),
        );
    match ctx.api.served_versions(dra::GROUP).await {
        Ok(served) => {
            if let Some(version) = served
                .as_ref()
                .and_then(|s| dra::pick_version(s.iter().map(String::as_str)))
            {
                info!(
                    version = version.as_str(),
                    "watching DRA DeviceClasses and claim templates"
                );
                let classes = version.device_classes();
                let templates = version.resource_claim_templates();
                controller = controller
                    .watches_with(
                        Api::<DynamicObject>::all_with(client.clone(), &classes),
                        classes,
                        watcher::Config::default(),
                        every_config(reader.clone()),
                    )
                    .watches_with(
                        Api::<DynamicObject>::all_with(client.clone(), &templates),
                        templates,
                        managed,
                        by_instance_label,
                    );
            }
        }
        Err(error) => {
            warn!(%error, "DRA discovery failed; DeviceClass changes are noticed at resync only")
        }
    }

    controller
        .with_config(
            ControllerConfig::default()
                .concurrency(ctx.settings.concurrency)
                .debounce(Duration::from_millis(200)),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => debug!(config = %object.name, "reconciled"),
                Err(error) => debug!(%error, "controller event"),
            }
        })
        .await;
    health.set(Readiness::Stopping);
}

/// Maps an object the operator labelled to its config.
fn by_instance_label<K: Resource>(object: K) -> Option<ObjectRef<Guarded>> {
    names::config_of(object.labels()).map(ObjectRef::new)
}

/// Maps any object to every config (RuntimeClass or DeviceClass changes affect them all).
fn every_config<K>(
    reader: Store<Guarded>,
) -> impl Fn(K) -> Vec<ObjectRef<Guarded>> + Clone + Send + Sync + 'static {
    move |_| {
        reader
            .state()
            .iter()
            .map(|config| ObjectRef::from_obj(config.as_ref()))
            .collect()
    }
}
