//! The MCP server: tool and prompt listing, argument checking, dispatch to the tools' pure halves, and
//! the bounded, off-executor calls into the GPU backend. Nothing here knows about NVML.

pub mod schema;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation, JsonObject,
    ListPromptsResult, ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument,
    PromptMessage, Role, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::gpu::mock::MockBackend;
use crate::gpu::{BackendError, DeviceIdentity, GpuBackend, GpuFilter, NodeSnapshot};
use crate::health::{
    self, Baseline, EvaluateOptions, HealthReport, NotEvaluated, ObservedXid, Rule,
};
use crate::prompts;
use crate::tools::inventory::{self, InventoryReport};
use crate::xid::{
    self, AnalyzeOptions, GpuIdentity, KernelLog, LogSource, PciLocation, ReadLimits, XidReport,
};

/// What the agent may do: `read-only` (the default) or `operator`, kept for future mutating tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentMode {
    #[value(name = "read-only")]
    ReadOnly,
    #[value(name = "operator")]
    Operator,
}

/// Settings of one server process.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The Kubernetes node the agent runs on (`NODE_NAME`).
    pub node_name: Option<String>,
    pub mode: AgentMode,
    /// Longest a backend call may take before the tool reports the GPU or driver as hung.
    pub backend_timeout: Duration,
    /// Where the kernel log (Xid errors) is read from.
    pub kernel_log: KernelLogSource,
}

/// Where `analyze_xid_errors` and the health check's Xid rules read the kernel log.
#[derive(Clone)]
pub enum KernelLogSource {
    /// The node's ring buffer: `/dev/kmsg`, then `syslog(2)`.
    Host,
    /// A saved log or a kmsg-style device (`--kmsg-path`).
    File(std::path::PathBuf),
    /// The mock node's kernel log, its timestamps anchored to the mock node's uptime.
    Simulated(Arc<MockBackend>),
}

impl std::fmt::Debug for KernelLogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelLogSource::Host => f.write_str("Host"),
            KernelLogSource::File(p) => write!(f, "File({})", p.display()),
            KernelLogSource::Simulated(_) => f.write_str("Simulated"),
        }
    }
}

impl KernelLogSource {
    fn log_source(&self) -> LogSource {
        match self {
            KernelLogSource::Host => LogSource::Auto,
            KernelLogSource::File(path) => LogSource::File(path.clone()),
            KernelLogSource::Simulated(mock) => LogSource::Lines {
                lines: mock.fixture().kernel_log.clone(),
                uptime_seconds: mock.uptime_seconds(),
            },
        }
    }
}

/// The GPU-diagnostics MCP server (cheap to clone: one shared state per process).
#[derive(Clone)]
pub struct GpuDiagServer {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn GpuBackend>,
    opts: ServerOptions,
    /// Set while a backend call that overran its deadline has still not returned.
    overdue: Arc<AtomicBool>,
    tools: Vec<Tool>,
    /// The last snapshot `get_gpu_health` read: the baseline of the next call's rate rules.
    last_health: std::sync::Mutex<Option<(Instant, NodeSnapshot)>>,
}

/// A tool's name, title and description, and its argument/result types' schemas.
struct ToolSpec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    input: fn() -> Arc<JsonObject>,
    output: fn() -> Arc<JsonObject>,
}

