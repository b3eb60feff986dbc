//! Writing one config's objects: the namespace first, then what differs among the ServiceAccount,
//! RBAC, DaemonSet and claim template; deleting what is no longer wanted; never touching an object
//! with the operator's name that somebody else created.

use crds::GpuDiagnosticsConfig;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::ResourceExt;
use kube::core::ApiResource;
use serde_json::Value;
use tracing::info;

use super::Context;
use crate::access::{GpuAccess, Issue, IssueReason, Resolution};
use crate::dra::{self, DraVersion};
use crate::error::{Error, Result, status_code};
use crate::kube_api::WriteKind;
use crate::kube_api::resource_of;
use crate::observe::Observed;
use crate::render::{self, DRA_ADMIN_LABELS, Desired, POD_SECURITY_LABELS};
use crate::{apply, names};

/// Creates/labels the namespace (`namespace.create`; `namespace` is its rendering), or checks the
/// existing one. Returns whether namespaced objects can be applied.
pub(super) async fn ensure_namespace(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    resolution: &Resolution,
    namespace: Option<Value>,
    observed: &mut Observed,
    issues: &mut Vec<Issue>,
) -> Result<bool> {
    let name = config.name_any();
    let spec = &config.spec;
    let namespace_name = spec.namespace.name.as_str();
    if !spec.namespace.create {
        let Some(live) = &observed.namespace else {
            issues.push(Issue {
                reason: IssueReason::NamespaceMissing,
                message: format!(
                    "namespace.create is false and namespace \"{namespace_name}\" does not exist: create it \
                     (`kubectl create namespace {namespace_name}`) or set namespace.create=true"
                ),
            });
            return Ok(false);
        };
        issues.extend(namespace_label_issues(spec, resolution, live));
        return Ok(true);
    }
    if let Some(object) = namespace {
        let key = names::namespace_hash_annotation(&name);
        let stamped = apply::stamp_as(object, &key);
        if !apply::up_to_date_as(&stamped, observed.namespace.as_ref(), &key) {
            let stored = ctx
                .api
                .apply(
                    &resource_of::<Namespace>(),
                    None,
                    namespace_name,
                    &stamped,
                    &names::namespace_field_manager(&name),
                    WriteKind::Store,
                )
                .await?;
            ctx.metrics.wrote("apply");
            observed.namespace = Some(stored);
        }
    }
    Ok(true)
}

/// Labels an existing namespace (`namespace.create: false`) lacks for the agent pod.
pub(super) fn namespace_label_issues(
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

/// Applies what differs among `desired`'s namespaced and cluster objects (its namespace is
/// already ensured), deletes what is no longer wanted, and records the stored objects in
/// `observed`. Objects with the operator's names that it did not write are left alone and
/// reported.
pub(super) async fn apply_children(
    ctx: &Context,
    config: &GpuDiagnosticsConfig,
    resolution: &Resolution,
    desired: Desired,
    observed: &mut Observed,
    issues: &mut Vec<Issue>,
) -> Result<()> {
    let target = Target {
        ctx,
        config: config.name_any(),
        namespace: config.spec.namespace.name.clone(),
    };
    target
        .service_account(desired.service_account, observed, issues)
        .await?;
    let role = target
        .owned(
            &resource_of::<ClusterRole>(),
            None,
            desired.cluster_role,
            observed.cluster_role.as_ref(),
            issues,
        )
        .await?;
    observed.cluster_role = role.or(observed.cluster_role.take());
    let binding = target
        .owned(
            &resource_of::<ClusterRoleBinding>(),
            None,
            desired.cluster_role_binding,
            observed.cluster_role_binding.as_ref(),
            issues,
        )
        .await?;
    observed.cluster_role_binding = binding.or(observed.cluster_role_binding.take());
    target
        .daemon_set(desired.daemon_set, observed, issues)
        .await?;
    // The claim template: owned by the DaemonSet, so written after it.
    target.claim_template(resolution, observed, issues).await
}

/// Where one config's objects go.
struct Target<'a> {
    ctx: &'a Context,
    config: String,
    namespace: String,
}

