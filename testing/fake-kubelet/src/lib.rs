//! A fake kubelet pod-resources API (`podresources/v1`) on a unix socket, answering `List`,
//! `GetAllocatableResources` and `Get` from a YAML fixture, for the agent's tests.
//!
//! Fixture (`fixtures/*.yaml`):
//! ```yaml
//! pods:
//!   - {namespace: ml, name: train-7, containers: [{name: trainer,
//!      devices: [{resource: nvidia.com/gpu, ids: [GPU-…]}],
//!      claims: [{name: c, namespace: ml, devices: [{driver: gpu.nvidia.com, pool: p, device: gpu-0}]}]}]}
//! allocatable: [{resource: nvidia.com/gpu, ids: [GPU-…]}]
//! allocatable_unimplemented: false   # true: GetAllocatableResources answers UNIMPLEMENTED
//! ```

use std::path::Path;

use serde::Deserialize;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

/// The generated messages and server.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("v1");
}

use proto::pod_resources_lister_server::{PodResourcesLister, PodResourcesListerServer};

/// What the fake kubelet reports.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeletFixture {
    #[serde(default)]
    pub pods: Vec<FixturePod>,
    #[serde(default)]
    pub allocatable: Vec<FixtureDevices>,
    /// Answer `GetAllocatableResources` with UNIMPLEMENTED (kubelets before 1.23 without the gate).
    #[serde(default)]
    pub allocatable_unimplemented: bool,
}

/// One pod.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixturePod {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub containers: Vec<FixtureContainer>,
}

/// One container.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureContainer {
    pub name: String,
    #[serde(default)]
    pub devices: Vec<FixtureDevices>,
    #[serde(default)]
    pub claims: Vec<FixtureClaim>,
}

/// Device-plugin devices of one resource.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureDevices {
    pub resource: String,
    pub ids: Vec<String>,
}

/// One DRA claim of a container.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureClaim {
    pub name: String,
    pub namespace: String,
    pub devices: Vec<FixtureDraDevice>,
}

/// One DRA device.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureDraDevice {
    pub driver: String,
    pub pool: String,
    pub device: String,
}

impl KubeletFixture {
    /// Reads a fixture file.
    pub fn from_path(path: &Path) -> anyhow::Result<KubeletFixture> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    fn pod(&self, p: &FixturePod) -> proto::PodResources {
        proto::PodResources {
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            containers: p
                .containers
                .iter()
                .map(|c| proto::ContainerResources {
                    name: c.name.clone(),
                    devices: c.devices.iter().map(devices).collect(),
                    cpu_ids: vec![],
                    memory: vec![],
                    dynamic_resources: c
                        .claims
                        .iter()
                        .map(|cl| proto::DynamicResource {
                            claim_name: cl.name.clone(),
                            claim_namespace: cl.namespace.clone(),
                            claim_resources: cl
                                .devices
                                .iter()
                                .map(|d| proto::ClaimResource {
                                    cdi_devices: vec![proto::CdiDevice {
                                        name: format!("k8s.{}/gpu={}", d.driver, d.device),
                                    }],
                                    driver_name: d.driver.clone(),
                                    pool_name: d.pool.clone(),
                                    device_name: d.device.clone(),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn devices(d: &FixtureDevices) -> proto::ContainerDevices {
    proto::ContainerDevices {
        resource_name: d.resource.clone(),
        device_ids: d.ids.clone(),
        topology: None,
    }
}

struct Lister(KubeletFixture);

#[tonic::async_trait]
impl PodResourcesLister for Lister {
    async fn list(
        &self,
        _: Request<proto::ListPodResourcesRequest>,
    ) -> Result<Response<proto::ListPodResourcesResponse>, Status> {
        Ok(Response::new(proto::ListPodResourcesResponse {
            pod_resources: self.0.pods.iter().map(|p| self.0.pod(p)).collect(),
        }))
    }

    async fn get_allocatable_resources(
        &self,
        _: Request<proto::AllocatableResourcesRequest>,
    ) -> Result<Response<proto::AllocatableResourcesResponse>, Status> {
        if self.0.allocatable_unimplemented {
            return Err(Status::unimplemented(
                "GetAllocatableResources is not served (KubeletPodResourcesGetAllocatable gate off)",
            ));
        }
        Ok(Response::new(proto::AllocatableResourcesResponse {
            devices: self.0.allocatable.iter().map(devices).collect(),
            cpu_ids: vec![],
            memory: vec![],
        }))
    }

    async fn get(
        &self,
        r: Request<proto::GetPodResourcesRequest>,
    ) -> Result<Response<proto::GetPodResourcesResponse>, Status> {
        let r = r.into_inner();
        let pod = self
            .0
            .pods
            .iter()
            .find(|p| p.name == r.pod_name && p.namespace == r.pod_namespace)
            .ok_or_else(|| {
                Status::not_found(format!("pod {}/{} not found", r.pod_namespace, r.pod_name))
            })?;
        Ok(Response::new(proto::GetPodResourcesResponse {
            pod_resources: Some(self.0.pod(pod)),
        }))
    }
}

/// Serves `fixture` on a new unix socket at `socket` until the future is dropped.
pub async fn serve(socket: &Path, fixture: KubeletFixture) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)
        .map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", socket.display()))?;
    tonic::transport::Server::builder()
        .add_service(PodResourcesListerServer::new(Lister(fixture)))
        .serve_with_incoming(UnixListenerStream::new(listener))
        .await?;
    Ok(())
}

/// A fake kubelet running on its own thread; the socket exists when `start` returns.
pub struct FakeKubelet {
    _runtime: tokio::runtime::Runtime,
}

impl FakeKubelet {
    /// Starts serving `fixture` at `socket` on a background runtime.
    pub fn start(socket: &Path, fixture: KubeletFixture) -> FakeKubelet {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let path = socket.to_path_buf();
        runtime.spawn(async move {
            if let Err(e) = serve(&path, fixture).await {
                eprintln!("fake-kubelet: {e:#}");
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        FakeKubelet { _runtime: runtime }
    }
}
