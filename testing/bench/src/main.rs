//! `bench`: measures the agent and the operator side by side with what a user would run instead, prints
//! one table and writes `docs/benchmarks.md`. Run through `hack/bench`, which builds the release
//! binaries first. Test-only tooling, never shipped; it asserts nothing about speed.

mod agent;
mod fleet;
mod focus;
mod kernel_log;
mod machine;
mod measure;
mod operator;
mod peers;
mod procfs;
mod recorder;
mod report;
mod stats;
mod stdio;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use serde_json::json;

use crate::agent::AgentSetup;
use crate::machine::Machine;
use crate::measure::{Call, ColdStartPlan, Repeats, SessionPlan};
use crate::report::{AgentResults, PeerResults, RegistryPeer, Results};

/// Measures the agent and the operator against their alternatives and writes docs/benchmarks.md.
#[derive(Debug, Parser)]
#[command(about)]
struct Cli {
    /// Smoke run: a few repetitions of everything, debug-build friendly, writes no report unless --out.
    #[arg(long)]
    quick: bool,
    /// Where `agent`, `libnvidia_ml.so`, `operator` and `test-apiserver` were built.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The Python with the `mcp` SDK and PyYAML (hack/install-test-tools.sh installs it).
    #[arg(long, default_value = ".tools/python")]
    python: PathBuf,
    /// npm prefix holding @modelcontextprotocol/server-memory, the registry peer (skipped when absent).
    #[arg(long)]
    registry_prefix: Option<PathBuf>,
    /// The Markdown report to write (default: docs/benchmarks.md for a full run, none for --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Leave the operator out.
    #[arg(long, conflicts_with = "operator_only")]
    skip_operator: bool,
    /// Measure only the operator and print its rows (writes no report).
    #[arg(long)]
    operator_only: bool,
    /// Measure only the fleet (`agent fleet` over 10, 100 and 500 simulated nodes, through
    /// testing/bench/fleet_bench.py) and print its rows (writes no report).
    #[arg(long, conflicts_with_all = ["operator_only", "recorder_only"])]
    fleet_only: bool,
    /// Measure only the flight recorder (`agent idle`) and print its rows (writes no report).
    #[arg(long, conflicts_with = "operator_only")]
    recorder_only: bool,
    /// Cluster sizes of the operator's steady-state runs, as NODESxCONFIGS (default: 10, 1,000 and
    /// 5,000 nodes with 1 and 50 configs, and 20,000 nodes with 1).
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    operator_sizes: Vec<(usize, usize)>,
    /// The operator's static musl build (what the image ships), measured at steady state beside the
    /// glibc build in --bin-dir (hack/bench builds it when the musl target is installed).
    #[arg(long)]
    operator_musl: Option<PathBuf>,
    /// Measure the operator at steady state only (no latency runs).
    #[arg(long)]
    operator_steady_only: bool,
    /// Measure only these rows of the agent and print them (writes no report): `xid`, `cold-start`.
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with_all = ["operator_only", "recorder_only"])]
    only: Vec<focus::Focus>,
    /// With --only: also measure the agent built in this directory, in the same run (a baseline).
    #[arg(long, requires = "only")]
    baseline_bin_dir: Option<PathBuf>,
    /// The operator's --log-level (its log is kept in a temporary directory and shown on failure).
    #[arg(long, default_value = "warn")]
    operator_log_level: String,
}

fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let (nodes, configs) = text
        .split_once('x')
        .ok_or_else(|| format!("{text:?}: expected NODESxCONFIGS, e.g. 5000x50"))?;
    let number = |n: &str| {
        n.trim()
            .parse::<usize>()
            .map_err(|e| format!("{text:?}: {n:?} is not a count: {e}"))
    };
    Ok((number(nodes)?, number(configs)?))
}

/// The registry peer: the official Node MCP memory server, as hack/bench installs it from npm.
const REGISTRY_PEER: &str = "@modelcontextprotocol/server-memory (Node, official TS SDK)";

