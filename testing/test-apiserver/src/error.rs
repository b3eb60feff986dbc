//! Errors: [`ApiError`] is what the server answers over HTTP (a `kind: Status` body, so kube-rs,
//! kubectl and helm print the message they would print against a real cluster); [`Error`] is what
//! the Rust API of the test server returns to a test.

use serde_json::{Value, json};

/// The `reason` of a Kubernetes `Status`: clients branch on it (`kube::Error::Api(e) if e.reason == "Conflict"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusReason {
    /// 400: the request body or parameters cannot be used.
    BadRequest,
    /// 403: the request is refused (e.g. new content in a terminating namespace).
    Forbidden,
    /// 404: the object or the resource does not exist.
    NotFound,
    /// 405: the resource does not support this verb.
    MethodNotAllowed,
    /// 406: no representation the client accepts.
    NotAcceptable,
    /// 409: create of an existing name.
    AlreadyExists,
    /// 409: resourceVersion precondition or server-side-apply field conflict.
    Conflict,
    /// 410: watch or list from a resourceVersion the server no longer keeps.
    Expired,
    /// 415: unsupported patch or body content type.
    UnsupportedMediaType,
    /// 422: the object fails validation.
    Invalid,
    /// 429: throttled; carries `Retry-After`.
    TooManyRequests,
    /// 500: server failure (injected faults use it).
    InternalError,
    /// 503: server unavailable.
    ServiceUnavailable,
}

impl StatusReason {
    /// The wire spelling of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequest",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotAcceptable => "NotAcceptable",
            Self::AlreadyExists => "AlreadyExists",
            Self::Conflict => "Conflict",
            Self::Expired => "Expired",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::Invalid => "Invalid",
            Self::TooManyRequests => "TooManyRequests",
            Self::InternalError => "InternalError",
            Self::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The HTTP status code the real API server pairs with the reason.
    pub fn default_code(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::NotAcceptable => 406,
            Self::AlreadyExists | Self::Conflict => 409,
            Self::Expired => 410,
            Self::UnsupportedMediaType => 415,
            Self::Invalid => 422,
            Self::TooManyRequests => 429,
            Self::InternalError => 500,
            Self::ServiceUnavailable => 503,
        }
    }

    /// The reason a bare status code maps to (used by fault injection with a chosen code).
    pub fn from_code(code: u16) -> Self {
        match code {
            400 => Self::BadRequest,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            406 => Self::NotAcceptable,
            409 => Self::Conflict,
            410 => Self::Expired,
            415 => Self::UnsupportedMediaType,
            422 => Self::Invalid,
            429 => Self::TooManyRequests,
            503 => Self::ServiceUnavailable,
            _ => Self::InternalError,
        }
    }
}

