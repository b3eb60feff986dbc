//! Request handlers: discovery documents and the resource verbs, each answered from the engine under
//! the state lock (watches only take their starting point here and stream elsewhere).

use http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::params::Params;
use super::route::{ResourcePath, Route};
use super::watch::WatchPlan;
use super::{Outcome, openapi_not_served};
use crate::engine::{DeleteOptions, ListQuery, Propagation, State, Target, WriteOptions};
use crate::error::{ApiError, StatusReason};
use crate::patch::PatchType;
use crate::request::RequestInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::table::{self, IncludeObject};
use crate::{discovery, openapi, protobuf};

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Answers one request.
pub fn dispatch(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    route: Option<Route>,
    info: &RequestInfo,
    params: &Params,
    body: &[u8],
) -> Result<Outcome, ApiError> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let route = route.ok_or_else(ApiError::no_route)?;
    if !matches!(route, Route::Resource(_)) && *method != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on discovery paths"
        )));
    }
    let state = shared.state.lock().expect("state lock");
    let document = |body: Value| Ok(Outcome::json(200, body));
    match route {
        Route::Version => document(discovery::version(&shared.git_version())),
        Route::Health => document(json!("ok")),
        Route::CoreVersions if aggregated => Ok(aggregated_document(discovery::aggregated(
            &state.catalog,
            true,
        ))),
        Route::CoreVersions => document(discovery::core_versions(&shared.address.to_string())),
        Route::Groups if aggregated => Ok(aggregated_document(discovery::aggregated(
            &state.catalog,
            false,
        ))),
        Route::Groups => document(discovery::group_list(&state.catalog)),
        Route::Group(group) => discovery::group(&state.catalog, &group)
            .map(|d| Outcome::json(200, d))
            .ok_or_else(ApiError::no_route),
        Route::GroupVersion(group, version) => {
            discovery::resource_list(&state.catalog, &group, &version)
                .map(|d| Outcome::json(200, d))
                .ok_or_else(ApiError::no_route)
        }
        Route::OpenApiV2 => Err(openapi_not_served()),
        Route::OpenApiV3Index => document(openapi::index(&state.catalog, &shared.git_version())),
        Route::OpenApiV3(group, version) => {
            openapi::document(&state.catalog, &group, &version, &shared.git_version())
                .map(|d| Outcome::json(200, d))
                .ok_or_else(ApiError::no_route)
        }
        Route::Resource(path) => {
            drop(state);
            resource(shared, method, accept, &path, info, params, headers, body)
        }
    }
}

fn aggregated_document(body: Value) -> Outcome {
    Outcome::Document {
        status: 200,
        body,
        content_type: AGGREGATED,
        changed: false,
        warnings: Vec::new(),
        retry_after: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn resource(
    shared: &Shared,
    method: &Method,
    accept: &str,
    path: &ResourcePath,
    info: &RequestInfo,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Outcome, ApiError> {
    let status = match path.subresource.as_deref() {
        None => false,
        Some("status") => true,
        Some(_) => return Err(ApiError::no_route()),
    };
    let mut state = shared.state.lock().expect("state lock");
    let target = state.target(
        &path.group,
        &path.version,
        &path.resource,
        path.namespace.as_deref(),
        path.name.as_deref(),
        status,
    )?;
    if !target.resource.namespaced && path.namespace.is_some() {
        return Err(ApiError::no_route());
    }
    let table = accept.contains("as=Table");
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let protobuf = protobuf::is_protobuf(content_type);
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match (method.as_str(), path.name.is_some()) {
        ("GET", false) if params.flag("watch") => watch(&state, target, params, info),
        ("GET", false) => {
            let query = list_query(params)?;
            let list = state.list(&target, &query)?;
            if table {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let include = IncludeObject::parse(params.get("includeObject"));
                return Ok(table_document(table::table(
                    &target,
                    &items,
                    list["metadata"].clone(),
                    include,
                    jiff::Timestamp::now(),
                )));
            }
            Ok(Outcome::json(200, list))
        }
        ("GET", true) => {
            let object = state.get(&target)?;
            if table {
                let metadata = json!({"resourceVersion": object.pointer("/metadata/resourceVersion").cloned().unwrap_or_default()});
                let include = IncludeObject::parse(params.get("includeObject"));
                return Ok(table_document(table::table(
                    &target,
                    &[object],
                    metadata,
                    include,
                    jiff::Timestamp::now(),
                )));
            }
            Ok(Outcome::json(200, object))
        }
        ("POST", false) => {
            if target.resource.namespaced && target.namespace.is_none() {
                return Err(ApiError::method_not_allowed(format!(
                    "create {} needs a namespace in the path (/namespaces/<ns>/{})",
                    target.resource.plural, target.resource.plural
                )));
            }
            let written = state.create(
                &target,
                parse_body(body, false, protobuf)?,
                &write_options(params, user_agent),
            )?;
            Ok(written_document(
                if written.created { 201 } else { 200 },
                written,
            ))
        }
        ("PUT", true) => {
            let written = state.update(
                &target,
                parse_body(body, false, protobuf)?,
                &write_options(params, user_agent),
            )?;
            Ok(written_document(200, written))
        }
        ("PATCH", true) => {
            let patch_type = info.patch_type.ok_or_else(|| {
                let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
                ApiError::new(
                    StatusReason::UnsupportedMediaType,
                    format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"),
                )
            })?;
            let written = state.patch(
                &target,
                patch_type,
                parse_body(body, patch_type == PatchType::Apply, protobuf)?,
                &write_options(params, user_agent),
            )?;
            Ok(written_document(
                if written.created { 201 } else { 200 },
                written,
            ))
        }
        ("DELETE", true) => {
            let options = delete_options(params, body, protobuf)?;
            let deleted = state.delete(&target, &options)?;
            let gone = state.get(&target).is_err();
            Ok(Outcome::Document {
                status: if gone || options.dry_run { 200 } else { 202 },
                body: deleted,
                content_type: "application/json",
                changed: !options.dry_run,
                warnings: Vec::new(),
                retry_after: None,
            })
        }
        ("DELETE", false) => delete_collection(&mut state, &target, params, body, protobuf),
        _ => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {}",
            path_description(path)
        ))),
    }
}

