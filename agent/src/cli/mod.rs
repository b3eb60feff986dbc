//! The node's diagnostics for a person at a terminal: `agent inventory`, `agent health`,
//! `agent xid`, `agent timeline` and `agent pods` run one tool once (no MCP session) through the very functions the MCP tools call, and
//! print its typed result as a table (`render/`), or as the tool's `structuredContent` (`-o json`,
//! `-o yaml`).
//!
//! Exit codes (the monitoring-plugin convention, so `kubectl exec POD -- /agent health` is a check):
//! `health` and `xid` exit 0 PASS, 1 WARN, 2 FAIL, and 3 when they could not tell (the tool failed,
//! a flag was wrong); `inventory`, `timeline` and `pods` exit 0 when they read what they show and 3
//! when they could not.

pub mod duration;
pub mod fleet;
pub mod plugin;
pub mod render;
pub mod style;
pub mod table;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::health::Verdict;
use crate::server::{
    GpuDiagServer, GpuRef, GpuScopeArgs, HealthArgs, PodAllocationArgs, TimelineArgs, ToolError,
    XidArgs,
};
use style::Style;

/// Exit code when a one-shot command could not tell (tool error, bad flag): "UNKNOWN".
pub const EXIT_UNKNOWN: u8 = 3;

/// The exit code a verdict earns: 0 PASS, 1 WARN, 2 FAIL.
pub fn verdict_exit_code(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Pass => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 2,
    }
}

/// How a one-shot command prints its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a person (coloured on a terminal).
    #[default]
    Table,
    /// The MCP tool's `structuredContent`, as JSON.
    Json,
    /// The MCP tool's `structuredContent`, as YAML.
    Yaml,
}

/// The one-shot commands that print one tool's result.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Print this node's GPUs and their state (the `get_gpu_inventory` tool); exit 0, or 3 if the GPUs
    /// could not be read.
    Inventory(InventoryCmd),
    /// Judge this node's GPUs (the `get_gpu_health` tool); exit 0 PASS, 1 WARN, 2 FAIL, 3 could not
    /// tell.
    Health(HealthCmd),
    /// Explain the kernel log's Xid errors (the `analyze_xid_errors` tool); exit 0 PASS, 1 WARN,
    /// 2 FAIL, 3 could not read the log.
    Xid(XidCmd),
    /// Print the flight recorder's history (the `get_gpu_timeline` tool): per GPU each metric's
    /// min/max/mean/last over the window, then the events in time order; exit 0, or 3 if it could
    /// not be read.
    Timeline(TimelineCmd),
    /// Print which pods hold this node's GPUs (the `get_pod_gpu_allocation` tool); exit 0, or 3 if
    /// the GPUs could not be read.
    Pods(PodsCmd),
}

/// Options every one-shot command takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Output format: `table` for people, `json`/`yaml` for programs (the MCP tool's
    /// structuredContent).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Only this GPU (NVML index, 0-based).
    #[arg(short = 'i', long = "gpu", value_name = "INDEX")]
    pub gpu: Option<u32>,
}

/// `agent inventory`.
#[derive(Debug, Args)]
pub struct InventoryCmd {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `agent health`.
#[derive(Debug, Args)]
pub struct HealthCmd {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Sample twice this far apart (whole seconds, 1s-60s) so rate rules (PCIe replays, NVLink errors,
    /// thermal and power violation time) run.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_duration)]
    pub window: Option<Duration>,
}

/// `agent xid`.
#[derive(Debug, Args)]
pub struct XidCmd {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only Xids logged within this long (e.g. 1h, 24h); the whole ring buffer when omitted.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_duration)]
    pub since: Option<Duration>,
    /// Most events to list in `-o json|yaml`, newest first (1-10000); counts cover every event.
    #[arg(long, value_name = "N")]
    pub max_events: Option<u32>,
}

/// `agent timeline`.
#[derive(Debug, Args)]
pub struct TimelineCmd {
    /// Output format: `table` for people, `json`/`yaml` for programs (the MCP tool's
    /// structuredContent).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Only this GPU: NVML index (0-based) or UUID (`GPU-…`).
    #[arg(short = 'i', long = "gpu", value_name = "INDEX|UUID", value_parser = gpu_ref)]
    pub gpu: Option<GpuRefArg>,
    /// How far back to look (e.g. 10m, 1h, 24h; default 1h, at most the retention).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_duration)]
    pub since: Option<Duration>,
    /// Most events to list, the newest kept (1-5000, default 200).
    #[arg(long, value_name = "N")]
    pub max_events: Option<u32>,
}

/// A GPU named on the command line by index or UUID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuRefArg(GpuRefKind);

#[derive(Clone, Debug, PartialEq, Eq)]
enum GpuRefKind {
    Index(u32),
    Uuid(String),
}

impl GpuRefArg {
    fn to_tool(&self) -> GpuRef {
        match &self.0 {
            GpuRefKind::Index(i) => GpuRef::Index(*i),
            GpuRefKind::Uuid(u) => GpuRef::Uuid(u.clone()),
        }
    }
}

/// Reads `--gpu`: digits are an NVML index, anything else a UUID.
fn gpu_ref(text: &str) -> Result<GpuRefArg, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("expected an NVML index (0, 1, …) or a UUID (GPU-…)".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(|i| GpuRefArg(GpuRefKind::Index(i)))
            .map_err(|_| format!("{text} is too large for a GPU index"));
    }
    Ok(GpuRefArg(GpuRefKind::Uuid(text.to_string())))
}

