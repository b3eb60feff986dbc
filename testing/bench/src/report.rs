//! Turns measurements into the one table (stdout) and `docs/benchmarks.md`: rows with ratios against
//! the alternatives, the targets with met / not met, and what the numbers teach. Pure: plain
//! data in, text out.

use std::fmt::Write as _;

use crate::agent::{BinarySize, XidThroughput};
use crate::machine::Machine;
use crate::measure::{ColdStart, Session};
use crate::operator::OperatorResults;
use crate::peers::PythonStartup;
use crate::stats::Samples;

/// Everything one run measured.
pub struct Results {
    pub quick: bool,
    pub agent: AgentResults,
    pub peers: PeerResults,
    /// The operator's measurements, or why they were skipped.
    pub operator: Result<OperatorResults, String>,
}

/// The agent's numbers.
pub struct AgentResults {
    pub size: BinarySize,
    /// First request: `get_gpu_inventory`.
    pub cold_mock: ColdStart,
    pub cold_fake_nvml: ColdStart,
    /// Calls: inventory, health, Xid.
    pub session_mock: Session,
    pub session_fake_nvml: Session,
    pub xid: XidThroughput,
}

/// The alternatives' numbers, measured in the same run with the same requests.
pub struct PeerResults {
    pub python_startup: PythonStartup,
    pub python_cold: ColdStart,
    pub python_session: Session,
    pub floor_cold: ColdStart,
    pub floor_session: Session,
    /// An MCP server from a package registry, or why it was skipped.
    pub registry: Result<RegistryPeer, String>,
}

/// `initialize` + `tools/list` against an MCP server installed from a package registry.
pub struct RegistryPeer {
    pub name: String,
    /// First request: `tools/list`.
    pub cold: ColdStart,
    pub session: Session,
    /// The agent measured the same way (first request `tools/list`).
    pub agent_cold: ColdStart,
    pub agent_session: Session,
}

/// One table row: what, our value, the alternative, its value, the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub measure: String,
    pub ours: String,
    pub alternative: String,
    pub theirs: String,
    pub ratio: String,
}

impl Row {
    /// A row with no alternative to compare with.
    pub fn new(measure: impl Into<String>, ours: impl Into<String>) -> Row {
        Row {
            measure: measure.into(),
            ours: ours.into(),
            alternative: String::new(),
            theirs: String::new(),
            ratio: String::new(),
        }
    }

    fn against(
        mut self,
        alternative: impl Into<String>,
        theirs: impl Into<String>,
        ratio: impl Into<String>,
    ) -> Row {
        self.alternative = alternative.into();
        self.theirs = theirs.into();
        self.ratio = ratio.into();
        self
    }

    fn section(title: &str) -> Row {
        Row::new(format!("**{title}**"), "")
    }

    fn is_section(&self) -> bool {
        self.measure.starts_with("**")
    }
}

/// A target from the issue and whether this run met it (`None`: not measured in this run).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub goal: &'static str,
    pub measured: String,
    pub met: Option<bool>,
}

const PYTHON: &str = "Python `mcp` SDK server (MCPServer/FastMCP)";
const FLOOR_SPAWN: &str = "pipe floor: spawn `cat` → echo";
const FLOOR_LINE: &str = "pipe floor: `cat` echoes the line";
const GREP: &str = "`grep -c 'NVRM: Xid'` on the file";

/// Milliseconds with precision that suits their size.
pub fn ms(value: f64) -> String {
    match value {
        v if v < 1.0 => format!("{v:.3} ms"),
        v if v < 10.0 => format!("{v:.2} ms"),
        v if v < 1000.0 => format!("{v:.1} ms"),
        v => format!("{:.2} s", v / 1000.0),
    }
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn factor(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.1}×")
    }
}

/// "N× faster" / "N× slower" for two times (lower is better).
pub fn faster(ours: f64, theirs: f64) -> String {
    if ours <= 0.0 || theirs <= 0.0 {
        return "n/a".to_owned();
    }
    if theirs >= ours {
        format!("{} faster", factor(theirs / ours))
    } else {
        format!("{} slower", factor(ours / theirs))
    }
}

