//! Prometheus metrics of the operator, in one registry served on `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-config series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfigLabels {
    /// Config name.
    pub config: String,
}

/// Labels of the resolved-mode series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    /// Config name.
    pub config: String,
    /// `RuntimeClass`, `DevicePlugin`, `DRA` or `None`.
    pub mode: String,
}

/// Labels of the error series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Short error class (`forbidden`, `connection`, ...).
    pub error: String,
}

/// Labels of the write series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `apply`, `delete`, `status` or `event`.
    pub verb: String,
}

/// All metrics, registered once.
pub struct Metrics {
    registry: Registry,
    /// Reconciles started.
    pub reconciliations: Counter,
    /// Reconciles that failed, by error class.
    pub errors: Family<ErrorLabels, Counter>,
    /// Reconcile durations.
    pub duration: Histogram,
    /// 1 for the mode each config resolved to.
    pub mode: Family<ModeLabels, Gauge>,
    /// Agent pods wanted per config.
    pub agents_desired: Family<ConfigLabels, Gauge>,
    /// Agent pods ready per config.
    pub agents_ready: Family<ConfigLabels, Gauge>,
    /// Node problems per config.
    pub node_problems: Family<ConfigLabels, Gauge>,
    /// Writes to the API server, by kind (a no-op reconcile writes nothing).
    pub writes: Family<WriteLabels, Counter>,
    /// 1 while this replica runs the controller.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("k8s_mcp_agent_operator");
        let reconciliations = Counter::default();
        registry.register(
            "reconciliations",
            "Reconciles started",
            reconciliations.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by error class",
            errors.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            duration.clone(),
        );
        let mode = Family::<ModeLabels, Gauge>::default();
        registry.register(
            "gpu_access_mode",
            "1 for the GPU access mode each config resolved to",
            mode.clone(),
        );
        let agents_desired = Family::<ConfigLabels, Gauge>::default();
        registry.register(
            "agents_desired",
            "Agent pods wanted",
            agents_desired.clone(),
        );
        let agents_ready = Family::<ConfigLabels, Gauge>::default();
        registry.register("agents_ready", "Agent pods ready", agents_ready.clone());
        let node_problems = Family::<ConfigLabels, Gauge>::default();
        registry.register(
            "node_problems",
            "Nodes where the agent cannot run",
            node_problems.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register("api_writes", "Writes to the API server", writes.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the controller",
            leader.clone(),
        );
        Self {
            registry,
            reconciliations,
            errors,
            duration,
            mode,
            agents_desired,
            agents_ready,
            node_problems,
            writes,
            leader,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("encoding into a String");
        text
    }

    /// Counts one write.
    pub fn wrote(&self, verb: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                verb: verb.to_owned(),
            })
            .inc();
    }

    /// Records one config's resolved mode (`None`: unresolved) and agent counts.
    pub fn observe_config(
        &self,
        config: &str,
        mode: Option<&str>,
        desired: i32,
        ready: i32,
        problems: usize,
    ) {
        let current = mode.unwrap_or("None");
        for candidate in ["RuntimeClass", "DevicePlugin", "DRA", "None"] {
            let labels = ModeLabels {
                config: config.to_owned(),
                mode: candidate.to_owned(),
            };
            if candidate == current {
                self.mode.get_or_create(&labels).set(1);
            } else {
                self.mode.remove(&labels);
            }
        }
        let labels = ConfigLabels {
            config: config.to_owned(),
        };
        self.agents_desired
            .get_or_create(&labels)
            .set(desired.into());
        self.agents_ready.get_or_create(&labels).set(ready.into());
        self.node_problems
            .get_or_create(&labels)
            .set(i64::try_from(problems).unwrap_or(i64::MAX));
    }

    /// Forgets a deleted config's series.
    pub fn forget_config(&self, config: &str) {
        for mode in ["RuntimeClass", "DevicePlugin", "DRA", "None"] {
            self.mode.remove(&ModeLabels {
                config: config.to_owned(),
                mode: mode.to_owned(),
            });
        }
        let labels = ConfigLabels {
            config: config.to_owned(),
        };
        self.agents_desired.remove(&labels);
        self.agents_ready.remove(&labels);
        self.node_problems.remove(&labels);
    }

    /// Records a finished reconcile.
    pub fn reconciled(&self, took: Duration, error: Option<&str>) {
        self.duration.observe(took.as_secs_f64());
        if let Some(error) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    error: error.to_owned(),
                })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_reconciles_errors_modes_and_writes() {
        let metrics = Metrics::default();
        metrics.reconciliations.inc();
        metrics.reconciled(Duration::from_millis(20), Some("forbidden"));
        metrics.observe_config("default", Some("DRA"), 3, 2, 1);
        metrics.observe_config("default", Some("RuntimeClass"), 3, 3, 0);
        metrics.wrote("apply");
        let text = metrics.encode();
        assert!(
            text.contains("k8s_mcp_agent_operator_reconciliations_total 1"),
            "{text}"
        );
        assert!(
            text.contains("k8s_mcp_agent_operator_reconcile_errors_total{error=\"forbidden\"} 1")
        );
        assert!(text.contains(
            "k8s_mcp_agent_operator_gpu_access_mode{config=\"default\",mode=\"RuntimeClass\"} 1"
        ));
        assert!(
            !text.contains("mode=\"DRA\""),
            "a previous mode is dropped: {text}"
        );
        assert!(text.contains("k8s_mcp_agent_operator_agents_ready{config=\"default\"} 3"));
        assert!(text.contains("k8s_mcp_agent_operator_api_writes_total{verb=\"apply\"} 1"));
        assert!(text.contains("k8s_mcp_agent_operator_reconcile_duration_seconds_count 1"));
        metrics.forget_config("default");
        assert!(!metrics.encode().contains("config=\"default\""));
    }
}
