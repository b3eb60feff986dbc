//! The agent's Kubernetes flags (each with an `AGENT_*` variable), flattened into the main CLI.

use std::path::PathBuf;

use super::KubeOptions;

/// Flags that say how Kubernetes context is read.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Read Kubernetes context (pods on GPUs, the Node object, events, ResourceSlices). With `false`
    /// the tools answer from NVML only.
    #[arg(
        long,
        env = "AGENT_KUBERNETES_CONTEXT",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub kubernetes_context: bool,

    /// The kubelet's pod-resources gRPC socket.
    #[arg(
        long,
        env = "AGENT_POD_RESOURCES_SOCKET",
        default_value = super::podresources::DEFAULT_SOCKET,
        global = true
    )]
    pub pod_resources_socket: PathBuf,

    /// Where the host's processes are listed (tests point it at a fake tree).
    #[arg(
        long,
        env = "AGENT_PROC_ROOT",
        default_value = "/proc",
        global = true,
        hide = true
    )]
    pub proc_root: PathBuf,
}

impl KubeArgs {
    /// The options, with the agent's own pod from `POD_NAMESPACE`/`POD_NAME` (downward API).
    pub fn options(&self) -> KubeOptions {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        KubeOptions {
            enabled: self.kubernetes_context,
            pod_resources_socket: self.pod_resources_socket.clone(),
            proc_root: self.proc_root.clone(),
            own_pod: env("POD_NAMESPACE").zip(env("POD_NAME")),
            ..KubeOptions::default()
        }
    }
}
