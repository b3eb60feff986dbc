//! The kubelet's pod-resources API (`podresources/v1`) over its unix socket: which devices and DRA
//! claims each container holds, and which devices the node can allocate. The generated gRPC client
//! lives in [`proto`]; this module turns its messages into plain data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Endpoint, Uri};

use super::devices::DraDevice;

/// The gRPC messages and client generated from the vendored `api.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("v1");
}

/// Where the kubelet serves the API by default.
pub const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// The devices one container holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerAllocation {
    pub name: String,
    /// Device-plugin devices: (resource name, device ids).
    pub devices: Vec<ResourceDevices>,
    /// DRA claims and the devices allocated through them.
    pub claims: Vec<ClaimAllocation>,
}

/// Device-plugin devices of one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceDevices {
    pub resource_name: String,
    pub device_ids: Vec<String>,
}

/// One DRA claim of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimAllocation {
    pub claim_name: String,
    pub claim_namespace: String,
    pub devices: Vec<DraDevice>,
}

/// The devices of one pod, as the kubelet reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodAllocation {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<ContainerAllocation>,
}

/// What one read of the API returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodResources {
    pub pods: Vec<PodAllocation>,
    /// Devices the node can allocate (`GetAllocatableResources`); `Err` says why they are unknown.
    pub allocatable: Result<Vec<ResourceDevices>, String>,
}

/// Why the API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PodResourcesError {
    #[error(
        "the kubelet pod-resources socket {0} does not exist: mount the host directory \
         /var/lib/kubelet/pod-resources into the agent pod (the operator does), or pass \
         --pod-resources-socket if the kubelet's root directory differs"
    )]
    Missing(PathBuf),
    #[error(
        "cannot connect to the kubelet pod-resources socket {path}: {cause} (is the kubelet running? \
         the agent needs read access to the socket, usually root)"
    )]
    Connect { path: PathBuf, cause: String },
    #[error("the kubelet pod-resources API failed on {call}: {status}")]
    Call { call: &'static str, status: String },
}

/// Reads `List` and `GetAllocatableResources` from the kubelet at `socket`.
pub async fn read(socket: &Path, timeout: Duration) -> Result<PodResources, PodResourcesError> {
    if !socket.exists() {
        return Err(PodResourcesError::Missing(socket.to_path_buf()));
    }
    let path = socket.to_path_buf();
    let connect_err = |cause: String| PodResourcesError::Connect {
        path: socket.to_path_buf(),
        cause,
    };
    // The URI is required by tonic but unused: every connection goes to the unix socket.
    let channel = Endpoint::from_static("http://kubelet.invalid")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
        .map_err(|e| connect_err(error_chain(&e)))?;
    let mut client = proto::pod_resources_lister_client::PodResourcesListerClient::new(channel);
    let list = client
        .list(proto::ListPodResourcesRequest {})
        .await
        .map_err(|s| PodResourcesError::Call {
            call: "List",
            status: status_text(&s),
        })?
        .into_inner();
    let allocatable = client
        .get_allocatable_resources(proto::AllocatableResourcesRequest {})
        .await
        .map(|r| {
            r.into_inner()
                .devices
                .into_iter()
                .map(resource_devices)
                .collect()
        })
        .map_err(|s| format!("GetAllocatableResources failed: {}", status_text(&s)));
    Ok(PodResources {
        pods: list.pod_resources.into_iter().map(pod_allocation).collect(),
        allocatable,
    })
}

fn status_text(s: &tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn resource_devices(d: proto::ContainerDevices) -> ResourceDevices {
    ResourceDevices {
        resource_name: d.resource_name,
        device_ids: d.device_ids,
    }
}

/// The plain form of one pod's `PodResources` message.
pub fn pod_allocation(p: proto::PodResources) -> PodAllocation {
    PodAllocation {
        namespace: p.namespace,
        name: p.name,
        containers: p
            .containers
            .into_iter()
            .map(|c| ContainerAllocation {
                name: c.name,
                devices: c.devices.into_iter().map(resource_devices).collect(),
                claims: c
                    .dynamic_resources
                    .into_iter()
                    .map(|d| ClaimAllocation {
                        claim_name: d.claim_name,
                        claim_namespace: d.claim_namespace,
                        devices: d
                            .claim_resources
                            .into_iter()
                            .map(|r| DraDevice {
                                driver: r.driver_name,
                                pool: r.pool_name,
                                device: r.device_name,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_says_what_to_mount() {
        let err = read(
            Path::new("/nonexistent/kubelet.sock"),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("mount the host directory /var/lib/kubelet/pod-resources"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_refusing_socket_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("kubelet.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let err = read(&sock, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, PodResourcesError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains("is the kubelet running?"), "{err}");
    }
}
