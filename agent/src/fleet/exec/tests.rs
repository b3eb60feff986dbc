use futures::{SinkExt, StreamExt};
use serde_json::json;
use test_apiserver::{Config, ExecRule, TestApiServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::fleet::cluster::Cluster;
use crate::fleet::kube::{KubeCluster, KubeSettings};
use crate::fleet::model::PodRef;

// --- Pure decisions ----------------------------------------------------------------------------

#[test]
fn refusals_say_what_the_api_server_said() {
    let status = json!({
        "kind": "Status", "status": "Failure", "code": 403, "reason": "Forbidden",
        "message": "pods \"p\" is forbidden: User \"alice\" cannot create resource \"pods/exec\"",
    })
    .to_string();
    let cases: &[(u16, &[u8], ExecFailure)] = &[
        (
            403,
            status.as_bytes(),
            ExecFailure::Refused {
                code: 403,
                message: "pods \"p\" is forbidden: User \"alice\" cannot create resource \
                          \"pods/exec\""
                    .into(),
            },
        ),
        (
            502,
            b"  bad gateway from the proxy\n",
            ExecFailure::Refused {
                code: 502,
                message: "bad gateway from the proxy".into(),
            },
        ),
        (
            404,
            b"",
            ExecFailure::Refused {
                code: 404,
                message: "Not Found".into(),
            },
        ),
    ];
    for (code, body, want) in cases {
        assert_eq!(&refusal(*code, body), want, "HTTP {code}");
    }
    assert_eq!(
        refusal(400, br#"{"message":"container not found (\"agent\")"}"#).to_string(),
        "HTTP 400: container not found (\"agent\")"
    );
}

fn upgrade_headers(key: &str, protocol: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&derive_accept_key(key.as_bytes())).unwrap(),
    );
    if let Some(p) = protocol {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(p).unwrap(),
        );
    }
    headers
}

#[test]
fn upgrades_are_checked_and_name_the_subprotocol() {
    let key = generate_key();
    let v5 = upgrade_headers(&key, Some("v5.channel.k8s.io"));
    assert_eq!(accepted(101, &v5, &key), Ok(Protocol::V5));
    let v4 = upgrade_headers(&key, Some("v4.channel.k8s.io"));
    assert_eq!(accepted(101, &v4, &key), Ok(Protocol::V4));

    let err = accepted(200, &v5, &key).unwrap_err();
    assert!(err.contains("HTTP 200 instead of 101"), "{err}");
    let err = accepted(101, &v5, &generate_key()).unwrap_err();
    assert!(err.contains("Sec-WebSocket-Accept"), "{err}");
    let err = accepted(101, &upgrade_headers(&key, None), &key).unwrap_err();
    assert!(
        err.contains("no remote-command subprotocol") && err.contains(SUBPROTOCOLS),
        "{err}"
    );
    let err = accepted(101, &upgrade_headers(&key, Some("v3.channel.k8s.io")), &key).unwrap_err();
    assert!(err.contains("v3.channel.k8s.io"), "{err}");
    let mut no_upgrade = v5.clone();
    no_upgrade.remove(header::UPGRADE);
    let err = accepted(101, &no_upgrade, &key).unwrap_err();
    assert!(err.contains("not a WebSocket upgrade"), "{err}");
    // Header values are case-insensitive tokens.
    let mut lower = v5;
    lower.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, upgrade"),
    );
    lower.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
    assert_eq!(accepted(101, &lower, &key), Ok(Protocol::V5));
}

#[test]
fn exit_statuses_in_words() {
    assert_eq!(
        exit_status(br#"{"metadata":{},"status":"Success"}"#),
        "Success"
    );
    assert_eq!(
        exit_status(br#"{"status":"Failure","message":"command terminated with exit code 3"}"#),
        "Failure: command terminated with exit code 3"
    );
    assert!(exit_status(b"not json").starts_with("unreadable exit status"));
}

// --- The stream over an in-memory WebSocket ----------------------------------------------------

/// An exec stream on one end of an in-memory WebSocket; the other end plays the API server.
async fn pair(protocol: Protocol) -> (ExecStream, WebSocketStream<DuplexStream>) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0);
    let client = WebSocketStream::from_raw_socket(ours, Role::Client, Some(config)).await;
    let server = WebSocketStream::from_raw_socket(theirs, Role::Server, None).await;
    (stream(Box::new(client), protocol), server)
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut bytes = vec![channel];
    bytes.extend_from_slice(data);
    Message::binary(bytes)
}

