//! k8s-mcp-agent: the GPU-diagnostics MCP server library behind the `agent` binary.

/// One-shot commands and their tables, for a person at a terminal.
pub mod cli;
pub mod clock;
pub mod entry;
pub mod fleet;
pub mod gpu;
pub mod harness;
pub mod health;
pub mod k8s;
pub mod prompts;
pub mod recorder;
pub mod server;
pub mod tools;
pub mod verdict;
pub mod xid;
