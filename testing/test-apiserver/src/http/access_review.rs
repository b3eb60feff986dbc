//! `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: answers "may I?" as the exec rules
//! decide (a client checks `create pods/exec` before it execs), and "yes" for everything else, since
//! this server authorizes every other request.

use serde_json::{Value, json};

use super::Outcome;
use super::route::ResourcePath;
use crate::error::ApiError;
use crate::exec::AccessQuestion;
use crate::server::Shared;

/// Whether a request creates a SelfSubjectAccessReview.
pub fn is_review(method: &http::Method, path: &ResourcePath) -> bool {
    *method == http::Method::POST
        && path.group == "authorization.k8s.io"
        && path.resource == "selfsubjectaccessreviews"
        && path.name.is_none()
}

/// The review with its `status`.
pub fn answer(
    shared: &Shared,
    version: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Outcome, ApiError> {
    let mut review: Value = if crate::protobuf::is_protobuf(content_type) {
        crate::protobuf::decode(body)?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the SelfSubjectAccessReview is not valid JSON: {e}"
            ))
        })?
    };
    let attributes = &review["spec"]["resourceAttributes"];
    let text = |field: &str| attributes[field].as_str().unwrap_or_default();
    let allowed = attributes.is_null()
        || shared
            .exec
            .lock()
            .expect("exec rules lock")
            .allows(&AccessQuestion {
                namespace: Some(text("namespace")).filter(|n| !n.is_empty()),
                verb: text("verb"),
                group: text("group"),
                resource: text("resource"),
                subresource: text("subresource"),
                name: Some(text("name")).filter(|n| !n.is_empty()),
            });
    review["apiVersion"] = json!(format!("authorization.k8s.io/{version}"));
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({});
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "the test API server allows every request its exec rules do not forbid"})
    } else {
        json!({"allowed": false})
    };
    Ok(Outcome::json(201, review))
}
