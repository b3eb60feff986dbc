//! A small stateful Kubernetes API server behind kube's `Client`, for reconcile tests: it stores
//! objects, answers GET/LIST/PATCH(apply)/DELETE/POST like the real one in the ways the operator
//! depends on (server-side apply per field manager, dry runs, 404 Status bodies, discovery of
//! `resource.k8s.io`, owner-reference garbage collection), and records every request.
//!
//! Switches simulate cluster behaviour: dropping `adminAccess` (feature gate off), server-side
//! defaulting and quantity canonicalisation (which must not look like drift), failures.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use kube::client::Body;
use operator::rbac::{self, RBAC_RULES};
use serde_json::{Value, json};

/// (group, resource, namespace, name); the version is not part of the identity.
type Key = (String, String, String, String);

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Recorded {
    /// The RBAC verb of the request.
    pub fn verb(&self) -> &'static str {
        match self.method {
            Method::GET if self.name.is_none() && self.query.contains("watch=true") => "watch",
            Method::GET if self.name.is_none() => "list",
            Method::GET => "get",
            Method::POST => "create",
            Method::PATCH => "patch",
            Method::PUT => "update",
            Method::DELETE => "delete",
            _ => "unknown",
        }
    }

    /// Whether it changes state (dry runs do not).
    pub fn is_write(&self) -> bool {
        self.method != Method::GET && !self.query.contains("dryRun=All")
    }

    /// `VERB resource[/sub] [namespace/]name`, for readable assertions (`EVENT` for an event
    /// created or, for a repeat, patched into a series).
    pub fn summary(&self) -> String {
        if self.resource == "events" && self.method != Method::GET {
            return "EVENT".into();
        }
        let resource = match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.clone(),
        };
        let dry = if self.query.contains("dryRun=All") {
            " (dry run)"
        } else {
            ""
        };
        let target = match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => format!(" {ns}/{name}"),
            (None, Some(name)) => format!(" {name}"),
            (Some(ns), None) => format!(" in {ns}"),
            (None, None) => String::new(),
        };
        format!("{} {resource}{target}{dry}", self.method)
    }
}

#[derive(Default)]
struct State {
    /// Live objects.
    objects: BTreeMap<Key, Value>,
    /// What each field manager last applied, per object (server-side apply, approximated:
    /// maps merge across managers, lists are atomic except ownerReferences, merged by uid).
    applied: BTreeMap<Key, BTreeMap<String, Value>>,
    log: Vec<Recorded>,
    served: BTreeMap<String, Vec<String>>,
    next_uid: u64,
    resource_version: u64,
    drop_admin_access: bool,
    drop_admin_access_on_store_only: bool,
    refuse_admin_access: Option<String>,
    server_defaults: bool,
    fail: Vec<(Method, String, u16)>,
    establish_crds: bool,
}

