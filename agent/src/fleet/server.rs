//! The fleet's MCP server: the fleet tools, the node agent's tools forwarded to one `node`, and the
//! `fleet-triage` prompt. Schemas go through the node agent's post-processing (`server::schema`).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, JsonObject, ListPromptsResult, ListToolsResult,
    PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, Role, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Fleet;
use super::cluster::Cluster;
use super::errors::ApiError;
use super::model::{FleetHealth, FleetHealthArgs, FleetXid, FleetXidArgs, ListNodesArgs, NodeList};
use crate::server::protocol::{self, read_only_tool};
use crate::server::schema::{input_schema, output_schema};
use crate::server::{NODE_TOOLS, ToolSpec};

/// The fleet tools: name, title, description, input and output schema.
const FLEET_TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "list_gpu_nodes",
        title: "GPU nodes of the cluster",
        description: "List every node with NVIDIA GPUs (label nvidia.com/gpu.present=true, nvidia.com/gpu \
                      capacity or a GPU ResourceSlice) and every node with an agent pod, from the \
                      Kubernetes API only (no node is contacted): GPU capacity/allocatable and product, \
                      Ready/unschedulable/GPU taints, the agent pod and its readiness, the \
                      GpuDiagnosticsConfig and access mode serving it, the operator's nodeProblems \
                      entry, and whether you may exec into the agent pods (needed by every other tool).",
        input: input_schema::<ListNodesArgs>,
        output: output_schema::<NodeList>,
    },
    ToolSpec {
        name: "get_fleet_gpu_health",
        title: "GPU health of the fleet",
        description: "Run get_gpu_health on every selected GPU node in parallel and rank the nodes worst \
                      first (FAIL, UNKNOWN, WARN, PASS), with counts per verdict, each node's GPU \
                      verdicts and findings. A node that does not answer is UNKNOWN with an error \
                      saying why and what to do (no agent pod, pod not ready, exec forbidden, timed \
                      out, the node agent's own error).",
        input: input_schema::<FleetHealthArgs>,
        output: output_schema::<FleetHealth>,
    },
    ToolSpec {
        name: "get_fleet_xid_errors",
        title: "Xid errors of the fleet",
        description: "Run analyze_xid_errors on every selected GPU node in parallel: per node the Xid \
                      codes, counts, GPUs and recommended action; fleet-wide, per code, the events, \
                      the nodes that logged it and the catalog's severity and immediate action. Nodes \
                      worst first; a node that does not answer is UNKNOWN with its error.",
        input: input_schema::<FleetXidArgs>,
        output: output_schema::<FleetXid>,
    },
];

const INSTRUCTIONS: &str = "GPU diagnostics for every GPU node of a Kubernetes cluster, through the \
Kubernetes API with your kubeconfig. Start with list_gpu_nodes (no node is contacted), then \
get_fleet_gpu_health and get_fleet_xid_errors for the whole fleet; get_gpu_inventory, get_gpu_health \
and analyze_xid_errors take a `node` and look at one node in depth. The fleet-triage prompt does all \
of it. Every tool only reads.";

const NODE_ARG_DESCRIPTION: &str = "The Kubernetes node to ask (a name from list_gpu_nodes).";

/// The fleet's MCP handler (cheap to clone).
pub struct FleetServer<C> {
    fleet: Arc<Fleet<C>>,
    tools: Arc<Vec<Tool>>,
}

impl<C> Clone for FleetServer<C> {
    fn clone(&self) -> Self {
        FleetServer {
            fleet: self.fleet.clone(),
            tools: self.tools.clone(),
        }
    }
}

/// A node tool's schema with a required string property `key` added (first).
pub fn with_required(schema: &JsonObject, key: &str, description: &str) -> JsonObject {
    let mut schema = schema.clone();
    let properties = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(JsonObject::new()));
    if let Value::Object(p) = properties {
        p.remove(key);
        let node =
            serde_json::json!({"type": "string", "minLength": 1, "description": description});
        let mut with = JsonObject::from_iter([(key.to_owned(), node)]);
        with.extend(std::mem::take(p));
        *p = with;
    }
    let required = schema
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(r) = required {
        r.retain(|k| k != key);
        r.insert(0, Value::String(key.into()));
    }
    schema
}

