//! A stateful Kubernetes API server over loopback HTTP or in-process behind `kube::Client`, for tests
//! only (never shipped): the one fake Kubernetes API server of the repository.
//!
//! It serves discovery, CRUD, list/watch, merge/strategic/JSON patch, server-side apply with field
//! ownership, the status subresource, selectors, garbage collection and Table output well enough for
//! kube-rs (`Api`, `watcher`, `Controller`, kube-lease-manager), the real `kubectl` and both `helm`
//! lines, and lets a test inspect and mutate state directly, inject faults and count requests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use k8s_openapi::api::apps::v1::DaemonSet;
//! use test_apiserver::{Config, DraVersion, Fault, RequestMatch, TestApiServer, Verb};
//!
//! let server = TestApiServer::start(Config::default().dra_versions(&[DraVersion::V1])).await?;
//! server.create_object(serde_json::json!({
//!     "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"
//! }))?;
//! server.inject(Fault::fail(RequestMatch::resource("daemonsets").apply(), 500).times(3));
//! let operator = std::process::Command::new("target/debug/operator")
//!     .env("KUBECONFIG", server.kubeconfig_path())
//!     .spawn()?;
//! let daemonset = server
//!     .wait_for("the agent DaemonSet", Duration::from_secs(10), |s| s.get::<DaemonSet>(Some("gpu-diagnostics"), "agent"))
//!     .await?;
//! let mark = server.mark();
//! tokio::time::sleep(Duration::from_secs(30)).await;
//! assert_eq!(server.count(mark, &RequestMatch::any().writes()), 0);
//! # drop((operator, daemonset)); Ok(()) }
//! ```
//!
//! In-process (no socket, no thread; each request runs in the caller's runtime through the same handlers):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use test_apiserver::{Config, RequestMatch, TestApiServer};
//!
//! let server = TestApiServer::in_process(Config::default())?;
//! let client = server.client()?; // kube::Client::new(server.service(), "default")
//! let mark = server.mark();
//! // ... run the code under test with `client` ...
//! let writes: Vec<String> = server
//!     .matching_requests(mark, &RequestMatch::any().writes().dry_run(false))
//!     .iter()
//!     .map(|r| r.summary()) // "PATCH daemonsets gpu-diagnostics/agent"
//!     .collect();
//! # drop((client, writes)); Ok(()) }
//! ```
//!
//! Semantics worth knowing: garbage collection, namespace and CRD deletion run synchronously inside the
//! request that triggers them; `Config::default()` serves no `resource.k8s.io` version; the server's own
//! writes are never logged, only HTTP requests are.

pub mod catalog;
mod config;
pub mod convert;
pub mod crd;
pub mod discovery;
pub mod engine;
pub mod error;
pub mod exec;
pub mod faults;
pub mod fieldset;
mod http;
pub mod jsonpath;
pub mod kubeconfig;
pub mod managed;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod request;
pub mod request_log;
pub mod schema;
pub mod selector;
mod server;
pub mod store;
pub mod table;

pub use catalog::DraVersion;
pub use config::Config;
pub use error::{ApiError, Error, StatusReason};
pub use exec::{ExecAction, ExecCommand, ExecMatch, ExecRule, ExecRules};
pub use faults::Fault;
pub use patch::PatchType;
pub use request::{RequestInfo, RequestMatch, Verb};
pub use request_log::{LogMark, RequestRecord};
pub use server::{DIRECT_MANAGER, InProcess, TestApiServer};
