//! The k8s-mcp-agent operator: reconciles cluster-scoped `GpuDiagnosticsConfig`s into the agent
//! DaemonSet, choosing the GPU access method the cluster supports.
//!
//! Data flows one way: a watch event → [`observe`] reads the world into [`facts::ClusterFacts`]
//! (and the objects already written) → [`access::resolve_access`] → [`render::render`] →
//! server-side apply of what differs ([`apply`]) → [`status::compute`] → a status patch only
//! when it changed. [`controller`] sequences this; everything it calls into but `observe`,
//! `kube_api`, `crd` and `leader` is pure.

#![warn(missing_docs)]

pub mod access;
pub mod apply;
pub mod cache;
pub mod controller;
pub mod crd;
pub mod dra;
pub mod error;
pub mod facts;
pub mod harness;
pub mod http;
pub mod kube_api;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod nodes;
pub mod observe;
pub mod problems;
pub mod quantity;
pub mod rbac;
pub mod render;
pub mod status;

pub use error::{Error, Result};
