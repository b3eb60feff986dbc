//! One upgraded exec connection: the remote-command protocol over WebSocket between the client and
//! a local process (or a session that never answers, or a failure reported on the error channel).
//!
//! Server side of the protocol as the API server's stream translator and the kubelet speak it: one
//! empty frame on the lowest output channel once the session is open; binary frames whose first byte
//! is the channel; stdin from channel 0, closed by v5's `[255, 0]` (or by the connection's end); after
//! the process exits and its output is drained, the exit `Status` on channel 3, then a close frame,
//! then a wait for the client to close its side.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message, Role};

use super::request::{self, ExecRequest, Protocol, channel};

type Socket = WebSocketStream<TokioIo<Upgraded>>;
type Sink = futures::stream::SplitSink<Socket, Message>;
type Source = futures::stream::SplitStream<Socket>;

/// How long the server waits for the client to close after the exit status (the real one waits
/// longer; a test client that neither reads nor closes this long is gone).
const FINISH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process whose client went away may take to exit after its stdin closed.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// What happens once the connection is upgraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run this program with these arguments and extra environment.
    Run {
        /// Program and arguments.
        argv: Vec<String>,
        /// Environment on top of the server's.
        env: Vec<(String, String)>,
    },
    /// Never answer.
    Hang,
    /// Report this failure as an `InternalError` status.
    Fail(String),
}

/// An accepted exec request, waiting for its upgrade.
#[derive(Debug, Clone)]
pub struct Session {
    /// The negotiated subprotocol.
    pub protocol: Protocol,
    /// The request's streams.
    pub request: ExecRequest,
    /// What to do.
    pub plan: Plan,
}

/// What one client frame means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Bytes for the process's stdin.
    Stdin(Bytes),
    /// The client closed stdin (v5).
    CloseStdin,
    /// Nothing to act on (resize, unknown channel, ping, text).
    Ignore,
    /// The client closed the connection or it broke.
    Gone,
}

/// Classifies one message from the client.
pub fn classify<E>(message: Option<Result<Message, E>>, protocol: Protocol) -> Incoming {
    let data = match message {
        Some(Ok(Message::Binary(data))) => data,
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Incoming::Gone,
        Some(Ok(_)) => return Incoming::Ignore,
    };
    match data.first().copied() {
        Some(channel::STDIN) => Incoming::Stdin(data.slice(1..)),
        Some(channel::CLOSE)
            if protocol == Protocol::V5 && data.get(1) == Some(&channel::STDIN) =>
        {
            Incoming::CloseStdin
        }
        _ => Incoming::Ignore,
    }
}

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut data = Vec::with_capacity(payload.len() + 1);
    data.push(channel);
    data.extend_from_slice(payload);
    Message::binary(data)
}

/// Serves one session after the 101 response went out.
pub async fn serve(on_upgrade: OnUpgrade, session: Session) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            tracing::debug!(%error, "exec upgrade failed");
            return;
        }
    };
    let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    let (mut sink, mut source) = socket.split();
    if sink
        .send(frame(session.request.first_channel(), &[]))
        .await
        .is_err()
    {
        return;
    }
    match session.plan {
        Plan::Hang => while classify(source.next().await, session.protocol) != Incoming::Gone {},
        Plan::Fail(message) => finish(sink, source, request::internal_status(&message)).await,
        Plan::Run { argv, env } => {
            run(sink, source, &session.request, session.protocol, argv, env).await
        }
    }
}

/// Writes the status, closes, and waits for the client to close its side.
async fn finish(mut sink: Sink, mut source: Source, status: Value) {
    let _ = sink
        .send(frame(channel::ERROR, status.to_string().as_bytes()))
        .await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: Default::default(),
        })))
        .await;
    let _ = tokio::time::timeout(FINISH_TIMEOUT, async {
        while source.next().await.is_some_and(|m| m.is_ok()) {}
    })
    .await;
}

