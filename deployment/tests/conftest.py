"""Shared fixtures of the chart tests: the real helm 3 and 4, kubectl, kubernetes-validate, the
generator binary, and the in-repo test API server (testing/test-apiserver) with the real operator
binary running against it.

Everything is found where hack/install-test-tools.sh and `cargo build --workspace` put it; run the
suite through hack/test.d/60-chart.sh (or `hack/test.sh chart`).
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deployment" / "helm" / "k8s-mcp-agent"
TOOLS = Path(os.environ.get("TOOLS", ROOT / ".tools"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
HELMS = {"helm3": TOOLS / "helm3", "helm4": TOOLS / "helm4"}
KUBECTL = TOOLS / "kubectl"
GENERATOR = TARGET / "generator"
TEST_APISERVER = TARGET / "test-apiserver"
OPERATOR = TARGET / "operator"

# The original chart's README commands (deployment/helm/k8s-mcp-agent's predecessor), as the flags
# after the chart path. Every one must render, validate and do what the README says.
NS = ["--namespace", "gpu-diagnostics", "--create-namespace"]
RUNTIME_CLASS_OFF = ["--set", "gpu.runtimeClass.enabled=false"]
INLINE_CLAIM = '{"devices":{"requests":[{"name":"gpu","deviceClassName":"gpu.nvidia.com"}]}}'
COMMANDS = {
    "quick-start": NS,
    "device-plugin-fallback": NS + RUNTIME_CLASS_OFF + ["--set", "gpu.resourceRequest.enabled=true"],
    "device-plugin-no-namespace": RUNTIME_CLASS_OFF + ["--set", "gpu.resourceRequest.enabled=true"],
    "dra-template": RUNTIME_CLASS_OFF
    + ["--set", "gpu.resourceClaim.enabled=true", "--set", "gpu.resourceClaim.templateName=gpu-template"],
    "dra-inline": RUNTIME_CLASS_OFF
    + ["--set", "gpu.resourceClaim.enabled=true", "--set-json", f"gpu.resourceClaim.spec={INLINE_CLAIM}"],
    # The chart's own switches.
    "leader-election": NS + ["--set", "operator.replicas=2"],
    "metrics-service": NS + ["--set", "operator.metrics.service.enabled=true"],
    "no-config-no-crd-install": NS + ["--set", "config.create=false", "--set", "crds.install=false"],
}


def require(path: Path, how: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: {how}")
    return path


@pytest.fixture(params=sorted(HELMS), scope="session")
def helm(request) -> Path:
    """Each test taking `helm` runs once with helm 3.17 and once with helm 4.1."""
    return require(HELMS[request.param], "run hack/install-test-tools.sh")


@pytest.fixture(scope="session")
def generator() -> Path:
    return require(GENERATOR, "run `cargo build -p generator`")


def tool_env(home: Path, kubeconfig: Path | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        KUBECONFIG=str(kubeconfig) if kubeconfig else "/nonexistent",
    )
    return env


def run(cmd, home: Path, kubeconfig: Path | None = None, check=True, stdin=None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(c) for c in cmd],
        env=tool_env(home, kubeconfig),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def render(helm: Path, tmp_path: Path, args, release="k8s-mcp-agent") -> list[dict]:
    """`helm template` of the chart with `args`, as a list of objects."""
    out = run([helm, "template", release, CHART, *args], tmp_path).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """testing/test-apiserver as a process: its URL, a kubeconfig, plain-HTTP reads and writes."""

    def __init__(self, workdir: Path, seed: list[dict] = (), dra: str = ""):
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig.yaml"
        seed_file = workdir / "seed.yaml"
        seed_file.write_text(yaml.safe_dump_all(list(seed)))
        cmd = [str(require(TEST_APISERVER, "run `cargo build -p test-apiserver`")), "--kubeconfig",
               str(self.kubeconfig), "--exit-on-stdin-close"]
        if seed:
            cmd += ["--seed", str(seed_file)]
        if dra:
            cmd += ["--dra", dra]
        self.log = open(workdir / "test-apiserver.log", "w")
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://"), f"test-apiserver did not start: see {workdir}/test-apiserver.log"

    def stop(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def request(self, method: str, path: str, body=None, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            if error.code == 404 and method == "GET":
                return None
            raise AssertionError(f"{method} {path}: {error.code} {error.read().decode()}") from error

    def get(self, path: str):
        return self.request("GET", path)

    def create(self, path: str, body: dict):
        return self.request("POST", path, body)

    def put(self, path: str, body: dict):
        return self.request("PUT", path, body)

    def wait_for(self, what: str, check, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.1)


@pytest.fixture
def apiserver_factory(tmp_path):
    servers = []

    def start(seed=(), dra=""):
        workdir = tmp_path / f"apiserver-{len(servers)}"
        workdir.mkdir()
        server = ApiServer(workdir, seed, dra)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Operator:
    """The real operator binary, started the way the chart's Deployment starts it (its args and
    env), against the test API server."""

    def __init__(self, server: ApiServer, deployment: dict, workdir: Path):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        args = [a for a in container["args"] if not a.startswith("--metrics-addr=")]
        self.port = free_port()
        env = tool_env(workdir, server.kubeconfig)
        env.update(POD_NAMESPACE=deployment["metadata"]["namespace"], POD_NAME="operator-0")
        self.log_path = workdir / f"operator-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(require(OPERATOR, "run `cargo build -p operator`")), *args,
             f"--metrics-addr=127.0.0.1:{self.port}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.close()
        assert code == 0, f"operator exited {code}: {self.log_path.read_text()}"

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text()
