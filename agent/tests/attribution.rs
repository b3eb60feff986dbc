//! Workload attribution through the binary: `get_pod_gpu_allocation`, `describe_gpu_node`, pods in
//! `get_gpu_health`/`analyze_xid_errors` and process owners in `get_gpu_inventory`, against the fake
//! kubelet (`testing/fake-kubelet`) on a unix socket and a fake `/proc`, without an API server.

mod common;

use std::path::{Path, PathBuf};

use common::{Session, text_of};
use fake_kubelet::{FakeKubelet, KubeletFixture};
use gpu_fixture::Fixture;
use serde_json::{Value, json};

fn kubelet_fixture(name: &str) -> KubeletFixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testing/fake-kubelet/fixtures")
        .join(format!("{name}.yaml"));
    KubeletFixture::from_path(&path).unwrap()
}

fn agent_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.yaml"))
}

/// A fake kubelet serving `kubelet` and the mock agent (`mock` args) pointed at it.
struct Node {
    _dir: tempfile::TempDir,
    _kubelet: Option<FakeKubelet>,
    socket: PathBuf,
    proc_root: PathBuf,
}

impl Node {
    fn new(kubelet: Option<&str>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("kubelet.sock");
        let kubelet = kubelet.map(|k| FakeKubelet::start(&socket, kubelet_fixture(k)));
        let proc_root = dir.path().join("proc");
        Node {
            socket,
            proc_root,
            _kubelet: kubelet,
            _dir: dir,
        }
    }

    fn session(&self, mock: &[&str], extra: &[&str]) -> Session {
        let mut args = vec!["--nvml-mode=mock", "--log-level=warn"];
        args.extend_from_slice(mock);
        let socket = format!("--pod-resources-socket={}", self.socket.display());
        let proc_root = format!("--proc-root={}", self.proc_root.display());
        args.push(&socket);
        args.push(&proc_root);
        args.extend_from_slice(extra);
        let mut s = Session::start_with_env(&args, &[("KUBECONFIG", "")]);
        s.initialize("2025-11-25");
        s
    }
}

fn call(s: &mut Session, tool: &str, args: Value) -> Value {
    let r = s.call_tool(tool, args);
    assert_eq!(r["isError"], false, "{}", text_of(&r));
    assert_eq!(
        serde_json::from_str::<Value>(&text_of(&r)).unwrap(),
        r["structuredContent"],
        "the text content is the structured content"
    );
    r["structuredContent"].clone()
}

fn holders(r: &Value, gpu: usize) -> Vec<String> {
    r["gpus"][gpu]["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}/{}/{}", h["namespace"], h["pod"], h["container"]).replace('"', ""))
        .collect()
}

