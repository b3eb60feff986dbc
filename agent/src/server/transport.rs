//! The stdio transport: one JSON-RPC message per line on stdin/stdout, hardened for `kubectl exec`.
//!
//! It replaces rmcp's stdio transport to add what a diagnostic session needs: a `-32700` parse error
//! (id null) for a line that is not JSON instead of silence, a clear `-32600` for batches, non-object
//! messages and over-long lines, replies to requests still in flight flushed before exit on stdin EOF,
//! an idle timeout for sessions whose client vanished without closing stdin (SPDY exec cannot
//! half-close), and shutdown when stdout is gone (EPIPE). All writes happen in one writer task, so a
//! cancelled receive can never leave half a line on stdout.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::ClientRequest;
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// JSON-RPC error codes this transport answers with itself.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;

/// Standard MCP request methods: a message naming one of them that rmcp cannot type (params missing or
/// malformed) is answered with invalid params, not "method not found".
const MCP_METHODS: &[&str] = &[
    "initialize",
    "server/discover",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "completion/complete",
    "logging/setLevel",
];

/// Limits of one session.
#[derive(Clone, Debug)]
pub struct TransportLimits {
    /// Longest accepted line in bytes; longer lines are discarded with a `-32600` error.
    pub max_line_bytes: usize,
    /// Close the session when no message arrives for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// On stdin EOF, wait at most this long for replies to requests still being answered.
    pub drain_timeout: Duration,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            max_line_bytes: 4 * 1024 * 1024,
            idle_timeout: Some(Duration::from_secs(30 * 60)),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Requests received and not yet answered, by JSON id.
#[derive(Default)]
struct InFlight {
    ids: Mutex<HashSet<String>>,
    answered: Notify,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A poisoned set only means another task panicked mid-insert; the data is still usable.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The line transport, generic over its streams so tests can drive it through in-memory pipes.
pub struct LineTransport<R> {
    reader: R,
    line: Vec<u8>,
    discarding: bool,
    limits: TransportLimits,
    out: mpsc::UnboundedSender<String>,
    writer_gone: Arc<Notify>,
    writer_alive: Arc<std::sync::atomic::AtomicBool>,
    in_flight: Arc<InFlight>,
    eof: bool,
}

/// The task writing stdout; await it after the service ends so every reply is flushed.
pub struct Writer {
    pub task: JoinHandle<()>,
}

impl<R: AsyncBufRead + Unpin + Send> LineTransport<R> {
    /// A transport reading `reader` and writing lines to `writer` from a dedicated task.
    pub fn new<W>(reader: R, writer: W, limits: TransportLimits) -> (Self, Writer)
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out, rx) = mpsc::unbounded_channel();
        let writer_gone = Arc::new(Notify::new());
        let writer_alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let task = tokio::spawn(write_lines(
            writer,
            rx,
            writer_gone.clone(),
            writer_alive.clone(),
        ));
        (
            LineTransport {
                reader,
                line: Vec::new(),
                discarding: false,
                limits,
                out,
                writer_gone,
                writer_alive,
                in_flight: Arc::default(),
                eof: false,
            },
            Writer { task },
        )
    }

    fn write_raw(&self, line: String) {
        // A closed channel means stdout is gone; the receive loop notices through `writer_gone`.
        let _ = self.out.send(line);
    }

    fn reply_error(&self, id: Value, code: i64, message: String) {
        let msg = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
        self.write_raw(msg.to_string());
    }

