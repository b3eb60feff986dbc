//! `--leader-elect`: one active replica at a time, through a coordination.k8s.io Lease held with
//! kube-lease-manager (server-side apply based; renews in the background).

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Lease duration: how long a crashed leader keeps others waiting.
const LEASE_DURATION_S: u64 = 15;
/// Renew this long before expiry.
const LEASE_GRACE_S: u64 = 5;

/// A running lease manager: `is_leader` flips to true once this replica holds the Lease.
pub struct Leadership {
    /// Current lock state.
    pub is_leader: watch::Receiver<bool>,
    task: JoinHandle<std::result::Result<LeaseManager, kube_lease_manager::LeaseManagerError>>,
    lease: String,
}

/// Starts competing for `namespace/name` as `identity`.
pub async fn start(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
) -> Result<Leadership> {
    let lease = format!("{namespace}/{name}");
    let manager = LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION_S)
        .with_grace(LEASE_GRACE_S)
        .build()
        .await
        .map_err(|source| Error::Lease {
            lease: lease.clone(),
            source,
        })?;
    let (is_leader, task) = manager.watch().await;
    Ok(Leadership {
        is_leader,
        task,
        lease,
    })
}

impl Leadership {
    /// Waits until this replica leads; `false` if the lease manager stopped first.
    pub async fn acquired(&mut self) -> bool {
        self.is_leader.wait_for(|leading| *leading).await.is_ok()
    }

    /// Resolves when leadership is lost (or the lease manager stops).
    pub async fn lost(mut receiver: watch::Receiver<bool>) {
        let _ = receiver.wait_for(|leading| !*leading).await;
    }

    /// Releases the Lease (so a standby takes over at once) and stops renewing.
    pub async fn release(self) -> Result<()> {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(Error::Lease {
                lease: self.lease,
                source,
            }),
            Err(join) => {
                tracing::warn!(error = %join, "lease manager task ended abnormally");
                Ok(())
            }
        }
    }
}
