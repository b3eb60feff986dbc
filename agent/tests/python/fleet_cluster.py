"""A simulated GPU cluster for end-to-end tests of clients that reach node agents over `pods/exec`.

It runs the in-repo test API server (`target/debug/test-apiserver`) with:

- GPU nodes (label `nvidia.com/gpu.present=true`, `nvidia.com/gpu.product`, `nvidia.com/gpu` capacity and
  allocatable) and a node without GPUs;
- the `GpuDiagnosticsConfig` CRD, a config (`spec.namespace.name`, and a status with `daemonSet`,
  `desiredNumberScheduled`, `numberReady` and a `nodeProblems` entry for a crash-looping pod) and its
  namespace, RuntimeClass and DaemonSet, as the operator writes them;
- one agent pod per node that has an agent, labelled and owned as the DaemonSet controller does it (labels
  `app.kubernetes.io/name=k8s-mcp-agent`, `app.kubernetes.io/instance=<config>`, container `agent`);
- exec rules (`--exec-config`, reloaded on change) so that `/agent` in container `agent` of a node's pod runs
  the real `target/debug/agent --nvml-mode=mock` with that node's mock scenario, hangs, or is refused (403).

The default fleet (`DEFAULT_NODES`): five answering nodes with different scenarios (healthy, ecc-dbe,
fallen-off-bus, thermal-throttle, row-remap-pending), `gpu-no-agent` (a GPU node without an agent pod),
`gpu-not-ready` (pod crash-looping: not Ready, container waiting, so exec fails with "container not found"),
`gpu-hang` (exec upgrades, then never answers), `gpu-forbidden` (exec refused: 403 naming
`create pods/exec`), and `cpu-a` (no GPUs, no agent).

Use from a test next to this file (pytest puts this folder on `sys.path`):

    from fleet_cluster import FleetCluster, Node, fleet_cluster  # noqa: F401  (fleet_cluster: fixture)

    def test_health(fleet_cluster):
        env = {"KUBECONFIG": str(fleet_cluster.kubeconfig)}   # for `agent fleet` or kubectl
        pod = fleet_cluster.pods["gpu-healthy"]                # current pod name per node
        new = fleet_cluster.replace_pod("gpu-healthy")         # a rollout: new pod name, same node
        fleet_cluster.set_exec("gpu-ecc-dbe", "hang")          # change a node's exec at runtime
        fleet_cluster.set_pod_state("gpu-healthy", "not-ready")

    def test_big(tmp_path):
        with FleetCluster(tmp_path, [Node(f"gpu-{i:03d}") for i in range(100)]) as cluster:
            ...

`Node` fields: `scenario` (agent mock scenario), `gpus`, `gpu` (False: a CPU node), `agent` (False: no agent
pod), `pod` ("running", "not-ready": Running but Ready=False with exec working, "crash-loop": Ready=False
and exec failing), `exec` ("run", "hang", "forbid"). The server's stderr is in `tmp/test-apiserver.log`;
the exec rules in `tmp/exec-rules.json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import random
import string
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
AGENT = pathlib.Path(os.environ.get("AGENT_BIN", ROOT / "target" / "debug" / "agent"))
APISERVER = pathlib.Path(
    os.environ.get("TEST_APISERVER_BIN", ROOT / "target" / "debug" / "test-apiserver")
)
CRD = ROOT / "crds" / "gpudiagnosticsconfigs.yaml"

NAMESPACE = "gpu-diagnostics"
CONFIG = "default"
CONTAINER = "agent"
APP_NAME = "k8s-mcp-agent"
MANAGER = "k8s-mcp-agent-operator"
GDC_API_VERSION = "gpu.k8s-mcp-agent.io/v1alpha1"
PRODUCT = "NVIDIA-H100-80GB-HBM3"
POD_STATES = ("running", "not-ready", "crash-loop")
EXEC_MODES = ("run", "hang", "forbid")


@dataclasses.dataclass(frozen=True)
class Node:
    """One node of the simulated cluster and how its agent pod behaves."""

    name: str
    scenario: str = "healthy"
    gpus: int = 8
    gpu: bool = True
    agent: bool = True
    pod: str = "running"
    exec: str = "run"

    def __post_init__(self):
        if self.pod not in POD_STATES:
            raise ValueError(f"Node {self.name}: pod must be one of {POD_STATES}, not {self.pod!r}")
        if self.exec not in EXEC_MODES:
            raise ValueError(f"Node {self.name}: exec must be one of {EXEC_MODES}, not {self.exec!r}")


DEFAULT_NODES = (
    Node("gpu-healthy", "healthy"),
    Node("gpu-ecc-dbe", "ecc-dbe"),
    Node("gpu-fallen-off-bus", "fallen-off-bus"),
    Node("gpu-thermal-throttle", "thermal-throttle"),
    Node("gpu-row-remap-pending", "row-remap-pending"),
    Node("gpu-no-agent", agent=False),
    Node("gpu-not-ready", pod="crash-loop"),
    Node("gpu-hang", exec="hang"),
    Node("gpu-forbidden", exec="forbid"),
    Node("cpu-a", gpu=False, agent=False),
)


def labels(config: str = CONFIG) -> dict:
    """The labels the operator puts on the DaemonSet's pod template (selector + managed-by)."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": config,
        "app.kubernetes.io/managed-by": MANAGER,
    }


