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

use crate::gpu::{BackendError, GpuBackend, GpuFilter};
use crate::prompts;
use crate::tools::inventory::{self, InventoryReport};

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
}

/// A tool's name, title and description, and its argument/result types' schemas.
struct ToolSpec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    input: fn() -> Arc<JsonObject>,
    output: fn() -> Arc<JsonObject>,
}

const TOOLS: &[ToolSpec] = &[ToolSpec {
    name: "get_gpu_inventory",
    title: "GPU inventory",
    description: "List this node's NVIDIA GPUs and their current state: model, UUID, serial, PCI bus id, \
                  compute capability, VBIOS, memory (bytes), temperature and thresholds (°C), power draw \
                  and limit (W), clocks (MHz), utilization (%), PCIe link, persistence/MIG/compute mode, \
                  ECC mode, NVLinks and running processes; plus driver, CUDA and NVML versions. Values the \
                  GPU cannot report are listed under `unavailable` with the reason.",
    input: schema::input_schema::<GpuScopeArgs>,
    output: schema::output_schema::<InventoryReport>,
}];

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