/// "N× smaller" / "N× larger" for two sizes.
pub fn smaller(ours: u64, theirs: u64) -> String {
    if ours == 0 || theirs == 0 {
        return "n/a".to_owned();
    }
    if theirs >= ours {
        format!("{} smaller", factor(theirs as f64 / ours as f64))
    } else {
        format!("{} larger", factor(ours as f64 / theirs as f64))
    }
}

/// How far above the physical floor: "N× the floor (+x ms)".
pub fn over_floor(ours: f64, floor: f64) -> String {
    if floor <= 0.0 {
        return "n/a".to_owned();
    }
    format!("{} the floor (+{})", factor(ours / floor), ms(ours - floor))
}

fn median(s: &Samples) -> f64 {
    s.median().unwrap_or(f64::NAN)
}

fn p50_p99(s: &Samples) -> String {
    format!(
        "{} / {}",
        ms(s.percentile(50.0).unwrap_or(f64::NAN)),
        ms(s.percentile(99.0).unwrap_or(f64::NAN))
    )
}

fn latency<'a>(session: &'a Session, label: &str) -> &'a Samples {
    session
        .latencies
        .iter()
        .find(|(l, _)| l == label)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("the session measured no {label} calls"))
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn lines_per_second(lines: u64, millis: f64) -> String {
    format!("{:.1} M lines/s", lines as f64 / (millis / 1000.0) / 1e6)
}