/// Every tool the fleet lists: its own, then the node agent's with `node`.
pub fn fleet_tools() -> Vec<Tool> {
    let own = FLEET_TOOLS.iter().map(|t| {
        read_only_tool(
            t.name,
            t.title,
            t.description.to_owned(),
            (t.input)(),
            (t.output)(),
        )
    });
    let forwarded = NODE_TOOLS.iter().map(|t| {
        read_only_tool(
            t.name,
            &format!("{} of one node", t.title),
            format!(
                "On one node of the cluster (argument `node`, through its agent pod): {}",
                t.description
            ),
            Arc::new(with_required(&(t.input)(), "node", NODE_ARG_DESCRIPTION)),
            Arc::new(with_required(
                &(t.output)(),
                "node_name",
                "The Kubernetes node that answered.",
            )),
        )
    });
    own.chain(forwarded).collect()
}

impl<C: Cluster> FleetServer<C> {
    /// A server answering from `fleet`.
    pub fn new(fleet: Arc<Fleet<C>>) -> FleetServer<C> {
        FleetServer {
            fleet,
            tools: Arc::new(fleet_tools()),
        }
    }

    /// Runs a tool call inside its own `fleet_tool` span; a failed tool is a result with `isError`.
    async fn dispatch(
        &self,
        name: &str,
        args: Option<JsonObject>,
    ) -> Result<CallToolResult, McpError> {
        protocol::run_tool(
            tracing::info_span!("fleet_tool", name),
            self.run_tool(name, args),
        )
        .await
    }

    /// Parses a tool's arguments and runs it: a fleet tool here, a node tool on its node.
    async fn run_tool(
        &self,
        name: &str,
        args: Option<JsonObject>,
    ) -> Result<Result<CallToolResult, String>, McpError> {
        Ok(match name {
            "list_gpu_nodes" => match parse::<ListNodesArgs>(name, args) {
                Ok(a) => structured(self.fleet.list_gpu_nodes(a).await),
                Err(e) => Err(e),
            },
            "get_fleet_gpu_health" => match parse::<FleetHealthArgs>(name, args) {
                Ok(a) => structured(self.fleet.fleet_health(a).await),
                Err(e) => Err(e),
            },
            "get_fleet_xid_errors" => match parse::<FleetXidArgs>(name, args) {
                Ok(a) => structured(self.fleet.fleet_xid(a).await),
                Err(e) => Err(e),
            },
            other if NODE_TOOLS.iter().any(|t| t.name == other) => self.forward(other, args).await,
            other => {
                let names: Vec<&str> = self.tools.iter().map(|t| t.name.as_ref()).collect();
                return Err(protocol::unknown("tool", other, &names));
            }
        })
    }

