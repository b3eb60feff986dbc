//! k8s-mcp-agent: the GPU-diagnostics MCP server library behind the `agent` binary.

pub mod clock;
pub mod gpu;
pub mod health;
pub mod prompts;
pub mod recorder;
pub mod server;
pub mod tools;
pub mod xid;
