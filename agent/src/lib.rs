//! k8s-mcp-agent: the GPU-diagnostics MCP server library behind the `agent` binary.

pub mod fleet;
pub mod gpu;
pub mod harness;
pub mod health;
pub mod prompts;
pub mod server;
pub mod tools;
pub mod xid;
