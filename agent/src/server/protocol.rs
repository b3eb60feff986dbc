//! The MCP handling both servers share — the node agent's [`GpuDiagServer`](super::GpuDiagServer) and
//! `agent fleet`'s `FleetServer`: how a read-only tool is listed, how a call's arguments are parsed,
//! how a call runs (its span, timing, a failed tool as an `isError` result), the list results and the
//! errors for unknown names, and serving a handler on stdio until the client or a signal ends it.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CacheScope, CallToolResult, ContentBlock, Implementation, JsonObject, ListPromptsResult,
    ListToolsResult, Prompt, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::transport::{LineTransport, TransportLimits};

/// How long hosts may cache the tool and prompt lists (they never change while a server runs).
const LIST_TTL_MS: u64 = 3_600_000;

/// A tool as listed: every tool of both servers only reads.
pub fn read_only_tool(
    name: &'static str,
    title: &str,
    description: String,
    input: Arc<JsonObject>,
    output: Arc<JsonObject>,
) -> Tool {
    Tool::new(name, description, input)
        .with_title(title)
        .with_raw_output_schema(output)
        .with_annotations(
            ToolAnnotations::with_title(title)
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        )
}

/// A tool's arguments; a call without arguments gets the defaults.
pub fn parse_args<T: DeserializeOwned + Default>(
    args: Option<JsonObject>,
) -> Result<T, serde_json::Error> {
    match args {
        None => Ok(T::default()),
        Some(obj) => serde_json::from_value(serde_json::Value::Object(obj)),
    }
}

/// A tool's typed result as `structuredContent` (and its JSON text).
pub fn structured_value<T: serde::Serialize>(
    value: T,
) -> Result<CallToolResult, serde_json::Error> {
    Ok(CallToolResult::structured(serde_json::to_value(value)?))
}

/// Runs one tool call inside `span`: a failed tool becomes a result with `isError` (logged with the
/// call's duration); only protocol errors (an unknown tool) stay errors.
pub async fn run_tool<E: Display>(
    span: tracing::Span,
    call: impl Future<Output = Result<Result<CallToolResult, E>, McpError>>,
) -> Result<CallToolResult, McpError> {
    // `instrument`, not `enter`: a span entered across an await stays current for whatever else the
    // thread polls meanwhile, so a concurrent call's log lines would carry this tool's name.
    async move {
        let started = Instant::now();
        let result = call.await?;
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
    .instrument(span)
    .await
}

/// The error for a call of a tool or prompt the server does not have, naming those it has.
pub fn unknown(what: &str, name: &str, names: &[&str]) -> McpError {
    McpError::invalid_params(
        format!(
            "unknown {what} {name:?}; this server has: {}",
            names.join(", ")
        ),
        None,
    )
}

/// `tools/list`'s answer: every tool, cacheable.
pub fn tool_list(tools: Vec<Tool>) -> ListToolsResult {
    ListToolsResult::with_all_items(tools)
        .with_ttl_ms(LIST_TTL_MS)
        .with_cache_scope(CacheScope::Public)
}

/// `prompts/list`'s answer: every prompt, cacheable.
pub fn prompt_list(prompts: Vec<Prompt>) -> ListPromptsResult {
    ListPromptsResult::with_all_items(prompts)
        .with_ttl_ms(LIST_TTL_MS)
        .with_cache_scope(CacheScope::Public)
}

/// A prompt argument's text: strings as they are, anything else as JSON.
pub fn prompt_arg_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// What `initialize` answers: tools and prompts, the server's name and title (callers add their
/// instructions).
pub fn server_config(name: &str, title: &str) -> ServerConfig {
    ServerConfig::new(
        ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .build(),
    )
    .with_server_info(
        Implementation::new(name, env!("CARGO_PKG_VERSION")).with_title(title.to_owned()),
    )
}

/// Serves `handler` on stdin/stdout until the client closes stdin (every reply queued by then
/// reaches stdout, waiting up to 5 s) or `shutdown` resolves (logged with the signal's name).
pub async fn serve_stdio<H: ServerHandler>(
    handler: H,
    limits: TransportLimits,
    shutdown: impl Future<Output = &'static str>,
) {
    let stdin = tokio::io::BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    let (transport, writer) = LineTransport::new(stdin, tokio::io::stdout(), limits);
    let session = async {
        match handler.serve(transport).await {
            Ok(running) => {
                if let Err(e) = running.waiting().await {
                    tracing::warn!(error = %e, "MCP session ended with an error");
                }
            }
            // EOF or a dead client before `initialize` completed: a normal way for a session to end.
            Err(e) => tracing::debug!(error = %e, "MCP session closed before it started"),
        }
    };
    tokio::select! {
        _ = session => {
            let _ = tokio::time::timeout(Duration::from_secs(5), writer.task).await;
        }
        signal = shutdown => tracing::info!(signal, "shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_what_the_server_has() {
        let e = unknown("tool", "nope", &["a", "b"]);
        assert_eq!(e.message, "unknown tool \"nope\"; this server has: a, b");
    }

    #[test]
    fn missing_arguments_are_the_defaults_and_prompt_arguments_become_text() {
        #[derive(serde::Deserialize, Default, Debug, PartialEq)]
        struct Args {
            #[serde(default)]
            n: u32,
        }
        assert_eq!(parse_args::<Args>(None).unwrap(), Args { n: 0 });
        let obj = serde_json::json!({"n": 3}).as_object().unwrap().clone();
        assert_eq!(parse_args::<Args>(Some(obj)).unwrap(), Args { n: 3 });
        assert_eq!(prompt_arg_text(serde_json::json!("x")), "x");
        assert_eq!(prompt_arg_text(serde_json::json!(5)), "5");
    }
}