/// A failed API request, rendered as a Kubernetes `Status` object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {}: {message}", reason.as_str())]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason.
    pub reason: StatusReason,
    /// Human-readable message, worded like the real API server's.
    pub message: String,
    /// `details` of the Status (name, group, kind, causes), if any.
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header and `details.retryAfterSeconds` (429 faults).
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    /// An error with the reason's usual code.
    pub fn new(reason: StatusReason, message: impl Into<String>) -> Self {
        Self {
            code: reason.default_code(),
            reason,
            message: message.into(),
            details: None,
            retry_after_seconds: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusReason::BadRequest, message)
    }

    /// 404 for an object: `deployments.apps "x" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            StatusReason::NotFound,
            format!("{} \"{name}\" not found", qualified(group, resource)),
        )
        .with_details(name, group, resource)
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            StatusReason::NotFound,
            "the server could not find the requested resource",
        )
    }

    /// 409 AlreadyExists: `deployments.apps "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            StatusReason::AlreadyExists,
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        )
        .with_details(name, group, resource)
    }

    /// 409 Conflict on a stale resourceVersion, worded like the real server.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            StatusReason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                qualified(group, resource)
            ),
        )
        .with_details(name, group, resource)
    }

    /// 422 Invalid: `Kind.group "name" is invalid: <field>: <problem>`.
    pub fn invalid(group: &str, kind: &str, name: &str, field: &str, problem: &str) -> Self {
        let message = format!(
            "{} \"{name}\" is invalid: {field}: {problem}",
            qualified(group, kind)
        );
        let mut error = Self::new(StatusReason::Invalid, message);
        error.details = Some(json!({
            "name": name, "group": group, "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": problem, "field": field}],
        }));
        error
    }

    /// 422 Invalid with several causes: `Kind.group "name" is invalid: [a: x, b: y]`.
    pub fn invalid_fields(
        group: &str,
        kind: &str,
        name: &str,
        violations: &[(String, String)],
    ) -> Self {
        let listed: Vec<String> = violations
            .iter()
            .map(|(field, problem)| format!("{field}: {problem}"))
            .collect();
        let summary = match listed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut error = Self::new(
            StatusReason::Invalid,
            format!(
                "{} \"{name}\" is invalid: {summary}",
                qualified(group, kind)
            ),
        );
        let causes: Vec<Value> = violations
            .iter()
            .map(|(field, problem)| json!({"reason": "FieldValueInvalid", "message": problem, "field": field}))
            .collect();
        error.details = Some(json!({"name": name, "group": group, "kind": kind, "causes": causes}));
        error
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusReason::MethodNotAllowed, message)
    }

    /// 500 with the given message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusReason::InternalError, message)
    }

    fn with_details(mut self, name: &str, group: &str, resource: &str) -> Self {
        self.details = Some(json!({"name": name, "group": group, "kind": resource}));
        self
    }

    /// The `kind: Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code,
        });
        let mut details = self.details.clone();
        if let Some(seconds) = self.retry_after_seconds {
            let details = details.get_or_insert_with(|| json!({}));
            details["retryAfterSeconds"] = json!(seconds);
        }
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

/// `resource.group`, or `resource` for the core group: how Kubernetes names a resource in messages.
pub(crate) fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// What the Rust API of the test server can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operation was refused exactly as the HTTP API would refuse it.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The listener could not be bound.
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source} (pick another port or pass 0 for a free one)"
    )]
    Bind {
        /// The requested port (0 = any free port).
        port: u16,
        /// The socket error.
        source: std::io::Error,
    },
    /// The kubeconfig file could not be written.
    #[error(
        "cannot write the kubeconfig to {path}: {source} (check that the folder exists and is writable)"
    )]
    Kubeconfig {
        /// Where it was written to.
        path: std::path::PathBuf,
        /// The file-system error.
        source: std::io::Error,
    },
    /// A typed object could not be turned into JSON or back.
    #[error("cannot convert {what} to or from JSON: {source}")]
    Json {
        /// What was converted.
        what: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// A seed file could not be read or parsed.
    #[error("cannot load seed objects from {path}: {message}")]
    Seed {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The server thread could not be started.
    #[error("cannot start the test API server's runtime: {0}")]
    Runtime(std::io::Error),
    /// Exec rules that cannot work.
    #[error("invalid exec rules: {message}")]
    ExecRules {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A wait for a condition on the server's state ran out of time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What the test waited for.
        what: String,
        /// How long it waited.
        timeout: std::time::Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_the_real_server() {
        let status = ApiError::not_found("apps", "daemonsets", "agent").to_status();
        assert_eq!(status["message"], "daemonsets.apps \"agent\" not found");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(status["details"]["kind"], "daemonsets");
    }

    #[test]
    fn core_group_names_are_not_qualified() {
        let error = ApiError::already_exists("", "pods", "p");
        assert_eq!(error.message, "pods \"p\" already exists");
        assert_eq!(error.code, 409);
    }

    #[test]
    fn retry_after_lands_in_details() {
        let mut error = ApiError::new(StatusReason::TooManyRequests, "slow down");
        error.retry_after_seconds = Some(2);
        assert_eq!(error.to_status()["details"]["retryAfterSeconds"], 2);
        assert_eq!(error.to_status()["code"], 429);
    }
}
