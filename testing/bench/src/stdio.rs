//! A line-oriented client for a child process on pipes: spawn, send a line, time until the matching
//! reply arrives. It speaks just enough JSON-RPC to drive any MCP server over stdio the same way.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The MCP protocol version every server is asked for (supported by the agent and both SDK peers).
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Driving a child process failed.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("cannot start {name}: {source} (is it built/installed? see hack/bench)")]
    Spawn {
        name: String,
        source: std::io::Error,
    },
    #[error("{name}: pipe {op} failed: {source}")]
    Pipe {
        name: String,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{name} closed stdout before answering (it exited early; run it by hand to see why)")]
    Closed { name: String },
    #[error("{name} answered request {id} with an error or a failed tool call: {reply}")]
    Failed {
        name: String,
        id: u64,
        reply: String,
    },
}

/// A running child with its stdin and stdout; killed and reaped when dropped.
pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Peer {
    /// Starts `command` with piped stdin/stdout and stderr discarded (the servers log there).
    pub fn spawn(name: &str, mut command: Command) -> Result<Peer, StdioError> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| StdioError::Spawn {
                name: name.to_owned(),
                source,
            })?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(
            child
                .stdout
                .take()
                .expect("stdout was configured as a pipe"),
        );
        Ok(Peer {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
            line: String::with_capacity(64 * 1024),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line (a newline is added) and flushes.
    pub fn send(&mut self, line: &str) -> Result<(), StdioError> {
        let pipe_err = |source| StdioError::Pipe {
            name: self.name.clone(),
            op: "write",
            source,
        };
        let stdin = self.stdin.as_mut().ok_or_else(|| StdioError::Closed {
            name: self.name.clone(),
        })?;
        stdin.write_all(line.as_bytes()).map_err(pipe_err)?;
        stdin.write_all(b"\n").map_err(pipe_err)?;
        stdin.flush().map_err(pipe_err)
    }

    /// Reads the next line; the returned slice lives until the next read.
    pub fn recv(&mut self) -> Result<&str, StdioError> {
        self.line.clear();
        let n = self
            .stdout
            .read_line(&mut self.line)
            .map_err(|source| StdioError::Pipe {
                name: self.name.clone(),
                op: "read",
                source,
            })?;
        if n == 0 {
            return Err(StdioError::Closed {
                name: self.name.clone(),
            });
        }
        Ok(self.line.trim_end())
    }

    /// Sends a JSON-RPC request and waits for the reply with its `id`, skipping notifications. Returns
    /// the time from before the write to the arrival of the reply line (parsing happens after).
    pub fn call(&mut self, request: &str, id: u64) -> Result<(Duration, Value), StdioError> {
        let started = Instant::now();
        self.send(request)?;
        self.await_reply(id).map(|(at, v)| (at - started, v))
    }

    /// Waits for the reply to request `id`: the instant its line arrived, and the parsed reply. A reply
    /// with a JSON-RPC error or `isError: true` is an error: the bench only measures successful work.
    pub fn await_reply(&mut self, id: u64) -> Result<(Instant, Value), StdioError> {
        loop {
            self.recv()?;
            let arrived = Instant::now();
            let reply: Value = serde_json::from_str(&self.line).unwrap_or(Value::Null);
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            let failed = reply.get("error").is_some()
                || reply.pointer("/result/isError") == Some(&Value::Bool(true));
            if failed {
                return Err(StdioError::Failed {
                    name: self.name.clone(),
                    id,
                    reply: truncate(&self.line, 400),
                });
            }
            return Ok((arrived, reply));
        }
    }

    /// Closes stdin (the polite way to end an MCP session) and waits up to `grace` for the exit.
    pub fn finish(mut self, grace: Duration) {
        self.stdin.take();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stdin.take();
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The `initialize` request every client sends first.
pub fn initialize(id: u64) -> String {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "k8s-mcp-agent-bench", "version": "1"}
        }
    })
    .to_string()
}

/// The `notifications/initialized` notification that completes the handshake.
pub fn initialized() -> String {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string()
}

/// A `tools/call` request.
pub fn tools_call(id: u64, tool: &str, arguments: Value) -> String {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}
    })
    .to_string()
}

/// A `tools/list` request.
pub fn tools_list(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_cat() {
        let mut cat = Peer::spawn("cat", Command::new("cat")).expect("cat runs");
        let request = tools_call(7, "get_gpu_inventory", json!({}));
        let (elapsed, reply) = cat.call(&request, 7).expect("echo");
        assert_eq!(reply["params"]["name"], "get_gpu_inventory");
        assert!(elapsed > Duration::ZERO);
        cat.finish(Duration::from_secs(2));
    }

    #[test]
    fn error_replies_are_errors_and_eof_is_closed() {
        let mut cat = Peer::spawn("cat", Command::new("cat")).expect("cat runs");
        let failing = json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32601}}).to_string();
        let err = cat.call(&failing, 3).unwrap_err();
        assert!(err.to_string().contains("answered request 3 with an error"));
        let mut head = Command::new("head");
        head.arg("-c0");
        let mut closed = Peer::spawn("head", head).expect("head runs");
        assert!(matches!(closed.recv(), Err(StdioError::Closed { .. })));
    }

    #[test]
    fn handshake_lines_are_json_rpc() {
        let init: Value = serde_json::from_str(&initialize(1)).unwrap();
        assert_eq!(init["params"]["protocolVersion"], PROTOCOL_VERSION);
        let list: Value = serde_json::from_str(&tools_list(2)).unwrap();
        assert_eq!(list["method"], "tools/list");
        assert!(!initialized().contains("\"id\""));
    }
}