const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "get_gpu_inventory",
        title: "GPU inventory",
        description: "List this node's NVIDIA GPUs and their current state: model, UUID, serial, PCI bus id, \
                  compute capability, VBIOS, memory (bytes), temperature and thresholds (°C), power draw \
                  and limit (W), clocks (MHz), utilization (%), PCIe link, persistence/MIG/compute mode, \
                  ECC mode, NVLinks and running processes; plus driver, CUDA and NVML versions. Values the \
                  GPU cannot report are listed under `unavailable` with the reason.",
        input: schema::input_schema::<GpuScopeArgs>,
        output: schema::output_schema::<InventoryReport>,
    },
    ToolSpec {
        name: "get_gpu_health",
        title: "GPU health",
        description: "Judge this node's GPUs like DCGM's health watches: a PASS/WARN/FAIL verdict per GPU and \
                      overall, with findings that name their rule, the evidence (values, thresholds, \
                      counter deltas) and the action to take. Covers thermal, power, clock-event \
                      (throttle) reasons, ECC SBE/DBE, retired pages and row remapping, PCIe link \
                      downtraining and replay rate, NVLink state and error rates, lost or missing GPUs, \
                      InfoROM, the driver's recovery action and fatal Xids. Rate rules compare with the \
                      previous call's reading, or sample twice `window_seconds` apart. Checks a GPU \
                      cannot support are listed under `not_evaluated`, never passed silently.",
        input: schema::input_schema::<HealthArgs>,
        output: schema::output_schema::<HealthResult>,
    },
    ToolSpec {
        name: "analyze_xid_errors",
        title: "Xid error analysis",
        description: "Read the kernel ring buffer (/dev/kmsg, else syslog(2) with CAP_SYSLOG, or the file \
                      given with --kmsg-path) for NVIDIA Xid errors, attribute each to its GPU by PCI \
                      address, and explain it from NVIDIA's Xid catalog: name, severity, immediate and \
                      investigatory action, plus companion-Xid workflows (48 with 63/64, 45, 43, 13/31 \
                      recurrence, 74 link decode, 79, 154 recovery action). Returns events (newest \
                      first) with wall-clock times, a per-GPU per-code summary, a verdict and the \
                      recommended action per GPU, and the time span the log covers.",
        input: schema::input_schema::<XidArgs>,
        output: schema::output_schema::<XidResult>,
    },
];

/// Arguments of `analyze_xid_errors`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidArgs {
    /// Only Xids logged in the last this-many seconds; the whole ring buffer when omitted.
    #[serde(default)]
    pub since_seconds: Option<u64>,
    /// Most events to list, newest first (default 200, at most 10000); counts still cover everything.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub max_events: Option<u32>,
    /// Only Xids of this GPU (NVML index, 0-based).
    #[serde(default)]
    pub gpu_index: Option<u32>,
}

/// `analyze_xid_errors`' result: the Xid report, labelled with its data source and node.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct XidResult {
    /// Where the GPUs' identities came from: `nvml` on a real node, `mock:<scenario>` or
    /// `mock-fixture:<file>` in demos and tests. The kernel log's source is in `source`.
    pub data_source: String,
    /// The Kubernetes node (from the `NODE_NAME` environment variable), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(flatten)]
    pub report: XidReport,
}

/// Arguments of `get_gpu_health`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    /// Only this GPU (NVML index, 0-based); every GPU when omitted.
    #[serde(default)]
    pub gpu_index: Option<u32>,
    /// Sample twice this many seconds apart (1-60) to judge rates: PCIe replays, NVLink errors,
    /// thermal and power violation time. When omitted, rates are judged against the previous call's
    /// reading in this session, if any.
    #[serde(default)]
    #[schemars(range(max = 60))]
    pub window_seconds: Option<u32>,
}

/// `get_gpu_health`'s result: the health report, labelled with its data source and node.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct HealthResult {
    /// Where the data came from: `nvml` on a real node, `mock:<scenario>` or `mock-fixture:<file>` in
    /// demos and tests.
    pub data_source: String,
    /// The Kubernetes node (from the `NODE_NAME` environment variable), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(flatten)]
    pub report: HealthReport,
}

/// Arguments of tools that can look at one GPU or all.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuScopeArgs {
    /// Only this GPU (NVML index, 0-based); every GPU when omitted.
    #[serde(default)]
    pub gpu_index: Option<u32>,
}

impl GpuScopeArgs {
    fn filter(&self) -> GpuFilter {
        self.gpu_index.map_or(GpuFilter::All, GpuFilter::Index)
    }
}

