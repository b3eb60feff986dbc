//! `pods/exec` over WebSocket: kube-rs `Api::<Pod>::exec` (v5 and v4), the raw frames a client sees,
//! the errors before the upgrade (403, 404, 400), a hanging session, and the real kubectl.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde_json::{Value, json};
use test_apiserver::{Config, ExecRule, RequestMatch, TestApiServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{Scratch, run, tool};

const NS: &str = "gpu";
/// Echoes each stdin line as `out:LINE`, says `bye` on stderr at EOF and exits 3: it only ends when
/// stdin closes, which proves the close reached the process.
const ECHO_UNTIL_EOF: &str = r#"while read l; do echo "out:$l"; done; echo bye >&2; exit 3"#;

fn pod(name: &str, node: &str, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"nodeName": node, "containers": [
            {"name": "agent", "image": "agent:1", "env": [
                {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "GREETING", "value": "from-the-pod-spec"}
            ]},
            {"name": "sidecar", "image": "pause"}
        ]},
        "status": status,
    })
}

fn running() -> Value {
    json!({"phase": "Running", "containerStatuses": [
        {"name": "agent", "ready": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}},
        {"name": "sidecar", "ready": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
    ]})
}

/// A server with namespace `gpu`, running pods `echo` (node-a) and `forbidden` (node-b), a pending pod,
/// and rules: `sh` runs locally, `/hang` hangs, pod `forbidden` is refused.
fn config() -> Config {
    Config::default()
        .object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .object(pod("echo", "node-a", running()))
        .object(pod("forbidden", "node-b", running()))
        .object(pod(
            "pending",
            "node-c",
            json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        ))
        .exec_user("alice@example.com")
        .exec_rule(ExecRule::forbid().namespace(NS).pod("forbidden"))
        .exec_rule(ExecRule::hang().command("/hang"))
        .exec_rule(ExecRule::run(["sh"]).command("sh").env("FROM_RULE", "yes"))
}

fn params() -> AttachParams {
    AttachParams::default()
        .container("agent")
        .stdin(true)
        .stdout(true)
        .stderr(true)
}

async fn read_all(reader: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut text = String::new();
    let mut reader = reader;
    reader.read_to_string(&mut text).await.unwrap();
    text
}

/// Sends `input`, closes stdin, and returns (stdout, stderr, status).
async fn exec(pods: &Api<Pod>, command: &[&str], input: &str) -> (String, String, Value) {
    let mut process = pods
        .exec("echo", command.to_vec(), &params())
        .await
        .unwrap();
    let mut stdin = process.stdin().unwrap();
    let stdout = process.stdout().unwrap();
    let stderr = process.stderr().unwrap();
    let status = process.take_status().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    stdin.shutdown().await.unwrap();
    let (out, err) = tokio::join!(read_all(stdout), read_all(stderr));
    let status = tokio::time::timeout(Duration::from_secs(10), status)
        .await
        .expect("the exit status arrives")
        .expect("a status");
    (out, err, serde_json::to_value(status).unwrap())
}

#[tokio::test]
async fn kube_rs_v5_round_trips_stdin_to_stdout_and_the_exit_status() {
    let server = TestApiServer::start(config()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), NS);
    let mark = server.mark();

    let (out, err, status) = exec(&pods, &["sh", "-c", ECHO_UNTIL_EOF], "a\nb\n").await;
    assert_eq!(out, "out:a\nout:b\n");
    assert_eq!(err, "bye\n");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "ExitCode", "message": "3"}])
    );

    let script = r#"cat; echo "$GREETING $NODE_NAME $FROM_RULE $0""#;
    let (out, _, status) = exec(&pods, &["sh", "-c", script, "arg0"], "in\n").await;
    assert_eq!(out, "in\nfrom-the-pod-spec node-a yes arg0\n");
    assert_eq!(status["status"], "Success");

    let logged =
        server.matching_requests(mark, &RequestMatch::resource("pods").subresource("exec"));
    assert_eq!(logged.len(), 2);
    assert!(logged.iter().all(|r| r.status == 101 && r.method == "GET"));
}

#[tokio::test]
async fn kube_rs_v4_against_a_1_29_server_gets_output_and_status() {
    let server = TestApiServer::start(config().kubernetes_version("v1.29.4"))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), NS);
    // v4 has no way to close stdin alone, so the command ends by itself.
    let mut process = pods
        .exec(
            "echo",
            ["sh", "-c", "read l; echo \"out:$l\"; exit 0"],
            &params(),
        )
        .await
        .unwrap();
    let mut stdin = process.stdin().unwrap();
    let stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    stdin.write_all(b"x\n").await.unwrap();
    assert_eq!(read_all(stdout).await, "out:x\n");
    let status = tokio::time::timeout(Duration::from_secs(10), status)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"));
}

