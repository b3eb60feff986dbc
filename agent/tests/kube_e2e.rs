//! The Kubernetes-aware tools end to end: the real agent binary against `testing/test-apiserver`
//! (node, pods, events, ResourceSlices) and the fake kubelet, in a scenario whose device plugin
//! advertises 7 of the node's 8 GPUs. Every API request the agent makes must be allowed by the
//! agent's ClusterRole (`operator::rbac::AGENT_RULES`); forbidden reads name the permission.

mod common;

use std::path::Path;

use common::{Session, text_of};
use fake_kubelet::{FakeKubelet, KubeletFixture};
use gpu_fixture::Fixture;
use serde_json::{Value, json};
use test_apiserver::{
    ApiError, Config, DraVersion, Fault, RequestMatch, StatusReason, TestApiServer, Verb,
};

const NODE: &str = "gpu-node-1";
const U: &str = "GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a5";
const CONTAINER_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn node() -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "labels": {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8",
        "nvidia.com/cuda.driver-version.full": "550.54.15", "nvidia.com/mig.strategy": "single"}},
      "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
      "status": {"capacity": {"nvidia.com/gpu": "8", "cpu": "96"},
                 "allocatable": {"nvidia.com/gpu": "7", "cpu": "95"},
                 "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})
}

fn pod(ns: &str, name: &str, uid: &str, node: &str, container: &str, id: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": uid},
      "spec": {"nodeName": node, "containers": [{"name": container, "image": "x"}]},
      "status": {"phase": "Running", "containerStatuses": [{"name": container, "image": "x",
        "imageID": "", "ready": true, "restartCount": 0, "containerID": format!("containerd://{id}")}]}})
}

fn objects() -> Vec<Value> {
    let mut devices: Vec<Value> = (0..8)
        .map(|i| {
            json!({"name": format!("gpu-{i}"), "attributes": {
            "type": {"string": "gpu"}, "uuid": {"string": format!("{U}{i}")},
            "productName": {"string": "NVIDIA H100 80GB HBM3"}, "index": {"int": i}}})
        })
        .collect();
    devices.truncate(8);
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "serve"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gpu-diagnostics"}}),
        node(),
        pod(
            "ml",
            "train-7",
            "11111111-3333-4444-5555-666666666666",
            NODE,
            "trainer",
            CONTAINER_ID,
        ),
        pod(
            "serve",
            "llm",
            "22222222-3333-4444-5555-666666666666",
            NODE,
            "server",
            &"cd".repeat(32),
        ),
        pod(
            "ml",
            "other-node",
            "33333333-3333-4444-5555-666666666666",
            "gpu-node-2",
            "x",
            &"ef".repeat(32),
        ),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "n1", "namespace": "default"},
          "involvedObject": {"kind": "Node", "name": NODE}, "type": "Warning", "reason": "GPUUnhealthy",
          "message": "device plugin marked GPU-…4a57 unhealthy", "count": 3,
          "lastTimestamp": "2026-12-07T10:00:00Z"}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "n2", "namespace": "default"},
          "involvedObject": {"kind": "Node", "name": NODE}, "type": "Normal", "reason": "Starting",
          "message": "kubelet started"}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "p1", "namespace": "gpu-diagnostics"},
          "involvedObject": {"kind": "Pod", "name": "agent-x", "namespace": "gpu-diagnostics"},
          "type": "Warning", "reason": "Unhealthy", "message": "Readiness probe failed", "count": 1,
          "lastTimestamp": "2026-12-07T11:00:00Z"}),
        json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
          "metadata": {"name": format!("{NODE}-gpu.nvidia.com")},
          "spec": {"driver": "gpu.nvidia.com", "nodeName": NODE,
                   "pool": {"name": NODE, "generation": 1, "resourceSliceCount": 1},
                   "devices": devices}}),
    ]
}

/// The kubelet of this node: the device-plugin fixture plus a DRA claim on gpu-4.
fn kubelet_fixture() -> KubeletFixture {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testing/fake-kubelet/fixtures");
    let mut k = KubeletFixture::from_path(&dir.join("device-plugin.yaml")).unwrap();
    let dra = KubeletFixture::from_path(&dir.join("dra.yaml")).unwrap();
    k.pods.extend(dra.pods.into_iter().map(|mut p| {
        for c in &mut p.containers {
            for cl in &mut c.claims {
                for d in &mut cl.devices {
                    d.pool = NODE.to_string();
                }
            }
        }
        p
    }));
    k
}

struct Scenario {
    server: TestApiServer,
    _kubelet: FakeKubelet,
    dir: tempfile::TempDir,
}

impl Scenario {
    fn start() -> Scenario {
        let server = TestApiServer::start_blocking(
            Config::default()
                .dra_versions(&[DraVersion::V1])
                .objects(objects()),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubelet = FakeKubelet::start(&dir.path().join("kubelet.sock"), kubelet_fixture());
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/h100-mig-and-pod-processes.yaml");
        Fixture::from_path(&fixture)
            .unwrap()
            .write_proc_root(&dir.path().join("proc"))
            .unwrap();
        // The API server assigns pod UIDs: the kubelet names the pod's cgroup after the one it got.
        let train = server
            .get_object("v1", "Pod", Some("ml"), "train-7")
            .unwrap();
        let uid = train["metadata"]["uid"].as_str().unwrap().replace('-', "_");
        std::fs::write(
            dir.path().join("proc/4242/cgroup"),
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{CONTAINER_ID}.scope\n"
            ),
        )
        .unwrap();
        Scenario {
            server,
            _kubelet: kubelet,
            dir,
        }
    }