#[test]
fn device_plugin_allocations_per_gpu() {
    let node = Node::new(Some("device-plugin"));
    let mut s = node.session(&["--mock-scenario=healthy"], &[]);
    let r = call(&mut s, "get_pod_gpu_allocation", json!({}));
    assert_eq!(r["gpus"].as_array().unwrap().len(), 8);
    assert_eq!(holders(&r, 3), ["ml/train-7/trainer"]);
    let h = &r["gpus"][3]["holders"][0];
    assert_eq!(h["source"], "device_plugin");
    assert_eq!(h["resource_name"], "nvidia.com/gpu");
    assert_eq!(h["matched_by"], "uuid");
    assert_eq!(holders(&r, 2), ["ml/shared-a/a", "ml/shared-b/b"]);
    assert_eq!(r["gpus"][2]["holders"][1]["replica"], 1);
    assert_eq!(r["unheld_gpus"], json!([0, 1, 4, 6, 7]));
    let unmatched = r["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 1, "{unmatched:?}");
    assert_eq!(unmatched[0]["pod"], "elsewhere");
    assert!(
        unmatched[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not among the 8 GPU(s) NVML sees"),
        "{}",
        unmatched[0]["reason"]
    );
    assert_eq!(r["unreadable"], json!([]));

    let r = call(
        &mut s,
        "get_pod_gpu_allocation",
        json!({"namespace": "ml", "pod": "train-7"}),
    );
    assert_eq!(holders(&r, 3), ["ml/train-7/trainer"]);
    assert!(holders(&r, 2).is_empty());
    assert_eq!(r["unmatched"], json!([]));
    let r = call(
        &mut s,
        "get_pod_gpu_allocation",
        json!({"namespace": "nope"}),
    );
    assert!(
        r["notes"][0]
            .as_str()
            .unwrap()
            .contains("no pod matching namespace nope")
    );
}

#[test]
fn mig_instances_and_an_unimplemented_allocatable() {
    let node = Node::new(Some("mig"));
    let fixture = agent_fixture("h100-mig-and-pod-processes");
    let mut s = node.session(&["--mock-fixture", fixture.to_str().unwrap()], &[]);
    let r = call(&mut s, "get_pod_gpu_allocation", json!({}));
    let h = &r["gpus"][6]["holders"][0];
    assert_eq!(h["pod"], "mig-job");
    assert_eq!(h["mig_uuid"], "MIG-0c1d2e3f-4a5b-5c6d-8e7f-901234567890");
    assert_eq!(h["matched_by"], "only_mig_gpu");
    assert_eq!(r["gpus"][6]["mig_mode_enabled"], true);
    let r = call(&mut s, "describe_gpu_node", json!({}));
    let unreadable = r["unreadable"].to_string();
    assert!(
        unreadable.contains("UNIMPLEMENTED") || unreadable.contains("Unimplemented"),
        "{unreadable}"
    );
    assert!(r.get("kubelet_allocatable").is_none());
}

#[test]
fn dra_claims_without_the_api_server_say_why_they_are_unmatched() {
    let node = Node::new(Some("dra"));
    let mut s = node.session(&["--mock-scenario=healthy"], &[]);
    let r = call(&mut s, "get_pod_gpu_allocation", json!({}));
    let u = &r["unmatched"][0];
    assert_eq!(
        (u["pod"].as_str(), u["source"].as_str()),
        (Some("llm"), Some("dra"))
    );
    assert_eq!(u["device"], "gpu.nvidia.com/gpu-node-1/gpu-4");
    assert!(
        u["reason"].as_str().unwrap().contains("no ResourceSlice"),
        "{u}"
    );
    let unreadable = &r["unreadable"][0];
    assert_eq!(unreadable["source"], "kubernetes");
    assert!(
        unreadable["reason"].as_str().unwrap().contains("NODE_NAME"),
        "{unreadable}"
    );
}

#[test]
fn an_empty_node_and_missing_or_refusing_sockets() {
    let node = Node::new(Some("empty"));
    let mut s = node.session(&["--mock-scenario=healthy"], &[]);
    let r = call(&mut s, "get_pod_gpu_allocation", json!({}));
    assert_eq!(r["unheld_gpus"], json!([0, 1, 2, 3, 4, 5, 6, 7]));
    assert_eq!(r["unmatched"], json!([]));

    let missing = Node::new(None);
    let mut s = missing.session(&["--mock-scenario=healthy"], &[]);
    let r = call(&mut s, "get_pod_gpu_allocation", json!({}));
    assert!(r.get("unheld_gpus").is_none(), "unknown, not empty: {r}");
    assert_eq!(r["unreadable"][0]["source"], "pod-resources");
    assert!(
        r["unreadable"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("mount the host directory /var/lib/kubelet/pod-resources"),
        "{}",
        r["unreadable"][0]
    );

    let refusing = Node::new(None);
    drop(std::os::unix::net::UnixListener::bind(&refusing.socket).unwrap());
    let mut s = refusing.session(&["--mock-scenario=healthy"], &[]);
    let r = call(&mut s, "get_pod_gpu_allocation", json!({}));
    assert!(
        r["unreadable"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("is the kubelet running?"),
        "{}",
        r["unreadable"][0]
    );
}

#[test]
fn kubernetes_context_can_be_turned_off() {
    let node = Node::new(Some("device-plugin"));
    let mut s = node.session(
        &["--mock-scenario=healthy"],
        &["--kubernetes-context=false"],
    );
    let r = call(&mut s, "get_pod_gpu_allocation", json!({}));
    assert!(r["gpus"][3]["holders"].as_array().unwrap().is_empty());
    assert!(
        r["unreadable"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("turned off")
    );
}

#[test]
fn xids_and_health_name_the_pods_on_the_gpu() {
    let node = Node::new(Some("device-plugin"));
    let mut s = node.session(&["--mock-scenario=fallen-off-bus"], &[]);
    let r = call(&mut s, "analyze_xid_errors", json!({}));
    let w = &r["affected_workloads"][0];
    assert_eq!(w["gpu_index"], 5);
    assert_eq!(w["summary"], "Xid 79 on GPU 5 → ml/gone-9 container worker");
    let r = call(&mut s, "get_gpu_health", json!({}));
    let w = &r["affected_workloads"][0];
    assert_eq!(w["gpu_index"], 5);
    assert_eq!(w["holders"], json!(["ml/gone-9 container worker"]));
    assert!(w["summary"].as_str().unwrap().starts_with("FAIL ("), "{w}");
}

#[test]
fn describe_gpu_node_without_an_api_server_compares_the_kubelet_and_nvml() {
    let node = Node::new(Some("device-plugin"));
    let mut s = node.session(&["--mock-scenario=healthy"], &[]);
    let r = call(&mut s, "describe_gpu_node", json!({}));
    assert_eq!(r["verdict"], "WARN", "{}", r["summary"]);
    let f = &r["findings"][0];
    assert_eq!(f["check"], "k8s.gpu_count");
    assert_eq!(f["evidence"]["nvml_gpus"], 8);
    assert_eq!(f["evidence"]["kubelet_allocatable_gpus"], 7);
    assert_eq!(r["nvml"]["gpu_count"], 8);
    assert!(r.get("node").is_none());
    assert_eq!(r["unreadable"][0]["source"], "kubernetes");
}

#[test]
fn inventory_processes_name_their_container_with_host_pids() {
    let node = Node::new(Some("empty"));
    let fixture_path = agent_fixture("h100-mig-and-pod-processes");
    Fixture::from_path(&fixture_path)
        .unwrap()
        .write_proc_root(&node.proc_root)
        .unwrap();
    let mut s = node.session(&["--mock-fixture", fixture_path.to_str().unwrap()], &[]);
    let r = call(&mut s, "get_gpu_inventory", json!({}));
    let p = &r["gpus"][3]["processes"][0];
    assert_eq!(p["pid"], 4242);
    assert_eq!(p["pod_uid"], "1f0cbe2a-3b4c-4d5e-8f90-0123456789ab");
    assert_eq!(
        p["container_id"],
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert!(p.get("pod").is_none(), "no API server, so no pod name: {p}");
    let p = &r["gpus"][2]["processes"];
    assert_eq!(p[0]["pod_uid"], "7a7b7c7d-1111-2222-3333-444455556666");
    assert!(
        p[1]["owner_unknown"]
            .as_str()
            .unwrap()
            .contains("not in a Kubernetes container")
    );
    assert!(
        r["process_attribution"]
            .as_str()
            .unwrap()
            .contains("pod names unknown")
    );

    // Without the host PID namespace, PIDs are not looked up at all.
    std::fs::write(
        node.proc_root.join("1/cgroup"),
        format!(
            "0::/kubepods/pod1f0cbe2a-3b4c-4d5e-8f90-0123456789ab/{}\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let r = call(&mut s, "get_gpu_inventory", json!({}));
    assert!(r["gpus"][3]["processes"][0].get("pod_uid").is_none());
    assert!(
        r["process_attribution"]
            .as_str()
            .unwrap()
            .contains("agent.hostPID: true"),
        "{}",
        r["process_attribution"]
    );
}

#[test]
fn new_tools_are_listed_with_closed_inputs_and_output_schemas() {
    let node = Node::new(None);
    let mut s = node.session(&["--mock-scenario=healthy"], &[]);
    let tools = s.request("tools/list", json!({}));
    for name in ["get_pod_gpu_allocation", "describe_gpu_node"] {
        let t = tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed"));
        assert_eq!(t["inputSchema"]["additionalProperties"], false, "{name}");
        assert!(
            t["outputSchema"]["properties"]["unreadable"].is_object(),
            "{name}"
        );
    }
    let r = s.call_tool("get_pod_gpu_allocation", json!({"namespaces": "ml"}));
    assert_eq!(r["isError"], true);
    assert!(
        text_of(&r).contains("unknown field `namespaces`"),
        "{}",
        text_of(&r)
    );
    let r = s.call_tool("describe_gpu_node", json!({"x": 1}));
    assert_eq!(r["isError"], true);
}