async fn next_binary(server: &mut WebSocketStream<DuplexStream>) -> Vec<u8> {
    loop {
        match server.next().await {
            Some(Ok(Message::Binary(data))) => return data.to_vec(),
            Some(Ok(_)) => continue,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn v5_stream_carries_stdin_stdout_and_the_exit_status() {
    let (mut exec, mut server) = pair(Protocol::V5).await;
    // The server's "session open" frame, a line split over two frames, stderr in between.
    server.send(frame(STDOUT, b"")).await.unwrap();
    server.send(frame(STDOUT, b"hel")).await.unwrap();
    server.send(frame(2, b"a log line")).await.unwrap();
    server.send(frame(STDOUT, b"lo\nsecond")).await.unwrap();
    server.send(frame(STDOUT, b" line\n")).await.unwrap();
    let mut line = String::new();
    exec.stdout.read_line(&mut line).await.unwrap();
    assert_eq!(line, "hello\n");
    line.clear();
    exec.stdout.read_line(&mut line).await.unwrap();
    assert_eq!(line, "second line\n");

    exec.stdin.write_all(b"{\"id\":1}\n").await.unwrap();
    exec.stdin.flush().await.unwrap();
    assert_eq!(next_binary(&mut server).await, b"\0{\"id\":1}\n");

    // An empty write is a keepalive ping; the process sees nothing.
    assert_eq!(exec.stdin.write(&[]).await.unwrap(), 0);
    exec.stdin.flush().await.unwrap();
    match server.next().await {
        Some(Ok(Message::Ping(data))) => assert!(data.is_empty()),
        other => panic!("expected a ping, got {other:?}"),
    }

    // Closing stdin sends v5's close frame for channel 0; the WebSocket stays open for the status.
    exec.stdin.shutdown().await.unwrap();
    assert_eq!(next_binary(&mut server).await, [CLOSE, STDIN]);
    let err = exec.stdin.write_all(b"late").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);

    server.send(frame(STDOUT, b"unread output")).await.unwrap();
    server
        .send(frame(STATUS, br#"{"metadata":{},"status":"Success"}"#))
        .await
        .unwrap();
    assert_eq!(exec.finished.await.as_deref(), Some("Success"));
}

#[tokio::test]
async fn stdout_ends_at_the_exit_status_and_reports_a_failure() {
    let (mut exec, mut server) = pair(Protocol::V5).await;
    server.send(frame(STDOUT, b"partial")).await.unwrap();
    server
        .send(frame(
            STATUS,
            br#"{"status":"Failure","message":"command terminated with non-zero exit code: error executing command [/agent], exit code 3","reason":"NonZeroExitCode"}"#,
        ))
        .await
        .unwrap();
    let mut out = String::new();
    exec.stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "partial");
    assert_eq!(
        exec.finished.await.as_deref(),
        Some(
            "Failure: command terminated with non-zero exit code: error executing command \
             [/agent], exit code 3"
        )
    );
}

#[tokio::test]
async fn a_reply_larger_than_the_read_buffer_arrives_whole() {
    let (mut exec, mut server) = pair(Protocol::V5).await;
    let big = format!("{}\n", "x".repeat(40 * READ_BUFFER_BYTES));
    server.send(frame(STDOUT, big.as_bytes())).await.unwrap();
    let mut line = String::new();
    exec.stdout.read_line(&mut line).await.unwrap();
    assert_eq!(line, big);
}

#[tokio::test]
async fn v4_closes_stdin_by_closing_the_websocket_and_has_no_status_without_one() {
    let (mut exec, mut server) = pair(Protocol::V4).await;
    exec.stdin.shutdown().await.unwrap();
    match server.next().await {
        Some(Ok(Message::Close(_))) => {}
        other => panic!("v4 closes stdin with a WebSocket close, got {other:?}"),
    }
    drop(server);
    assert_eq!(exec.finished.await, None);
}

#[tokio::test]
async fn a_connection_that_drops_ends_stdout() {
    let (mut exec, server) = pair(Protocol::V5).await;
    drop(server);
    let mut line = String::new();
    let read = exec.stdout.read_line(&mut line).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

// --- Through the test API server, as the fleet uses it ------------------------------------------

const NS: &str = "gpu-diagnostics";

fn pod(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"nodeName": "gpu-a", "containers": [{"name": "agent", "image": "agent"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

/// A server whose pod `echo` runs `cat` for `/agent`, `fails` exits 3 once stdin ends,
/// `forbidden` is refused by RBAC and `waiting`'s container is not running.
async fn server() -> TestApiServer {
    let config = Config::default()
        .object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .objects(["echo", "fails", "forbidden"].map(pod))
        .object({
            let mut waiting = pod("waiting");
            waiting["status"] = json!({"phase": "Running", "containerStatuses": [
                {"name": "agent", "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ]});
            waiting
        })
        .exec_rule(ExecRule::run(["cat"]).pod("echo"))
        .exec_rule(ExecRule::run(["sh", "-c", "cat; exit 3", "sh"]).pod("fails"))
        .exec_rule(ExecRule::forbid().pod("forbidden"));
    TestApiServer::start(config).await.expect("test API server")
}

async fn cluster(server: &TestApiServer) -> KubeCluster {
    KubeCluster::connect(&KubeSettings {
        kubeconfig: Some(server.kubeconfig_path().to_owned()),
        context: None,
    })
    .await
}

fn pod_ref(name: &str) -> PodRef {
    PodRef {
        namespace: NS.into(),
        name: name.into(),
        uid: String::new(),
    }
}

/// Sends a line through the exec, reads it back, closes stdin and returns the exit status.
async fn round_trip(exec: ExecStream) -> Option<String> {
    let ExecStream {
        mut stdin,
        mut stdout,
        finished,
    } = exec;
    stdin.write_all(b"{\"jsonrpc\":\"2.0\"}\n").await.unwrap();
    stdin.flush().await.unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).await.unwrap();
    assert_eq!(line, "{\"jsonrpc\":\"2.0\"}\n");
    stdin.shutdown().await.unwrap();
    drop(stdin);
    tokio::time::timeout(std::time::Duration::from_secs(20), finished)
        .await
        .expect("the process exits once its stdin is closed")
}

#[tokio::test]
async fn exec_through_the_api_server_on_v5_and_v4() {
    let server = server().await;
    let cluster = cluster(&server).await;

    let exec = cluster.exec(&pod_ref("echo")).await.expect("exec opens");
    assert_eq!(round_trip(exec).await.as_deref(), Some("Success"));
    let exec = cluster.exec(&pod_ref("fails")).await.expect("exec opens");
    let status = round_trip(exec).await.unwrap();
    assert!(
        status.starts_with("Failure") && status.contains("exit code 3"),
        "{status}"
    );

    // An API server before 1.30 only speaks v4: stdin ends by closing the WebSocket.
    server.set_kubernetes_version("v1.29.4");
    let exec = cluster
        .exec(&pod_ref("echo"))
        .await
        .expect("exec opens on v4");
    let ExecStream {
        mut stdin,
        mut stdout,
        finished,
    } = exec;
    stdin.write_all(b"over v4\n").await.unwrap();
    stdin.flush().await.unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).await.unwrap();
    assert_eq!(line, "over v4\n");
    stdin.shutdown().await.unwrap();
    drop((stdin, stdout));
    // The status may or may not arrive once the WebSocket is closed; the stream must end either way.
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), finished)
        .await
        .expect("the exec ends once the WebSocket is closed");
    assert!(
        status.as_deref().is_none_or(|s| s == "Success"),
        "{status:?}"
    );
}

#[tokio::test]
async fn refused_execs_say_what_to_do() {
    let server = server().await;
    let cluster = cluster(&server).await;

    let err = cluster.exec(&pod_ref("forbidden")).await.err().unwrap();
    let text = err.to_string();
    assert!(
        text.contains("`create pods/exec`")
            && text.contains(&format!("namespace {NS}"))
            && text.contains("HTTP 403")
            && text.contains("kubectl create rolebinding"),
        "{text}"
    );

    let err = cluster.exec(&pod_ref("replaced")).await.err().unwrap();
    let text = err.to_string();
    assert!(
        text.contains(&format!("{NS}/replaced is gone (HTTP 404)")),
        "{text}"
    );
}

#[tokio::test]
async fn a_container_that_is_not_running() {
    let server = server().await;
    let cluster = cluster(&server).await;
    // v5: the upgrade succeeds and the failure arrives as the exit status, with no output.
    let mut exec = cluster.exec(&pod_ref("waiting")).await.expect("exec opens");
    let mut out = String::new();
    exec.stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "");
    let status = exec.finished.await.unwrap();
    assert!(
        status.starts_with("Failure") && status.contains("container not found (\"agent\")"),
        "{status}"
    );
    // v4: the kubelet refuses before the upgrade.
    server.set_kubernetes_version("v1.29.4");
    let err = cluster.exec(&pod_ref("waiting")).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "exec into agent pod {NS}/waiting failed: HTTP 500: container not found (\"agent\")"
        )
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_an_exec_error() {
    let server = server().await;
    let cluster = cluster(&server).await;
    drop(server);
    let err = cluster.exec(&pod_ref("echo")).await.err().unwrap();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("exec into agent pod {NS}/echo failed: ")),
        "{text}"
    );
}