/// The table's rows, in reading order.
pub fn rows(r: &Results) -> Vec<Row> {
    let a = &r.agent;
    let p = &r.peers;
    let calls_mock = latency(&a.session_mock, "get_gpu_inventory").len();
    let build = if r.quick {
        "--quick smoke run"
    } else {
        "release build"
    };
    let mut rows = vec![Row::section(&format!(
        "Agent ({build}) — 8× H100 fixture, same YAML for the agent and the Python peer"
    ))];

    let ours = median(&a.cold_mock.to_initialize);
    rows.push(
        Row::new("cold start → `initialize` reply", ms(ours)).against(
            PYTHON,
            ms(median(&p.python_cold.to_initialize)),
            faster(ours, median(&p.python_cold.to_initialize)),
        ),
    );
    rows.push(
        Row::new("cold start → `initialize` reply", ms(ours)).against(
            FLOOR_SPAWN,
            ms(median(&p.floor_cold.to_initialize)),
            over_floor(ours, median(&p.floor_cold.to_initialize)),
        ),
    );
    let ours = median(&a.cold_mock.to_first_reply);
    rows.push(
        Row::new("cold start → first `get_gpu_inventory` result", ms(ours)).against(
            PYTHON,
            ms(median(&p.python_cold.to_first_reply)),
            faster(ours, median(&p.python_cold.to_first_reply)),
        ),
    );
    rows.push(Row::new(
        "cold start → `initialize` reply, real NVML path on the fake libnvidia-ml",
        ms(median(&a.cold_fake_nvml.to_initialize)),
    ));
    rows.push(Row::new(
        "cold start → first `get_gpu_inventory` result, fake libnvidia-ml (dlopen + nvmlInit)",
        ms(median(&a.cold_fake_nvml.to_first_reply)),
    ));

    let ours = latency(&a.session_mock, "get_gpu_inventory");
    let python = latency(&p.python_session, "get_gpu_inventory");
    let floor = latency(&p.floor_session, "get_gpu_inventory");
    let label = format!(
        "`get_gpu_inventory` p50 / p99, {} calls in one session",
        thousands(calls_mock as u64)
    );
    rows.push(Row::new(&label, p50_p99(ours)).against(
        PYTHON,
        p50_p99(python),
        format!(
            "{} (p50), {} (p99)",
            faster(median(ours), median(python)),
            faster(
                ours.percentile(99.0).unwrap_or(f64::NAN),
                python.percentile(99.0).unwrap_or(f64::NAN)
            )
        ),
    ));
    rows.push(Row::new(&label, p50_p99(ours)).against(
        FLOOR_LINE,
        p50_p99(floor),
        over_floor(median(ours), median(floor)),
    ));
    for tool in ["get_gpu_health", "analyze_xid_errors"] {
        rows.push(Row::new(
            format!("`{tool}` p50 / p99 (mock)"),
            p50_p99(latency(&a.session_mock, tool)),
        ));
    }
    for tool in ["get_gpu_inventory", "get_gpu_health", "analyze_xid_errors"] {
        rows.push(Row::new(
            format!("`{tool}` p50 / p99 (fake libnvidia-ml)"),
            p50_p99(latency(&a.session_fake_nvml, tool)),
        ));
    }

    let ours = a.session_mock.after_initialize.rss_bytes;
    let python = p.python_session.after_initialize.rss_bytes;
    rows.push(
        Row::new("RSS after `initialize` (idle)", mib(ours)).against(
            PYTHON,
            mib(python),
            smaller(ours, python),
        ),
    );
    let ours = a.session_mock.after_calls;
    let python = p.python_session.after_calls;
    rows.push(
        Row::new(
            format!(
                "RSS after the session ({} calls) / peak (VmHWM)",
                thousands(a.session_mock.calls as u64)
            ),
            format!("{} / {}", mib(ours.rss_bytes), mib(ours.hwm_bytes)),
        )
        .against(
            format!(
                "{PYTHON}, {} calls",
                thousands(p.python_session.calls as u64)
            ),
            format!("{} / {}", mib(python.rss_bytes), mib(python.hwm_bytes)),
            smaller(ours.rss_bytes, python.rss_bytes),
        ),
    );
    let ours = a.session_fake_nvml.after_calls;
    rows.push(Row::new(
        "RSS after the session / peak, fake libnvidia-ml",
        format!("{} / {}", mib(ours.rss_bytes), mib(ours.hwm_bytes)),
    ));

    let x = &a.xid;
    let ours = median(&x.agent);
    let grep = median(&x.grep);
    rows.push(
        Row::new(
            format!(
                "`analyze_xid_errors` on a {}-line kernel log ({}, `--kmsg-path`)",
                thousands(x.lines),
                mib(x.bytes)
            ),
            format!("{} ({})", lines_per_second(x.lines, ours), ms(ours)),
        )
        .against(
            GREP,
            format!("{} ({})", lines_per_second(x.lines, grep), ms(grep)),
            format!("{} grep's time", factor(ours / grep)),
        ),
    );
    rows.push(Row::new(
        "RSS before that analysis / peak (VmHWM) during it / after",
        format!(
            "{} / {} / {}",
            mib(x.after_initialize.rss_bytes),
            mib(x.after_calls.hwm_bytes),
            mib(x.after_calls.rss_bytes)
        ),
    ));
    let size = a.size.stripped_bytes.unwrap_or(a.size.on_disk_bytes);
    rows.push(Row::new("binary size (stripped)", mib(size)));

    match &p.registry {
        Ok(reg) => {
            let ours = median(&reg.agent_cold.to_first_reply);
            rows.push(
                Row::new("cold start → `initialize` + `tools/list` reply", ms(ours)).against(
                    &reg.name,
                    ms(median(&reg.cold.to_first_reply)),
                    faster(ours, median(&reg.cold.to_first_reply)),
                ),
            );
            let ours = latency(&reg.agent_session, "tools/list");
            let theirs = latency(&reg.session, "tools/list");
            rows.push(Row::new("`tools/list` p50 / p99", p50_p99(ours)).against(
                &reg.name,
                p50_p99(theirs),
                faster(median(ours), median(theirs)),
            ));
            let ours = reg.agent_session.after_initialize.rss_bytes;
            let theirs = reg.session.after_initialize.rss_bytes;
            rows.push(
                Row::new("RSS after `initialize` (idle)", mib(ours)).against(
                    &reg.name,
                    mib(theirs),
                    smaller(ours, theirs),
                ),
            );
        }
        Err(_) => rows.push(
            Row::new("`initialize` + `tools/list` vs a registry MCP server", "—").against(
                "registry MCP server",
                "skipped",
                "see notes",
            ),
        ),
    }

    rows.push(Row::section(&format!(
        "Operator ({build}) against the in-repo test API server"
    )));
    match &r.operator {
        Ok(op) => rows.extend(crate::operator::rows(op)),
        Err(_) => rows.push(Row::new("all operator measurements", "skipped (see notes)")),
    }
    rows
}

