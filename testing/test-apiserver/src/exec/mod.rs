//! `pods/exec` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`), with the configurable local
//! command that stands in for the container's program: [`ExecRules`] say, per pod, node or container,
//! whether a request runs a local process, hangs, or is refused by RBAC (and SelfSubjectAccessReviews
//! answer accordingly).

pub mod request;
pub mod rules;
pub mod session;

pub use rules::{AccessQuestion, ExecAction, ExecCommand, ExecMatch, ExecRule, ExecRules};
