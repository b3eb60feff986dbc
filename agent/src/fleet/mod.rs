//! `agent fleet`: one MCP server on the user's machine for every GPU node of a cluster. It reads the
//! cluster through the Kubernetes API with the user's kubeconfig and reaches each node agent by
//! running `/agent` in its pod over `pods/exec`, as an MCP client of that agent.
//!
//! Flow per call: `Cluster::view` (configs, nodes, agent pods) → pure `discover` (GPU nodes, targets)
//! → `session::Pool` (one reused MCP session per node, in parallel, per-node deadline) → pure
//! `aggregate` (worst first, counts) → typed result. [`Fleet`] is the library API a CLI can call
//! without MCP; `server` puts it behind MCP tools; `args` holds the command line.

pub mod aggregate;
pub mod args;
pub mod cluster;
pub mod discover;
pub mod errors;
pub mod exec;
pub mod kube;
pub mod model;
pub mod server;
pub mod session;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

pub use args::{FleetArgs, FleetCommand, run};
pub use cluster::{Cluster, ExecStream, Scope};
pub use errors::{ApiError, NodeError};
pub use model::*;

use aggregate::NodeAnswer;
use session::Pool;

/// How the fleet fans out.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Which configs and namespace to serve.
    pub scope: Scope,
    /// Nodes called at once.
    pub concurrency: usize,
    /// Longest one node may take to answer one call (opening its session included).
    pub node_timeout: Duration,
    /// Close a node's session after this long without calls.
    pub session_idle: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            scope: Scope::default(),
            concurrency: 16,
            node_timeout: Duration::from_secs(20),
            session_idle: Duration::from_secs(120),
        }
    }
}

/// Where a fan-out stands, for a progress display: called once with the number of nodes to ask, then
/// once per node as it answers (or fails to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress<'a> {
    /// The nodes about to be asked.
    Asking { total: usize },
    /// One node is done; `done` of `total` are.
    Answered {
        node: &'a str,
        ok: bool,
        done: usize,
        total: usize,
    },
}

