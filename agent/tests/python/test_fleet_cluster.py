"""The simulated GPU fleet (`fleet_cluster.py`) behaves as its users rely on, seen through the real kubectl:
nodes, config, agent pods, and `kubectl exec -i … -- /agent` answering per node, hanging, refused, failing."""

import json
import subprocess

from fleet_cluster import NAMESPACE, ROOT, fleet_cluster  # noqa: F401  (fixture)

KUBECTL = ROOT / ".tools" / "kubectl"
QUERY = ROOT / "examples" / "inventory-query.jsonl"


def kubectl(cluster, *args, stdin=None, timeout=30):
    with open(stdin) if stdin else open("/dev/null") as input_:
        return subprocess.run([str(KUBECTL), *args], stdin=input_, capture_output=True, text=True,
                              timeout=timeout, env={"KUBECONFIG": str(cluster.kubeconfig),
                                                    "HOME": str(cluster.dir)})


def agent_exec(cluster, node, timeout=30):
    return kubectl(cluster, "exec", "-i", "-n", NAMESPACE, cluster.pods[node], "-c", "agent", "--", "/agent",
                   stdin=QUERY, timeout=timeout)


def inventory(result) -> dict:
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in replies] == [0, 1], result.stdout
    return replies[1]["result"]["structuredContent"]


def test_the_cluster_holds_gpu_nodes_config_and_labelled_agent_pods(fleet_cluster):
    nodes = kubectl(fleet_cluster, "get", "nodes", "-l", "nvidia.com/gpu.present=true", "-o", "name")
    assert nodes.stdout.split() == [f"node/{n}" for n in sorted(fleet_cluster.nodes) if n != "cpu-a"]
    pods = json.loads(kubectl(fleet_cluster, "get", "pods", "-n", NAMESPACE, "-l",
                              "app.kubernetes.io/name=k8s-mcp-agent,app.kubernetes.io/instance=default",
                              "-o", "json").stdout)["items"]
    assert {p["spec"]["nodeName"]: p["metadata"]["name"] for p in pods} == fleet_cluster.pods
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet" for p in pods)
    config = json.loads(kubectl(fleet_cluster, "get", "gpudiagnosticsconfig", "default", "-o", "json").stdout)
    assert config["spec"]["namespace"]["name"] == NAMESPACE
    assert config["status"]["daemonSet"] == {"namespace": NAMESPACE, "name": "k8s-mcp-agent-default"}
    assert [p["node"] for p in config["status"]["nodeProblems"]] == ["gpu-not-ready"]


def test_exec_runs_each_nodes_scenario_and_fails_like_a_cluster(fleet_cluster):
    assert inventory(agent_exec(fleet_cluster, "gpu-healthy"))["data_source"] == "mock:healthy"
    assert inventory(agent_exec(fleet_cluster, "gpu-ecc-dbe"))["data_source"] == "mock:ecc-dbe"

    forbidden = agent_exec(fleet_cluster, "gpu-forbidden")
    assert forbidden.returncode != 0
    assert ('User "alice@example.com" cannot create resource "pods/exec" in API group "" in the namespace '
            f'"{NAMESPACE}"') in forbidden.stderr

    crashing = agent_exec(fleet_cluster, "gpu-not-ready")
    assert crashing.returncode != 0
    assert 'container not found ("agent")' in crashing.stderr

    try:
        hung = agent_exec(fleet_cluster, "gpu-hang", timeout=2)
        raise AssertionError(f"exec into the hanging node returned: {hung}")
    except subprocess.TimeoutExpired as timeout:
        assert not timeout.stdout


def test_pods_are_replaced_and_behaviour_changes_between_calls(fleet_cluster):
    old = fleet_cluster.pods["gpu-healthy"]
    new = fleet_cluster.replace_pod("gpu-healthy")
    assert new != old
    gone = kubectl(fleet_cluster, "get", "pod", "-n", NAMESPACE, old)
    assert f'pods "{old}" not found' in gone.stderr
    assert inventory(agent_exec(fleet_cluster, "gpu-healthy"))["data_source"] == "mock:healthy"

    replaced = fleet_cluster.replace_pod("gpu-forbidden")
    assert f'pods "{replaced}" is forbidden' in agent_exec(fleet_cluster, "gpu-forbidden").stderr
    fleet_cluster.set_exec("gpu-forbidden", "run")
    assert inventory(agent_exec(fleet_cluster, "gpu-forbidden"))["data_source"] == "mock:healthy"

    fleet_cluster.set_pod_state("gpu-ecc-dbe", "not-ready")
    pod = json.loads(kubectl(fleet_cluster, "get", "pod", "-n", NAMESPACE, fleet_cluster.pods["gpu-ecc-dbe"],
                             "-o", "json").stdout)
    ready = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "False"
    # Running but not Ready: exec still works, as on a real cluster.
    assert inventory(agent_exec(fleet_cluster, "gpu-ecc-dbe"))["data_source"] == "mock:ecc-dbe"
