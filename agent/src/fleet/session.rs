//! MCP client sessions with the node agents, one per node: opened lazily over exec, initialized
//! once, reused, closed when idle or on exit (by closing the agent's stdin, so it exits 0), and
//! reopened once per call when broken or when the node's agent pod changed.
//!
//! The client side of the protocol is this small line framing (the node agent is the one server it
//! talks to): `initialize`, `notifications/initialized`, `tools/call`, replies matched by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use super::cluster::{Cluster, ExecStream};
use super::errors::NodeError;
use super::model::PodRef;

/// The protocol revision the fleet asks the node agents for.
pub const NODE_PROTOCOL_VERSION: &str = "2025-11-25";

/// How long closing a session waits for the node agent to exit.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// How long an idle session's keepalive may take to be sent before the session counts as broken.
const KEEPALIVE_WAIT: Duration = Duration::from_secs(2);

/// A session that failed mid-way: the next call reopens it.
struct Broken(String);

/// One initialized MCP session with a node agent.
///
/// It holds no buffers between calls: a fleet keeps hundreds of sessions open, and each reply line
/// is read into a string that lives for that one call.
struct NodeClient {
    stdin: std::pin::Pin<Box<dyn AsyncWrite + Send>>,
    stdout: std::pin::Pin<Box<dyn AsyncBufRead + Send>>,
    finished: std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send>>,
    next_id: u64,
}

impl NodeClient {
    /// Runs the `initialize` handshake on a fresh exec stream.
    async fn connect(stream: ExecStream) -> Result<NodeClient, Broken> {
        let mut client = NodeClient {
            stdin: stream.stdin,
            stdout: stream.stdout,
            finished: stream.finished,
            next_id: 0,
        };
        let params = json!({
            "protocolVersion": NODE_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "k8s-mcp-agent-fleet", "version": env!("CARGO_PKG_VERSION")},
        });
        match client.request("initialize", params).await? {
            Ok(_) => {}
            Err(e) => return Err(Broken(format!("initialize was refused: {e}"))),
        }
        client
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(client)
    }

    async fn send(&mut self, message: &Value) -> Result<(), Broken> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| Broken(format!("writing to the node agent failed: {e}")))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| Broken(format!("writing to the node agent failed: {e}")))
    }

    /// Sends a request and waits for its reply: `Ok(Ok(result))`, `Ok(Err(JSON-RPC error text))`, or
    /// `Err` when the session broke.
    async fn request(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, String>, Broken> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let mut line = String::new();
            let n = self
                .stdout
                .read_line(&mut line)
                .await
                .map_err(|e| Broken(format!("reading from the node agent failed: {e}")))?;
            if n == 0 {
                return Err(Broken(
                    "the node agent closed its output (the process exited or the exec stream \
                     ended)"
                        .to_owned(),
                ));
            }
            let Ok(mut message) = serde_json::from_str::<Value>(line.trim()) else {
                return Err(Broken(format!(
                    "the node agent wrote a line that is not JSON: {:?}",
                    line.chars().take(200).collect::<String>()
                )));
            };
            // Notifications and replies to requests an earlier, cancelled call sent are skipped.
            if message.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(error) = message.get("error") {
                let text = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                return Ok(Err(text.to_owned()));
            }
            return Ok(Ok(message
                .get_mut("result")
                .map(Value::take)
                .unwrap_or(Value::Null)));
        }
    }

    /// Calls one tool: its `structuredContent`, or the node agent's error text.
    async fn call_tool(
        &mut self,
        name: &str,
        args: &Value,
    ) -> Result<Result<Value, String>, Broken> {
        let result = match self
            .request("tools/call", json!({"name": name, "arguments": args}))
            .await?
        {
            Ok(result) => result,
            Err(e) => return Ok(Err(e)),
        };
        let text = || {
            result
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            return Ok(Err(text()));
        }
        Ok(match result.get("structuredContent") {
            Some(v) => Ok(v.clone()),
            None => Err(format!(
                "its {name} result had no structuredContent: {}",
                text()
            )),
        })
    }

    /// Keeps an idle exec connection alive: an empty write, which an exec stream sends as a
    /// WebSocket ping (a no-op for streams without one).
    async fn keepalive(&mut self) -> Result<(), Broken> {
        let sent = async {
            let _empty: usize = self.stdin.write(&[]).await?;
            self.stdin.flush().await
        };
        match tokio::time::timeout(KEEPALIVE_WAIT, sent).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Broken(format!("keepalive failed: {e}"))),
            Err(_) => Err(Broken("keepalive timed out".to_owned())),
        }
    }

    /// Closes the agent's stdin (it exits 0 on EOF) and waits briefly for it to end.
    async fn close(mut self) {
        let _ = self.stdin.shutdown().await;
        drop(self.stdin);
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut self.finished).await;
    }
}