/// The raw protocol: subprotocol choice, the first empty frame, channel prefixes, v5's close of
/// stdin, the status on channel 3, then the server's close frame.
#[tokio::test]
async fn raw_frames_follow_the_remote_command_protocol() {
    for (version, offered, chosen) in [
        (
            "v1.35.0",
            "v5.channel.k8s.io, v4.channel.k8s.io",
            "v5.channel.k8s.io",
        ),
        (
            "v1.29.0",
            "v5.channel.k8s.io, v4.channel.k8s.io",
            "v4.channel.k8s.io",
        ),
        ("v1.35.0", "v4.channel.k8s.io", "v4.channel.k8s.io"),
    ] {
        let server = TestApiServer::start(config().kubernetes_version(version))
            .await
            .unwrap();
        let url = format!(
            "{}/api/v1/namespaces/{NS}/pods/echo/exec?container=agent&command=sh&command=-c&command=cat&stdin=true&stdout=true&stderr=true&tty=false",
            server.url().replace("http://", "ws://")
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", offered.parse().unwrap());
        let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], chosen);

        assert_eq!(next(&mut socket).await, Message::binary(vec![1u8]));
        socket
            .send(Message::binary(b"\x00hello\n".to_vec()))
            .await
            .unwrap();
        assert_eq!(
            next(&mut socket).await,
            Message::binary(b"\x01hello\n".to_vec())
        );
        if chosen == "v5.channel.k8s.io" {
            socket.send(Message::binary(vec![255u8, 0])).await.unwrap();
            let status = next(&mut socket).await.into_data();
            assert_eq!(status[0], 3);
            let status: Value = serde_json::from_slice(&status[1..]).unwrap();
            assert_eq!(status, json!({"metadata": {}, "status": "Success"}));
            assert!(matches!(next(&mut socket).await, Message::Close(_)));
        } else {
            // v4: closing the connection is the only way to end stdin.
            socket.close(None).await.unwrap();
        }
    }
}

async fn next<S>(socket: &mut S) -> Message
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
        Ok(Some(Ok(message))) => message,
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// The error of an exec that must fail before the upgrade.
async fn refused(pods: &Api<Pod>, pod: &str, params: &AttachParams) -> (u16, String, String) {
    match pods.exec(pod, ["sh"], params).await {
        Ok(_) => panic!("exec into {pod} must be refused"),
        Err(error) => api_error(error),
    }
}

fn api_error(error: kube::Error) -> (u16, String, String) {
    match error {
        kube::Error::Api(status) => (status.code, status.reason, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn errors_before_the_upgrade_are_status_documents() {
    let server = TestApiServer::start(config()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), NS);

    assert_eq!(
        refused(&pods, "forbidden", &params()).await,
        (
            403,
            "Forbidden".into(),
            "pods \"forbidden\" is forbidden: User \"alice@example.com\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"gpu\"".into()
        )
    );
    assert_eq!(
        refused(&pods, "missing", &params()).await,
        (404, "NotFound".into(), "pods \"missing\" not found".into())
    );
    assert_eq!(
        refused(&pods, "echo", &params().container("gpu")).await,
        (
            400,
            "BadRequest".into(),
            "container gpu is not valid for pod echo".into()
        )
    );
    // The fault machinery applies to exec like to any request.
    server.inject(test_apiserver::Fault::fail(
        RequestMatch::resource("pods")
            .subresource("exec")
            .name("echo"),
        500,
    ));
    assert_eq!(refused(&pods, "echo", &params()).await.0, 500);
}

#[tokio::test]
async fn a_container_that_is_not_running_fails_after_the_upgrade_and_unmatched_commands_say_why() {
    let server = TestApiServer::start(config()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), NS);

    let mut process = pods.exec("pending", ["sh"], &params()).await.unwrap();
    let status = process.take_status().unwrap().await.unwrap();
    assert_eq!(status.code, Some(500));
    assert_eq!(
        status.message.as_deref(),
        Some(
            "Internal error occurred: unable to upgrade connection: container not found (\"agent\")"
        )
    );

    let mut process = pods.exec("echo", ["/bin/ls"], &params()).await.unwrap();
    let status = process.take_status().unwrap().await.unwrap();
    let message = status.message.unwrap();
    assert!(
        message.contains("no exec rule for container agent of pod gpu/echo on node node-a")
            && message.contains("--exec-config"),
        "{message}"
    );
}

#[tokio::test]
async fn a_hanging_session_never_answers_and_rules_change_at_runtime() {
    let server = TestApiServer::start(config()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), NS);
    let mut process = pods.exec("echo", ["/hang"], &params()).await.unwrap();
    let mut stdin = process.stdin().unwrap();
    let stdout = process.stdout().unwrap();
    stdin.write_all(b"{}\n").await.unwrap();
    stdin.shutdown().await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(500), read_all(stdout)).await;
    assert!(waited.is_err(), "a hanging exec must not answer");

    let mut rules = server.exec_rules();
    rules.rules.insert(
        0,
        ExecRule::run(["sh", "-c", "echo replaced"]).command("/hang"),
    );
    server.set_exec_rules(rules).unwrap();
    let (out, _, status) = exec(&pods, &["/hang"], "").await;
    assert_eq!(
        (out.as_str(), &status["status"]),
        ("replaced\n", &json!("Success"))
    );
    assert!(
        server
            .set_exec_rules(test_apiserver::ExecRules {
                rules: vec![ExecRule::forbid().node("node-a")],
                ..Default::default()
            })
            .is_err()
    );
}

