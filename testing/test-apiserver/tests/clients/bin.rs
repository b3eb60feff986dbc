//! The `test-apiserver` binary as shell-based tests use it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Scratch;

fn get(address: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn binary_prints_its_url_writes_a_kubeconfig_and_serves_seeds() {
    let scratch = Scratch::new("bin");
    let kubeconfig = scratch.0.join("kubeconfig.yaml");
    let seed = scratch.0.join("seed.yaml");
    std::fs::write(&seed, "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: nvidia}\nhandler: nvidia\n---\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-apiserver"))
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--dra",
            "v1beta1",
            "--kubernetes-version",
            "v1.32.3",
        ])
        .args(["--seed", seed.to_str().unwrap(), "--exit-on-stdin-close"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let url = first_line.trim().to_string();
    let address = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("first line is the URL, got {url:?}"));

    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(config.contains(&format!("server: {url}")), "{config}");
    assert!(get(address, "/version").contains("\"gitVersion\":\"v1.32.3\""));
    assert!(
        get(address, "/apis/resource.k8s.io")
            .contains("\"preferredVersion\":{\"groupVersion\":\"resource.k8s.io/v1beta1\"")
    );
    assert!(get(address, "/apis/node.k8s.io/v1/runtimeclasses/nvidia").starts_with("HTTP/1.1 200"));

    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
