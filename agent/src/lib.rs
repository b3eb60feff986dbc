//! k8s-mcp-agent: the GPU-diagnostics MCP server library behind the `agent` binary.

pub mod gpu;