/// What this run left out, and why.
pub fn notes(r: &Results) -> Vec<String> {
    let mut notes = Vec::new();
    if let Err(why) = &r.peers.registry {
        notes.push(format!("Registry MCP server peer skipped: {why}."));
    }
    if let Err(why) = &r.operator {
        notes.push(format!("Operator skipped: {why}."));
    }
    notes
}

/// The targets, judged against this run.
pub fn targets(r: &Results) -> Vec<Target> {
    let a = &r.agent;
    let init = median(&a.cold_mock.to_initialize);
    let python = median(&r.peers.python_cold.to_initialize);
    let p99 = ["get_gpu_inventory", "get_gpu_health", "analyze_xid_errors"].map(|t| {
        latency(&a.session_mock, t)
            .percentile(99.0)
            .unwrap_or(f64::NAN)
    });
    let worst_p99 = p99.iter().copied().fold(f64::NAN, f64::max);
    let idle = a.session_mock.after_initialize.rss_bytes;
    let mut targets = vec![
        Target {
            goal: "cold start to `initialize` ≤ 20 ms",
            measured: ms(init),
            met: Some(init <= 20.0),
        },
        Target {
            goal: "cold start to `initialize` ≥ 10× faster than the Python peer",
            measured: faster(init, python),
            met: Some(python / init >= 10.0),
        },
        Target {
            goal: "tool p99 ≤ 5 ms on 8 mock GPUs",
            measured: format!(
                "worst p99 {} (inventory {}, health {}, Xid {})",
                ms(worst_p99),
                ms(p99[0]),
                ms(p99[1]),
                ms(p99[2])
            ),
            met: Some(worst_p99 <= 5.0),
        },
        Target {
            goal: "idle RSS ≤ 10 MB",
            measured: format!(
                "{} ({:.1} MB) after `initialize`",
                mib(idle),
                idle as f64 / 1e6
            ),
            met: Some(idle <= 10_000_000),
        },
    ];
    let floor = median(&r.peers.floor_cold.to_initialize);
    let xid = median(&a.xid.agent) / median(&a.xid.grep);
    let xid_peak = a.xid.after_calls.hwm_bytes;
    targets.push(Target {
        goal: "cold start to `initialize` ≤ 2× the pipe floor",
        measured: over_floor(init, floor),
        met: Some(init <= 2.0 * floor),
    });
    targets.push(Target {
        goal: "Xid analysis of 1,000,000 lines ≤ 1.0× grep's time, peak RSS ≤ 12 MiB",
        measured: format!("{} grep's time, peak {}", factor(xid), mib(xid_peak)),
        met: Some(xid <= 1.0 && xid_peak <= 12 * 1_048_576),
    });
    targets.extend(crate::operator::targets(r.operator.as_ref().ok()));
    targets
}

/// How the numbers were taken, for the report's Method section.
pub fn method(r: &Results) -> Vec<String> {
    let a = &r.agent;
    let cold_runs = a.cold_mock.to_initialize.len();
    let python_runs = r.peers.python_cold.to_initialize.len();
    let calls = latency(&a.session_mock, "get_gpu_inventory").len();
    let mut lines = Vec::new();
    if r.quick {
        lines.push(
            "**Quick smoke run** (`--quick`): too few repetitions for the numbers to mean anything."
                .to_owned(),
        );
    }
    lines.extend([
        "Release builds (`cargo build --release`: thin LTO, symbols stripped), measured one at a time by \
         one harness process (testing/bench) that drives every server over real pipes, one JSON line at \
         a time, as `kubectl exec -i` would."
            .to_owned(),
        format!(
            "Cold start: {cold_runs} runs per Rust server and the pipe floor, {python_runs} per \
             interpreted peer, after discarded warm-up runs. A run spawns the process, sends \
             `initialize` (protocol 2025-06-18), `notifications/initialized` and the first request, \
             then closes stdin and waits for the exit; times run from just before spawn to the \
             arrival of each reply line. The table shows medians."
        ),
        format!(
            "Per-call latency: one long session per server, warm-up calls discarded, then {} timed \
             calls per tool, one at a time; p50/p99 are nearest-rank percentiles.",
            thousands(calls as u64)
        ),
        "Memory: VmRSS and VmHWM from `/proc/PID/status`, right after the `initialize` reply and at \
         the end of the session."
            .to_owned(),
        "Same fixture, same requests: the agent runs `--nvml-mode=mock --mock-fixture \
         agent/fixture/scenarios/healthy.yaml` (8× H100 80GB HBM3); the Python peer \
         (`testing/bench/peers/inventory_server.py`, the official `mcp` SDK's MCPServer, formerly \
         FastMCP) loads the same file with PyYAML and returns the same structuredContent; the fake-NVML \
         rows run the agent's real NVML path (`--nvml-mode=real --nvml-lib libnvidia_ml.so`) on \
         testing/fake-nvml serving that file."
            .to_owned(),
        format!(
            "Xid analysis: a generated {}-line `dmesg --raw` log (one Xid line per 1,000: realistic \
             texts of ten Xid codes across the eight GPUs; the rest ordinary kernel lines, some of \
             them non-Xid NVRM lines) passed with `--kmsg-path`. Each call re-reads and analyses the \
             whole file; every answer is checked to count every line and every Xid. `grep` is timed \
             from spawn to exit.",
            thousands(a.xid.lines)
        ),
        "Pipe floor: `cat`, the least any stdio server can cost: spawn to the first echoed line, and \
         the echo of the same request line."
            .to_owned(),
    ]);
    if let Ok(op) = &r.operator {
        lines.extend(crate::operator::method(op));
    }
    lines
}

