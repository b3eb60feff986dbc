//! `agent fleet nodes|health|xid` (also `k8s-mcp-agent fleet …` and `kubectl gpu-diag …`): one fleet
//! tool run once from the user's machine through the very `Fleet` methods the fleet's MCP tools call,
//! printed as a table with one line per node (worst first), or as the tool's `structuredContent`.
//! Progress goes to stderr while nodes answer.
//!
//! Exit codes: `health` and `xid` exit with the fleet's worst verdict, in the fleet's order
//! FAIL (2) > UNKNOWN (3: a node could not be asked) > WARN (1) > PASS (0); any of them exits 3 when
//! the API server cannot be used at all. `nodes` exits 0 when it listed the nodes, else 3.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::style::Style;
use super::{EXIT_UNKNOWN, OutputFormat, duration, print, render};
use crate::fleet::{
    FleetArgs, FleetHealthArgs, FleetVerdict, FleetXidArgs, ListNodesArgs, Progress, ProgressFn,
};

/// Which nodes a fleet command covers.
#[derive(Clone, Debug, Args)]
pub struct NodeScope {
    /// Output format: `table` for people, `json`/`yaml` for programs (the fleet tool's
    /// structuredContent).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Only nodes matching this label selector (`kubectl get nodes -l` syntax).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Only these nodes (comma-separated names).
    #[arg(long, value_delimiter = ',', value_name = "NODE,...")]
    pub nodes: Option<Vec<String>>,
    /// No progress lines on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `agent fleet nodes`.
#[derive(Clone, Debug, Args)]
pub struct NodesCmd {
    /// Output format: `table` for people, `json`/`yaml` for programs.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Only nodes matching this label selector (`kubectl get nodes -l` syntax).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// `agent fleet health`.
#[derive(Clone, Debug, Args)]
pub struct FleetHealthCmd {
    #[command(flatten)]
    pub scope: NodeScope,
    /// Each node samples twice this far apart (whole seconds, 1s-60s) so rate rules run.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_duration)]
    pub window: Option<Duration>,
}

/// `agent fleet xid`.
#[derive(Clone, Debug, Args)]
pub struct FleetXidCmd {
    #[command(flatten)]
    pub scope: NodeScope,
    /// Only Xids logged within this long on each node (e.g. 1h, 24h).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_duration)]
    pub since: Option<Duration>,
}

/// The fleet's one-shot commands.
#[derive(Clone, Debug)]
pub enum FleetReport {
    Nodes(NodesCmd),
    Health(FleetHealthCmd),
    Xid(FleetXidCmd),
}

/// Whether `agent fleet` was asked for a one-shot report rather than the MCP server.
pub fn is_report(args: &FleetArgs) -> bool {
    use crate::fleet::FleetCommand;
    matches!(
        args.command,
        Some(FleetCommand::Nodes(_) | FleetCommand::Health(_) | FleetCommand::Xid(_))
    )
}

/// The exit code of a fleet verdict: 0 PASS, 1 WARN, 2 FAIL, 3 UNKNOWN.
pub fn fleet_exit_code(verdict: FleetVerdict) -> u8 {
    match verdict {
        FleetVerdict::Pass => 0,
        FleetVerdict::Warn => 1,
        FleetVerdict::Fail => 2,
        FleetVerdict::Unknown => EXIT_UNKNOWN,
    }
}

/// Runs one fleet command and returns its exit code; errors go to stderr.
pub async fn run(report: &FleetReport, args: &FleetArgs) -> ExitCode {
    let name = match report {
        FleetReport::Nodes(_) => "nodes",
        FleetReport::Health(_) => "health",
        FleetReport::Xid(_) => "xid",
    };
    let code = match execute(report, args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fleet {name}: {e:#}");
            EXIT_UNKNOWN
        }
    };
    ExitCode::from(code)
}

async fn execute(report: &FleetReport, args: &FleetArgs) -> anyhow::Result<u8> {
    let style = Style::for_stdout();
    let mut fleet = crate::fleet::args::connect(args).await;
    let quiet = match report {
        FleetReport::Nodes(_) => true,
        FleetReport::Health(c) => c.scope.quiet,
        FleetReport::Xid(c) => c.scope.quiet,
    };
    let display = (!quiet).then(|| Arc::new(StderrProgress::new()));
    if let Some(display) = &display {
        let display = display.clone();
        let progress: ProgressFn = Arc::new(move |p| display.show(p));
        fleet = fleet.with_progress(progress);
    }
    let outcome = async {
        match report {
            FleetReport::Nodes(cmd) => {
                let list = fleet
                    .list_gpu_nodes(ListNodesArgs {
                        selector: cmd.selector.clone(),
                    })
                    .await?;
                print(cmd.output, &list, || render::fleet::nodes(&list, style))?;
                Ok(0)
            }
            FleetReport::Health(cmd) => {
                let window_seconds = cmd
                    .window
                    .map(|w| duration::whole_seconds("--window", w))
                    .transpose()
                    .map_err(anyhow::Error::msg)?
                    .map(|s| u32::try_from(s).unwrap_or(u32::MAX));
                let health = fleet
                    .fleet_health(FleetHealthArgs {
                        nodes: cmd.scope.nodes.clone(),
                        selector: cmd.scope.selector.clone(),
                        window_seconds,
                    })
                    .await?;
                finish(&display);
                print(cmd.scope.output, &health, || {
                    render::fleet::health(&health, style)
                })?;
                Ok(fleet_exit_code(health.verdict))
            }
            FleetReport::Xid(cmd) => {
                let since_seconds = cmd
                    .since
                    .map(|d| duration::whole_seconds("--since", d))
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                let xid = fleet
                    .fleet_xid(FleetXidArgs {
                        nodes: cmd.scope.nodes.clone(),
                        selector: cmd.scope.selector.clone(),
                        since_seconds,
                    })
                    .await?;
                finish(&display);
                print(cmd.scope.output, &xid, || render::fleet::xid(&xid, style))?;
                Ok(fleet_exit_code(xid.verdict))
            }
        }
    }
    .await;
    finish(&display);
    // Every node agent sees EOF and exits 0 before we do.
    let _ = tokio::time::timeout(Duration::from_secs(5), fleet.shutdown()).await;
    outcome
}

fn finish(display: &Option<Arc<StderrProgress>>) {
    if let Some(d) = display {
        d.finish();
    }
}

/// Progress on stderr: one rewritten line on a terminal, one line per node otherwise.
struct StderrProgress {
    terminal: bool,
    drawn: std::sync::atomic::AtomicBool,
}

impl StderrProgress {
    fn new() -> StderrProgress {
        StderrProgress {
            // A dumb terminal cannot erase a line: it gets one line per node, as a pipe does.
            terminal: std::io::stderr().is_terminal()
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb"),
            drawn: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn show(&self, progress: Progress<'_>) {
        let mut err = std::io::stderr().lock();
        match (progress, self.terminal) {
            (Progress::Asking { total }, false) => {
                let _ = writeln!(err, "asking {total} node(s)");
            }
            (Progress::Asking { .. }, true) => {}
            (p @ Progress::Answered { .. }, false) => {
                let _ = writeln!(err, "{}", progress_line(p));
            }
            (p @ Progress::Answered { .. }, true) => {
                let _ = write!(err, "\r\x1b[2K{}", progress_line(p));
                self.drawn.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _ = err.flush();
    }

    /// Clears the rewritten line so the table starts on a clean terminal.
    fn finish(&self) {
        if self.drawn.swap(false, std::sync::atomic::Ordering::Relaxed) {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// `[3/12] gpu-node-c answered` or `… did not answer`.
pub fn progress_line(progress: Progress<'_>) -> String {
    match progress {
        Progress::Asking { total } => format!("asking {total} node(s)"),
        Progress::Answered {
            node,
            ok,
            done,
            total,
        } => format!(
            "[{done}/{total}] {node} {}",
            if ok { "answered" } else { "did not answer" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_fleet_order_of_verdicts() {
        assert_eq!(fleet_exit_code(FleetVerdict::Pass), 0);
        assert_eq!(fleet_exit_code(FleetVerdict::Warn), 1);
        assert_eq!(fleet_exit_code(FleetVerdict::Fail), 2);
        assert_eq!(fleet_exit_code(FleetVerdict::Unknown), 3);
        // The worst verdict decides: a failing node outranks one that could not be asked.
        let worst = crate::fleet::aggregate::worst([FleetVerdict::Unknown, FleetVerdict::Fail]);
        assert_eq!(fleet_exit_code(worst), 2);
        let worst = crate::fleet::aggregate::worst([FleetVerdict::Warn, FleetVerdict::Unknown]);
        assert_eq!(fleet_exit_code(worst), 3);
    }

    #[test]
    fn progress_lines_name_the_node_and_the_count() {
        let line = progress_line(Progress::Answered {
            node: "gpu-node-c",
            ok: false,
            done: 3,
            total: 12,
        });
        assert_eq!(line, "[3/12] gpu-node-c did not answer");
    }
}
