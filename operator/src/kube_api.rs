//! The operator's door to the API server: get / list / apply / delete of dynamic objects, each
//! failure wrapped with what was attempted. Every call the reconciler makes goes through here,
//! and each is covered by `rbac::RBAC_RULES`.

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result, status_code};

/// Whether a write is stored or only validated by the API server (the admin-access probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// The object is stored.
    Store,
    /// The API server validates and defaults the object and answers as if stored; nothing changes.
    DryRun,
}

/// A thin wrapper over a kube `Client`.
#[derive(Clone)]
pub struct KubeApi {
    client: Client,
}

impl KubeApi {
    /// Wraps `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    /// The object, or `None` when it does not exist.
    pub async fn get(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>> {
        let action = || describe("GET", resource, namespace, Some(name));
        let found = self
            .api(resource, namespace)
            .get_opt(name)
            .await
            .map_err(Error::kube(action()))?;
        found.map(|o| to_value(&o, action)).transpose()
    }

    /// Objects matching the selectors (served from the API server's cache: `resourceVersion=0`).
    pub async fn list(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Vec<Value>> {
        let mut params = ListParams::default().match_any();
        if let Some(labels) = labels {
            params = params.labels(labels);
        }
        if let Some(fields) = fields {
            params = params.fields(fields);
        }
        let action = || describe("LIST", resource, namespace, None);
        let list = self
            .api(resource, namespace)
            .list(&params)
            .await
            .map_err(Error::kube(action()))?;
        list.items.iter().map(|o| to_value(o, action)).collect()
    }

    /// `list`, decoded into a typed resource.
    pub async fn list_typed<K>(
        &self,
        namespace: Option<&str>,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Vec<K>>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let resource = ApiResource::erase::<K>(&());
        let items = self.list(&resource, namespace, labels, fields).await?;
        items
            .into_iter()
            .map(|item| {
                serde_json::from_value(item).map_err(|source| Error::Decode {
                    action: describe("LIST", &resource, namespace, None),
                    source,
                })
            })
            .collect()
    }

    /// Server-side apply of `object` (forcing ownership of conflicting fields: the operator is
    /// the controller of what it writes); returns the object as stored (or as it would be, for
    /// [`WriteKind::DryRun`]).
    pub async fn apply(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        object: &Value,
        field_manager: &str,
        kind: WriteKind,
    ) -> Result<Value> {
        let mut params = PatchParams::apply(field_manager).force();
        let verb = match kind {
            WriteKind::Store => "APPLY",
            WriteKind::DryRun => {
                params = params.dry_run();
                "APPLY (dry run)"
            }
        };
        let action = || describe(verb, resource, namespace, Some(name));
        let stored = self
            .api(resource, namespace)
            .patch(name, &params, &Patch::Apply(object))
            .await
            .map_err(Error::kube(action()))?;
        to_value(&stored, action)
    }

    /// Server-side apply of a config's status subresource.
    pub async fn apply_status(
        &self,
        name: &str,
        status: &Value,
        field_manager: &str,
    ) -> Result<()> {
        let resource = ApiResource::erase::<crds::GpuDiagnosticsConfig>(&());
        let body = serde_json::json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "status": status,
        });
        self.api(&resource, None)
            .patch_status(
                name,
                &PatchParams::apply(field_manager).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::kube(describe(
                "APPLY",
                &resource,
                None,
                Some(&format!("{name}/status")),
            )))?;
        Ok(())
    }

    /// Deletes the object in the background (its dependents follow through garbage collection);
    /// an object already gone is not an error.
    pub async fn delete(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<()> {
        match self
            .api(resource, namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if status_code(&error) == Some(404) => Ok(()),
            Err(error) => Err(Error::kube(describe(
                "DELETE",
                resource,
                namespace,
                Some(name),
            ))(error)),
        }
    }

    /// Versions of `group` the API server serves, or `None` when it does not serve the group.
    pub async fn served_versions(&self, group: &str) -> Result<Option<Vec<String>>> {
        let request = http::Request::get(format!("/apis/{group}"))
            .body(Vec::new())
            .map_err(|e| Error::kube(format!("GET /apis/{group}"))(kube::Error::HttpError(e)))?;
        match self
            .client
            .request::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup>(request)
            .await
        {
            Ok(group) => Ok(Some(
                group.versions.into_iter().map(|v| v.version).collect(),
            )),
            Err(error) if status_code(&error) == Some(404) => Ok(None),
            Err(error) => Err(Error::kube(format!("GET /apis/{group} (discovery)"))(error)),
        }
    }
}

/// The ApiResource of a typed kind.
pub fn resource_of<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

/// An ApiResource from its parts.
pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn to_value(object: &DynamicObject, action: impl FnOnce() -> String) -> Result<Value> {
    serde_json::to_value(object).map_err(|source| Error::Decode {
        action: action(),
        source,
    })
}

fn describe(
    verb: &str,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: Option<&str>,
) -> String {
    let target = match (namespace, name) {
        (Some(ns), Some(name)) => format!(" {ns}/{name}"),
        (Some(ns), None) => format!(" in namespace {ns}"),
        (None, Some(name)) => format!(" {name}"),
        (None, None) => String::new(),
    };
    format!(
        "{verb} {} {}{target}",
        resource.api_version, resource.plural
    )
}