    async fn forward(
        &self,
        tool: &str,
        args: Option<JsonObject>,
    ) -> Result<CallToolResult, String> {
        let mut args = args.unwrap_or_default();
        let node = match args.remove("node") {
            Some(Value::String(n)) if !n.trim().is_empty() => n,
            Some(other) => {
                return Err(format!(
                    "invalid arguments for {tool}: `node` must be a node name (a string), got {other}"
                ));
            }
            None => {
                return Err(format!(
                    "invalid arguments for {tool}: `node` is required: the node to ask (list_gpu_nodes \
                     names them)"
                ));
            }
        };
        match self.fleet.forward(&node, tool, Value::Object(args)).await {
            Ok(Ok(value)) => Ok(CallToolResult::structured(value)),
            Ok(Err(e)) => Err(format!("node {node}: {e}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn parse<T: DeserializeOwned + Default>(tool: &str, args: Option<JsonObject>) -> Result<T, String> {
    protocol::parse_args(args).map_err(|e| format!("invalid arguments for {tool}: {e}"))
}

fn structured<T: serde::Serialize>(r: Result<T, ApiError>) -> Result<CallToolResult, String> {
    protocol::structured_value(r.map_err(|e| e.to_string())?)
        .map_err(|e| format!("internal error: {e}"))
}

/// The `fleet-triage` prompt's arguments.
const TRIAGE_ARGS: &[(&str, &str)] = &[
    (
        "selector",
        "Only nodes matching this label selector; every GPU node when omitted",
    ),
    (
        "since_seconds",
        "Only Xid errors of the last N seconds; each node's whole kernel log when omitted",
    ),
];

/// The `fleet-triage` prompt's text.
pub fn triage_prompt(selector: Option<&str>, since_seconds: Option<u64>) -> String {
    let scope = selector
        .map(|s| format!(", \"selector\": {s:?}"))
        .unwrap_or_default();
    let since = since_seconds
        .map(|s| format!(", \"since_seconds\": {s}"))
        .unwrap_or_default();
    format!(
        "Triage the GPUs of this Kubernetes cluster.\n\
         1. Call list_gpu_nodes {{{}}}. If exec_access says `denied` for a namespace, stop and tell me \
         the command it names; no other tool can reach the nodes without it.\n\
         2. Call get_fleet_gpu_health {{{}}}. Report the fleet verdict and the counts, then every node \
         that is not PASS, worst first: for FAIL and WARN its failing GPUs (index, UUID) and each \
         finding's message and action; for UNKNOWN the error, which says what to fix.\n\
         3. Call get_fleet_xid_errors {{{}}}. List the Xid codes seen fleet-wide, most severe first, \
         with the nodes that logged them and the catalog's immediate action.\n\
         4. For the worst one to three nodes, call get_gpu_health and analyze_xid_errors with \
         {{\"node\": NAME}} and explain what the evidence shows.\n\
         End with a short list of actions per node (drain, reset GPU, reboot, RMA, fix the agent pod), \
         most urgent first. Only report what the tools returned.",
        scope.trim_start_matches(", "),
        scope.trim_start_matches(", "),
        format!("{scope}{since}").trim_start_matches(", "),
    )
}

impl<C: Cluster> ServerHandler for FleetServer<C> {
    fn get_info(&self) -> ServerConfig {
        protocol::server_config(
            "k8s-mcp-agent-fleet",
            "k8s-mcp-agent GPU diagnostics for a cluster",
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(protocol::tool_list(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
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
        let args = TRIAGE_ARGS
            .iter()
            .map(|(name, description)| {
                PromptArgument::new(*name)
                    .with_description(*description)
                    .with_required(false)
            })
            .collect();
        let prompt = Prompt::new(
            "fleet-triage",
            Some("Find the cluster's failing GPUs, say why and what to do, worst node first"),
            Some(args),
        )
        .with_title("Fleet GPU triage");
        Ok(protocol::prompt_list(vec![prompt]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if request.name != "fleet-triage" {
            return Err(protocol::unknown(
                "prompt",
                &request.name,
                &["fleet-triage"],
            ));
        }
        let mut selector = None;
        let mut since = None;
        for (key, value) in request.arguments.unwrap_or_default() {
            let text = protocol::prompt_arg_text(value);
            match key.as_str() {
                "selector" => selector = Some(text).filter(|s| !s.trim().is_empty()),
                "since_seconds" if text.trim().is_empty() => {}
                "since_seconds" => {
                    since = Some(text.trim().parse::<u64>().map_err(|_| {
                        McpError::invalid_params(
                            format!("argument \"since_seconds\" must be a non-negative integer, got {text:?}"),
                            None,
                        )
                    })?)
                }
                other => {
                    return Err(McpError::invalid_params(
                        format!(
                            "prompt \"fleet-triage\" has no argument {other:?}; its arguments are: \
                             selector, since_seconds"
                        ),
                        None,
                    ));
                }
            }
        }
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            triage_prompt(selector.as_deref(), since),
        )])
        .with_description("Find the cluster's failing GPUs, worst node first")
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_read_only_closed_and_forwarded_tools_require_a_node() {
        let tools = fleet_tools();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names[..3],
            [
                "list_gpu_nodes",
                "get_fleet_gpu_health",
                "get_fleet_xid_errors"
            ]
        );
        for node_tool in ["get_gpu_inventory", "get_gpu_health", "analyze_xid_errors"] {
            assert!(names.contains(&node_tool), "{names:?}");
        }
        for t in &tools {
            let input = serde_json::to_string(&t.input_schema).unwrap();
            assert_eq!(t.input_schema["additionalProperties"], false, "{}", t.name);
            assert!(
                !input.contains("null") && !input.contains("$ref"),
                "{input}"
            );
            assert!(t.output_schema.is_some(), "{}", t.name);
            let hints = t.annotations.as_ref().unwrap();
            assert_eq!(hints.read_only_hint, Some(true));
            if NODE_TOOLS.iter().any(|n| n.name == t.name) {
                assert_eq!(t.input_schema["required"][0], "node");
                assert_eq!(t.input_schema["properties"]["node"]["type"], "string");
                let output = t.output_schema.as_ref().unwrap();
                assert_eq!(output["required"][0], "node_name", "{}", t.name);
                let required = output["required"].as_array().unwrap();
                let mut unique = required.clone();
                unique.dedup();
                assert_eq!(&unique, required, "{}", t.name);
            }
        }
    }

    #[test]
    fn the_triage_prompt_passes_its_arguments_to_the_tools() {
        let text = triage_prompt(Some("pool=a100"), Some(3600));
        assert!(
            text.contains("list_gpu_nodes {\"selector\": \"pool=a100\"}"),
            "{text}"
        );
        assert!(
            text.contains(
                "get_fleet_xid_errors {\"selector\": \"pool=a100\", \"since_seconds\": 3600}"
            ),
            "{text}"
        );
        let plain = triage_prompt(None, None);
        assert!(plain.contains("get_fleet_gpu_health {}"), "{plain}");
    }
}
