//! `agent`: the GPU-diagnostics MCP server on stdio (default), the DaemonSet's idle process
//! (`agent idle`), its readiness probe (`agent check`) and one-shot reports for a terminal
//! (`agent inventory|health|xid`, in `crate::cli`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::gpu::mock::MockBackend;
use crate::gpu::nvml::{NvmlBackend, NvmlOptions};
use crate::gpu::{DataSource, GpuBackend};
use crate::server::transport::TransportLimits;
use crate::server::{GpuDiagServer, KernelLogSource, ServerOptions, ToolPermission};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use gpu_fixture::Fixture;

/// GPU diagnostics for a Kubernetes node over MCP (stdio), read through NVML.
///
/// Without a subcommand, serves MCP on stdin/stdout (one JSON-RPC message per line); logs go to stderr.
/// Run it with `kubectl exec -i POD -- /agent` (never `-t`: a TTY corrupts the protocol).
#[derive(Debug, Parser)]
#[command(name = "agent", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// What the agent may do: only `read-only` (every tool reads; none changes GPU state).
    #[arg(
        long,
        env = "AGENT_MODE",
        value_enum,
        default_value = "read-only",
        global = true
    )]
    mode: ToolPermission,

    /// Where GPU data comes from: `real` (NVML, the default: a GPU node never serves mock data unless
    /// asked) or `mock` (a simulated node, for demos and tests).
    #[arg(
        long,
        env = "AGENT_NVML_MODE",
        value_enum,
        default_value = "real",
        global = true
    )]
    nvml_mode: NvmlSource,

    /// The NVML library to load in real mode.
    #[arg(
        long,
        env = "AGENT_NVML_LIB",
        default_value = "libnvidia-ml.so.1",
        global = true
    )]
    nvml_lib: OsString,

    /// Where the PCI bus is listed, to notice GPUs NVML no longer enumerates (tests point it at a fake
    /// sysfs tree).
    #[arg(
        long,
        env = "AGENT_PCI_DEVICES_DIR",
        default_value = crate::gpu::pci_bus::DEFAULT_PCI_DEVICES_DIR,
        global = true,
        hide = true
    )]
    pci_devices_dir: PathBuf,

    /// Built-in mock scenario (with --nvml-mode=mock): healthy, thermal-throttle, ecc-dbe,
    /// row-remap-pending, row-remap-failure, fallen-off-bus, nvlink-errors, pcie-downtrain.
    #[arg(
        long,
        env = "AGENT_MOCK_SCENARIO",
        global = true,
        conflicts_with = "mock_fixture"
    )]
    mock_scenario: Option<String>,

    /// A fixture YAML file describing the mock node (with --nvml-mode=mock).
    #[arg(long, env = "AGENT_MOCK_FIXTURE", global = true)]
    mock_fixture: Option<PathBuf>,

    /// Read the kernel log from this file instead of /dev/kmsg or syslog(2) (dmesg or kmsg format).
    #[arg(long, env = "AGENT_KMSG_PATH", global = true)]
    kmsg_path: Option<PathBuf>,

    /// Log level (error, warn, info, debug, trace) or a tracing filter; logs go to stderr.
    #[arg(long, env = "AGENT_LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,

    /// Close an MCP session that receives nothing for this many seconds (0 = never). Guards against
    /// clients that vanish without closing stdin.
    #[arg(
        long,
        env = "AGENT_IDLE_TIMEOUT_SECONDS",
        default_value_t = 1800,
        global = true
    )]
    idle_timeout_seconds: u64,

    /// Longest a GPU query may take before a tool reports the driver or a GPU as hung.
    #[arg(
        long,
        env = "AGENT_NVML_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true
    )]
    nvml_timeout_seconds: u64,

    #[command(flatten)]
    history: crate::recorder::cli::HistoryArgs,

    #[command(flatten)]
    kube: crate::k8s::cli::KubeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP on stdio (the default).
    Serve,
    /// The DaemonSet container's main process: record GPU history under --history-dir (the flight
    /// recorder) until SIGTERM or SIGINT, then exit 0.
    Idle,
    /// Readiness probe: exit 0 when NVML initializes and sees at least one GPU, else 1.
    Check,
    #[command(flatten)]
    Node(crate::cli::NodeCommand),
    /// One MCP server for every GPU node of a cluster, run on your machine (through pods/exec).
    Fleet(crate::fleet::FleetArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NvmlSource {
    Real,
    Mock,
}

/// Parses the command line, runs the command, and says how it ended.
pub fn main() -> ExitCode {
    one_malloc_arena();
    let args = crate::cli::plugin::command_line(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(crate::cli::usage_exit_code(&e, &args));
        }
    };
    // The readiness probe and the one-shot reports print their own error and nothing else unless asked.
    let level = match (&cli.command, cli.log_level.as_str()) {
        (Some(Command::Check | Command::Node(_)), "info") => "error",
        (Some(Command::Fleet(f)), "info") if crate::cli::fleet::is_report(f) => "off",
        (_, level) => level,
    };
    if let Err(e) = init_logging(level) {
        eprintln!("agent: {e:#}");
        return match cli.command {
            Some(Command::Node(_)) => ExitCode::from(crate::cli::EXIT_UNKNOWN),
            _ => ExitCode::from(2),
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.as_ref().unwrap_or(&Command::Serve) {
        Command::Serve => runtime.block_on(serve(&cli)),
        Command::Idle => runtime.block_on(idle(&cli)),
        Command::Check => runtime.block_on(check(&cli)),
        Command::Node(cmd) => Ok(runtime.block_on(crate::cli::run(cmd, server(&cli)))),
        Command::Fleet(args) => runtime.block_on(crate::fleet::run(args, shutdown_signal())),
    };
    // Blocking threads may still be parked in a read of stdin or in a hung NVML call: never wait for them.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates its own arena: the blocking thread that reads stdin and the
/// one that reads a 100 MB kernel log each kept their own heap, raising peak RSS, and creating an arena
/// costs system calls at start. One arena and a fixed 128 KiB mmap threshold (large buffers go back to
/// the OS when freed) keep the agent's memory to what it uses; musl (the image) behaves so anyway.
fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters; it runs before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    // rmcp logs every session's peer info at info level: keep it quieter unless asked for debug.
    let directive = match level {
        "info" | "warn" => format!("{level},rmcp=warn"),
        "error" | "debug" | "trace" | "off" => level.to_string(),
        filter if filter.contains('=') => filter.to_string(),
        other => anyhow::bail!(
            "invalid --log-level {other:?}: use error, warn, info, debug, trace, off or a tracing \
             filter such as `info,agent=debug`"
        ),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directive).with_context(|| {
        format!(
            "invalid --log-level {level:?}: use error, warn, info, debug, trace or a tracing filter"
        )
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .compact()
        .init();
    Ok(())
}

/// Builds the backend the flags ask for; mock flags without mock mode are an error, never a silent
/// switch.
fn backend(cli: &Cli) -> anyhow::Result<(Arc<dyn GpuBackend>, KernelLogSource)> {
    let (gpus, simulated_log) = gpu_backend(cli)?;
    let kernel_log = match (&cli.kmsg_path, simulated_log) {
        (Some(path), _) => KernelLogSource::File(path.clone()),
        (None, Some(mock)) => KernelLogSource::Simulated(mock),
        (None, None) => KernelLogSource::Host,
    };
    Ok((gpus, kernel_log))
}

/// The GPU backend, and for a mock node the mock itself (it also serves the node's kernel log).
type Backends = (Arc<dyn GpuBackend>, Option<Arc<MockBackend>>);

fn gpu_backend(cli: &Cli) -> anyhow::Result<Backends> {
    match cli.nvml_mode {
        NvmlSource::Real => {
            if cli.mock_scenario.is_some() || cli.mock_fixture.is_some() {
                anyhow::bail!(
                    "--mock-scenario/--mock-fixture need --nvml-mode=mock (the default is real NVML, so a \
                     GPU node never serves simulated data by accident)"
                );
            }
            let options = NvmlOptions {
                pci_devices_dir: cli.pci_devices_dir.clone(),
                ..NvmlOptions::default()
            };
            Ok((
                Arc::new(NvmlBackend::with_options(&cli.nvml_lib, options)),
                None,
            ))
        }
        NvmlSource::Mock => {
            let (fixture, source) = match (&cli.mock_scenario, &cli.mock_fixture) {
                (_, Some(path)) => (
                    Fixture::from_path(path)?,
                    DataSource::MockFixture(path.display().to_string()),
                ),
                (name, None) => {
                    let name = name.as_deref().unwrap_or("healthy");
                    (
                        Fixture::builtin(name)?,
                        DataSource::MockScenario(name.to_string()),
                    )
                }
            };
            tracing::info!(source = %source, "serving simulated GPUs");
            let mock = Arc::new(MockBackend::new(fixture, source));
            Ok((mock.clone(), Some(mock)))
        }
    }
}

/// The tools' server as the flags configure it: the MCP session and the one-shot reports share it.
fn server(cli: &Cli) -> anyhow::Result<GpuDiagServer> {
    let (backend, kernel_log) = backend(cli)?;
    Ok(GpuDiagServer::new(
        backend,
        ServerOptions {
            kernel_log,
            node_name: std::env::var("NODE_NAME").ok().filter(|s| !s.is_empty()),
            mode: cli.mode,
            backend_timeout: Duration::from_secs(cli.nvml_timeout_seconds.max(1)),
            history_dir: cli.history.history_dir.clone(),
            kube: cli.kube.options(),
        },
    ))
}

async fn serve(cli: &Cli) -> anyhow::Result<ExitCode> {
    let server = server(cli)?;
    let limits = TransportLimits {
        idle_timeout: (cli.idle_timeout_seconds > 0)
            .then(|| Duration::from_secs(cli.idle_timeout_seconds)),
        ..TransportLimits::default()
    };
    tracing::debug!(mode = ?cli.mode, "serving MCP on stdio");
    crate::server::protocol::serve_stdio(server, limits, shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

async fn idle(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (backend, kernel_log) = backend(cli)?;
    let log = Arc::new(move || kernel_log.log_source());
    let timeout = Duration::from_secs(cli.nvml_timeout_seconds.max(1));
    let shutdown = async {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "exiting");
    };
    crate::recorder::cli::run_idle(backend, log, &cli.history, timeout, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (backend, _) = gpu_backend(cli)?;
    let identities = tokio::task::spawn_blocking(move || backend.identities()).await?;
    match identities {
        Ok(gpus) if !gpus.is_empty() => {
            tracing::debug!(gpus = gpus.len(), "ready");
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => {
            eprintln!(
                "agent check: NVML sees no GPU on this node: check NVIDIA_VISIBLE_DEVICES, the GPU \
                 request or DRA claim of the pod, and `nvidia-smi` on the node"
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("agent check: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Resolves on SIGTERM, SIGINT or SIGHUP with the signal's name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        _ = recv(&mut term) => "SIGTERM",
        _ = recv(&mut int) => "SIGINT",
        _ = recv(&mut hup) => "SIGHUP",
    }
}
