//! `operator`: runs the GpuDiagnosticsConfig controller. All behaviour comes from flags (or their
//! environment variables); logs go to stderr; SIGTERM/SIGINT stop it gracefully with exit code 0.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{ArgAction, Parser, ValueEnum};
use gpu_fixture::parse_positive_duration;
use kube::Client;
use operator::controller::{self, Context, Settings};
use operator::crd::{self, Installed};
use operator::http::{self, Health, Readiness};
use operator::leader;
use operator::metrics::Metrics;
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

/// Reconciles GpuDiagnosticsConfig objects into the k8s-mcp-agent DaemonSet.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address of the HTTP endpoint serving /metrics, /healthz and /readyz.
    #[arg(long, env = "OPERATOR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,

    /// Compete for a Lease so that only one replica reconciles (needed with more than one replica).
    #[arg(long, env = "OPERATOR_LEADER_ELECT")]
    leader_elect: bool,

    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "OPERATOR_LEADER_ELECTION_LEASE",
        default_value = "k8s-mcp-agent-operator"
    )]
    leader_election_lease: String,

    /// This replica's identity in the Lease (defaults to the host name).
    #[arg(long, env = "POD_NAME")]
    leader_election_identity: Option<String>,

    /// Re-reconcile every config this often (node capacity and agent pod problems are read then).
    #[arg(long, env = "OPERATOR_RESYNC_INTERVAL", default_value = "60s", value_parser = parse_positive_duration)]
    resync_interval: Duration,

    /// How long a DRA admin-access probe result is trusted before asking the API server again.
    #[arg(long, env = "OPERATOR_ADMIN_ACCESS_RECHECK_INTERVAL", default_value = "10m", value_parser = parse_positive_duration)]
    admin_access_recheck_interval: Duration,

    /// Apply the GpuDiagnosticsConfig CRD from this binary at start-up and wait until it is
    /// Established (`--install-crd=false` to leave the CRD to the installer).
    #[arg(long, env = "OPERATOR_INSTALL_CRD", default_value_t = true, action = ArgAction::Set)]
    install_crd: bool,

    /// How long to wait for the CRD to become Established.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    crd_establish_timeout: Duration,

    /// Configs reconciled concurrently.
    #[arg(long, env = "OPERATOR_CONCURRENCY", default_value_t = 4)]
    concurrency: u16,

    /// Log filter (tracing-subscriber syntax); RUST_LOG wins when set.
    #[arg(long, env = "OPERATOR_LOG_LEVEL", default_value = "info")]
    log_level: String,

    /// Log line format on stderr.
    #[arg(long, env = "OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    return_large_buffers_to_the_os();
    let cli = Cli::parse();
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            error!("{}", operator::error::one_line(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Makes a glibc build as frugal as musl's allocator (the shipped image): one malloc arena, and
/// large buffers (a 3 MB page of Nodes) mapped and unmapped rather than kept. Left alone, glibc
/// raises its mmap threshold to the first large buffer freed and gives each worker thread an arena
/// it never shrinks; at 5,000 nodes that was 60 MiB of steady RSS instead of 31 MiB (docs/benchmarks.md).
fn return_large_buffers_to_the_os() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters; it runs before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn init_tracing(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: a log file or `kubectl logs` would show them raw.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(metrics.clone()));
    let listener = http::bind(cli.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {}", cli.metrics_addr))?;
    info!(addr = %cli.metrics_addr, "serving /metrics, /healthz and /readyz");

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    let http_task = tokio::spawn(http::serve(
        listener,
        health.clone(),
        stopped(stop_rx.clone()),
    ));

    let result = operate(&cli, metrics, health.clone(), stop_rx).await;
    health.set(Readiness::Stopping);
    http_task.abort();
    result
}

async fn operate(
    cli: &Cli,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = Client::try_default().await.context(
        "no Kubernetes client configuration: run in a pod with a ServiceAccount, or set KUBECONFIG",
    )?;

    if cli.install_crd {
        health.set(Readiness::Starting(
            "installing the GpuDiagnosticsConfig CRD".into(),
        ));
        let api = operator::kube_api::KubeApi::new(client.clone());
        tokio::select! {
            installed = crd::install(&api, cli.crd_establish_timeout) => match installed? {
                Installed::Applied => info!(crd = crds::CRD_NAME, "CRD applied and Established"),
                Installed::Unchanged => info!(crd = crds::CRD_NAME, "CRD already up to date"),
            },
            () = stopped(stop.clone()) => return Ok(()),
        }
    } else {
        let configs = kube::Api::<crds::GpuDiagnosticsConfig>::all(client.clone());
        configs
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await
            .with_context(|| {
                format!(
                    "cannot list GpuDiagnosticsConfigs: is the CRD {} installed? (it is applied at start-up unless \
                     --install-crd=false)",
                    crds::CRD_NAME
                )
            })?;
    }

    let settings = Settings {
        resync: cli.resync_interval,
        admin_access_recheck: cli.admin_access_recheck_interval,
        operator_version: env!("CARGO_PKG_VERSION").to_owned(),
        concurrency: cli.concurrency,
    };
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone(), settings));

    if !cli.leader_elect {
        metrics.leader.set(1);
        health.set(Readiness::Starting(
            "syncing the GpuDiagnosticsConfig cache".into(),
        ));
        controller::run(ctx, health, shutdown_future(stopped(stop))).await;
        return Ok(());
    }

    health.set(Readiness::Starting("joining leader election".into()));
    let identity = cli
        .leader_election_identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("operator-{}", std::process::id()));
    let mut leadership = leader::start(
        client,
        &cli.leader_election_namespace,
        &cli.leader_election_lease,
        &identity,
    )
    .await?;
    health.set(Readiness::Standby);
    info!(lease = %cli.leader_election_lease, %identity, "waiting for leadership");
    tokio::select! {
        acquired = leadership.acquired() => if !acquired {
            bail!("the lease manager stopped before this replica became leader");
        },
        () = stopped(stop.clone()) => {
            leadership.release().await?;
            return Ok(());
        }
    }
    info!(%identity, "became leader");
    metrics.leader.set(1);
    health.set(Readiness::Starting(
        "syncing the GpuDiagnosticsConfig cache".into(),
    ));

    let lost = Arc::new(AtomicBool::new(false));
    let lost_flag = lost.clone();
    let lost_leadership = leader::Leadership::lost(leadership.is_leader.clone());
    let stop_or_lost = async move {
        tokio::select! {
            () = stopped(stop) => {},
            () = lost_leadership => lost_flag.store(true, Ordering::SeqCst),
        }
    };
    controller::run(ctx, health, shutdown_future(stop_or_lost)).await;
    metrics.leader.set(0);
    if lost.load(Ordering::SeqCst) {
        bail!("lost the leader Lease; exiting so that a restart rejoins the election");
    }
    if let Err(error) = leadership.release().await {
        warn!(%error, "could not release the Lease; the next leader waits for it to expire");
    }
    Ok(())
}