/// The fake API server.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    pub fn new() -> Self {
        let fake = Self::default();
        fake.state().establish_crds = true;
        fake
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// A kube client talking to this fake.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let fake = fake.clone();
            async move { Ok::<_, Infallible>(fake.handle(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Serves `resource.k8s.io` in these versions.
    pub fn serve_dra(&self, versions: &[&str]) {
        self.state().served.insert(
            "resource.k8s.io".into(),
            versions.iter().map(|v| (*v).to_owned()).collect(),
        );
    }

    /// The API server strips `adminAccess` from claim templates (DRAAdminAccess gate off).
    pub fn drop_admin_access(&self) {
        self.state().drop_admin_access = true;
    }

    /// Dry runs keep `adminAccess` but stored objects lose it (a gate flipped in between).
    pub fn drop_admin_access_on_store_only(&self) {
        self.state().drop_admin_access_on_store_only = true;
    }

    /// The API server refuses `adminAccess` with 422 (namespace label missing).
    pub fn refuse_admin_access(&self, message: &str) {
        self.state().refuse_admin_access = Some(message.to_owned());
    }

    /// The API server fills defaults and canonicalises quantities, as the real one does.
    pub fn server_defaults(&self) {
        self.state().server_defaults = true;
    }

    /// Applied CRDs keep whatever status they had (the real API server never accepted them).
    pub fn never_establish_crds(&self) {
        self.state().establish_crds = false;
    }

    /// Requests whose method matches and whose path contains `path_part` fail with `status`.
    pub fn fail(&self, method: Method, path_part: &str, status: u16) {
        self.state()
            .fail
            .push((method, path_part.to_owned(), status));
    }

    pub fn heal(&self) {
        self.state().fail.clear();
    }

    /// Stores `object` as if created by someone else (assigns uid, resourceVersion).
    pub fn insert(&self, mut object: Value) -> Value {
        let key = key_of(&object);
        let mut state = self.state();
        state.next_uid += 1;
        state.resource_version += 1;
        let uid = format!("uid-{}", state.next_uid);
        let rv = state.resource_version.to_string();
        let meta = object["metadata"]
            .as_object_mut()
            .expect("object has metadata");
        meta.entry("uid").or_insert(json!(uid));
        meta.insert("resourceVersion".into(), json!(rv));
        meta.entry("generation").or_insert(json!(1));
        meta.entry("creationTimestamp")
            .or_insert(json!("2026-03-01T10:00:00Z"));
        state.objects.insert(key, object.clone());
        object
    }

    /// The stored object.
    pub fn get(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let key = (
            group.to_owned(),
            resource.to_owned(),
            namespace.unwrap_or_default().to_owned(),
            name.to_owned(),
        );
        self.state().objects.get(&key).cloned()
    }

    /// Replaces part of a stored object (as another actor, for example a controller writing status).
    pub fn edit(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) {
        let key = (
            group.to_owned(),
            resource.to_owned(),
            namespace.unwrap_or_default().to_owned(),
            name.to_owned(),
        );
        let mut state = self.state();
        state.resource_version += 1;
        let rv = state.resource_version.to_string();
        let object = state.objects.get_mut(&key).expect("object to edit exists");
        f(object);
        object["metadata"]["resourceVersion"] = json!(rv);
    }

    pub fn delete(&self, group: &str, resource: &str, namespace: Option<&str>, name: &str) {
        let key = (
            group.to_owned(),
            resource.to_owned(),
            namespace.unwrap_or_default().to_owned(),
            name.to_owned(),
        );
        let mut state = self.state();
        state.objects.remove(&key);
        state.applied.remove(&key);
        collect_garbage(&mut state);
    }

    /// Every stored object of a resource.
    pub fn all(&self, group: &str, resource: &str) -> Vec<Value> {
        self.state()
            .objects
            .iter()
            .filter(|((g, r, _, _), _)| g == group && r == resource)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().log.clone()
    }

    /// Summaries of the writes since the last `clear_log`.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.is_write())
            .map(Recorded::summary)
            .collect()
    }

    pub fn clear_log(&self) {
        self.state().log.clear();
    }

    /// Panics unless every recorded request is allowed by `operator::rbac::RBAC_RULES`.
    pub fn assert_rbac_covers_requests(&self) {
        for request in self.requests() {
            if request.path.starts_with("/apis/") && request.resource.is_empty() {
                continue; // discovery: allowed to every authenticated user (system:discovery)
            }
            let resource = match &request.subresource {
                Some(sub) => format!("{}/{sub}", request.resource),
                None => request.resource.clone(),
            };
            assert!(
                rbac::allows(
                    RBAC_RULES,
                    &request.group,
                    &resource,
                    request.verb(),
                    request.name.as_deref()
                ),
                "RBAC_RULES do not allow {} {}/{} {:?}",
                request.verb(),
                request.group,
                resource,
                request.name
            );
        }
    }

    async fn handle(&self, request: Request<Body>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        self.respond(
            &parts.method,
            &parts.uri,
            content_type(&parts.headers),
            &body,
        )
    }

    /// Serves the fake over HTTP on a free local port (for black-box tests of the binary). Watch
    /// requests are held open without events; everything else is answered as above.
    pub async fn serve_http(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let fake = fake.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: Request<hyper::body::Incoming>| {
                            let fake = fake.clone();
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let watch =
                                    parts.uri.query().is_some_and(|q| q.contains("watch=true"));
                                if watch {
                                    fake.record(&parts.method, &parts.uri);
                                    let never = futures::stream::pending::<
                                        Result<hyper::body::Frame<Bytes>, Infallible>,
                                    >();
                                    let mut response =
                                        Response::new(http_body_util::combinators::BoxBody::new(
                                            http_body_util::StreamBody::new(never),
                                        ));
                                    response.headers_mut().insert(
                                        http::header::CONTENT_TYPE,
                                        http::HeaderValue::from_static("application/json"),
                                    );
                                    return Ok::<_, Infallible>(response);
                                }
                                let response = fake.respond(
                                    &parts.method,
                                    &parts.uri,
                                    content_type(&parts.headers),
                                    &body,
                                );
                                Ok(response.map(http_body_util::combinators::BoxBody::new))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    fn record(&self, method: &Method, uri: &http::Uri) {
        let path = uri.path().to_owned();
        let target = parse_path(&path);
        self.state().log.push(Recorded {
            method: method.clone(),
            path,
            query: uri.query().unwrap_or_default().to_owned(),
            group: target.group,
            resource: target.resource,
            subresource: target.subresource,
            namespace: target.namespace,
            name: target.name,
        });
    }

    fn respond(
        &self,
        method: &Method,
        uri: &http::Uri,
        content_type: &str,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let path = uri.path().to_owned();
        let query = uri.query().unwrap_or_default().to_owned();
        let parts_method = method.clone();
        let target = parse_path(&path);
        let recorded = Recorded {
            method: parts_method.clone(),
            path: path.clone(),
            query: query.clone(),
            group: target.group.clone(),
            resource: target.resource.clone(),
            subresource: target.subresource.clone(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
        };
        let mut state = self.state();
        state.log.push(recorded);
        if let Some((_, _, code)) = state
            .fail
            .iter()
            .find(|(method, part, _)| *method == parts_method && path.contains(part.as_str()))
        {
            return status(*code, "InternalError", "injected failure");
        }
        if target.resource.is_empty() {
            return discovery(&state, &target.group);
        }
        let key: Key = (
            target.group.clone(),
            target.resource.clone(),
            target.namespace.clone().unwrap_or_default(),
            target.name.clone().unwrap_or_default(),
        );
        match (&parts_method, &target.name) {
            (&Method::GET, Some(_)) => match state.objects.get(&key) {
                Some(object) => ok(object),
                None => not_found(&target),
            },
            (&Method::GET, None) => {
                let selector = query_param(&query, "labelSelector");
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|((g, r, ns, _), _)| {
                        *g == target.group
                            && *r == target.resource
                            && target.namespace.as_ref().is_none_or(|t| t == ns)
                    })
                    .map(|(_, object)| object.clone())
                    .filter(|object| matches_labels(object, selector.as_deref()))
                    .collect();
                ok(
                    &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            (&Method::PATCH, Some(_)) => {
                let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                    return status(400, "BadRequest", "patch body is not JSON");
                };
                if !content_type.starts_with("application/apply-patch") {
                    // Merge or strategic-merge patch (leader election uses these): merged into the
                    // live object, `null` deletes.
                    let Some(object) = state.objects.get_mut(&key) else {
                        return not_found(&target);
                    };
                    merge_patch(object, &patch);
                    state.resource_version += 1;
                    let rv = state.resource_version.to_string();
                    let object = state.objects.get_mut(&key).expect("checked above");
                    object["metadata"]["resourceVersion"] = json!(rv);
                    return ok(object);
                }
                let manager = query_param(&query, "fieldManager").unwrap_or_default();
                let dry_run = query.contains("dryRun=All");
                apply(&mut state, key, &target, patch, &manager, dry_run)
            }
            (&Method::DELETE, Some(_)) => {
                if state.objects.remove(&key).is_none() {
                    return not_found(&target);
                }
                state.applied.remove(&key);
                collect_garbage(&mut state);
                ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
            }
            (&Method::POST, None) => {
                let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
                    return status(400, "BadRequest", "body is not JSON");
                };
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("generated")
                    .to_owned();
                let key = (key.0, key.1, key.2, name);
                if state.objects.contains_key(&key) {
                    return status(409, "AlreadyExists", "already exists");
                }
                state.next_uid += 1;
                state.resource_version += 1;
                object["metadata"]["uid"] = json!(format!("uid-{}", state.next_uid));
                object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
                state.objects.insert(key, object.clone());
                let mut response = ok(&object);
                *response.status_mut() = StatusCode::CREATED;
                response
            }
            _ => status(405, "MethodNotAllowed", "not supported by the fake"),
        }
    }
}

fn apply(
    state: &mut State,
    key: Key,
    target: &Target,
    patch: Value,
    manager: &str,
    dry_run: bool,
) -> Response<Full<Bytes>> {
    let is_template = target.resource == "resourceclaimtemplates";
    if is_template
        && let Some(message) = &state.refuse_admin_access
        && operator::dra::template_requests_admin_access(&patch)
    {
        return status(422, "Invalid", message);
    }
    let existing = state.objects.get(&key).cloned();
    if target.subresource.as_deref() == Some("status") {
        let Some(mut object) = existing else {
            return not_found(target);
        };
        object["status"] = patch["status"].clone();
        if !dry_run {
            state.resource_version += 1;
            object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
            state.objects.insert(key, object.clone());
        }
        return ok(&object);
    }

    let mut patch = patch;
    if is_template
        && (state.drop_admin_access || (state.drop_admin_access_on_store_only && !dry_run))
    {
        strip_admin_access(&mut patch);
    }
    let mut managers = state.applied.get(&key).cloned().unwrap_or_default();
    managers.insert(manager.to_owned(), patch.clone());

    // Server-owned parts of the object survive; the managers' configurations are merged on top.
    let mut object =
        json!({"apiVersion": patch["apiVersion"], "kind": patch["kind"], "metadata": {}});
    for (_, applied) in managers.iter() {
        merge(&mut object, applied);
    }
    let old_spec = existing.as_ref().map(without_metadata_and_status);
    if let Some(existing) = &existing {
        for field in ["uid", "creationTimestamp", "generation"] {
            if let Some(value) = existing["metadata"].get(field) {
                object["metadata"][field] = value.clone();
            }
        }
        if let Some(status) = existing.get("status") {
            object["status"] = status.clone();
        }
    } else {
        state.next_uid += 1;
        object["metadata"]["uid"] = json!(format!("uid-{}", state.next_uid));
        object["metadata"]["creationTimestamp"] = json!("2026-03-01T10:00:00Z");
        object["metadata"]["generation"] = json!(1);
    }
    if state.server_defaults {
        add_server_defaults(&mut object, target);
    }
    if let Some(old) = old_spec
        && old != without_metadata_and_status(&object)
    {
        let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
        object["metadata"]["generation"] = json!(generation + 1);
    }
    if target.resource == "customresourcedefinitions" && state.establish_crds {
        object["status"] = json!({"conditions": [
            {"type": "NamesAccepted", "status": "True", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "message": "the initial names have been accepted"}]});
    }
    if !dry_run {
        state.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
        state.objects.insert(key.clone(), object.clone());
        state.applied.insert(key, managers);
    }
    ok(&object)
}

/// JSON merge patch (RFC 7386): maps merge, `null` deletes, everything else replaces.
fn merge_patch(into: &mut Value, patch: &Value) {
    match (into.as_object_mut(), patch.as_object()) {
        (Some(into), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    into.remove(key);
                } else if let Some(slot) = into
                    .get_mut(key)
                    .filter(|slot| slot.is_object() && value.is_object())
                {
                    merge_patch(slot, value);
                } else {
                    into.insert(key.clone(), value.clone());
                }
            }
        }
        _ => *into = patch.clone(),
    }
}

fn content_type(headers: &http::HeaderMap) -> &str {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Deep merge: maps merge, lists replace, except ownerReferences (merged by uid).
fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                if key == "ownerReferences"
                    && let (Some(Value::Array(existing)), Value::Array(new)) =
                        (into.get_mut(key), value)
                {
                    for reference in new {
                        existing.retain(|r| r["uid"] != reference["uid"]);
                        existing.push(reference.clone());
                    }
                    continue;
                }
                match into.get_mut(key) {
                    Some(slot) if slot.is_object() && value.is_object() => merge(slot, value),
                    _ => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (into, from) => *into = from.clone(),
    }
}

fn without_metadata_and_status(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

fn strip_admin_access(template: &mut Value) {
    if let Some(requests) = template["spec"]["spec"]["devices"]["requests"].as_array_mut() {
        for request in requests {
            if let Some(map) = request.as_object_mut() {
                map.remove("adminAccess");
            }
            if let Some(map) = request["exactly"].as_object_mut() {
                map.remove("adminAccess");
            }
        }
    }
}

/// What the real API server adds or rewrites on DaemonSets: defaults, and canonical quantities.
fn add_server_defaults(object: &mut Value, target: &Target) {
    if target.resource != "daemonsets" {
        return;
    }
    let spec = &mut object["spec"];
    spec["revisionHistoryLimit"] = json!(10);
    let pod = &mut spec["template"]["spec"];
    pod["dnsPolicy"] = json!("ClusterFirst");
    pod["restartPolicy"] = json!("Always");
    pod["schedulerName"] = json!("default-scheduler");
    if let Some(containers) = pod["containers"].as_array_mut() {
        for container in containers {
            container["terminationMessagePath"] = json!("/dev/termination-log");
            container["readinessProbe"]["successThreshold"] = json!(1);
            for env in container["env"].as_array_mut().into_iter().flatten() {
                if let Some(field_ref) = env["valueFrom"]["fieldRef"].as_object_mut() {
                    field_ref.insert("apiVersion".into(), json!("v1"));
                }
            }
            for section in ["limits", "requests"] {
                if let Some(quantities) = container["resources"][section].as_object_mut() {
                    for value in quantities.values_mut() {
                        if value == "1000m" {
                            *value = json!("1");
                        }
                        if value == "1024Mi" {
                            *value = json!("1Gi");
                        }
                    }
                }
            }
        }
    }
}

/// Deletes objects whose owners are all gone, like the garbage collector.
fn collect_garbage(state: &mut State) {
    loop {
        let uids: Vec<String> = state
            .objects
            .values()
            .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_owned))
            .collect();
        let orphans: Vec<Key> = state
            .objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| {
                        !refs.is_empty()
                            && refs
                                .iter()
                                .all(|r| !uids.iter().any(|u| r["uid"] == u.as_str()))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect();
        if orphans.is_empty() {
            return;
        }
        for key in orphans {
            state.objects.remove(&key);
            state.applied.remove(&key);
        }
    }
}

struct Target {
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Target {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest): (String, &[&str]) = match segments.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group] => {
            return Target {
                group: (*group).to_owned(),
                resource: String::new(),
                namespace: None,
                name: None,
                subresource: None,
            };
        }
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest),
        _ => (String::new(), &[]),
    };
    let owned = |s: &&str| (*s).to_owned();
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some((*ns).to_owned()), tail),
        _ => (None, rest),
    };
    Target {
        group,
        resource: rest.first().map(owned).unwrap_or_default(),
        namespace,
        name: rest.get(1).map(owned),
        subresource: rest.get(2).map(owned),
    }
}

