//! `k8s-mcp-agent`: the `agent` program under a name that says what it is on a laptop's PATH
//! (`k8s-mcp-agent fleet --context prod` in an MCP host's configuration).

#[path = "../main.rs"]
mod agent_main;

fn main() -> std::process::ExitCode {
    agent_main::main()
}
