//! `k8s-mcp-agent`: the `agent` program under a name that says what it is on a laptop's PATH
//! (`k8s-mcp-agent fleet --context prod` in an MCP host's configuration).

fn main() -> std::process::ExitCode {
    agent::entry::main()
}