/// What the numbers teach, written from this run's numbers.
pub fn learned(r: &Results) -> Vec<String> {
    let a = &r.agent;
    let p = &r.peers;
    let init = median(&a.cold_mock.to_initialize);
    let python_init = median(&p.python_cold.to_initialize);
    let floor_init = median(&p.floor_cold.to_initialize);
    let bare = median(&p.python_startup.bare);
    let imports = median(&p.python_startup.imports);
    let inv = median(latency(&a.session_mock, "get_gpu_inventory"));
    let floor_line = median(latency(&p.floor_session, "get_gpu_inventory"));
    let python_inv = median(latency(&p.python_session, "get_gpu_inventory"));
    let fake_inv = median(latency(&a.session_fake_nvml, "get_gpu_inventory"));
    let mut points = vec![
        format!(
            "A Python MCP server cannot start fast: the interpreter alone runs its first line after \
             {}, with the `mcp` SDK and PyYAML imported after {}, and the peer's `initialize` reply \
             arrives after {}. The agent answers in {}, of which {} is what spawning any \
             process and crossing the pipe costs (`cat`). For `kubectl exec` during an incident \
             that is the difference between instant and a noticeable pause on every session.",
            ms(bare),
            ms(imports),
            ms(python_init),
            ms(init),
            ms(floor_init)
        ),
        format!(
            "Per call the agent spends {} on top of the pipe's own {} round trip to build, \
             serialise and send an eight-GPU inventory (about 15 KB: structuredContent plus its text \
             copy); the Python peer needs {}. On the real NVML path (the fake library) an inventory \
             takes {}: the NVML calls across the C ABI, not the protocol, are the larger part, and a \
             real driver's calls cost more than the fake's.",
            ms(inv - floor_line),
            ms(floor_line),
            ms(python_inv),
            ms(fake_inv)
        ),
    ];
    points.push(format!(
        "On the real NVML path `initialize` does not wait for the driver: the agent answers it in {} \
         and loads the library on the first GPU call ({} to the first inventory, dlopen and nvmlInit \
         of the fake library included), so a node whose driver hangs still gets a session that can \
         say so.",
        ms(median(&a.cold_fake_nvml.to_initialize)),
        ms(median(&a.cold_fake_nvml.to_first_reply))
    ));
    points.push(format!(
        "Cold start to `initialize` is {} the pipe floor on the mock fixture and {} on the real NVML \
         path. Before `initialize` the agent now does only what answering it needs: the tool list \
         and its JSON Schemas are built on the first `tools/list`, and one malloc arena (as in the \
         operator) saves each new thread its own heap. What is left over `cat`, by CPU time \
         (`perf stat`): loading an 18 MB PIE binary (30,000 relocations), the async runtime and \
         the blocking thread that reads stdin, and on the mock path parsing the YAML fixture \
         (about 0.6 ms, the gap between the two rows). Dropped: linking without PIE (no \
         relocations, but no ASLR for a process with CAP_SYSLOG) and reading stdin through epoll \
         (needs O_NONBLOCK on a file description the caller shares, and a regular file as stdin \
         cannot be polled).",
        over_floor(init, floor_init),
        over_floor(median(&a.cold_fake_nvml.to_initialize), floor_init)
    ));
    if let Ok(reg) = &p.registry {
        points.push(format!(
            "Against the official Node memory server the agent starts {} and idles in {} instead of \
             {}, but answers `tools/list` in a running session only {} ({} vs {}): once warm, a \
             JIT-compiled server handles a small request about as fast. Start-up and memory are where \
             a compiled binary wins.",
            faster(
                median(&reg.agent_cold.to_first_reply),
                median(&reg.cold.to_first_reply)
            ),
            mib(reg.agent_session.after_initialize.rss_bytes),
            mib(reg.session.after_initialize.rss_bytes),
            faster(
                median(latency(&reg.agent_session, "tools/list")),
                median(latency(&reg.session, "tools/list"))
            ),
            ms(median(latency(&reg.agent_session, "tools/list"))),
            ms(median(latency(&reg.session, "tools/list"))),
        ));
    }
    let after_blocks = &a.session_mock.after_each;
    let growth = match (after_blocks.first(), after_blocks.last()) {
        (Some(first), Some(last)) => last.rss_bytes.saturating_sub(first.rss_bytes),
        _ => 0,
    };
    let verdict = if growth <= 512 * 1024 {
        "Memory does not grow with use".to_owned()
    } else {
        format!(
            "Memory grows by {} between the first and the last block of calls — worth a look",
            mib(growth)
        )
    };
    points.push(format!(
        "{verdict}: RSS is {} after `initialize`, then {} after each block of {} calls \
         (inventory, health, Xid); a leak would grow block after block. Analysing a {}-line log \
         peaks at {} because the file is streamed, not loaded.",
        mib(a.session_mock.after_initialize.rss_bytes),
        after_blocks
            .iter()
            .map(|m| mib(m.rss_bytes))
            .collect::<Vec<_>>()
            .join(", "),
        thousands((a.session_mock.calls / a.session_mock.latencies.len().max(1)) as u64),
        thousands(a.xid.lines),
        mib(a.xid.after_calls.hwm_bytes)
    ));
    points.push(format!(
        "The Xid analysis takes {} `grep`'s time on the same file. It used to parse every line's \
         priority and timestamp before looking for an Xid (1.7× grep's time). Now the reader hands \
         the scanner whole read buffers: one SIMD substring search per buffer finds the lines that \
         can matter (`NVRM: Xid`, `NVRM: GPU at`), every other line costs a newline search and a \
         count, and timestamps are parsed only where coverage needs them (up to the first timed \
         record and each buffer's last record); a test reads logs of every format through buffers \
         of 1 byte to 4 KiB and checks the counts, coverage and Xid records equal line-by-line \
         reading. The repeated `NVRM: GPU at` line no longer allocates when it names a known GPU. \
         Not done: mmap of the file (no copy, but a log truncated by rotation while mapped kills \
         the process with SIGBUS).",
        factor(median(&a.xid.agent) / median(&a.xid.grep))
    ));
    points.push(
        "The Python SDK server drops requests still in flight when stdin closes: the one-shot \
         `printf '…initialize…\\n…tools/call…' | server` of the original chart README gets only the \
         `initialize` reply from it, while the agent answers both before exiting (its transport \
         flushes queued replies on EOF). The bench keeps stdin open until each reply arrives."
            .to_owned(),
    );
    if let Ok(op) = &r.operator {
        points.extend(crate::operator::learned(op));
    }
    points
}