def daemon_set_name(config: str = CONFIG) -> str:
    return f"{APP_NAME}-{config}"


def _suffix() -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))


class FleetCluster:
    """The test API server with a simulated GPU fleet; a context manager (or call `start`/`stop`)."""

    def __init__(self, directory, nodes=DEFAULT_NODES, config: str = CONFIG, user: str = "alice@example.com"):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.nodes = {node.name: node for node in nodes}
        self.config = config
        self.user = user
        self.kubeconfig = self.dir / "kubeconfig.yaml"
        self.rules_path = self.dir / "exec-rules.json"
        self.url = ""
        self.pods: dict[str, str] = {n.name: f"{daemon_set_name(config)}-{_suffix()}" for n in nodes if n.agent}
        self.states: dict[str, str] = {n.name: n.pod for n in nodes if n.agent}
        self.execs: dict[str, str] = {n.name: n.exec for n in nodes if n.agent}
        self._process = None

    # --- Lifecycle ----------------------------------------------------------------------------------

    def start(self) -> "FleetCluster":
        for binary, build in ((APISERVER, "cargo build -p test-apiserver"), (AGENT, "cargo build -p agent")):
            if not binary.exists():
                pytest.fail(f"{binary} is missing: build it first ({build})")
        seed = self.dir / "seed.yaml"
        seed.write_text("\n---\n".join(json.dumps(o) for o in self._seed_objects()) + "\n")
        self._write_rules()
        log = open(self.dir / "test-apiserver.log", "w")
        self._process = subprocess.Popen(
            [str(APISERVER), "--kubeconfig", str(self.kubeconfig), "--seed", str(CRD), "--seed", str(seed),
             "--exec-config", str(self.rules_path), "--exit-on-stdin-close"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=ROOT,
        )
        self.url = self._process.stdout.readline().decode().strip()
        if not self.url.startswith("http://"):
            self.stop()
            pytest.fail(f"test-apiserver did not start; see {self.dir / 'test-apiserver.log'}")
        owner = self.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/{daemon_set_name(self.config)}")
        self._owner = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner["metadata"]["name"],
                       "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        for node, pod in self.pods.items():
            self._create_pod(node, pod)
        return self

    def stop(self):
        if self._process is None:
            return
        try:
            self._process.stdin.close()
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *_):
        self.stop()

    # --- Changes between calls ----------------------------------------------------------------------

    def replace_pod(self, node: str) -> str:
        """Deletes the node's agent pod and creates a new one (new name, same node and behaviour), as a
        DaemonSet rollout does. Returns the new name."""
        old = self.pods[node]
        self.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{old}")
        new = f"{daemon_set_name(self.config)}-{_suffix()}"
        self.pods[node] = new
        self._create_pod(node, new)
        if self.execs[node] == "forbid":
            self._write_rules(wait=True)
        return new

    def set_exec(self, node: str, mode: str):
        """Changes what exec into the node's pod does: "run", "hang" or "forbid" (from the next exec on)."""
        if mode not in EXEC_MODES:
            raise ValueError(f"exec mode must be one of {EXEC_MODES}")
        self.execs[node] = mode
        self._write_rules(wait=True)

    def set_pod_state(self, node: str, state: str):
        """Rewrites the status of the node's pod: "running", "not-ready" or "crash-loop"."""
        if state not in POD_STATES:
            raise ValueError(f"pod state must be one of {POD_STATES}")
        self.states[node] = state
        pod = self.pods[node]
        self.request("PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/status",
                     {"status": self._pod_status(pod, state)}, "application/merge-patch+json")

    def request(self, method: str, path: str, body=None, content_type: str = "application/json"):
        """One request to the API server; returns the decoded JSON answer (raises on an HTTP error)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read().decode()}") from None

    # --- What the cluster holds ---------------------------------------------------------------------

    def _seed_objects(self) -> list:
        nodes = [self._node(n) for n in self.nodes.values()]
        agents = [n for n in self.nodes.values() if n.agent]
        ready = [n for n in agents if self.states[n.name] == "running"]
        problems = [
            {"node": n.name, "pod": self.pods[n.name], "reason": "CrashLooping",
             "message": f"container agent of pod {self.pods[n.name]} keeps crashing (CrashLoopBackOff)",
             "fix": f"kubectl logs -n {NAMESPACE} {self.pods[n.name]} -c agent --previous"}
            for n in agents if self.states[n.name] == "crash-loop"
        ]
        return [
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": MANAGER}}},
            {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"},
             "handler": "nvidia"},
            *nodes,
            {"apiVersion": GDC_API_VERSION, "kind": "GpuDiagnosticsConfig",
             "metadata": {"name": self.config}, "spec": {"namespace": {"name": NAMESPACE}},
             "status": {"observedGeneration": 1, "mode": "RuntimeClass",
                        "reason": "RuntimeClass nvidia exists",
                        "daemonSet": {"namespace": NAMESPACE, "name": daemon_set_name(self.config)},
                        "desiredNumberScheduled": len(agents), "numberReady": len(ready),
                        "nodeProblems": problems}},
            self._daemon_set(len(agents), len(ready)),
        ]

    def _node(self, node: Node) -> dict:
        node_labels = {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux"}
        allocatable = {"cpu": "64", "memory": "512Gi", "pods": "110"}
        if node.gpu:
            node_labels.update({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": PRODUCT,
                                "nvidia.com/gpu.count": str(node.gpus)})
            allocatable["nvidia.com/gpu"] = str(node.gpus)
        return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node.name, "labels": node_labels},
                "spec": {},
                "status": {"capacity": allocatable, "allocatable": allocatable,
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status"}]}}

    def _container(self) -> dict:
        return {"name": CONTAINER, "image": "ghcr.io/k8s-mcp-agent/agent:0.1.0", "command": ["/agent", "idle"],
                "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "AGENT_LOG_LEVEL", "value": "info"},
                        {"name": "AGENT_NVML_MODE", "value": "real"}],
                "readinessProbe": {"exec": {"command": ["/agent", "check"]}, "periodSeconds": 30}}

    def _daemon_set(self, desired: int, ready: int) -> dict:
        selector = {k: v for k, v in labels(self.config).items() if k != "app.kubernetes.io/managed-by"}
        return {"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": daemon_set_name(self.config), "namespace": NAMESPACE,
                             "labels": labels(self.config)},
                "spec": {"selector": {"matchLabels": selector},
                         "template": {"metadata": {"labels": labels(self.config)},
                                      "spec": {"runtimeClassName": "nvidia",
                                               "nodeSelector": {"nvidia.com/gpu.present": "true"},
                                               "containers": [self._container()]}}},
                "status": {"desiredNumberScheduled": desired, "currentNumberScheduled": desired,
                           "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": desired,
                           "numberMisscheduled": 0, "observedGeneration": 1}}

    def _create_pod(self, node: str, name: str):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": NAMESPACE,
                            "labels": {**labels(self.config), "controller-revision-hash": "5d4b8c9f7",
                                       "pod-template-generation": "1"},
                            "ownerReferences": [self._owner]},
               "spec": {"nodeName": node, "runtimeClassName": "nvidia",
                        "serviceAccountName": daemon_set_name(self.config), "containers": [self._container()]}}
        self.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod)
        self.request("PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/status",
                     {"status": self._pod_status(name, self.states[node])}, "application/merge-patch+json")

    def _pod_status(self, name: str, state: str) -> dict:
        started = "2026-01-01T00:00:00Z"
        running = state in ("running", "not-ready")
        ready = state == "running"
        container = {"name": CONTAINER, "image": "ghcr.io/k8s-mcp-agent/agent:0.1.0", "imageID": "",
                     "ready": ready, "started": running, "restartCount": 0 if running else 7,
                     "state": {"running": {"startedAt": started}}}
        if state == "crash-loop":
            container["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                  f"back-off 5m0s restarting failed container=agent pod={name}_{NAMESPACE}"}}
            container["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started,
                                                     "finishedAt": started}}
        conditions = [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"}]
        if ready:
            conditions += [{"type": "ContainersReady", "status": "True"}, {"type": "Ready", "status": "True"}]
        else:
            message = "containers with unready status: [agent]"
            conditions += [
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "message": message},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": message},
            ]
        # The phase stays Running for a crash-looping container (it has run before), as on a kubelet.
        return {"phase": "Running", "conditions": conditions, "containerStatuses": [container],
                "hostIP": "10.0.0.1", "podIP": "10.244.0.10", "startTime": started}

    def _write_rules(self, wait: bool = False):
        rules = [{"match": {"namespace": NAMESPACE, "pod": self.pods[node]}, "forbid": {}}
                 for node, mode in self.execs.items() if mode == "forbid"]
        for node, mode in self.execs.items():
            match = {"namespace": NAMESPACE, "node": node, "container": CONTAINER, "command": "/agent"}
            if mode == "hang":
                rules.append({"match": match, "hang": {}})
            elif mode == "run":
                rules.append({"match": match, "run": {
                    "argv": [str(AGENT)],
                    "env": {"AGENT_NVML_MODE": "mock", "AGENT_MOCK_SCENARIO": self.nodes[node].scenario,
                            "AGENT_LOG_LEVEL": "warn"}}})
        text = json.dumps({"user": self.user, "rules": rules}, indent=1)
        tmp = self.rules_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.rules_path)
        if wait:
            # The server polls the file every 100 ms.
            time.sleep(0.5)


@pytest.fixture
def fleet_cluster(tmp_path):
    """The default simulated fleet (`DEFAULT_NODES`), stopped after the test."""
    with FleetCluster(tmp_path / "cluster") as cluster:
        yield cluster
