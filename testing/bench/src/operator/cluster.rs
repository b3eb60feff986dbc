//! The clusters the operator is measured on, as plain JSON: realistic GPU Nodes, the `nvidia`
//! RuntimeClass, the CRD and configs; and the probes that read what the operator wrote.

use serde_json::{Value, json};
use test_apiserver::TestApiServer;

/// apiVersion and kind of the configs.
pub const CONFIG_API: &str = "gpu.k8s-mcp-agent.io/v1alpha1";
pub const CONFIG_KIND: &str = "GpuDiagnosticsConfig";
/// The RuntimeClass the NVIDIA container toolkit installs.
pub const RUNTIME_CLASS: &str = crds::DEFAULT_RUNTIME_CLASS;
/// Label that splits the nodes into pools, for several configs with their own node selectors.
const POOL_LABEL: &str = "bench.k8s-mcp-agent.io/pool";
/// Node pools (node `i` is in pool `i % POOLS`).
const POOLS: usize = 50;

/// What every cluster starts with: the CRD, the RuntimeClass and `nodes` GPU nodes.
pub fn base(nodes: usize) -> Vec<Value> {
    let mut objects = vec![crd(), runtime_class()];
    objects.extend((0..nodes).map(node));
    objects
}

/// The config names of a steady-state cluster.
pub fn config_names(configs: usize) -> Vec<String> {
    (0..configs).map(|j| format!("pool-{j}")).collect()
}

fn crd() -> Value {
    serde_json::to_value(crds::crd()).expect("the CRD type always serializes")
}

/// The `nvidia` RuntimeClass the NVIDIA container toolkit installs.
pub fn runtime_class() -> Value {
    json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
           "metadata": {"name": RUNTIME_CLASS}, "handler": "nvidia"})
}

/// Changes an annotation of the RuntimeClass: every config reconciles, and finds nothing to do.
pub fn touch_runtime_class(server: &TestApiServer, round: u64) -> anyhow::Result<()> {
    server.modify_object(
        "node.k8s.io/v1",
        "RuntimeClass",
        None,
        RUNTIME_CLASS,
        |rc| {
            rc["metadata"]["annotations"] =
                json!({"bench.k8s-mcp-agent.io/round": round.to_string()});
        },
    )?;
    Ok(())
}

/// A config with the default spec (every GPU node), or one selecting the GPU nodes of a pool.
pub fn config(name: &str, pool: Option<usize>) -> Value {
    let spec = match pool {
        None => json!({}),
        Some(pool) => json!({"nodeSelector": {
            crds::GPU_PRESENT_LABEL: "true",
            POOL_LABEL: format!("pool-{}", pool % POOLS),
        }}),
    };
    json!({"apiVersion": CONFIG_API, "kind": CONFIG_KIND, "metadata": {"name": name}, "spec": spec})
}