/// The aligned plain-text table printed on stdout, with the notes under it.
pub fn text_table(machine: &Machine, rows: &[Row], notes: &[String]) -> String {
    let strip = |s: &str| s.replace("**", "").replace('`', "");
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                strip(&r.measure),
                strip(&r.ours),
                strip(&r.alternative),
                strip(&r.theirs),
                strip(&r.ratio),
            ]
        })
        .collect();
    let header = ["measure", "ours", "alternative", "theirs", "comparison"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for (row, r) in cells.iter().zip(rows) {
        if r.is_section() {
            continue;
        }
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for line in machine.lines() {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let line = |cells: &[String; 5]| {
        let mut text = String::new();
        for (c, w) in cells.iter().zip(widths) {
            let _ = write!(text, "{c}{}  ", " ".repeat(w - c.chars().count()));
        }
        text.trim_end().to_owned()
    };
    let _ = writeln!(out, "{}", line(&header));
    let _ = writeln!(
        out,
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
    );
    for (row, r) in cells.iter().zip(rows) {
        if r.is_section() {
            let _ = writeln!(out, "\n{}", row[0]);
        } else {
            let _ = writeln!(out, "{}", line(row));
        }
    }
    for note in notes {
        let _ = writeln!(out, "\nnote: {note}");
    }
    out
}

fn markdown_row(cells: &[&str]) -> String {
    let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    format!("| {} |", escaped.join(" | "))
}

/// The whole `docs/benchmarks.md`.
pub fn markdown(
    machine: &Machine,
    method: &[String],
    rows: &[Row],
    notes: &[String],
    targets: &[Target],
    learned: &[String],
) -> String {
    let mut md = String::new();
    md.push_str(
        "<!-- Generated by `hack/bench` (testing/bench); do not edit by hand: rerun it. -->\n\n\
         # Benchmarks\n\n\
         How fast and how small the agent and the operator are, measured side by side with what a user \
         would run instead, in one run on one machine. Regenerate with `hack/bench` (about fifteen \
         minutes on two cores, release builds included); `hack/bench --quick` is a seconds-long smoke run that proves the harness \
         still works and writes nothing.\n\n## Machine\n\n",
    );
    for line in machine.lines() {
        let _ = writeln!(md, "- {line}");
    }
    md.push_str("\n## Method\n\n");
    for line in method {
        let _ = writeln!(md, "- {line}");
    }
    md.push_str("\n## Results\n\n");
    let _ = writeln!(
        md,
        "{}",
        markdown_row(&["Measure", "Ours", "Alternative", "Theirs", "Comparison"])
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            md,
            "{}",
            markdown_row(&[&r.measure, &r.ours, &r.alternative, &r.theirs, &r.ratio])
        );
    }
    if !notes.is_empty() {
        md.push('\n');
    }
    for note in notes {
        let _ = writeln!(md, "Note: {note}\n");
    }
    md.push_str("\n## Targets (reported, not CI gates)\n\n");
    let _ = writeln!(md, "{}", markdown_row(&["Target", "Measured", "Met"]));
    let _ = writeln!(md, "|---|---|---|");
    for t in targets {
        let met = match t.met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "not measured",
        };
        let _ = writeln!(md, "{}", markdown_row(&[t.goal, &t.measured, met]));
    }
    md.push_str("\n## What we learned\n\n");
    for point in learned {
        let _ = writeln!(md, "- {point}");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_sizes_and_ratios() {
        assert_eq!(ms(0.1234), "0.123 ms");
        assert_eq!(ms(3.456), "3.46 ms");
        assert_eq!(ms(312.34), "312.3 ms");
        assert_eq!(ms(1500.0), "1.50 s");
        assert_eq!(mib(5 * 1_048_576 + 524_288), "5.5 MiB");
        assert_eq!(faster(2.0, 300.0), "150× faster");
        assert_eq!(faster(2.0, 5.0), "2.5× faster");
        assert_eq!(faster(4.0, 2.0), "2.0× slower");
        assert_eq!(faster(0.0, 2.0), "n/a");
        assert_eq!(smaller(4 << 20, 40 << 20), "10× smaller");
        assert_eq!(smaller(8, 4), "2.0× larger");
        assert_eq!(over_floor(0.3, 0.1), "3.0× the floor (+0.200 ms)");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(lines_per_second(1_000_000, 100.0), "10.0 M lines/s");
    }

    #[test]
    fn markdown_escapes_pipes_in_cells() {
        assert_eq!(markdown_row(&["a|b", "c"]), "| a\\|b | c |");
    }
}
