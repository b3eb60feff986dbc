//! DRA admin access: what is known without asking (a stored template that kept it, a recent
//! probe), the dry-run probe, and the read-back check after a real apply.

use std::time::Instant;

use crds::GpuDiagnosticsConfig;
use kube::ResourceExt;
use tracing::debug;

use super::Context;
use crate::access::{Claim, GpuAccess, Resolution};
use crate::dra::{self, DraVersion};
use crate::error::{Error, Result, status_code};
use crate::facts::{AdminAccess, ClusterFacts};
use crate::kube_api::WriteKind;
use crate::observe::Observed;
use crate::render::{self};
use crate::{apply, names};

/// What is known about admin access without asking: a stored template that kept it, or a recent
/// probe.
pub(super) fn admin_access_fact(
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

pub(super) fn remember_admin_access(
    ctx: &Context,
    uid: &str,
    version: DraVersion,
    access: AdminAccess,
) {
    ctx.memory()
        .admin_access
        .insert((uid.to_owned(), version), (access, Instant::now()));
}

/// Asks the API server, with a dry-run apply, whether it keeps `adminAccess` in a claim template
/// in the agent namespace (nothing is stored).
pub(super) async fn probe_admin_access(
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
            WriteKind::DryRun,
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
pub(super) fn dropped_admin_access(
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