    fn session(&self, mock: &str) -> Session {
        let socket = format!(
            "--pod-resources-socket={}",
            self.dir.path().join("kubelet.sock").display()
        );
        let proc_root = format!("--proc-root={}", self.dir.path().join("proc").display());
        let kubeconfig = self.server.kubeconfig_path().display().to_string();
        let mut s = Session::start_with_env(
            &[
                "--nvml-mode=mock",
                mock,
                "--log-level=warn",
                &socket,
                &proc_root,
            ],
            &[
                ("KUBECONFIG", &kubeconfig),
                ("NODE_NAME", NODE),
                ("POD_NAMESPACE", "gpu-diagnostics"),
                ("POD_NAME", "agent-x"),
            ],
        );
        s.initialize("2025-11-25");
        s
    }

    /// Every request the agent made is allowed by the agent's ClusterRole.
    fn assert_agent_rules_cover_requests(&self) {
        let requests = self.server.requests();
        assert!(!requests.is_empty());
        for r in requests {
            let (Some(verb), Some(resource)) = (r.verb(), r.resource()) else {
                continue;
            };
            let group = r.info.group.as_deref().unwrap_or_default();
            assert!(
                operator::rbac::allows(
                    operator::rbac::AGENT_RULES,
                    group,
                    resource,
                    verb.as_str(),
                    r.info.name.as_deref()
                ),
                "AGENT_RULES do not allow {verb} {group}/{resource} ({} {}?{})",
                r.method,
                r.path,
                r.query
            );
        }
    }
}

fn call(s: &mut Session, tool: &str, args: Value) -> Value {
    let r = s.call_tool(tool, args);
    assert_eq!(r["isError"], false, "{}", text_of(&r));
    r["structuredContent"].clone()
}

#[test]
fn describe_gpu_node_finds_the_seeded_allocatable_mismatch() {
    let sc = Scenario::start();
    let mut s = sc.session("--mock-scenario=healthy");
    let r = call(&mut s, "describe_gpu_node", json!({}));
    assert_eq!(r["unreadable"], json!([]), "{r}");
    assert_eq!(r["verdict"], "WARN", "{}", r["summary"]);
    let count = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "k8s.gpu_count")
        .unwrap();
    assert_eq!(count["severity"], "warn");
    for (k, v) in [
        ("nvml_gpus", 8),
        ("node_capacity_gpus", 8),
        ("node_allocatable_gpus", 7),
        ("kubelet_allocatable_gpus", 7),
        ("resourceslice_gpus", 8),
    ] {
        assert_eq!(count["evidence"][k], v, "{k}: {count}");
    }
    let checks: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert!(
        checks.contains(&"k8s.stale_allocation"),
        "ml/gone-9 is not in the API server: {checks:?}"
    );
    assert!(checks.contains(&"k8s.gpu_taint"), "{checks:?}");
    assert!(
        !checks.contains(&"k8s.product_label") && !checks.contains(&"k8s.driver_label"),
        "{checks:?}"
    );
    assert_eq!(r["node"]["gpu_labels"]["product"], "NVIDIA-H100-80GB-HBM3");
    assert_eq!(r["node"]["gpu_allocatable"]["nvidia.com/gpu"], "7");
    assert_eq!(r["resource_slices"].as_array().unwrap().len(), 8);
    let events: Vec<&str> = r["warning_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["Unhealthy", "GPUUnhealthy"],
        "Warning events of the node and the agent pod, newest first"
    );
    sc.assert_agent_rules_cover_requests();
}

#[test]
fn dra_claims_map_through_resource_slices_and_processes_get_pod_names() {
    let sc = Scenario::start();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/h100-mig-and-pod-processes.yaml");
    let mut s = sc.session(&format!("--mock-fixture={}", fixture.display()));
    let r = call(
        &mut s,
        "get_pod_gpu_allocation",
        json!({"namespace": "serve"}),
    );
    let h = &r["gpus"][4]["holders"][0];
    assert_eq!(
        (h["pod"].as_str(), h["container"].as_str()),
        (Some("llm"), Some("server"))
    );
    assert_eq!(h["source"], "dra");
    assert_eq!(h["claim"], "serve/llm-gpu");
    assert_eq!(h["device"], format!("gpu.nvidia.com/{NODE}/gpu-4"));
    let r = call(&mut s, "get_gpu_inventory", json!({"gpu_index": 3}));
    let p = &r["gpus"][0]["processes"][0];
    assert_eq!(
        (
            p["namespace"].as_str(),
            p["pod"].as_str(),
            p["container"].as_str()
        ),
        (Some("ml"), Some("train-7"), Some("trainer")),
        "{p}"
    );
    sc.assert_agent_rules_cover_requests();
}

#[test]
fn forbidden_reads_name_the_missing_permission() {
    let sc = Scenario::start();
    for resource in ["pods", "events"] {
        sc.server.inject(Fault::error(
            RequestMatch::resource(resource).verb(Verb::List),
            ApiError::new(StatusReason::Forbidden, format!("{resource} is forbidden: User \"system:serviceaccount:gpu-diagnostics:agent\" cannot list resource \"{resource}\"")),
        ));
    }
    let mut s = sc.session("--mock-scenario=healthy");
    let r = call(&mut s, "describe_gpu_node", json!({}));
    let missing: Vec<&str> = r["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["missing_permission"].as_str())
        .collect();
    assert_eq!(missing, ["list pods", "list events"], "{}", r["unreadable"]);
    assert!(
        r["unreadable"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("forbidden: the agent's ServiceAccount may not list pods")
    );
    assert!(r.get("warning_events").is_none(), "unknown, not empty");
    assert_eq!(r["node"]["name"], NODE, "the node was still read");
}