fn discovery(state: &State, group: &str) -> Response<Full<Bytes>> {
    match state.served.get(group) {
        Some(versions) => {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            ok(
                &json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
                "preferredVersion": versions[0]}),
            )
        }
        None => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

fn key_of(object: &Value) -> Key {
    let api_version = object["apiVersion"]
        .as_str()
        .expect("object has apiVersion");
    let group = api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default();
    let kind = object["kind"].as_str().expect("object has kind");
    let resource = match kind {
        "Node" => "nodes",
        "Namespace" => "namespaces",
        "Pod" => "pods",
        "Event" => "events",
        "ServiceAccount" => "serviceaccounts",
        "DaemonSet" => "daemonsets",
        "RuntimeClass" => "runtimeclasses",
        "DeviceClass" => "deviceclasses",
        "ResourceClaimTemplate" => "resourceclaimtemplates",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "GpuDiagnosticsConfig" => "gpudiagnosticsconfigs",
        "CustomResourceDefinition" => "customresourcedefinitions",
        "Lease" => "leases",
        other => panic!("the fake does not know kind {other}"),
    };
    (
        group.to_owned(),
        resource.to_owned(),
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        object["metadata"]["name"]
            .as_str()
            .expect("object has a name")
            .to_owned(),
    )
}

fn matches_labels(object: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        object["metadata"]["labels"][key] == value
    })
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ok(value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(serde_json::to_vec(value).unwrap())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn status(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let mut response = ok(
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code}),
    );
    *response.status_mut() = StatusCode::from_u16(code).unwrap();
    response
}

fn not_found(target: &Target) -> Response<Full<Bytes>> {
    status(
        404,
        "NotFound",
        &format!(
            "{} \"{}\" not found",
            target.resource,
            target.name.clone().unwrap_or_default()
        ),
    )
}
