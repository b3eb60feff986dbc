//! Direct access to the server's objects for a test: create, read, modify and delete, as JSON or as
//! typed k8s-openapi / kube-derive objects, bypassing HTTP (and the request log).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{DIRECT_MANAGER, TestApiServer};
use crate::engine::{DeleteOptions, ListQuery, State, Target, WriteOptions};
use crate::error::Error;

impl TestApiServer {
    // --- Objects, as JSON -------------------------------------------------------------------------

    /// Creates an object as a controller or kubelet would: `status` is kept, metadata is filled
    /// (uid, resourceVersion, creationTimestamp, generation), watches see it. The namespace must exist.
    pub fn create_object(&self, object: Value) -> Result<Value, Error> {
        create_direct(&mut self.state(), object)
    }

    /// One object as served at `api_version`, if it exists.
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let state = self.state();
        let target = state
            .target_for_kind(api_version, kind, namespace, Some(name))
            .ok()?;
        state.get(&target).ok()
    }

    /// Objects of a kind (in one namespace, or all), ordered by namespace and name.
    pub fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let state = self.state();
        let Ok(mut target) = state.target_for_kind(api_version, kind, namespace, None) else {
            return Vec::new();
        };
        target.namespace = namespace.map(String::from);
        state.select(&target, &ListQuery::default())
    }

    /// Changes an object in place — spec, metadata and `status` alike, in one write (generation bumps only
    /// when something outside metadata and status changed). Returns the stored result.
    pub fn modify_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<Value, Error> {
        let mut state = self.state();
        let target = state.target_for_kind(api_version, kind, namespace, Some(name))?;
        let mut object = state.get(&target)?;
        change(&mut object);
        Ok(state.update(&target, object, &direct_options())?.object)
    }

    /// Deletes an object like `kubectl delete` (background propagation: dependents are garbage collected;
    /// finalizers keep it terminating until removed).
    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), Error> {
        let mut state = self.state();
        let target = state.target_for_kind(api_version, kind, namespace, Some(name))?;
        state.delete(&target, &DeleteOptions::default())?;
        Ok(())
    }

    // --- Objects, typed ---------------------------------------------------------------------------

    /// [`create_object`](Self::create_object) for a typed object (k8s-openapi or kube-derive types).
    pub fn create<K>(&self, object: &K) -> Result<K, Error>
    where
        K: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let mut value = to_json(object)?;
        value["apiVersion"] = json!(K::api_version(&()));
        value["kind"] = json!(K::kind(&()));
        from_json(self.create_object(value)?)
    }

    /// [`get_object`](Self::get_object) for a typed object.
    pub fn get<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.get_object(&K::api_version(&()), &K::kind(&()), namespace, name)
            .and_then(|v| from_json(v).ok())
    }

    /// [`list_objects`](Self::list_objects) for a typed object.
    pub fn list<K>(&self, namespace: Option<&str>) -> Vec<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.list_objects(&K::api_version(&()), &K::kind(&()), namespace)
            .into_iter()
            .filter_map(|v| from_json(v).ok())
            .collect()
    }

    /// [`modify_object`](Self::modify_object) for a typed object (e.g. set a DaemonSet's status as its
    /// controller would).
    pub fn modify<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut K),
    ) -> Result<K, Error>
    where
        K: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let mut failure = None;
        let stored = self.modify_object(
            &K::api_version(&()),
            &K::kind(&()),
            namespace,
            name,
            |value| match from_json::<K>(value.clone()) {
                Ok(mut typed) => {
                    change(&mut typed);
                    match to_json(&typed) {
                        Ok(mut new) => {
                            new["apiVersion"] = value["apiVersion"].clone();
                            new["kind"] = value["kind"].clone();
                            *value = new;
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                Err(e) => failure = Some(e),
            },
        );
        if let Some(error) = failure {
            return Err(error);
        }
        from_json(stored?)
    }

    /// [`delete_object`](Self::delete_object) for a typed object.
    pub fn delete<K>(&self, namespace: Option<&str>, name: &str) -> Result<(), Error>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        self.delete_object(&K::api_version(&()), &K::kind(&()), namespace, name)
    }

    /// The `apiVersion` (at the group's preferred version) and `kind` served for `group` + plural
    /// `resource`, to address objects by resource as request paths do.
    pub fn served_kind(&self, group: &str, resource: &str) -> Option<(String, String)> {
        let state = self.state();
        let served = state
            .catalog
            .types()
            .find(|t| t.group == group && t.plural == resource)?;
        Some((
            served.api_version(&served.preferred().version),
            served.kind.clone(),
        ))
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state().store.resource_version()
    }
}

pub(super) fn direct_options() -> WriteOptions {
    WriteOptions {
        field_manager: Some(DIRECT_MANAGER.into()),
        default_manager: DIRECT_MANAGER.into(),
        direct: true,
        ..WriteOptions::default()
    }
}

pub(super) fn create_direct(state: &mut State, object: Value) -> Result<Value, Error> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(String::from);
    let target: Target = state.target_for_kind(&api_version, &kind, namespace.as_deref(), None)?;
    Ok(state.create(&target, object, &direct_options())?.object)
}

fn to_json<K: Serialize>(object: &K) -> Result<Value, Error> {
    serde_json::to_value(object).map_err(|source| Error::Json {
        what: std::any::type_name::<K>().to_string(),
        source,
    })
}

fn from_json<K: DeserializeOwned>(value: Value) -> Result<K, Error> {
    serde_json::from_value(value).map_err(|source| Error::Json {
        what: std::any::type_name::<K>().to_string(),
        source,
    })
}