    /// Reads one line into `self.line`, bounded by `max_line_bytes`. Cancellation-safe: partial data
    /// stays in `self.line` and the next call resumes it.
    async fn read_line(&mut self) -> std::io::Result<LineRead> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(if self.line.is_empty() || self.discarding {
                    LineRead::Eof
                } else {
                    // A last line without a newline is still a message.
                    LineRead::Line
                });
            }
            let (chunk, done) = match memchr(b'\n', available) {
                Some(pos) => (&available[..=pos], true),
                None => (available, false),
            };
            let used = chunk.len();
            if !self.discarding {
                if self.line.len() + chunk.len() > self.limits.max_line_bytes {
                    self.discarding = true;
                    self.line.clear();
                    self.line.shrink_to(64 * 1024);
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.reader.consume(used);
            if done {
                if self.discarding {
                    self.discarding = false;
                    return Ok(LineRead::Oversized);
                }
                return Ok(LineRead::Line);
            }
        }
    }

    /// Classifies one complete line: a message for rmcp, or an error answered here.
    fn take_message(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let line = std::mem::take(&mut self.line);
        let text = trim_line(&line);
        if text.is_empty() {
            return None;
        }
        let value: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "unparsable line on stdin");
                self.reply_error(
                    Value::Null,
                    PARSE_ERROR,
                    format!(
                        "Parse error: the line is not valid JSON ({e}). Send one JSON-RPC 2.0 message \
                         per line, UTF-8, without embedded newlines."
                    ),
                );
                return None;
            }
        };
        let obj = match value {
            Value::Object(obj) => obj,
            Value::Array(_) => {
                self.reply_error(
                    Value::Null,
                    INVALID_REQUEST,
                    "Invalid Request: JSON-RPC batches are not supported (MCP removed them in \
                     2025-06-18); send each message on its own line."
                        .into(),
                );
                return None;
            }
            other => {
                self.reply_error(
                    Value::Null,
                    INVALID_REQUEST,
                    format!(
                        "Invalid Request: expected a JSON-RPC 2.0 object, got {}",
                        json_kind(&other)
                    ),
                );
                return None;
            }
        };
        let id = obj.get("id").cloned();
        let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            if let (Some(id), Some(_)) = (id, &method) {
                self.reply_error(
                    id,
                    INVALID_REQUEST,
                    "Invalid Request: \"jsonrpc\" must be \"2.0\"".into(),
                );
            } else {
                tracing::warn!("dropping a message without \"jsonrpc\": \"2.0\"");
            }
            return None;
        }
        if method.as_deref() == Some("notifications/cancelled")
            && let Some(rid) = obj.get("params").and_then(|p| p.get("requestId"))
        {
            self.in_flight.lock().remove(&rid.to_string());
            self.in_flight.answered.notify_waiters();
        }
        if method.is_some() && id.as_ref().is_some_and(Value::is_null) {
            self.reply_error(
                Value::Null,
                INVALID_REQUEST,
                "Invalid Request: \"id\" is null; a request's id must be a string or a number (MCP \
                 forbids null ids), and a notification has no \"id\" member at all"
                    .into(),
            );
            return None;
        }
        let is_request = method.is_some() && id.is_some();
        if is_request
            && let Some(id) = &id
            && self.in_flight.lock().contains(&id.to_string())
        {
            self.reply_error(
                id.clone(),
                INVALID_REQUEST,
                format!(
                    "Invalid Request: id {id} is already used by a request still in flight; give \
                     every request its own id"
                ),
            );
            return None;
        }
        match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(Value::Object(obj)) {
            Ok(RxJsonRpcMessage::<RoleServer>::Request(req))
                if matches!(req.request, ClientRequest::CustomRequest(_))
                    && method.as_deref().is_some_and(|m| MCP_METHODS.contains(&m)) =>
            {
                let method = method.unwrap_or_default();
                self.reply_error(
                    id.unwrap_or(Value::Null),
                    INVALID_PARAMS,
                    format!(
                        "Invalid params: {method:?} needs a \"params\" object of the shape the MCP \
                         specification defines (e.g. tools/call needs {{\"name\": …, \"arguments\": {{…}}}})"
                    ),
                );
                None
            }
            Ok(msg) => {
                if is_request && let Some(id) = &id {
                    self.in_flight.lock().insert(id.to_string());
                }
                Some(msg)
            }
            Err(e) => {
                match (id, method) {
                    (Some(id), Some(method)) if !id.is_null() => self.reply_error(
                        id,
                        INVALID_REQUEST,
                        format!("Invalid Request: malformed {method:?} message ({e})"),
                    ),
                    (_, method) => {
                        // Notifications and responses are never answered (JSON-RPC 2.0 §4.1).
                        tracing::warn!(?method, error = %e, "dropping a malformed message");
                    }
                }
                None
            }
        }
    }

    /// After stdin EOF: waits (bounded) until every request received has been answered.
    fn drain(&self) -> impl Future<Output = ()> + Send + 'static {
        let in_flight = self.in_flight.clone();
        let writer_alive = self.writer_alive.clone();
        let timeout = self.limits.drain_timeout;
        drain(in_flight, writer_alive, timeout)
    }
}