fn path_description(path: &ResourcePath) -> String {
    match &path.name {
        Some(name) => format!("{} \"{name}\"", path.resource),
        None => format!("the {} collection", path.resource),
    }
}

fn table_document(body: Value) -> Outcome {
    Outcome::Document {
        status: 200,
        body,
        content_type: TABLE,
        changed: false,
        warnings: Vec::new(),
        retry_after: None,
    }
}

fn written_document(status: u16, written: crate::engine::Written) -> Outcome {
    Outcome::Document {
        status,
        body: written.object,
        content_type: "application/json",
        changed: written.changed,
        warnings: written.warnings,
        retry_after: None,
    }
}

fn watch(
    state: &State,
    target: Target,
    params: &Params,
    info: &RequestInfo,
) -> Result<Outcome, ApiError> {
    let query = list_query(params)?;
    let bookmarks = params.flag("allowWatchBookmarks");
    let send_initial_events = params.flag("sendInitialEvents");
    if send_initial_events && !bookmarks {
        return Err(ApiError::new(
            StatusReason::Invalid,
            "ListOptions.meta.k8s.io \"\" is invalid: allowWatchBookmarks: Required value: sendInitialEvents requires setting allowWatchBookmarks to true",
        ));
    }
    let timeout = params
        .number("timeoutSeconds")?
        .map(std::time::Duration::from_secs);
    let (start, receiver) = state.start_watch(
        &target,
        &query,
        params.get("resourceVersion"),
        send_initial_events,
    )?;
    Ok(Outcome::Watch(Box::new(WatchPlan {
        target,
        query,
        start,
        receiver,
        bookmarks,
        timeout,
        info: info.clone(),
    })))
}

fn list_query(params: &Params) -> Result<ListQuery, ApiError> {
    Ok(ListQuery {
        labels: LabelSelector::parse(params.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(params.get("fieldSelector").unwrap_or_default())?,
        limit: params.number("limit")?.unwrap_or(0) as usize,
        continue_token: params
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(String::from),
    })
}

fn write_options(params: &Params, user_agent: &str) -> WriteOptions {
    WriteOptions {
        field_manager: params.get("fieldManager").map(String::from),
        default_manager: user_agent
            .split('/')
            .next()
            .filter(|m| !m.is_empty())
            .unwrap_or("unknown")
            .to_string(),
        force: params.flag("force"),
        dry_run: params.get("dryRun").is_some_and(|d| !d.is_empty()),
        strict_fields: params.get("fieldValidation") == Some("Strict"),
        direct: false,
    }
}

/// Parses a JSON body; YAML too when `yaml` (server-side apply); protobuf from typed client-go clients.
/// An empty body is an empty object.
fn parse_body(body: &[u8], yaml: bool, protobuf: bool) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    if protobuf {
        return protobuf::decode(body);
    }
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(_) if yaml => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}"))),
        Err(json_error) => Err(ApiError::bad_request(format!(
            "couldn't decode the request body as JSON: {json_error}"
        ))),
    }
}

fn delete_options(params: &Params, body: &[u8], protobuf: bool) -> Result<DeleteOptions, ApiError> {
    let body = parse_body(body, false, protobuf)?;
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(params.get("propagationPolicy"));
    let orphan = body
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or_else(|| params.get("orphanDependents").map(|v| v == "true"));
    let propagation = match (policy, orphan) {
        (Some(policy), _) => Some(Propagation::parse(policy)?),
        (None, Some(true)) => Some(Propagation::Orphan),
        (None, Some(false)) => Some(Propagation::Background),
        (None, None) => None,
    };
    let precondition = |field: &str| {
        body.pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let dry_run = params.get("dryRun").is_some_and(|d| !d.is_empty())
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
    Ok(DeleteOptions {
        propagation,
        precondition_uid: precondition("uid"),
        precondition_resource_version: precondition("resourceVersion"),
        dry_run,
    })
}

fn delete_collection(
    state: &mut State,
    target: &Target,
    params: &Params,
    body: &[u8],
    protobuf: bool,
) -> Result<Outcome, ApiError> {
    let query = list_query(params)?;
    let options = delete_options(params, body, protobuf)?;
    let mut deleted = Vec::new();
    for object in state.select(target, &query) {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from);
        let one = Target {
            name: Some(name),
            namespace: namespace.or(target.namespace.clone()),
            ..target.clone()
        };
        deleted.push(state.delete(&one, &options)?);
    }
    let body = json!({
        "apiVersion": target.api_version(),
        "kind": target.resource.list_kind,
        "metadata": {"resourceVersion": state.store.resource_version().to_string()},
        "items": deleted,
    });
    Ok(Outcome::Document {
        status: 200,
        body,
        content_type: "application/json",
        changed: !options.dry_run,
        warnings: Vec::new(),
        retry_after: None,
    })
}
