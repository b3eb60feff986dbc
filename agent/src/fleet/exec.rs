//! `pods/exec` over WebSocket through the kube client (its kubeconfig auth, TLS and exec plugins),
//! with per-stream memory sized for a fleet that keeps one stream open per node, hundreds at a time:
//! a small WebSocket read buffer, no write buffering, and stdout read straight from the frames (no
//! relay task, no pipes, no copy into a second buffer).
//!
//! The wire follows the Kubernetes remote-command subprotocols: the client offers
//! `v5.channel.k8s.io`, then `v4.channel.k8s.io`; every binary frame starts with its channel
//! (0 stdin, 1 stdout, 2 stderr, 3 the exit `Status` as JSON); v5 ends stdin with the frame
//! `[255, 0]`, v4 only by closing the WebSocket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use futures::{Sink, Stream};
use hyper_util::rt::TokioIo;
use kube::api::AttachParams;
use kube::client::Body;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::{self, HeaderMap, HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::cluster::ExecStream;

/// The subprotocols offered, preferred first (one header value: API servers read only the first
/// `Sec-WebSocket-Protocol` header).
pub const SUBPROTOCOLS: &str = "v5.channel.k8s.io, v4.channel.k8s.io";

/// Bytes tungstenite reads at a time per stream (its default is 128 KiB, zero-filled and so resident
/// for the stream's life). A larger frame still arrives whole: the buffer grows to hold it.
const READ_BUFFER_BYTES: usize = 1024;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STATUS: u8 = 3;
/// v5's "this channel ended" frame: `[CLOSE, channel]`.
const CLOSE: u8 = 255;

/// The remote-command subprotocol the API server picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `v5.channel.k8s.io`: stdin can be closed on its own (the process sees EOF).
    V5,
    /// `v4.channel.k8s.io`: stdin ends only with the WebSocket.
    V4,
}

/// Why an exec did not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecFailure {
    /// The API server answered with an HTTP error instead of upgrading (403: RBAC refused
    /// `create pods/exec`; 404: no such pod; 400/500: e.g. the container is not running).
    Refused { code: u16, message: String },
    /// The request did not get through, or its answer was not a valid WebSocket upgrade.
    Failed(String),
}

impl std::fmt::Display for ExecFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecFailure::Refused { code, message } => write!(f, "HTTP {code}: {message}"),
            ExecFailure::Failed(message) => f.write_str(message),
        }
    }
}

/// A refused upgrade in words: the `Status` body's message, else the body's text, else the HTTP
/// reason phrase.
pub fn refusal(code: u16, body: &[u8]) -> ExecFailure {
    let from_status = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned));
    let message = from_status
        .or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            (!text.is_empty()).then(|| text.chars().take(500).collect())
        })
        .unwrap_or_else(|| {
            StatusCode::from_u16(code)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("no reason given")
                .to_owned()
        });
    ExecFailure::Refused { code, message }
}

/// Checks a `101 Switching Protocols` answer to an upgrade sent with `key` (RFC 6455, plus the
/// remote-command subprotocol) and says which subprotocol it picked.
pub fn accepted(status: u16, headers: &HeaderMap, key: &str) -> Result<Protocol, String> {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if status != StatusCode::SWITCHING_PROTOCOLS.as_u16() {
        return Err(format!(
            "the API server answered the exec upgrade with HTTP {status} instead of 101 Switching \
             Protocols"
        ));
    }
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(
            "the API server's 101 answer is not a WebSocket upgrade (Upgrade/Connection headers \
             missing); a proxy between here and the API server may not pass WebSocket through"
                .to_owned(),
        );
    }
    let accept = derive_accept_key(key.as_bytes());
    if headers
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .map(HeaderValue::as_bytes)
        != Some(accept.as_bytes())
    {
        return Err(
            "the API server's WebSocket answer has a wrong Sec-WebSocket-Accept".to_owned(),
        );
    }
    match headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .map(HeaderValue::as_bytes)
    {
        Some(b"v5.channel.k8s.io") => Ok(Protocol::V5),
        Some(b"v4.channel.k8s.io") => Ok(Protocol::V4),
        other => Err(format!(
            "the API server picked no remote-command subprotocol we speak (offered {SUBPROTOCOLS}; \
             got {:?})",
            other.map(String::from_utf8_lossy)
        )),
    }
}

/// The exit `Status` (channel 3) in words: `Success`, or `Failure: <message>`.
pub fn exit_status(json: &[u8]) -> String {
    let Ok(status) = serde_json::from_slice::<Value>(json) else {
        return format!(
            "unreadable exit status: {:?}",
            String::from_utf8_lossy(json)
                .chars()
                .take(200)
                .collect::<String>()
        );
    };
    let summary = status["status"].as_str().unwrap_or("Unknown");
    match status["message"].as_str().filter(|m| !m.is_empty()) {
        Some(message) => format!("{summary}: {message}"),
        None => summary.to_owned(),
    }
}

/// Runs `command` in `container` of pod `namespace/pod` with stdin and stdout attached (no stderr,
/// no TTY), through `client`.
pub async fn open(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[&str],
) -> Result<ExecStream, ExecFailure> {
    let params = AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(true)
        .stderr(false)
        .tty(false);
    let request = kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
        .exec(pod, command.iter().copied(), &params)
        .map_err(|e| ExecFailure::Failed(format!("cannot build the exec request: {e}")))?;
    let (mut parts, body) = request.into_parts();
    let key = generate_key();
    let headers = &mut parts.headers;
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOLS),
    );
    headers.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&key).map_err(|e| ExecFailure::Failed(e.to_string()))?,
    );
    let response = client
        .send(http::Request::from_parts(parts, Body::from(body)))
        .await
        .map_err(|e| ExecFailure::Failed(e.to_string()))?;
    let status = response.status().as_u16();
    if status >= 400 {
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        return Err(refusal(status, &body));
    }
    let protocol = accepted(status, response.headers(), &key).map_err(ExecFailure::Failed)?;
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| ExecFailure::Failed(format!("the exec upgrade failed: {e}")))?;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0);
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, Some(config)).await;
    Ok(stream(Box::new(ws), protocol))
}

