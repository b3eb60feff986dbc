//! The fleet's edge to Kubernetes as a small trait: read the cluster into a `ClusterView`, ask
//! whether exec is allowed, and exec the node agent in a pod. `kube.rs` implements it over kube-rs;
//! tests implement it in memory.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncBufRead, AsyncWrite};

use super::errors::{ApiError, NodeError};
use super::model::{ClusterView, ExecAccess, PodRef};

/// Which configs and namespace the fleet serves (`--config`, `--namespace`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this GpuDiagnosticsConfig; every config when `None`.
    pub config: Option<String>,
    /// The agent namespace, instead of each config's `spec.namespace.name`.
    pub namespace: Option<String>,
}

/// A running `/agent` process in an agent pod: its stdin and stdout, and a future that resolves with
/// its exit status once it ended (it also keeps the exec connection alive until then). stdout is
/// buffered by the stream itself, so a session adds no buffer of its own.
pub struct ExecStream {
    pub stdin: Pin<Box<dyn AsyncWrite + Send>>,
    pub stdout: Pin<Box<dyn AsyncBufRead + Send>>,
    pub finished: Pin<Box<dyn Future<Output = Option<String>> + Send>>,
}

/// What the fleet needs from a Kubernetes API server.
pub trait Cluster: Send + Sync + 'static {
    /// Configs, nodes, agent pods and GPU ResourceSlices, read once.
    fn view(&self, scope: &Scope) -> impl Future<Output = Result<ClusterView, ApiError>> + Send;
    /// Names of the nodes matching a label selector (evaluated by the API server).
    fn nodes_matching(
        &self,
        selector: &str,
    ) -> impl Future<Output = Result<BTreeSet<String>, ApiError>> + Send;
    /// Whether this user may `create pods/exec` in `namespace` (SelfSubjectAccessReview).
    fn exec_access(&self, namespace: &str) -> impl Future<Output = ExecAccess> + Send;
    /// Starts `/agent` in container `agent` of `pod`, stdin and stdout attached, no TTY.
    fn exec(&self, pod: &PodRef) -> impl Future<Output = Result<ExecStream, NodeError>> + Send;
}
