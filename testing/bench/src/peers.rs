//! The alternatives a user would run instead, started the same way as the agent: the Python MCP SDK
//! server serving the same fixture, the pipe floor (`cat`), and optionally an MCP server installed
//! from a package registry.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::measure::{Repeats, Server};
use crate::stats::Samples;
use crate::stdio::Peer;

/// The Python peer: `inventory_server.py FIXTURE` under the venv's Python with the `mcp` SDK.
pub fn python<'a>(python: &'a Path, script: &'a Path, fixture: &'a Path) -> Server<'a> {
    Server {
        name: "Python mcp SDK peer",
        command: Box::new(move || {
            let mut command = Command::new(python);
            command.arg(script).arg(fixture);
            command
        }),
    }
}

/// The physical limit of a stdio round trip: `cat` echoes each line back unchanged.
pub fn pipe_floor() -> Server<'static> {
    Server {
        name: "cat (pipe floor)",
        command: Box::new(|| Command::new("cat")),
    }
}

/// A registry MCP server started as `node SCRIPT` (its state file kept in a temporary directory).
pub fn registry<'a>(
    name: &'a str,
    node: &'a Path,
    script: &'a Path,
    state: &'a Path,
) -> Server<'a> {
    Server {
        name,
        command: Box::new(move || {
            let mut command = Command::new(node);
            command
                .arg(script)
                .env("MEMORY_FILE_PATH", state.join("memory.jsonl"));
            command
        }),
    }
}

/// Where a Python cold start goes: the bare interpreter, and the interpreter importing the SDK and
/// PyYAML, each timed from spawn to its first printed line (the interpreter's teardown after it is
/// not counted, as a server's would not be).
#[derive(Debug, Clone)]
pub struct PythonStartup {
    pub bare: Samples,
    pub imports: Samples,
}

/// Times `python -c 'print()'` and `python -c 'import mcp.server.mcpserver, yaml; print()'`.
pub fn python_startup(python: &Path, repeats: Repeats) -> anyhow::Result<PythonStartup> {
    let run = |code: &str| -> anyhow::Result<Samples> {
        let mut samples = Samples::default();
        for n in 0..repeats.warmup + repeats.measured {
            let mut command = Command::new(python);
            command.args(["-c", code]);
            let started = Instant::now();
            let mut peer = Peer::spawn("python", command)?;
            peer.recv()
                .with_context(|| format!("{} -c {code:?} printed nothing", python.display()))?;
            let elapsed = started.elapsed();
            peer.finish(Duration::from_secs(5));
            if n >= repeats.warmup {
                samples.push_duration(elapsed);
            }
        }
        Ok(samples)
    };
    Ok(PythonStartup {
        bare: run("print('ready', flush=True)")?,
        imports: run("import mcp.server.mcpserver, yaml; print('ready', flush=True)")?,
    })
}

/// The registry peer's entry script inside an npm prefix, if `hack/bench` installed it there.
pub fn registry_script(prefix: &Path) -> Option<PathBuf> {
    let script = prefix.join("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
    script.is_file().then_some(script)
}