/// The WebSocket of one exec, whatever carries it.
trait Socket:
    Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Send + Unpin
{
}
impl<S> Socket for S where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Send + Unpin
{
}
type WsError = tokio_tungstenite::tungstenite::Error;

/// Splits an exec's WebSocket into the process's stdin, stdout and exit status.
fn stream(ws: Box<dyn Socket>, protocol: Protocol) -> ExecStream {
    let shared = Arc::new(Mutex::new(Shared {
        ws,
        protocol,
        stdin_closed: false,
        end: None,
    }));
    ExecStream {
        stdin: Box::pin(Stdin(shared.clone())),
        stdout: Box::pin(Stdout {
            shared: shared.clone(),
            pending: Bytes::new(),
        }),
        finished: Box::pin(Finished(shared)),
    }
}

/// How the stream ended.
enum End {
    /// The exit status arrived on channel 3.
    Status(String),
    /// The server closed the WebSocket (or the connection ended) without a status.
    Closed,
    /// Reading failed.
    Failed(String),
}

struct Shared {
    ws: Box<dyn Socket>,
    protocol: Protocol,
    stdin_closed: bool,
    end: Option<End>,
}

impl Shared {
    /// The next non-empty stdout chunk; `None` once the stream ended (status, close or error).
    fn poll_stdout(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            if let Some(end) = &self.end {
                return Poll::Ready(match end {
                    End::Failed(e) => Some(Err(io::Error::other(e.clone()))),
                    _ => None,
                });
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(frame))) => match frame.first() {
                    Some(&STDOUT) if frame.len() > 1 => {
                        return Poll::Ready(Some(Ok(frame.slice(1..))));
                    }
                    Some(&STATUS) => self.end = Some(End::Status(exit_status(&frame[1..]))),
                    // Empty stdout frames (the server's "session open"), stderr, anything else.
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None => self.end = Some(End::Closed),
                // Pings are answered by tungstenite; text and pong frames carry nothing here.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    self.end = Some(End::Failed(format!("the exec stream failed: {e}")))
                }
            }
        }
    }

    /// Sends one frame (buffered by tungstenite until flushed).
    fn poll_send(&mut self, cx: &mut Context<'_>, frame: Message) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io::Error::other)?;
        Poll::Ready(
            Pin::new(&mut self.ws)
                .start_send(frame)
                .map_err(io::Error::other),
        )
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process's stdin: each write is one channel-0 frame. An empty write sends a WebSocket ping
/// instead (nothing reaches the process): the keepalive of an idle session, so that load balancers
/// in front of the API server do not drop its connection.
struct Stdin(Arc<Mutex<Shared>>);

impl AsyncWrite for Stdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.0);
        if shared.stdin_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "stdin of the exec is closed",
            )));
        }
        if buf.is_empty() {
            ready!(shared.poll_send(cx, Message::Ping(Bytes::new())))?;
            return Poll::Ready(Ok(0));
        }
        let mut frame = Vec::with_capacity(buf.len() + 1);
        frame.push(STDIN);
        frame.extend_from_slice(buf);
        ready!(shared.poll_send(cx, Message::binary(frame)))?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.0);
        Pin::new(&mut shared.ws)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    /// v5: the close-stdin frame, so the process sees EOF; v4: closes the WebSocket.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.0);
        match shared.protocol {
            Protocol::V5 => {
                if !shared.stdin_closed {
                    ready!(shared.poll_send(cx, Message::binary(vec![CLOSE, STDIN])))?;
                    shared.stdin_closed = true;
                }
                Pin::new(&mut shared.ws)
                    .poll_flush(cx)
                    .map_err(io::Error::other)
            }
            Protocol::V4 => {
                shared.stdin_closed = true;
                Pin::new(&mut shared.ws)
                    .poll_close(cx)
                    .map_err(io::Error::other)
            }
        }
    }
}

/// The process's stdout, read frame by frame: the unread rest of the last frame is the only buffer.
struct Stdout {
    shared: Arc<Mutex<Shared>>,
    pending: Bytes,
}

impl AsyncBufRead for Stdout {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            match ready!(lock(&this.shared).poll_stdout(cx)) {
                Some(Ok(chunk)) => this.pending = chunk,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => {}
            }
        }
        Poll::Ready(Ok(&this.pending))
    }

    fn consume(self: Pin<&mut Self>, amount: usize) {
        let this = self.get_mut();
        if amount >= this.pending.len() {
            // An empty slice would still hold the whole frame's allocation.
            this.pending = Bytes::new();
        } else {
            let _ = this.pending.split_to(amount);
        }
    }
}

impl AsyncRead for Stdout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

/// Resolves with the exit status once the stream ended (stdout that arrives meanwhile is dropped:
/// poll it once stdout is no longer read, after closing stdin).
struct Finished(Arc<Mutex<Shared>>);

impl Future for Finished {
    type Output = Option<String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let mut shared = lock(&self.0);
        while let Some(Ok(_)) = ready!(shared.poll_stdout(cx)) {}
        Poll::Ready(match &shared.end {
            Some(End::Status(status)) => Some(status.clone()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests;