/// Why a tool call failed; becomes an `isError` result whose text says what to do.
#[derive(Debug, thiserror::Error)]
enum ToolError {
    #[error("invalid arguments for {tool}: {message}")]
    Arguments { tool: &'static str, message: String },
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error(
        "the GPU driver did not answer within {0:?}: a GPU or the NVIDIA driver is hung. Check the \
         kernel log for Xid 79/119/120 (analyze_xid_errors) and `nvidia-smi` on the node; a node \
         reboot is usually required."
    )]
    Timeout(Duration),
    #[error(
        "a previous GPU query has not returned after overrunning its deadline: the NVIDIA driver or a \
         GPU is hung. Check the kernel log for Xid errors; a node reboot is usually required."
    )]
    StillHung,
    #[error("{0}")]
    KernelLog(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl GpuDiagServer {
    /// A server reading GPUs through `backend`.
    pub fn new(backend: Arc<dyn GpuBackend>, opts: ServerOptions) -> GpuDiagServer {
        let tools = TOOLS
            .iter()
            .map(|t| {
                Tool::new(t.name, t.description, (t.input)())
                    .with_title(t.title)
                    .with_raw_output_schema((t.output)())
                    .with_annotations(
                        ToolAnnotations::with_title(t.title)
                            .read_only(true)
                            .destructive(false)
                            .idempotent(true)
                            .open_world(false),
                    )
            })
            .collect();
        GpuDiagServer {
            inner: Arc::new(Inner {
                backend,
                opts,
                overdue: Arc::new(AtomicBool::new(false)),
                tools,
                last_health: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Runs a blocking backend call off the executor, bounded by the backend timeout.
    async fn backend<T, F>(&self, f: F) -> Result<T, ToolError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn GpuBackend) -> T + Send + 'static,
    {
        if self.inner.overdue.load(Ordering::Acquire) {
            return Err(ToolError::StillHung);
        }
        let backend = self.inner.backend.clone();
        let overdue = self.inner.overdue.clone();
        let started = Instant::now();
        let timeout = self.inner.opts.backend_timeout;
        let handle = tokio::task::spawn_blocking(move || {
            let out = f(backend.as_ref());
            if started.elapsed() > timeout {
                overdue.store(false, Ordering::Release);
                tracing::warn!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "late GPU query returned"
                );
            }
            out
        });
        match tokio::time::timeout(timeout, handle).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(join)) => Err(ToolError::Internal(format!(
                "GPU query task failed: {join}"
            ))),
            Err(_) => {
                self.inner.overdue.store(true, Ordering::Release);
                Err(ToolError::Timeout(timeout))
            }
        }
    }

    async fn inventory(&self, args: GpuScopeArgs) -> Result<InventoryReport, ToolError> {
        let filter = args.filter();
        let snapshot = self.backend(move |b| b.snapshot(filter)).await??;
        Ok(inventory::build(
            &snapshot,
            &self.inner.backend.source(),
            self.inner.opts.node_name.as_deref(),
        ))
    }

    async fn health(&self, args: HealthArgs) -> Result<HealthResult, ToolError> {
        let filter = args.gpu_index.map_or(GpuFilter::All, GpuFilter::Index);
        let window = match args.window_seconds {
            Some(0) | None => None,
            Some(w @ 1..=60) => Some(Duration::from_secs(w.into())),
            Some(w) => {
                return Err(ToolError::Arguments {
                    tool: "get_gpu_health",
                    message: format!("window_seconds must be between 1 and 60, got {w}"),
                });
            }
        };
        let baseline = match window {
            Some(window) => {
                let first = self.backend(move |b| b.snapshot(filter)).await??;
                let taken = Instant::now();
                tokio::time::sleep(window).await;
                Some((taken, first))
            }
            None => self.previous_health_snapshot(),
        };
        let current = self.backend(move |b| b.snapshot(filter)).await??;
        let now = Instant::now();
        let baseline = baseline.map(|(taken, snapshot)| Baseline {
            snapshot,
            elapsed: now.duration_since(taken),
        });
        let gpus: Vec<GpuIdentity> = current
            .devices
            .iter()
            .map(|d| gpu_identity(&d.identity()))
            .collect();
        let (xids, log_error) = match self.kernel_log().await {
            Ok(log) => {
                let opts = AnalyzeOptions {
                    gpu_index: args.gpu_index,
                    max_events: Some(1),
                    ..AnalyzeOptions::default()
                };
                (observed_xids(&xid::analyze(&log, &gpus, &opts)), None)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let mut report = health::evaluate(
            &current,
            baseline.as_ref(),
            &xids,
            &EvaluateOptions::default(),
        );
        if let Some(reason) = log_error {
            report.node.not_evaluated.push(NotEvaluated {
                check: Rule::XidKernelLog,
                reason: format!("Xid rules did not run: {reason}"),
            });
        }
        self.remember_health_snapshot(now, current);
        Ok(HealthResult {
            data_source: self.inner.backend.source().to_string(),
            node_name: self.inner.opts.node_name.clone(),
            report,
        })
    }

    async fn xid(&self, args: XidArgs) -> Result<XidResult, ToolError> {
        if let Some(m) = args.max_events
            && !(1..=xid::MAX_EVENTS_LIMIT).contains(&m)
        {
            return Err(ToolError::Arguments {
                tool: "analyze_xid_errors",
                message: format!(
                    "max_events must be between 1 and {}, got {m}",
                    xid::MAX_EVENTS_LIMIT
                ),
            });
        }
        // The kernel log is worth reading even when NVML is broken (a lost GPU can take NVML down):
        // without GPU identities, Xids are reported by PCI address.
        let (gpus, gpu_note) = match self.backend(|b| b.identities()).await {
            Ok(Ok(ids)) => (ids.iter().map(gpu_identity).collect::<Vec<_>>(), None),
            Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        if let Some(index) = args.gpu_index
            && gpu_note.is_none()
            && index as usize >= gpus.len()
        {
            return Err(BackendError::NoSuchGpu {
                index,
                count: gpus.len() as u32,
            }
            .into());
        }
        let log = self.kernel_log().await?;
        let mut report = xid::analyze(
            &log,
            &gpus,
            &AnalyzeOptions {
                since_seconds: args.since_seconds,
                max_events: args.max_events,
                gpu_index: args.gpu_index,
            },
        );
        if let Some(why) = gpu_note {
            report.notes.push(format!(
                "The GPUs could not be enumerated, so Xids are attributed by PCI address only: {why}"
            ));
        }
        Ok(XidResult {
            data_source: self.inner.backend.source().to_string(),
            node_name: self.inner.opts.node_name.clone(),
            report,
        })
    }

    /// Reads the kernel log off the executor; the readers are bounded and never wait for new records.
    async fn kernel_log(&self) -> Result<KernelLog, ToolError> {
        let source = self.inner.opts.kernel_log.log_source();
        let timeout = self.inner.opts.backend_timeout;
        let task = tokio::task::spawn_blocking(move || {
            xid::read_kernel_log(&source, &ReadLimits::default())
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(log))) => Ok(log),
            Ok(Ok(Err(e))) => Err(ToolError::KernelLog(e.to_string())),
            Ok(Err(join)) => Err(ToolError::Internal(format!(
                "kernel log task failed: {join}"
            ))),
            Err(_) => Err(ToolError::KernelLog(format!(
                "reading the kernel log took longer than {timeout:?}; pass --kmsg-path to analyze a saved log"
            ))),
        }
    }

    /// The previous `get_gpu_health` reading, if it is at least a second old (shorter windows make
    /// per-minute rates meaningless).
    fn previous_health_snapshot(&self) -> Option<(Instant, NodeSnapshot)> {
        let last = self
            .inner
            .last_health
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(taken, _)| taken.elapsed() >= Duration::from_secs(1))
            .cloned()
    }

    fn remember_health_snapshot(&self, taken: Instant, snapshot: NodeSnapshot) {
        let mut last = self
            .inner
            .last_health
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *last = Some((taken, snapshot));
    }

    async fn dispatch(
        &self,
        name: &str,
        args: Option<JsonObject>,
    ) -> Result<CallToolResult, McpError> {
        let span = tracing::info_span!("tool", name);
        let _enter = span.enter();
        let started = Instant::now();
        let result = match name {
            "get_gpu_inventory" => match parse_args("get_gpu_inventory", args) {
                Ok(a) => structured(self.inventory(a).await),
                Err(e) => Err(e),
            },
            "get_gpu_health" => match parse_args("get_gpu_health", args) {
                Ok(a) => structured(self.health(a).await),
                Err(e) => Err(e),
            },
            "analyze_xid_errors" => match parse_args("analyze_xid_errors", args) {
                Ok(a) => structured(self.xid(a).await),
                Err(e) => Err(e),
            },
            other => {
                let names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
                return Err(McpError::invalid_params(
                    format!(
                        "unknown tool {other:?}; this server has: {}",
                        names.join(", ")
                    ),
                    None,
                ));
            }
        };
        let elapsed_us = started.elapsed().as_micros() as u64;
        Ok(match result {
            Ok(ok) => {
                tracing::debug!(elapsed_us, "tool succeeded");
                ok
            }
            Err(e) => {
                tracing::warn!(elapsed_us, error = %e, "tool failed");
                CallToolResult::error(vec![ContentBlock::text(e.to_string())])
            }
        })
    }
}

/// The Xid analysis' view of a GPU.
fn gpu_identity(d: &DeviceIdentity) -> GpuIdentity {
    GpuIdentity {
        index: d.index,
        uuid: d.uuid.as_ref().ok().cloned(),
        pci: d.pci.as_ref().ok().and_then(|p| {
            PciLocation::from_numeric(p.bus_id.domain, p.bus_id.bus.into(), p.bus_id.device.into())
        }),
    }
}

/// The health rules' input from an Xid analysis: one entry per GPU and code.
fn observed_xids(report: &XidReport) -> Vec<ObservedXid> {
    report
        .summary
        .iter()
        .map(|s| ObservedXid {
            gpu_index: s.gpu_index,
            code: s.code,
            count: u32::try_from(s.count).unwrap_or(u32::MAX),
            last_seen: s
                .last_seen
                .clone()
                .unwrap_or_else(|| "an unknown time".to_string()),
        })
        .collect()
}

fn parse_args<T: DeserializeOwned + Default>(
    tool: &'static str,
    args: Option<JsonObject>,
) -> Result<T, ToolError> {
    match args {
        None => Ok(T::default()),
        Some(obj) => serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| {
            ToolError::Arguments {
                tool,
                message: e.to_string(),
            }
        }),
    }
}

fn structured<T: serde::Serialize>(r: Result<T, ToolError>) -> Result<CallToolResult, ToolError> {
    let value = serde_json::to_value(r?).map_err(|e| ToolError::Internal(e.to_string()))?;
    Ok(CallToolResult::structured(value))
}

const INSTRUCTIONS: &str = "GPU diagnostics for this Kubernetes node, read through NVML. Start with \
get_gpu_inventory, then get_gpu_health for verdicts and actions, then analyze_xid_errors for the \
kernel's Xid errors; the gpu-triage prompt does all three. Every result names its data_source: \
anything but `nvml` is simulated data. All tools are read-only.";

impl ServerHandler for GpuDiagServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .build(),
        )
        .with_server_info(
            Implementation::new("k8s-mcp-agent", env!("CARGO_PKG_VERSION"))
                .with_title("k8s-mcp-agent GPU diagnostics"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.inner.tools.clone())
            .with_ttl_ms(3_600_000)
            .with_cache_scope(CacheScope::Public))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.dispatch(&request.name, request.arguments)
            .await
            .map(Into::into)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let prompts = prompts::PROMPTS
            .iter()
            .map(|p| {
                let args = p
                    .args
                    .iter()
                    .map(|a| {
                        PromptArgument::new(a.name)
                            .with_description(a.description)
                            .with_required(false)
                    })
                    .collect();
                Prompt::new(p.name, Some(p.description), Some(args)).with_title(p.title)
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts)
            .with_ttl_ms(3_600_000)
            .with_cache_scope(CacheScope::Public))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let Some(prompt) = prompts::find(&request.name) else {
            let names: Vec<&str> = prompts::PROMPTS.iter().map(|p| p.name).collect();
            return Err(McpError::invalid_params(
                format!(
                    "unknown prompt {:?}; this server has: {}",
                    request.name,
                    names.join(", ")
                ),
                None,
            ));
        };
        let args: BTreeMap<String, String> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        let text = prompt
            .render(&args)
            .map_err(|e| McpError::invalid_params(e, None))?;
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(prompt.description)
                .into(),
        )
    }
}
