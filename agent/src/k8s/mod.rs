//! Kubernetes context for the GPU tools: which pods hold which GPU (the kubelet's pod-resources API
//! and the node's DRA ResourceSlices), which container a GPU process runs in (`/proc/PID/cgroup`),
//! and what the API server says about the node. Every source is optional at run time: what could not
//! be read is reported as [`api::Unreadable`], and the tools still answer from NVML.

pub mod allocation;
pub mod api;
pub mod cgroup;
pub mod cli;
pub mod devices;
pub mod gather;
pub mod model;
pub mod node;
pub mod podresources;

use std::path::PathBuf;
use std::time::Duration;

/// How the agent reaches Kubernetes context.
#[derive(Clone, Debug)]
pub struct KubeOptions {
    /// Read Kubernetes context at all (`--kubernetes-context`, CRD `agent.kubernetesContext`).
    pub enabled: bool,
    /// The kubelet's pod-resources socket.
    pub pod_resources_socket: PathBuf,
    /// Where the host's processes are listed (`/proc`; tests pass a fake tree).
    pub proc_root: PathBuf,
    /// The agent's own pod (namespace, name), for its events and to tell a partial NVML view.
    pub own_pod: Option<(String, String)>,
    /// Longest one Kubernetes or kubelet read may take.
    pub timeout: Duration,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            enabled: true,
            pod_resources_socket: PathBuf::from(podresources::DEFAULT_SOCKET),
            proc_root: PathBuf::from("/proc"),
            own_pod: None,
            timeout: Duration::from_secs(5),
        }
    }
}
