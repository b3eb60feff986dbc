//! `agent`: the binary in the node agent's image (`/agent`); the program is `agent::entry`.

fn main() -> std::process::ExitCode {
    agent::entry::main()
}