/// The real kubectl (WebSocket, v5 only since 1.35; 1.32 when installed) pipes a file through exec
/// and reports a non-zero exit code like against a real cluster.
#[test]
fn kubectl_exec_pipes_stdin_and_reports_the_exit_code() {
    let kubectls: Vec<_> = [
        tool("kubectl", "TEST_KUBECTL"),
        tool("k8s-1.32/kubectl", "TEST_KUBECTL_1_32"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let scratch = Scratch::new("kubectl-exec");
    let server = TestApiServer::start_blocking(config()).unwrap();
    let input = scratch.0.join("input.txt");
    std::fs::write(&input, "one\ntwo\n").unwrap();
    for kubectl in kubectls {
        let output = std::process::Command::new(&kubectl)
            .args([
                "exec",
                "-i",
                "-n",
                NS,
                "echo",
                "-c",
                "agent",
                "--",
                "sh",
                "-c",
                ECHO_UNTIL_EOF,
            ])
            .env("KUBECONFIG", server.kubeconfig_path())
            .env("HOME", &scratch.0)
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stdout,
            "out:one\nout:two\n",
            "{}: {stderr}",
            kubectl.display()
        );
        assert!(stderr.contains("bye"), "{stderr}");
        assert_eq!(
            output.status.code(),
            Some(3),
            "{}: {stderr}",
            kubectl.display()
        );

        let forbidden = run(
            &kubectl,
            server.kubeconfig_path(),
            &scratch.0,
            &["exec", "-n", NS, "forbidden", "-c", "agent", "--", "sh"],
        );
        let stderr = String::from_utf8_lossy(&forbidden.stderr);
        assert!(
            stderr.contains(
                "cannot create resource \"pods/exec\" in API group \"\" in the namespace \"gpu\""
            ),
            "{}: {stderr}",
            kubectl.display()
        );
        assert!(!forbidden.status.success());
    }
}

/// SelfSubjectAccessReviews answer as the exec rules decide: what a client asks before it execs.
#[tokio::test]
async fn access_reviews_follow_the_forbid_rules() {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let server = TestApiServer::start(config()).await.unwrap();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(server.client().unwrap());
    let ask = |verb: &str, name: Option<&str>| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(NS.into()),
                verb: Some(verb.into()),
                resource: Some("pods".into()),
                subresource: Some("exec".into()),
                name: name.map(String::from),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let allowed = |review: SelfSubjectAccessReview| review.status.unwrap().allowed;
    let pp = Default::default();
    assert!(!allowed(
        reviews
            .create(&pp, &ask("create", Some("forbidden")))
            .await
            .unwrap()
    ));
    assert!(!allowed(
        reviews
            .create(&pp, &ask("get", Some("forbidden")))
            .await
            .unwrap()
    ));
    assert!(allowed(
        reviews
            .create(&pp, &ask("create", Some("echo")))
            .await
            .unwrap()
    ));
    assert!(allowed(
        reviews.create(&pp, &ask("create", None)).await.unwrap()
    ));

    let Some(kubectl) = tool("kubectl", "TEST_KUBECTL") else {
        return;
    };
    let scratch = Scratch::new("kubectl-can-i");
    let can_i = |name: &str| {
        let output = run(
            &kubectl,
            server.kubeconfig_path(),
            &scratch.0,
            &[
                "auth",
                "can-i",
                "create",
                &format!("pods/{name}"),
                "--subresource=exec",
                "-n",
                NS,
            ],
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(can_i("forbidden"), "no");
    assert_eq!(can_i("echo"), "yes");
}