impl Target<'_> {
    fn ns(&self) -> Option<&str> {
        Some(self.namespace.as_str())
    }

    async fn owned(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        desired: Value,
        live: Option<&Value>,
        issues: &mut Vec<Issue>,
    ) -> Result<Option<Value>> {
        ensure_owned(
            self.ctx,
            &self.config,
            resource,
            namespace,
            desired,
            live,
            issues,
        )
        .await
    }

    /// The ServiceAccount, and any left behind by a rename.
    async fn service_account(
        &self,
        desired: Option<Value>,
        observed: &mut Observed,
        issues: &mut Vec<Issue>,
    ) -> Result<()> {
        let resource = resource_of::<ServiceAccount>();
        let wanted = desired.as_ref().map(object_name);
        if let Some(sa) = desired {
            let sa_name = object_name(&sa);
            let live = observed
                .service_accounts
                .iter()
                .find(|s| object_name(s) == sa_name)
                .cloned();
            if let Some(stored) =
                ensure(self.ctx, &resource, self.ns(), sa, live.as_ref(), issues).await?
            {
                observed
                    .service_accounts
                    .retain(|s| object_name(s) != sa_name);
                observed.service_accounts.push(stored);
            }
        }
        let stale: Vec<String> = observed
            .service_accounts
            .iter()
            .map(object_name)
            .filter(|n| Some(n) != wanted.as_ref())
            .collect();
        for sa_name in stale {
            delete(self.ctx, &resource, self.ns(), &sa_name).await?;
            observed
                .service_accounts
                .retain(|s| object_name(s) != sa_name);
        }
        Ok(())
    }

    /// The DaemonSet: applied, or deleted when no access method was resolved.
    async fn daemon_set(
        &self,
        desired: Option<Value>,
        observed: &mut Observed,
        issues: &mut Vec<Issue>,
    ) -> Result<()> {
        let resource = resource_of::<DaemonSet>();
        match desired {
            Some(ds) => {
                let live = observed.daemon_set.as_ref();
                if let Some(stored) = self.owned(&resource, self.ns(), ds, live, issues).await? {
                    observed.daemon_set = Some(stored);
                }
            }
            None => {
                if let Some(live) = observed.daemon_set.take() {
                    if apply::is_ours(&live, &self.config) {
                        delete(self.ctx, &resource, self.ns(), &object_name(&live)).await?;
                    } else {
                        observed.daemon_set = Some(live);
                    }
                }
            }
        }
        Ok(())
    }

    /// The generated claim template, owned by our DaemonSet. In DRA mode it lives at the served
    /// version; otherwise any left-over one is removed at the version it was written in (the
    /// DaemonSet no longer references it).
    async fn claim_template(
        &self,
        resolution: &Resolution,
        observed: &mut Observed,
        issues: &mut Vec<Issue>,
    ) -> Result<()> {
        let template = self.desired_claim_template(resolution, observed);
        let resource = match &resolution.access {
            Some(GpuAccess::Dra { version, .. }) => Some(version.resource_claim_templates()),
            _ => observed.claim_template.as_ref().map(template_resource_of),
        };
        let Some(resource) = resource else {
            return Ok(());
        };
        match template {
            Some(template) => {
                let live = observed.claim_template.as_ref();
                if let Some(stored) = self
                    .owned(&resource, self.ns(), template, live, issues)
                    .await?
                {
                    observed.claim_template = Some(stored);
                }
                Ok(())
            }
            None => {
                delete_if_ours(
                    self.ctx,
                    &self.config,
                    &resource,
                    self.ns(),
                    &mut observed.claim_template,
                )
                .await
            }
        }
    }

    fn desired_claim_template(
        &self,
        resolution: &Resolution,
        observed: &Observed,
    ) -> Option<Value> {
        let access = resolution.access.as_ref()?;
        let ds = observed
            .daemon_set
            .as_ref()
            .filter(|ds| apply::is_ours(ds, &self.config))?;
        let owner = render::daemon_set_owner(
            &object_name(ds),
            ds["metadata"]["uid"].as_str().unwrap_or_default(),
        );
        render::render_claim_template(&self.config, &self.namespace, access, Some(owner))
    }
}

/// Applies `desired` unless `live` already matches; returns the stored object. An object the API
/// server rejects as invalid (a bad value the user passed through, such as a resource quantity the
/// CRD schema cannot check) is reported as an issue, not retried as an error.
pub(super) async fn ensure(
    ctx: &Context,
    resource: &ApiResource,
    namespace: Option<&str>,
    desired: Value,
    live: Option<&Value>,
    issues: &mut Vec<Issue>,
) -> Result<Option<Value>> {
    let stamped = apply::stamp(desired);
    if let Some(live) = live
        && apply::up_to_date(&stamped, Some(live))
    {
        return Ok(Some(live.clone()));
    }
    let name = object_name(&stamped);
    match ctx
        .api
        .apply(
            resource,
            namespace,
            &name,
            &stamped,
            names::MANAGER,
            WriteKind::Store,
        )
        .await
    {
        Ok(stored) => {
            ctx.metrics.wrote("apply");
            Ok(Some(stored))
        }
        Err(Error::Kube { source, .. }) if matches!(status_code(&source), Some(400 | 422)) => {
            let detail = match &source {
                kube::Error::Api(status) => status.message.clone(),
                other => other.to_string(),
            };
            let target = match namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name,
            };
            issues.push(Issue {
                reason: IssueReason::ObjectRejected,
                message: format!(
                    "the API server rejected {} {target}: {detail}; fix the GpuDiagnosticsConfig field it comes from",
                    resource.kind
                ),
            });
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// `ensure`, unless `live` exists and was not written by the operator for this config: then
/// nothing is written and the conflict is reported.
pub(super) async fn ensure_owned(
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
    ensure(ctx, resource, namespace, desired, live, issues).await
}

pub(super) async fn delete(
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

pub(super) async fn delete_if_ours(
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

pub(super) fn template_resource_of(template: &Value) -> ApiResource {
    let version = template["apiVersion"]
        .as_str()
        .and_then(|v| v.strip_prefix("resource.k8s.io/"))
        .and_then(|v| dra::pick_version([v]))
        .unwrap_or(DraVersion::V1);
    version.resource_claim_templates()
}

pub(super) fn object_name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
