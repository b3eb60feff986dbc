//! k8s-mcp-agent: the GPU-diagnostics MCP server library behind the `agent` binary.

pub mod gpu;
pub mod health;
pub mod k8s;
pub mod prompts;
pub mod server;
pub mod tools;
pub mod xid;