/// GPU node number `i`, modelled on a real 8× H100 node as kubelet, GPU feature discovery and node
/// feature discovery leave it (about 5 KB of JSON).
pub fn node(i: usize) -> Value {
    let name = format!("gpu-node-{i:05}");
    let gpu_labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "p5.48xlarge",
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": format!("us-east-1{}", ['a', 'b', 'c'][i % 3]),
        crds::GPU_PRESENT_LABEL: "true",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.memory": "81559",
        "nvidia.com/gpu.family": "hopper",
        "nvidia.com/gpu.machine": "p5.48xlarge",
        "nvidia.com/cuda.driver.major": "550",
        "nvidia.com/cuda.driver.minor": "54",
        "nvidia.com/cuda.driver.rev": "15",
        "nvidia.com/cuda.runtime.major": "12",
        "nvidia.com/cuda.runtime.minor": "4",
        "nvidia.com/mig.capable": "true",
        "nvidia.com/mig.strategy": "single",
        "nvidia.com/gfd.timestamp": "1732700000",
        "feature.node.kubernetes.io/cpu-model.vendor_id": "AMD",
        "feature.node.kubernetes.io/kernel-version.full": "6.8.0-45-generic",
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
        POOL_LABEL: format!("pool-{}", i % POOLS),
    });
    let images: Vec<Value> = (0..10)
        .map(|k| {
            json!({
                "names": [
                    format!("registry.example.com/ml/training-image-{k}@sha256:{:064x}", (i * 10 + k) as u128 * 0x9e37_79b9_7f4a_7c15),
                    format!("registry.example.com/ml/training-image-{k}:v1.{k}.0"),
                ],
                "sizeBytes": 1_500_000_000u64 + k as u64 * 100_000_000,
            })
        })
        .collect();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": "2026-11-27T10:00:00Z", "lastTransitionTime": "2026-11-01T08:00:00Z"})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": gpu_labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "nfd.node.kubernetes.io/feature-labels": "cpu-model.vendor_id,kernel-version.full,pci-10de.present,system-os_release.ID",
                "csi.volume.kubernetes.io/nodeid": format!("{{\"ebs.csi.aws.com\":\"i-{i:017x}\"}}"),
            },
        },
        "spec": {
            "podCIDR": format!("10.{}.{}.0/24", i / 256 % 256, i % 256),
            "providerID": format!("aws:///us-east-1a/i-{i:017x}"),
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": {"cpu": "192", "memory": "2097152000Ki", "pods": "110",
                         "ephemeral-storage": "3758096384Ki", "hugepages-1Gi": "0", "nvidia.com/gpu": "8"},
            "allocatable": {"cpu": "191450m", "memory": "2080000000Ki", "pods": "110",
                            "ephemeral-storage": "3463375484Ki", "hugepages-1Gi": "0", "nvidia.com/gpu": "8"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": format!("10.1.{}.{}", i / 256 % 256, i % 256)},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": format!("{name}.ec2.internal")},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("{:032x}", i as u128 * 0x1234_5678_9abc_def1),
                "systemUUID": format!("ec2{:029x}", i),
                "bootID": format!("{:032x}", i as u128 * 0x0fed_cba9_8765_4321),
                "kernelVersion": "6.8.0-45-generic",
                "osImage": "Ubuntu 24.04.1 LTS",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": "v1.33.4",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": images,
            "runtimeHandlers": [
                {"name": "", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
                {"name": "nvidia", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
                {"name": "runc", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
            ],
        },
    })
}

/// The DaemonSet the operator applied for config `name`, if any.
pub fn daemon_set(server: &TestApiServer, name: &str) -> Option<Value> {
    server.get_object(
        "apps/v1",
        "DaemonSet",
        Some(crds::DEFAULT_NAMESPACE),
        &format!("k8s-mcp-agent-{name}"),
    )
}

/// Whether a DaemonSet runs its pods with a RuntimeClass.
pub fn uses_runtime_class(daemon_set: &Value) -> bool {
    daemon_set
        .pointer("/spec/template/spec/runtimeClassName")
        .is_some_and(|v| !v.is_null())
}

/// Whether every config in `names` has its DaemonSet and a status for its current generation (two
/// reads, whatever the number of configs).
pub fn converged(server: &TestApiServer, names: &[String]) -> bool {
    let daemon_sets: std::collections::BTreeSet<String> = server
        .list_objects("apps/v1", "DaemonSet", Some(crds::DEFAULT_NAMESPACE))
        .iter()
        .filter_map(|ds| ds.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .collect();
    let settled: std::collections::BTreeSet<String> = server
        .list_objects(CONFIG_API, CONFIG_KIND, None)
        .iter()
        .filter(|c| {
            let observed = c.pointer("/status/observedGeneration");
            observed.is_some() && observed == c.pointer("/metadata/generation")
        })
        .filter_map(|c| c.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .collect();
    names
        .iter()
        .all(|n| settled.contains(n) && daemon_sets.contains(&format!("k8s-mcp-agent-{n}")))
}

/// Whether config `name`'s status reflects its current generation.
pub fn status_written(server: &TestApiServer, name: &str) -> bool {
    server
        .get_object(CONFIG_API, CONFIG_KIND, None, name)
        .is_some_and(|c| {
            let observed = c.pointer("/status/observedGeneration");
            observed.is_some() && observed == c.pointer("/metadata/generation")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_split_the_nodes_between_configs() {
        let objects = base(60);
        let nodes: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Node").collect();
        assert_eq!(nodes.len(), 60);
        assert_eq!(nodes[57]["metadata"]["labels"][POOL_LABEL], "pool-7");
        assert_eq!(
            config("p", Some(7))["spec"]["nodeSelector"][POOL_LABEL],
            "pool-7"
        );
        assert_eq!(config("one", None)["spec"], json!({}));
        assert_eq!(objects[0]["kind"], "CustomResourceDefinition");
    }

    #[test]
    fn a_node_is_a_few_kilobytes() {
        let bytes = serde_json::to_vec(&node(1234)).unwrap().len();
        assert!((3_000..8_000).contains(&bytes), "{bytes} bytes");
    }
}