/// `agent pods`.
#[derive(Debug, Args)]
pub struct PodsCmd {
    /// Output format: `table` for people, `json`/`yaml` for programs (the MCP tool's
    /// structuredContent).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Only holders in this namespace.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
    /// Only holders in pods of this name.
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
}

/// Names of the one-shot subcommands, for telling their usage errors apart.
const NAMES: &[&str] = &["inventory", "health", "xid", "timeline", "pods", "nodes"];

/// The exit code of a command line clap refused: 3 (UNKNOWN) when it named a one-shot command, so a
/// typo in a health check never reads as FAIL; clap's own code otherwise.
pub fn usage_exit_code(error: &clap::Error, args: &[std::ffi::OsString]) -> u8 {
    let code = u8::try_from(error.exit_code()).unwrap_or(2);
    let one_shot = args
        .iter()
        .skip(1)
        .any(|a| a.to_str().is_some_and(|a| NAMES.contains(&a)));
    if code != 0 && one_shot {
        EXIT_UNKNOWN
    } else {
        code
    }
}

/// Runs one command against `server` (or reports why there is none) and returns its exit code.
pub async fn run(command: &NodeCommand, server: anyhow::Result<GpuDiagServer>) -> ExitCode {
    let name = match command {
        NodeCommand::Inventory(_) => "inventory",
        NodeCommand::Health(_) => "health",
        NodeCommand::Xid(_) => "xid",
        NodeCommand::Timeline(_) => "timeline",
        NodeCommand::Pods(_) => "pods",
    };
    let code = match server {
        Ok(server) => match execute(command, &server).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("agent {name}: {e:#}");
                EXIT_UNKNOWN
            }
        },
        Err(e) => {
            eprintln!("agent {name}: {e:#}");
            EXIT_UNKNOWN
        }
    };
    ExitCode::from(code)
}

async fn execute(command: &NodeCommand, server: &GpuDiagServer) -> anyhow::Result<u8> {
    let style = Style::for_stdout();
    match command {
        NodeCommand::Inventory(cmd) => {
            let args = GpuScopeArgs {
                gpu_index: cmd.common.gpu,
            };
            let report = tool(server.inventory(args).await)?;
            print(cmd.common.output, &report, || {
                render::inventory::table(&report, style)
            })?;
            Ok(0)
        }
        NodeCommand::Health(cmd) => {
            let window_seconds = match cmd.window {
                Some(w) => {
                    let secs =
                        duration::whole_seconds("--window", w).map_err(anyhow::Error::msg)?;
                    Some(u32::try_from(secs).unwrap_or(u32::MAX))
                }
                None => None,
            };
            let args = HealthArgs {
                gpu_index: cmd.common.gpu,
                window_seconds,
            };
            let result = tool(server.health(args).await)?;
            let vitals = match cmd.common.output {
                OutputFormat::Table => {
                    let args = GpuScopeArgs {
                        gpu_index: cmd.common.gpu,
                    };
                    server.inventory(args).await.ok()
                }
                OutputFormat::Json | OutputFormat::Yaml => None,
            };
            print(cmd.common.output, &result, || {
                render::health::table(&result, vitals.as_ref(), style)
            })?;
            Ok(verdict_exit_code(result.report.verdict))
        }
        NodeCommand::Xid(cmd) => {
            let since_seconds = cmd
                .since
                .map(|d| duration::whole_seconds("--since", d))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let args = XidArgs {
                since_seconds,
                max_events: cmd.max_events,
                gpu_index: cmd.common.gpu,
            };
            let result = tool(server.xid(args).await)?;
            print(cmd.common.output, &result, || {
                render::xid::table(&result, style)
            })?;
            Ok(verdict_exit_code(result.report.verdict))
        }
        NodeCommand::Timeline(cmd) => {
            let since_seconds = cmd
                .since
                .map(|d| duration::whole_seconds("--since", d))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let args = TimelineArgs {
                gpu: cmd.gpu.as_ref().map(GpuRefArg::to_tool),
                since_seconds,
                max_events: cmd.max_events,
            };
            let result = tool(server.timeline(args).await)?;
            print(cmd.output, &result, || {
                render::timeline::table(&result, style)
            })?;
            Ok(0)
        }
        NodeCommand::Pods(cmd) => {
            let args = PodAllocationArgs {
                namespace: cmd.namespace.clone(),
                pod: cmd.pod.clone(),
            };
            let report = tool(server.pod_gpu_allocation(args).await)?;
            print(cmd.output, &report, || render::pods::table(&report, style))?;
            Ok(0)
        }
    }
}

/// A tool's error as the command's error: its message already says what failed and what to do.
fn tool<T>(result: Result<T, ToolError>) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::Error::msg(e.to_string()))
}

/// Writes `value` as the format asks: the table from `table`, or the value exactly as the MCP tool's
/// `structuredContent` carries it.
pub fn print<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Table => table(),
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(&serde_json::to_value(value)?)?;
            s.push('\n');
            s
        }
        OutputFormat::Yaml => serde_yaml::to_string(&serde_json::to_value(value)?)?,
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A reader that stopped early (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_flag_reads_an_index_or_a_uuid() {
        assert_eq!(gpu_ref("3"), Ok(GpuRefArg(GpuRefKind::Index(3))));
        assert_eq!(
            gpu_ref("GPU-5f3b"),
            Ok(GpuRefArg(GpuRefKind::Uuid("GPU-5f3b".into())))
        );
        assert!(gpu_ref("").is_err());
        assert!(gpu_ref("99999999999").unwrap_err().contains("too large"));
    }
}
