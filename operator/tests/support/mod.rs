//! The reconcile tests' view of `test-apiserver`: a server with the operator's CRD installed, addressed
//! by group and plural resource as request paths are, and its request log read since the last
//! `clear_log` (what a reconcile wrote, summarised for readable assertions). The API semantics —
//! server-side apply, defaults, garbage collection, discovery, faults — are the test API server's own.

#![allow(dead_code)]

use std::sync::Mutex;

use operator::rbac::{self, RBAC_RULES};
use serde_json::Value;
use test_apiserver::{Config, DraVersion, Fault, LogMark, RequestRecord, TestApiServer, Verb};

/// A test API server and a position in its request log.
pub struct FakeApi {
    /// The server: faults, settings and the full request log.
    pub server: TestApiServer,
    mark: Mutex<LogMark>,
}

impl FakeApi {
    /// An in-process server with the `GpuDiagnosticsConfig` CRD installed.
    pub fn new() -> Self {
        let fake = Self::empty();
        fake.insert(serde_json::to_value(crds::crd()).expect("the CRD serializes"));
        fake
    }

    /// An in-process server without the CRD (for tests of installing it).
    pub fn empty() -> Self {
        Self::in_process(Config::default())
    }

    fn in_process(config: Config) -> Self {
        Self::wrap(TestApiServer::in_process(config).expect("the test API server starts"))
    }

    /// Wraps a server (a socket one, for tests of the binary).
    pub fn wrap(server: TestApiServer) -> Self {
        Self {
            server,
            mark: Mutex::new(LogMark(0)),
        }
    }

    /// A kube client talking to this server.
    pub fn client(&self) -> kube::Client {
        self.server
            .client()
            .expect("a client for the test API server")
    }

    /// Serves `resource.k8s.io` in these versions from now on.
    pub fn serve_dra(&self, versions: &[DraVersion]) {
        self.server.set_dra_versions(versions);
    }

    /// Stores `object` as another actor would (status kept; uid, resourceVersion assigned).
    pub fn insert(&self, object: Value) -> Value {
        let summary = format!("{} {}", object["kind"], object["metadata"]["name"]);
        self.server
            .create_object(object)
            .unwrap_or_else(|e| panic!("seeding {summary}: {e}"))
    }

    /// Stores `config` as if it predated the CRD's validation: created under a schema that accepts
    /// anything, then the CRD's own schema is restored (what an object written before a CRD upgrade
    /// that tightened its schema looks like).
    pub fn insert_unvalidated(&self, config: Value) -> Value {
        let crd = serde_json::to_value(crds::crd()).expect("the CRD serializes");
        let mut permissive = crd.clone();
        for version in permissive["spec"]["versions"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            version["schema"]["openAPIV3Schema"] = serde_json::json!({"type": "object",
                "x-kubernetes-preserve-unknown-fields": true});
        }
        let (group, resource) = ("apiextensions.k8s.io", "customresourcedefinitions");
        self.edit(group, resource, None, crds::CRD_NAME, |c| {
            c["spec"] = permissive["spec"].clone()
        });
        let stored = self.insert(config);
        self.edit(group, resource, None, crds::CRD_NAME, |c| {
            c["spec"] = crd["spec"].clone()
        });
        stored
    }

    fn kind(&self, group: &str, resource: &str) -> (String, String) {
        self.server
            .served_kind(group, resource)
            .unwrap_or_else(|| panic!("the test API server does not serve {resource}.{group}"))
    }

    /// The stored object, as read at the group's preferred version.
    pub fn get(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (api_version, kind) = self.server.served_kind(group, resource)?;
        self.server.get_object(&api_version, &kind, namespace, name)
    }

    /// Changes a stored object as another actor would (a controller writing status, a user editing).
    pub fn edit(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let (api_version, kind) = self.kind(group, resource);
        self.server
            .modify_object(&api_version, &kind, namespace, name, change)
            .unwrap_or_else(|e| panic!("editing {resource} {name}: {e}"));
    }

    /// Deletes like `kubectl delete` (dependents are garbage collected before this returns).
    pub fn delete(&self, group: &str, resource: &str, namespace: Option<&str>, name: &str) {
        let (api_version, kind) = self.kind(group, resource);
        self.server
            .delete_object(&api_version, &kind, namespace, name)
            .unwrap_or_else(|e| panic!("deleting {resource} {name}: {e}"));
    }

    /// Every stored object of a resource.
    pub fn all(&self, group: &str, resource: &str) -> Vec<Value> {
        let (api_version, kind) = self.kind(group, resource);
        self.server.list_objects(&api_version, &kind, None)
    }

    /// Makes matching requests fail or wait (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.server.inject(fault);
    }

    /// Removes every injected fault.
    pub fn heal(&self) {
        self.server.clear_faults();
    }

    /// The requests since the last `clear_log`.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server
            .requests_since(*self.mark.lock().expect("mark lock"))
            .into_iter()
            .map(Recorded)
            .collect()
    }

    /// Summaries of the writes (not dry runs) since the last `clear_log`.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.is_write())
            .map(Recorded::summary)
            .collect()
    }

    /// Starts the log over (the server keeps every request; this moves the mark).
    pub fn clear_log(&self) {
        *self.mark.lock().expect("mark lock") = self.server.mark();
    }

    /// Panics unless every request since the last `clear_log` is allowed by `operator::rbac::RBAC_RULES`.
    pub fn assert_rbac_covers_requests(&self) {
        for request in self.requests() {
            let Some(verb) = request.verb() else {
                continue; // discovery, /version: allowed to every authenticated user (system:discovery)
            };
            let info = &request.info;
            let group = info.group.as_deref().unwrap_or_default();
            let resource = match (&info.resource, &info.subresource) {
                (Some(resource), Some(sub)) => format!("{resource}/{sub}"),
                (Some(resource), None) => resource.clone(),
                (None, _) => String::new(),
            };
            assert!(
                rbac::allows(
                    RBAC_RULES,
                    group,
                    &resource,
                    verb.as_str(),
                    info.name.as_deref()
                ),
                "RBAC_RULES do not allow {verb} {group}/{resource} {:?}",
                info.name
            );
        }
    }
}

/// One logged request; reads as its [`RequestRecord`].
#[derive(Debug, Clone)]
pub struct Recorded(pub RequestRecord);

impl std::ops::Deref for Recorded {
    type Target = RequestRecord;

    fn deref(&self) -> &RequestRecord {
        &self.0
    }
}

impl Recorded {
    /// [`RequestRecord::summary`], with every write to `events` (created, or patched into a series)
    /// as `EVENT`: their names are generated.
    pub fn summary(&self) -> String {
        if self.resource() == Some("events") && self.verb().is_some_and(Verb::is_write) {
            return "EVENT".into();
        }
        self.0.summary()
    }
}