/// Receives [`Progress`] while the fleet waits for its nodes.
pub type ProgressFn = Arc<dyn Fn(Progress<'_>) + Send + Sync>;

/// The fleet: a cluster, its node sessions and the answers' aggregation. Its methods return the
/// tools' typed results; `Err` only when the API server cannot be used at all.
pub struct Fleet<C> {
    cluster: Arc<C>,
    pool: Arc<Pool<C>>,
    opts: FleetOptions,
    access: tokio::sync::Mutex<std::collections::BTreeMap<String, ExecAccess>>,
    progress: Option<ProgressFn>,
}

impl<C: Cluster> Fleet<C> {
    /// A fleet over `cluster`; no session is opened until a call needs it.
    pub fn new(cluster: C, opts: FleetOptions) -> Fleet<C> {
        let cluster = Arc::new(cluster);
        Fleet {
            pool: Arc::new(Pool::new(cluster.clone(), opts.session_idle)),
            cluster,
            opts,
            access: tokio::sync::Mutex::default(),
            progress: None,
        }
    }

    /// Reports each fan-out's progress to `progress` (the command line's stderr display).
    pub fn with_progress(mut self, progress: ProgressFn) -> Fleet<C> {
        self.progress = Some(progress);
        self
    }

    /// Closes idle node sessions until the process ends (spawn it next to the server).
    pub fn reaper(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.pool.clone().reap_idle()
    }

    /// Node sessions currently open.
    pub fn open_sessions(&self) -> usize {
        self.pool.open_sessions()
    }

    /// Closes every node session: each node agent sees EOF on stdin and exits 0.
    pub async fn shutdown(&self) {
        self.pool.close_all().await;
    }

    async fn selected(&self, selector: Option<&str>) -> Result<Option<BTreeSet<String>>, ApiError> {
        match selector.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => self.cluster.nodes_matching(s).await.map(Some),
            None => Ok(None),
        }
    }

    /// Whether this user may exec into agent pods, per namespace (asked once per namespace).
    pub async fn exec_access(&self, namespaces: &[String]) -> Vec<ExecAccess> {
        let mut known = self.access.lock().await;
        let mut out = Vec::with_capacity(namespaces.len());
        for ns in namespaces {
            if !known.contains_key(ns) {
                let answer = self.cluster.exec_access(ns).await;
                known.insert(ns.clone(), answer);
            }
            out.extend(known.get(ns).cloned());
        }
        out
    }

    /// `list_gpu_nodes`: every node with GPUs or an agent pod, from the API server only.
    pub async fn list_gpu_nodes(&self, args: ListNodesArgs) -> Result<NodeList, ApiError> {
        let only = self.selected(args.selector.as_deref()).await?;
        let view = self.cluster.view(&self.opts.scope).await?;
        Ok(NodeList {
            exec_access: self.exec_access(&view.namespaces).await,
            nodes: discover::gpu_nodes(&view, only.as_ref()),
            notes: view.notes,
        })
    }

    /// Runs `tool` on every selected node in parallel, each bounded by the node timeout.
    async fn fan_out(
        &self,
        nodes: Option<&[String]>,
        selector: Option<&str>,
        tool: &str,
        tool_args: Value,
    ) -> Result<Vec<NodeAnswer>, ApiError> {
        let only = self.selected(selector).await?;
        let view = self.cluster.view(&self.opts.scope).await?;
        let targets = discover::select_targets(&view, nodes, only.as_ref());
        let timeout = self.opts.node_timeout;
        let total = targets.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        if let Some(progress) = &self.progress {
            progress(Progress::Asking { total });
        }
        let answers = futures::stream::iter(targets)
            .map(|target| {
                let tool_args = &tool_args;
                let done = &done;
                async move {
                    let answer = match target.reach {
                        Err(e) => Err(e),
                        Ok(pod) => tokio::time::timeout(
                            timeout,
                            self.pool.call(&target.node, &pod, tool, tool_args),
                        )
                        .await
                        .unwrap_or(Err(NodeError::Timeout(timeout))),
                    };
                    if let Some(progress) = &self.progress {
                        let count = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        progress(Progress::Answered {
                            node: &target.node,
                            ok: answer.is_ok(),
                            done: count,
                            total,
                        });
                    }
                    (target.node, answer)
                }
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        Ok(answers)
    }

    /// `get_fleet_gpu_health`: `get_gpu_health` on every selected node, worst first.
    pub async fn fleet_health(&self, args: FleetHealthArgs) -> Result<FleetHealth, ApiError> {
        let mut tool_args = serde_json::Map::new();
        if let Some(w) = args.window_seconds {
            tool_args.insert("window_seconds".into(), w.into());
        }
        let answers = self
            .fan_out(
                args.nodes.as_deref(),
                args.selector.as_deref(),
                "get_gpu_health",
                Value::Object(tool_args),
            )
            .await?;
        let health = aggregate::fleet_health(answers);
        release_freed_memory();
        Ok(health)
    }

    /// `get_fleet_xid_errors`: `analyze_xid_errors` on every selected node, worst first.
    pub async fn fleet_xid(&self, args: FleetXidArgs) -> Result<FleetXid, ApiError> {
        let mut tool_args = serde_json::Map::new();
        if let Some(s) = args.since_seconds {
            tool_args.insert("since_seconds".into(), s.into());
        }
        let answers = self
            .fan_out(
                args.nodes.as_deref(),
                args.selector.as_deref(),
                "analyze_xid_errors",
                Value::Object(tool_args),
            )
            .await?;
        let xid = aggregate::fleet_xid(answers);
        release_freed_memory();
        Ok(xid)
    }

    /// One node tool on one node, arguments forwarded unchanged: the node agent's
    /// `structuredContent` with `node_name` set to the node, or why the node did not answer.
    pub async fn forward(
        &self,
        node: &str,
        tool: &str,
        tool_args: Value,
    ) -> Result<Result<Value, NodeError>, ApiError> {
        let nodes = [node.to_owned()];
        let mut answers = self.fan_out(Some(&nodes), None, tool, tool_args).await?;
        let Some((_, answer)) = answers.pop() else {
            return Ok(Err(NodeError::UnknownNode {
                node: node.to_owned(),
            }));
        };
        Ok(answer.map(|mut value| {
            if let Value::Object(obj) = &mut value {
                obj.insert("node_name".into(), Value::String(node.to_owned()));
            }
            value
        }))
    }
}

/// Returns the heap's free pages to the kernel after a fleet-wide call. Reading hundreds of pods and
/// node answers frees megabytes between the sessions' long-lived allocations; glibc keeps such pages
/// resident unless asked, so a fleet holding hundreds of sessions would carry its largest call's
/// footprint for its whole life.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only gives unused pages of the heap back to the kernel; every live
    // allocation stays where it is.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests;
