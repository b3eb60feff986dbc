//! `agent fleet`'s command line, and its MCP server on stdio (the default when no fleet subcommand
//! is given).

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::cluster::Scope;
use super::kube::{KubeCluster, KubeSettings};
use super::server::FleetServer;
use super::{Fleet, FleetOptions};
use crate::cli::fleet::FleetReport;
use crate::server::protocol::serve_stdio;
use crate::server::transport::TransportLimits;

/// One MCP server for every GPU node of a cluster, run on your machine: it reaches each node's agent
/// through the Kubernetes API (`pods/exec`) with your kubeconfig and your permissions.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = false)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: Option<FleetCommand>,

    /// The kubeconfig file; default: $KUBECONFIG, else ~/.kube/config, else the in-cluster service
    /// account.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context; default: its current context.
    #[arg(long, global = true)]
    pub context: Option<String>,

    /// Only the agent pods of this GpuDiagnosticsConfig; default: every config.
    #[arg(long, global = true)]
    pub config: Option<String>,

    /// The namespace of the agent pods, instead of each config's `spec.namespace.name` (also for a
    /// cluster without GpuDiagnosticsConfigs).
    #[arg(long, global = true)]
    pub namespace: Option<String>,

    /// Nodes asked at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024), global = true)]
    pub concurrency: u32,

    /// Longest one node may take to answer (`20s`, `1500ms`, `2m`; a bare number is seconds).
    #[arg(long, default_value = "20s", value_parser = parse_duration, global = true)]
    pub node_timeout: Duration,

    /// Close a node's session after this long without calls.
    #[arg(long, default_value = "120s", value_parser = parse_duration, global = true, hide = true)]
    pub session_idle: Duration,
}

/// What `agent fleet` does; without a subcommand it serves MCP on stdio. A command-line subcommand
/// calls [`connect`] and then `Fleet::{list_gpu_nodes, fleet_health, fleet_xid}`, which return the
/// same typed results as the MCP tools.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum FleetCommand {
    /// Serve MCP on stdin/stdout (the default).
    Serve,
    /// List the cluster's GPU nodes and their agent pods (list_gpu_nodes); exit 0, or 3 when the API
    /// server cannot be used.
    Nodes(crate::cli::fleet::NodesCmd),
    /// Judge every GPU node (get_fleet_gpu_health), worst first; exit 0 PASS, 1 WARN, 2 FAIL, 3 when a
    /// node could not be asked (a FAIL elsewhere still exits 2).
    Health(crate::cli::fleet::FleetHealthCmd),
    /// Xid errors of every GPU node (get_fleet_xid_errors), worst first; exit codes as for health.
    Xid(crate::cli::fleet::FleetXidCmd),
}

impl FleetArgs {
    /// Where the kubeconfig comes from.
    pub fn kube_settings(&self) -> KubeSettings {
        KubeSettings {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }

    /// The fan-out settings.
    pub fn options(&self) -> FleetOptions {
        FleetOptions {
            scope: Scope {
                config: self.config.clone(),
                namespace: self.namespace.clone(),
            },
            concurrency: self.concurrency as usize,
            node_timeout: self.node_timeout,
            session_idle: self.session_idle,
        }
    }
}

/// Durations as every flag of the project writes them (`20s`, `1500ms`, `2m`).
pub use crate::cli::duration::parse_duration;

/// Connects to the cluster the kubeconfig names (a failure is reported by every tool call).
pub async fn connect(args: &FleetArgs) -> Fleet<KubeCluster> {
    Fleet::new(
        KubeCluster::connect(&args.kube_settings()).await,
        args.options(),
    )
}

/// Runs `agent fleet`: serves MCP on stdio until stdin closes or `shutdown` resolves, then closes
/// every node session (each node agent exits 0).
pub async fn run(
    args: &FleetArgs,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<ExitCode> {
    let report = match &args.command {
        None | Some(FleetCommand::Serve) => None,
        Some(FleetCommand::Nodes(c)) => Some(FleetReport::Nodes(c.clone())),
        Some(FleetCommand::Health(c)) => Some(FleetReport::Health(c.clone())),
        Some(FleetCommand::Xid(c)) => Some(FleetReport::Xid(c.clone())),
    };
    if let Some(report) = report {
        return Ok(crate::cli::fleet::run(&report, args).await);
    }
    let fleet = Arc::new(connect(args).await);
    let reaper = tokio::spawn(fleet.reaper());
    // Ask at start whether exec is allowed, so list_gpu_nodes answers from what is known.
    let warm = {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let _ = fleet.list_gpu_nodes(Default::default()).await;
        })
    };
    let limits = TransportLimits {
        // An MCP host may sit idle for hours; it closes stdin when it is done.
        idle_timeout: None,
        ..TransportLimits::default()
    };
    tracing::info!(
        kubeconfig = %args.kube_settings().describe(),
        "fleet: serving MCP on stdio"
    );
    serve_stdio(FleetServer::new(fleet.clone()), limits, shutdown).await;
    warm.abort();
    reaper.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), fleet.shutdown()).await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        let ok = [
            ("20s", 20_000),
            ("20", 20_000),
            ("1500ms", 1_500),
            ("2m", 120_000),
            ("0.5s", 500),
            ("1h", 3_600_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_duration(text).unwrap().as_millis(), ms, "{text}");
        }
        for bad in ["", "0s", "ten", "5d", "-1s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("duration") || e.contains("unit"), "{bad}: {e}");
        }
    }
}