async fn drain(
    in_flight: Arc<InFlight>,
    writer_alive: Arc<std::sync::atomic::AtomicBool>,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let answered = in_flight.answered.notified();
        let pending = in_flight.lock().len();
        if pending == 0 || !writer_alive.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        tracing::debug!(pending, "stdin closed; waiting for replies in flight");
        if tokio::time::timeout_at(deadline, answered).await.is_err() {
            tracing::warn!(
                pending,
                "stdin closed; giving up on replies still in flight"
            );
            return;
        }
    }
}

enum LineRead {
    Line,
    Oversized,
    Eof,
}

impl<R: AsyncBufRead + Unpin + Send + 'static> Transport<RoleServer> for LineTransport<R> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let result = serde_json::to_value(&item)
            .map_err(std::io::Error::other)
            .and_then(|mut value| {
                if value.get("method").is_none()
                    && let Some(id) = value.get("id")
                {
                    self.in_flight.lock().remove(&id.to_string());
                }
                explain_method_not_found(&mut value);
                explain_missing_session(&mut value);
                self.out.send(value.to_string()).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdout closed")
                })
            });
        self.in_flight.answered.notify_waiters();
        std::future::ready(result)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if self.eof {
                self.drain().await;
                return None;
            }
            let gone = self.writer_gone.clone();
            let read = async {
                match self.limits.idle_timeout {
                    Some(t) => tokio::time::timeout(t, self.read_line()).await.ok(),
                    None => Some(self.read_line().await),
                }
            };
            let outcome = tokio::select! {
                biased;
                _ = gone.notified() => return None,
                r = read => r,
            };
            match outcome {
                None => {
                    tracing::warn!(
                        idle_timeout_s = self.limits.idle_timeout.map(|d| d.as_secs()),
                        "no message from the client within the idle timeout; closing the session"
                    );
                    return None;
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "reading stdin failed; closing the session");
                    return None;
                }
                Some(Ok(LineRead::Eof)) => {
                    tracing::debug!("stdin closed");
                    self.eof = true;
                }
                Some(Ok(LineRead::Oversized)) => {
                    self.reply_error(
                        Value::Null,
                        INVALID_REQUEST,
                        format!(
                            "Invalid Request: message longer than {} bytes; it was discarded",
                            self.limits.max_line_bytes
                        ),
                    );
                }
                Some(Ok(LineRead::Line)) => {
                    if let Some(msg) = self.take_message() {
                        return Some(msg);
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<String>,
    gone: Arc<Notify>,
    alive: Arc<std::sync::atomic::AtomicBool>,
) {
    while let Some(mut line) = rx.recv().await {
        line.push('\n');
        let written = async {
            writer.write_all(line.as_bytes()).await?;
            if rx.is_empty() {
                writer.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        };
        if let Err(e) = written.await {
            tracing::warn!(error = %e, "stdout is closed; ending the session");
            alive.store(false, std::sync::atomic::Ordering::Release);
            gone.notify_one();
            return;
        }
    }
    let _ = writer.flush().await;
}

/// rmcp answers an unknown method with its bare name as the message; say what it means.
fn explain_method_not_found(msg: &mut Value) {
    if let Some(err) = msg.get_mut("error")
        && err.get("code").and_then(Value::as_i64) == Some(METHOD_NOT_FOUND)
        && let Some(Value::String(m)) = err.get_mut("message")
        && !m.contains(' ')
    {
        *m = format!(
            "Method not found: {m} (this server implements initialize, server/discover, ping, \
             tools/list, tools/call, prompts/list and prompts/get)"
        );
    }
}

/// rmcp answers a request that arrives before `initialize` (and without the 2026-07-28 per-request
/// metadata) by listing the `_meta` keys it lacks; say first what the client most likely forgot.
fn explain_missing_session(msg: &mut Value) {
    const PREFIX: &str = "request _meta is missing or has malformed required fields: ";
    if let Some(err) = msg.get_mut("error")
        && err.get("code").and_then(Value::as_i64) == Some(INVALID_PARAMS)
        && let Some(Value::String(m)) = err.get_mut("message")
        && let Some(keys) = m.strip_prefix(PREFIX)
    {
        *m = format!(
            "No session: send initialize first (or use the 2026-07-28 per-request metadata; this \
             request's _meta lacks {keys})"
        );
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    line.trim_ascii()
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|b| *b == needle)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