/// Repetitions per measurement.
struct Plan {
    cold: Repeats,
    /// Cold starts of the interpreted peers (Python, Node), half a second each.
    interpreted_cold: Repeats,
    calls: Repeats,
    log_lines: u64,
    xid_calls: Repeats,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let r = |warmup, measured| Repeats { warmup, measured };
        if quick {
            Plan {
                cold: r(1, 3),
                interpreted_cold: r(1, 2),
                calls: r(10, 100),
                log_lines: 20_000,
                xid_calls: r(1, 2),
            }
        } else {
            Plan {
                cold: r(5, 50),
                interpreted_cold: r(2, 30),
                calls: r(200, 10_000),
                log_lines: 1_000_000,
                xid_calls: r(1, 7),
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let plan = Plan::new(cli.quick);
    let fixture = root.join("agent/fixture/scenarios/healthy.yaml");
    let node = which("node");
    let registry_script = cli
        .registry_prefix
        .as_deref()
        .and_then(peers::registry_script);

    let mut machine = Machine::describe(&cli.python, registry_script.as_ref().and(node.as_deref()));
    for line in machine.lines() {
        eprintln!("bench: {line}");
    }

    let mut operator_plan = operator::OperatorPlan::new(cli.quick);
    if !cli.operator_sizes.is_empty() {
        operator_plan.sizes = cli.operator_sizes.clone();
    }
    operator_plan.log_level = cli.operator_log_level.clone();
    operator_plan.musl_binary = cli.operator_musl.clone();
    if cli.operator_steady_only {
        operator_plan.latency_nodes.clear();
    }
    if cli.operator_only {
        let results =
            operator::measure(&cli.bin_dir, &operator_plan).map_err(|e| anyhow::anyhow!(e))?;
        machine.finish();
        let rows = operator::rows(&results);
        println!("{}", report::text_table(&machine, &rows, &[]));
        return Ok(());
    }
    if cli.fleet_only {
        let plan = fleet::FleetPlan::new(cli.quick);
        let rows = fleet::measure(&cli.python, &root, &cli.bin_dir, &plan)?;
        machine.finish();
        println!("{}", report::text_table(&machine, &rows, &[]));
        return Ok(());
    }
    let setup = AgentSetup::new(&cli.bin_dir, &fixture)?;
    if !cli.only.is_empty() {
        let baseline = match &cli.baseline_bin_dir {
            Some(dir) => Some(AgentSetup::new(dir, &fixture)?),
            None => None,
        };
        let focus_plan = focus::FocusPlan {
            only: &cli.only,
            cold: plan.cold,
            log_lines: plan.log_lines,
            xid_calls: plan.xid_calls,
            baseline: baseline.as_ref(),
        };
        let rows = focus::rows(&setup, &focus_plan)?;
        machine.finish();
        println!("{}", report::text_table(&machine, &rows, &[]));
        return Ok(());
    }
    let recorder_plan = recorder::RecorderPlan::new(cli.quick);
    if cli.recorder_only {
        let results = recorder::measure(&setup, &recorder_plan)?;
        machine.finish();
        println!(
            "{}",
            report::text_table(&machine, &recorder::rows(&results), &[])
        );
        return Ok(());
    }
    let registry = node.as_deref().zip(registry_script.as_deref());
    let (agent, peers) = measure_stdio(&cli, &root, &setup, &plan, registry)?;
    let operator = if cli.skip_operator {
        Err("--skip-operator".to_owned())
    } else {
        operator::measure(&cli.bin_dir, &operator_plan)
    };
    let results = Results {
        quick: cli.quick,
        agent,
        peers,
        operator,
    };

    let recorded = recorder::measure(&setup, &recorder_plan);
    machine.finish();
    let mut rows = report::rows(&results);
    match &recorded {
        Ok(r) => rows.extend(recorder::rows(r)),
        Err(e) => eprintln!("bench: the flight recorder rows are missing: {e:#}"),
    }
    let notes = report::notes(&results);
    println!("{}", report::text_table(&machine, &rows, &notes));
    let out = cli
        .out
        .clone()
        .or_else(|| (!cli.quick).then(|| root.join("docs/benchmarks.md")));
    if let Some(out) = out {
        let md = report::markdown(
            &machine,
            &report::method(&results),
            &rows,
            &notes,
            &report::targets(&results),
            &report::learned(&results),
        );
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&out, md).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("bench: wrote {}", out.display());
    }
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn tool_call(tool: &'static str) -> impl Fn(u64) -> String {
    move |id| stdio::tools_call(id, tool, json!({}))
}

/// The agent and every stdio peer: cold starts, then long sessions, each batch interleaved.
fn measure_stdio(
    cli: &Cli,
    root: &Path,
    setup: &AgentSetup,
    plan: &Plan,
    registry: Option<(&Path, &Path)>,
) -> anyhow::Result<(AgentResults, PeerResults)> {
    let inventory = tool_call("get_gpu_inventory");
    let health = tool_call("get_gpu_health");
    let xid = tool_call("analyze_xid_errors");
    let list = |id| stdio::tools_list(id);
    let agent_calls = [
        Call {
            label: "get_gpu_inventory",
            request: &inventory,
        },
        Call {
            label: "get_gpu_health",
            request: &health,
        },
        Call {
            label: "analyze_xid_errors",
            request: &xid,
        },
    ];
    let inventory_calls = [Call {
        label: "get_gpu_inventory",
        request: &inventory,
    }];
    let list_calls = [Call {
        label: "tools/list",
        request: &list,
    }];

    let mock = setup.mock();
    let fake_nvml = setup.fake_nvml();
    let script = root.join("testing/bench/peers/inventory_server.py");
    let python = peers::python(&cli.python, &script, &setup.fixture);
    let floor = peers::pipe_floor();
    let state = tempfile::tempdir()?;
    let registry_server =
        registry.map(|(node, script)| peers::registry(REGISTRY_PEER, node, script, state.path()));

    let cold = |server, first, repeats| ColdStartPlan {
        server,
        first,
        repeats,
    };
    let mut cold_plans = vec![
        cold(&mock, &inventory, plan.cold),
        cold(&fake_nvml, &inventory, plan.cold),
        cold(&python, &inventory, plan.interpreted_cold),
        cold(&floor, &inventory, plan.cold),
    ];
    let mut session_plans = vec![
        SessionPlan {
            server: &mock,
            calls: &agent_calls,
        },
        SessionPlan {
            server: &fake_nvml,
            calls: &agent_calls,
        },
        SessionPlan {
            server: &python,
            calls: &inventory_calls,
        },
        SessionPlan {
            server: &floor,
            calls: &inventory_calls,
        },
    ];
    if let Some(server) = &registry_server {
        cold_plans.push(cold(&mock, &list, plan.cold));
        cold_plans.push(cold(server, &list, plan.interpreted_cold));
        session_plans.push(SessionPlan {
            server: &mock,
            calls: &list_calls,
        });
        session_plans.push(SessionPlan {
            server,
            calls: &list_calls,
        });
    }

    eprintln!(
        "bench: cold starts, interleaved ({} servers)",
        cold_plans.len()
    );
    let mut cold = measure::cold_starts(&cold_plans)?.into_iter();
    eprintln!(
        "bench: sessions, interleaved ({} calls per tool)",
        plan.calls.measured
    );
    let mut sessions = measure::sessions(&session_plans, plan.calls)?.into_iter();
    let mut next = || Ok::<_, anyhow::Error>((next_of(&mut cold)?, next_of(&mut sessions)?));
    let (cold_mock, session_mock) = next()?;
    let (cold_fake_nvml, session_fake_nvml) = next()?;
    let (python_cold, python_session) = next()?;
    let (floor_cold, floor_session) = next()?;
    let registry = match registry_server {
        Some(_) => {
            let (agent_cold, agent_session) = next()?;
            let (cold, session) = next()?;
            Ok(RegistryPeer {
                name: REGISTRY_PEER.to_owned(),
                cold,
                session,
                agent_cold,
                agent_session,
            })
        }
        None => Err(match registry {
            None if which("node").is_none() => "`node` is not on PATH".to_owned(),
            _ => {
                "@modelcontextprotocol/server-memory is not installed (hack/bench installs it with \
                  npm; --quick leaves it out)"
                    .to_owned()
            }
        }),
    };

    eprintln!("bench: Python start-up");
    let python_startup = peers::python_startup(&cli.python, plan.interpreted_cold)?;

    eprintln!(
        "bench: Xid analysis of a {}-line kernel log",
        plan.log_lines
    );
    let log = kernel_log::generate(plan.log_lines, 1000);
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), &log.text)?;
    let xid = agent::xid_throughput(setup, file.path(), &log, plan.xid_calls)?;

    let agent = AgentResults {
        size: agent::binary_size(&setup.agent)?,
        cold_mock,
        cold_fake_nvml,
        session_mock,
        session_fake_nvml,
        xid,
    };
    let peers = PeerResults {
        python_startup,
        python_cold,
        python_session,
        floor_cold,
        floor_session,
        registry,
    };
    Ok((agent, peers))
}

fn next_of<T>(results: &mut impl Iterator<Item = T>) -> anyhow::Result<T> {
    results
        .next()
        .ok_or_else(|| anyhow::anyhow!("a measurement returned fewer results than planned"))
}
