//! The operator library's error type: every failure says what was attempted and, where the
//! API server refused, what usually fixes it.

use crate::render::RenderError;

/// Failures of the operator library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("{action} failed: {source}{hint}", hint = hint(source))]
    Kube {
        /// What was attempted (`GET apps/v1 daemonsets gpu-diagnostics/k8s-mcp-agent-default`).
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The API server answered with an object the operator cannot read.
    #[error("{action}: unexpected response: {source}")]
    Decode {
        /// What was attempted.
        action: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// Objects could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The CRD did not become usable.
    #[error(
        "CustomResourceDefinition {name} is not Established after {waited_s}s ({detail}); check \
         `kubectl describe crd {name}`"
    )]
    CrdNotEstablished {
        /// CRD name.
        name: String,
        /// Seconds waited.
        waited_s: u64,
        /// The CRD's last condition message.
        detail: String,
    },
    /// Reconciles wait for the Node watch's first listing, and it did not arrive.
    #[error(transparent)]
    NodesNotSynced(#[from] crate::nodes::NodesNotSynced),
    /// Leader election failed.
    #[error("leader election on Lease {lease}: {source}")]
    Lease {
        /// `namespace/name` of the Lease.
        lease: String,
        /// The lease manager's error.
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
}

impl Error {
    /// Wraps a client error with the action that failed.
    pub fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }

    /// A short, stable label for the `errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { source, .. } => match status_code(source) {
                Some(403) => "forbidden",
                Some(404) => "not_found",
                Some(409) => "conflict",
                Some(422) => "invalid",
                Some(429) => "throttled",
                Some(code) if code >= 500 => "server_error",
                Some(_) => "api_error",
                None => "connection",
            },
            Error::Decode { .. } => "decode",
            Error::Render(_) => "render",
            Error::CrdNotEstablished { .. } => "crd_not_established",
            Error::NodesNotSynced(_) => "nodes_not_synced",
            Error::Lease { .. } => "lease",
        }
    }
}

/// The HTTP status of an API error response.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn hint(error: &kube::Error) -> &'static str {
    match status_code(error) {
        Some(401) => {
            " (the operator's credentials were rejected: check its ServiceAccount token or KUBECONFIG)"
        }
        Some(403) => {
            " (the operator's ClusterRole lacks this permission: compare it with operator::rbac::RBAC_RULES, \
             which the Helm chart's ClusterRole is generated from)"
        }
        _ => "",
    }
}

/// Result with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line, each cause once: a cause whose text an outer message
/// already quotes (thiserror's `{source}`, kube's own nesting) is left out, so `a: b` never prints
/// as `a: b: b`.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod one_line_tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct E {
        text: String,
        #[source]
        inner: Option<Box<E>>,
    }

    fn chain(texts: &[&str]) -> E {
        texts
            .iter()
            .rev()
            .fold(None, |inner, text| {
                Some(E {
                    text: (*text).to_owned(),
                    inner: inner.map(Box::new),
                })
            })
            .unwrap()
    }

    #[test]
    fn quoted_causes_are_left_out_and_new_ones_appended() {
        let e = chain(&[
            "no config: cannot read /x: ENOENT",
            "cannot read /x: ENOENT",
            "ENOENT",
        ]);
        assert_eq!(one_line(&e), "no config: cannot read /x: ENOENT");
        let e = chain(&["no config", "cannot read /x", "ENOENT"]);
        assert_eq!(one_line(&e), "no config: cannot read /x: ENOENT");
    }
}
