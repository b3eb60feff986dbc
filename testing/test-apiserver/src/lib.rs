//! A stateful Kubernetes API server over loopback HTTP, for tests only (never shipped).
//!
//! It serves discovery, CRUD, list/watch, merge/strategic/JSON patch, server-side apply with field
//! ownership, the status subresource, selectors, garbage collection and Table output well enough for
//! kube-rs (`Api`, `watcher`, `Controller`), the real `kubectl` and both `helm` lines, and lets a test
//! inspect and mutate state directly, inject faults and count requests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), test_apiserver::Error> {
//! use test_apiserver::{Config, DraVersion, Fault, RequestMatch, TestApiServer, Verb};
//! let server = TestApiServer::start(Config::default().dra_versions(&[DraVersion::V1])).await?;
//! std::env::set_var("KUBECONFIG", server.kubeconfig_path());
//! server.inject(Fault::fail(RequestMatch::resource("daemonsets").verb(Verb::Patch), 500).times(3));
//! let mark = server.mark();
//! // ... run the operator ...
//! let writes = server.count(mark, &RequestMatch::resource("daemonsets").writes());
//! # Ok(()) }
//! ```

pub mod catalog;
mod config;
pub mod convert;
pub mod crd;
pub mod discovery;
pub mod engine;
pub mod error;
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
pub use faults::Fault;
pub use patch::PatchType;
pub use request::{RequestInfo, RequestMatch, Verb};
pub use request_log::{LogMark, RequestRecord};
pub use server::{DIRECT_MANAGER, TestApiServer};