/// Resolves once a stop was requested.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Adapts any future to the `Send + Sync` future the controller's graceful shutdown takes.
fn shutdown_future(
    trigger: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        trigger.await;
        let _ = tx.send(());
    });
    async move {
        let _ = rx.await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_take_the_shared_syntax_and_refuse_zero() {
        let cli = Cli::try_parse_from(["operator", "--resync-interval", "1h30m"]).unwrap();
        assert_eq!(cli.resync_interval, Duration::from_secs(5_400));
        let error = Cli::try_parse_from(["operator", "--resync-interval", "0s"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"0s\" must be a positive duration"),
            "{error}"
        );
        let error = Cli::try_parse_from(["operator", "--admin-access-recheck-interval", "5d"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown duration unit"), "{error}");
    }

    #[test]
    fn flags_parse_with_their_defaults() {
        let cli = Cli::try_parse_from(["operator"]).unwrap();
        assert!(cli.install_crd);
        assert!(!cli.leader_elect);
        assert_eq!(cli.resync_interval, Duration::from_secs(60));
        let cli = Cli::try_parse_from([
            "operator",
            "--install-crd=false",
            "--resync-interval",
            "1s",
            "--leader-elect",
        ])
        .unwrap();
        assert!(!cli.install_crd);
        assert!(cli.leader_elect);
        assert_eq!(cli.resync_interval, Duration::from_secs(1));
    }
}
