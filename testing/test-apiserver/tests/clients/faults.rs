//! Fault injection and the request log, as a kube-rs client experiences them.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use test_apiserver::{Config, Fault, PatchType, RequestMatch, TestApiServer, Verb};

fn status_code(error: kube::Error) -> (u16, String) {
    match error {
        kube::Error::Api(status) => (status.code, status.reason),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn counted_failures_then_success() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    server.inject(Fault::fail(RequestMatch::resource("configmaps").apply(), 500).times(2));
    for _ in 0..2 {
        let error = api
            .patch("c", &PatchParams::apply("op"), &Patch::Apply(&apply))
            .await
            .unwrap_err();
        assert_eq!(status_code(error), (500, "InternalError".to_string()));
    }
    api.patch("c", &PatchParams::apply("op"), &Patch::Apply(&apply))
        .await
        .unwrap();

    let all = server.matching_requests(
        test_apiserver::LogMark(0),
        &RequestMatch::resource("configmaps").writes(),
    );
    assert_eq!(
        all.iter()
            .map(|r| (r.status, r.injected))
            .collect::<Vec<_>>(),
        [(500, true), (500, true), (201, false)]
    );
    assert_eq!(all[0].patch_type(), Some(PatchType::Apply));
    assert_eq!(all[0].field_manager.as_deref(), Some("op"));
}

/// One raw HTTP/1.1 request, to see status and headers exactly as sent (kube-rs retries 429s itself).
fn raw_get(server: &TestApiServer, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.address()).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test]
async fn throttling_and_delays() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    server
        .inject(Fault::throttle(RequestMatch::resource("configmaps").verb(Verb::Get), 1).times(2));
    let response = raw_get(&server, "/api/v1/namespaces/default/configmaps/x");
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{response}"
    );
    assert!(
        response.contains("\"reason\":\"TooManyRequests\""),
        "{response}"
    );

    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let mark = server.mark();
    assert!(
        api.get_opt("x").await.unwrap().is_none(),
        "kube-rs retries the 429 and then sees 404"
    );
    let statuses: Vec<u16> = server
        .requests_since(mark)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 404]);

    server.inject(Fault::delay(
        RequestMatch::resource("configmaps").verb(Verb::List),
        Duration::from_millis(300),
    ));
    let started = Instant::now();
    api.list(&Default::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.clear_faults();
    let started = Instant::now();
    api.list(&Default::default()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "generous upper bound once faults are cleared"
    );
}

#[tokio::test]
async fn request_log_counts_writes_per_resource_since_a_mark() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    api.patch("c", &PatchParams::apply("op"), &Patch::Apply(&apply))
        .await
        .unwrap();
    let mark = server.mark();
    for _ in 0..3 {
        api.patch("c", &PatchParams::apply("op"), &Patch::Apply(&apply))
            .await
            .unwrap();
        api.get("c").await.unwrap();
    }
    let writes = RequestMatch::resource("configmaps").writes();
    assert_eq!(
        server.count(mark, &writes),
        3,
        "three apply requests were sent"
    );
    assert_eq!(
        server.count_changes(mark, &writes),
        0,
        "none of them changed anything"
    );
    assert_eq!(
        server.count(
            mark,
            &RequestMatch::resource("configmaps")
                .verb(Verb::Get)
                .name("c")
        ),
        3
    );
    let record = &server.requests_since(mark)[0];
    assert_eq!(
        (record.method.as_str(), record.path.as_str()),
        ("PATCH", "/api/v1/namespaces/default/configmaps/c")
    );
    assert_eq!(record.info.namespace.as_deref(), Some("default"));
}
