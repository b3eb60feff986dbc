//! End-to-end: the real `operator` binary (a process with a kubeconfig) and the real `kubectl`
//! against the in-repo Kubernetes test API server (`testing/test-apiserver`), through the scenarios
//! users hit: access-mode choice, live changes, idempotence, deletion, faults, node problems, two
//! configs, the README's example and `kubectl exec` into an agent pod.
//!
//! Every test starts its own API server and operator. A failing test prints the operator's log, the
//! configs, the agent objects and the last API requests (see `harness::Cluster`'s `Drop`), so a
//! failure points at the operator rather than at the harness.

mod fixtures;
mod harness;

mod access_modes;
mod agent_exec;
mod deletion;
mod faults;
mod idempotence;
mod kubectl;
mod live_changes;
mod node_problems;
mod two_configs;
