//! `--install-crd`: the operator applies its own CustomResourceDefinition at start-up (so an
//! upgrade of the operator upgrades the schema, which Helm's `crds/` never does) and waits until
//! the API server serves it.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::apply;
use crate::error::{Error, Result};
use crate::kube_api::{KubeApi, WriteKind, resource_of};
use crate::names;

/// How often the CRD's conditions are polled while waiting.
const POLL: Duration = Duration::from_millis(250);

/// What `install` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The stored CRD already matched; nothing was written.
    Unchanged,
    /// The CRD was created or updated.
    Applied,
}

/// Applies the CRD from the Rust types when the stored one differs, then waits (up to `timeout`)
/// until it is Established.
pub async fn install(api: &KubeApi, timeout: Duration) -> Result<Installed> {
    let resource = resource_of::<CustomResourceDefinition>();
    let desired =
        apply::stamp(
            serde_json::to_value(crds::crd()).map_err(|source| Error::Decode {
                action: "serializing the CRD".into(),
                source,
            })?,
        );
    let live = api.get(&resource, None, crds::CRD_NAME).await?;
    let installed = if apply::up_to_date(&desired, live.as_ref()) {
        Installed::Unchanged
    } else {
        api.apply(
            &resource,
            None,
            crds::CRD_NAME,
            &desired,
            names::MANAGER,
            WriteKind::Store,
        )
        .await?;
        Installed::Applied
    };

    let started = tokio::time::Instant::now();
    let mut current = match (installed, live) {
        (Installed::Unchanged, Some(live)) => live,
        _ => Value::Null,
    };
    loop {
        match established(&current) {
            Some(true) => return Ok(installed),
            Some(false) | None if started.elapsed() >= timeout => {
                return Err(Error::CrdNotEstablished {
                    name: crds::CRD_NAME.into(),
                    waited_s: started.elapsed().as_secs(),
                    detail: condition_messages(&current),
                });
            }
            _ => {}
        }
        tokio::time::sleep(POLL).await;
        current = api
            .get(&resource, None, crds::CRD_NAME)
            .await?
            .unwrap_or(Value::Null);
    }
}

/// `Some(true)` once the `Established` condition is True; `None` while absent.
fn established(crd: &Value) -> Option<bool> {
    crd["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Established")
        .map(|c| c["status"] == "True")
}

fn condition_messages(crd: &Value) -> String {
    let messages: Vec<String> = crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}: {}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                c["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    if messages.is_empty() {
        "no conditions reported yet".into()
    } else {
        messages.join("; ")
    }
}