#[derive(Default)]
struct Slot {
    session: Option<(PodRef, NodeClient)>,
    /// A call started and never finished (its deadline cancelled it): the session's state is unknown.
    busy: bool,
    last_used: Option<Instant>,
}

/// Every node's session, opened on first use.
pub struct Pool<C> {
    cluster: Arc<C>,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    idle: Duration,
}

impl<C: Cluster> Pool<C> {
    /// An empty pool; sessions unused for `idle` are closed by [`Pool::reap_idle`].
    pub fn new(cluster: Arc<C>, idle: Duration) -> Pool<C> {
        Pool {
            cluster,
            slots: Mutex::new(HashMap::new()),
            idle,
        }
    }

    fn slot(&self, node: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(node.to_owned()).or_default().clone()
    }

    /// Sessions currently open.
    pub fn open_sessions(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .values()
            .filter(|s| s.try_lock().map(|s| s.session.is_some()).unwrap_or(true))
            .count()
    }

    /// Calls `tool` on `node`'s agent in `pod`, opening or reopening its session as needed; a session
    /// that breaks is reopened once.
    pub async fn call(
        &self,
        node: &str,
        pod: &PodRef,
        tool: &str,
        args: &Value,
    ) -> Result<Value, NodeError> {
        let slot = self.slot(node);
        let mut guard = slot.lock().await;
        let slot: &mut Slot = &mut guard;
        let stale = slot.busy || slot.session.as_ref().is_some_and(|(p, _)| p != pod);
        if stale && let Some((_, client)) = slot.session.take() {
            tokio::spawn(client.close());
        }
        slot.busy = true;
        let mut reopened = false;
        loop {
            let (_, client) = match &mut slot.session {
                Some(session) => session,
                None => {
                    let stream = self.cluster.exec(pod).await;
                    let stream = match stream {
                        Ok(stream) => stream,
                        Err(e) => {
                            slot.busy = false;
                            return Err(e);
                        }
                    };
                    match NodeClient::connect(stream).await {
                        Ok(client) => slot.session.insert((pod.clone(), client)),
                        Err(Broken(why)) => {
                            slot.busy = false;
                            return Err(NodeError::Session(why));
                        }
                    }
                }
            };
            match client.call_tool(tool, args).await {
                Ok(answer) => {
                    slot.busy = false;
                    slot.last_used = Some(Instant::now());
                    return answer.map_err(NodeError::Agent);
                }
                Err(Broken(why)) => {
                    if let Some((_, client)) = slot.session.take() {
                        tokio::spawn(client.close());
                    }
                    if reopened {
                        slot.busy = false;
                        return Err(NodeError::Session(why));
                    }
                    tracing::debug!(node, reason = %why, "session broke; reopening it once");
                    reopened = true;
                }
            }
        }
    }

    /// Closes sessions unused for the idle period and keeps the others' connections alive (one
    /// ping per pass, every half idle period); runs until the process ends.
    pub async fn reap_idle(self: Arc<Self>) {
        let period = (self.idle / 2).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(period).await;
            let slots: Vec<_> = {
                let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                slots.values().cloned().collect()
            };
            for slot in slots {
                let Ok(mut slot) = slot.try_lock() else {
                    continue;
                };
                if slot.busy {
                    continue;
                }
                let idle = slot.last_used.is_some_and(|t| t.elapsed() >= self.idle);
                if idle && let Some((pod, client)) = slot.session.take() {
                    tracing::debug!(pod = %pod.name, "closing idle session");
                    tokio::spawn(client.close());
                } else if let Some((pod, client)) = &mut slot.session
                    && let Err(Broken(why)) = client.keepalive().await
                {
                    tracing::debug!(pod = %pod.name, reason = %why, "closing a broken idle session");
                    if let Some((_, client)) = slot.session.take() {
                        tokio::spawn(client.close());
                    }
                }
            }
        }
    }

    /// Closes every session (the node agents see EOF and exit) and waits for them to end.
    pub async fn close_all(&self) {
        let slots: Vec<_> = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.drain().map(|(_, s)| s).collect()
        };
        let mut closing = Vec::new();
        for slot in slots {
            // A call still holding its slot is being cancelled with the process: nothing to close.
            if let Ok(mut slot) = slot.try_lock()
                && let Some((_, client)) = slot.session.take()
            {
                closing.push(client.close());
            }
        }
        futures::future::join_all(closing).await;
    }
}
