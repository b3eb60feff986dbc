//! The MCP server: tool and prompt listing, dispatch of tool calls, and the server's shared state.
//! The tool table lives in `tools.rs`, the tools' bodies in `calls.rs`; nothing here knows about NVML.

mod calls;
mod k8s_calls;
pub mod protocol;
pub mod schema;
mod tools;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, JsonObject, ListPromptsResult, ListToolsResult,
    PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, Role, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use crate::gpu::mock::MockBackend;
use crate::gpu::{GpuBackend, NodeSnapshot};
use crate::prompts;
use crate::xid::LogSource;

pub use tools::{
    GpuRef, GpuScopeArgs, GpuWorkloads, HealthArgs, HealthResult, NoArgs, PodAllocationArgs,
    TimelineArgs, TimelineResult, ToolError, XidArgs, XidResult,
};
/// The node agent's tools, which `agent fleet` forwards to one node.
pub(crate) use tools::{TOOLS as NODE_TOOLS, ToolSpec};
use tools::{TOOLS, parse_args, structured};

/// What the agent's tools may do (`--mode`): only `read-only`, the one permission any tool needs
/// until tools that change GPU state exist; the original chart's `--mode=read-only` keeps working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ToolPermission {
    #[value(name = "read-only")]
    ReadOnly,
}

/// Settings of one server process.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The Kubernetes node the agent runs on (`NODE_NAME`).
    pub node_name: Option<String>,
    pub mode: ToolPermission,
    /// Longest a backend call may take before the tool reports the GPU or driver as hung.
    pub backend_timeout: Duration,
    /// Where the kernel log (Xid errors) is read from.
    pub kernel_log: KernelLogSource,
    /// The flight recorder's history (`--history-dir`), read by `get_gpu_timeline` and the health
    /// check; `None` when this agent has none.
    pub history_dir: Option<std::path::PathBuf>,
    /// How Kubernetes context (pods on GPUs, the Node object) is read.
    pub kube: crate::k8s::KubeOptions,
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
    /// Where to read the log now (a mock node's log grows with its timeline).
    pub fn log_source(&self) -> LogSource {
        match self {
            KernelLogSource::Host => LogSource::Auto,
            KernelLogSource::File(path) => LogSource::File(path.clone()),
            KernelLogSource::Simulated(mock) => LogSource::Lines {
                lines: mock.kernel_log(),
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
    /// See [`GpuDiagServer::tools`].
    tools: OnceLock<Vec<Tool>>,
    /// The last snapshot `get_gpu_health` read: the baseline of the next call's rate rules.
    last_health: std::sync::Mutex<Option<(Instant, NodeSnapshot)>>,
}

impl GpuDiagServer {
    /// A server reading GPUs through `backend`.
    pub fn new(backend: Arc<dyn GpuBackend>, opts: ServerOptions) -> GpuDiagServer {
        GpuDiagServer {
            inner: Arc::new(Inner {
                backend,
                opts,
                overdue: Arc::new(AtomicBool::new(false)),
                tools: OnceLock::new(),
                last_health: std::sync::Mutex::new(None),
            }),
        }
    }

    /// The tool list with its JSON Schemas, built on first use: a session that never lists tools
    /// (or has not yet) does not pay for generating a dozen schemas before it can say `initialize`.
    fn tools(&self) -> &[Tool] {
        self.inner.tools.get_or_init(|| {
            TOOLS
                .iter()
                .map(|t| {
                    protocol::read_only_tool(
                        t.name,
                        t.title,
                        t.description.into(),
                        (t.input)(),
                        (t.output)(),
                    )
                })
                .collect()
        })
    }

    /// Runs a tool call inside its own `tool` span; a failed tool is a result with `isError`.
    async fn dispatch(
        &self,
        name: &str,
        args: Option<JsonObject>,
    ) -> Result<CallToolResult, McpError> {
        protocol::run_tool(tracing::info_span!("tool", name), self.run_tool(name, args)).await
    }

    /// Parses a tool's arguments and runs it.
    async fn run_tool(
        &self,
        name: &str,
        args: Option<JsonObject>,
    ) -> Result<Result<CallToolResult, ToolError>, McpError> {
        Ok(match name {
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
            "get_gpu_timeline" => match parse_args("get_gpu_timeline", args) {
                Ok(a) => structured(self.timeline(a).await),
                Err(e) => Err(e),
            },
            "get_pod_gpu_allocation" => match parse_args("get_pod_gpu_allocation", args) {
                Ok(a) => structured(self.pod_gpu_allocation(a).await),
                Err(e) => Err(e),
            },
            "describe_gpu_node" => match parse_args::<tools::NoArgs>("describe_gpu_node", args) {
                Ok(_) => structured(self.describe_gpu_node().await),
                Err(e) => Err(e),
            },
            other => {
                let names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
                return Err(protocol::unknown("tool", other, &names));
            }
        })
    }
}

const INSTRUCTIONS: &str = "GPU diagnostics for this Kubernetes node, read through NVML. Start with \
get_gpu_inventory, then get_gpu_health for verdicts and actions, then analyze_xid_errors for the \
kernel's Xid errors; the gpu-triage prompt does all three. For something that already happened (a job \
that died, a GPU that was hot or throttled earlier), get_gpu_timeline shows the flight recorder's \
history. Every result names its data_source: anything but `nvml` is simulated data.";

impl ServerHandler for GpuDiagServer {
    fn get_info(&self) -> ServerConfig {
        let config = protocol::server_config("k8s-mcp-agent", "k8s-mcp-agent GPU diagnostics");
        config.with_instructions(format!(
            "{INSTRUCTIONS} This agent runs in {} mode; every tool it offers only reads.",
            match self.inner.opts.mode {
                ToolPermission::ReadOnly => "read-only",
            }
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(protocol::tool_list(self.tools().to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools().iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // A cancelled call stops here (its reply is never sent), so nothing waits for it on EOF.
        tokio::select! {
            result = self.dispatch(&request.name, request.arguments) => result.map(Into::into),
            _ = context.ct.cancelled() => Ok(CallToolResult::error(vec![ContentBlock::text(
                format!("tools/call {} was cancelled by the client", request.name),
            )])
            .into()),
        }
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
        Ok(protocol::prompt_list(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let Some(prompt) = prompts::find(&request.name) else {
            let names: Vec<&str> = prompts::PROMPTS.iter().map(|p| p.name).collect();
            return Err(protocol::unknown("prompt", &request.name, &names));
        };
        let args: BTreeMap<String, String> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, protocol::prompt_arg_text(v)))
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