async fn run(
    mut sink: Sink,
    mut source: Source,
    request: &ExecRequest,
    protocol: Protocol,
    argv: Vec<String>,
    env: Vec<(String, String)>,
) {
    let piped = |wanted: bool| {
        if wanted {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    let spawned = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env)
        .stdin(piped(request.stdin))
        .stdout(piped(request.stdout))
        .stderr(piped(request.stderr))
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            let message = format!(
                "error executing command in container: cannot start {:?}: {error}",
                argv[0]
            );
            return finish(sink, source, request::internal_status(&message)).await;
        }
    };
    let mut stdin_tx = child.stdin.take().map(|stdin| {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(feed_stdin(stdin, rx));
        tx
    });
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
    let mut exit: Option<ExitStatus> = None;
    let mut client_open = true;
    while exit.is_none() || stdout.is_some() || stderr.is_some() {
        tokio::select! {
            message = source.next() => match classify(message, protocol) {
                Incoming::Stdin(data) => {
                    if let Some(tx) = &stdin_tx { let _ = tx.send(data); }
                }
                Incoming::CloseStdin => stdin_tx = None,
                Incoming::Ignore => {}
                Incoming::Gone => { client_open = false; break; }
            },
            read = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => {
                if !forward(&mut sink, channel::STDOUT, read, &out_buf, &mut stdout).await {
                    client_open = false;
                    break;
                }
            }
            read = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => {
                if !forward(&mut sink, channel::STDERR, read, &err_buf, &mut stderr).await {
                    client_open = false;
                    break;
                }
            }
            status = child.wait(), if exit.is_none() => {
                exit = Some(status.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(1 << 8)));
            }
        }
    }
    drop(stdin_tx);
    if !client_open {
        if tokio::time::timeout(ORPHAN_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        return;
    }
    let code = exit.map(exit_code).unwrap_or(1);
    finish(sink, source, request::exit_status(&argv, code)).await;
}

/// Exit code as a container runtime reports it: the code, or 128 + the signal that ended it.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1)
}

async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match reader {
        Some(reader) => reader.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Sends what a read produced on `channel`; ends the stream at EOF. False when the client is gone.
async fn forward<R>(
    sink: &mut Sink,
    channel: u8,
    read: std::io::Result<usize>,
    buf: &[u8],
    stream: &mut Option<R>,
) -> bool {
    match read {
        Ok(0) | Err(_) => {
            *stream = None;
            true
        }
        Ok(n) => sink.send(frame(channel, &buf[..n])).await.is_ok(),
    }
}

async fn feed_stdin(mut stdin: tokio::process::ChildStdin, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(data) = rx.recv().await {
        if stdin.write_all(&data).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::Error;

    fn binary(data: &[u8]) -> Option<Result<Message, Error>> {
        Some(Ok(Message::binary(data.to_vec())))
    }

    #[test]
    fn client_frames() {
        assert_eq!(
            classify(binary(&[0, b'h', b'i']), Protocol::V5),
            Incoming::Stdin(Bytes::from_static(b"hi"))
        );
        assert_eq!(
            classify(binary(&[255, 0]), Protocol::V5),
            Incoming::CloseStdin
        );
        assert_eq!(classify(binary(&[255, 0]), Protocol::V4), Incoming::Ignore);
        assert_eq!(classify(binary(&[255, 2]), Protocol::V5), Incoming::Ignore);
        assert_eq!(classify(binary(&[4, b'{']), Protocol::V5), Incoming::Ignore);
        assert_eq!(classify(binary(&[]), Protocol::V5), Incoming::Ignore);
        assert_eq!(
            classify::<Error>(Some(Ok(Message::text("0x"))), Protocol::V5),
            Incoming::Ignore
        );
        assert_eq!(
            classify::<Error>(Some(Ok(Message::Close(None))), Protocol::V4),
            Incoming::Gone
        );
        assert_eq!(classify::<Error>(None, Protocol::V5), Incoming::Gone);
    }

    #[test]
    fn signals_count_as_128_plus() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
