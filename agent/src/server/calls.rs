//! The tools' bodies: backend reads with a deadline, kernel-log reads, and the hand-off to the pure
//! builders (`tools::inventory`, `health`, `xid`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::GpuDiagServer;
use super::tools::{
    GpuRef, GpuScopeArgs, HealthArgs, HealthResult, TimelineArgs, TimelineResult, ToolError,
    XidArgs, XidResult,
};
use crate::gpu::{BackendError, DeviceIdentity, GpuBackend, GpuFilter, NodeSnapshot};
use crate::health::{self, Baseline, EvaluateOptions, NotEvaluated, ObservedXid, Rule, Verdict};
use crate::k8s::api::Unreadable;
use crate::tools::inventory::{self, InventoryReport};
use crate::xid::{
    self, AnalyzeOptions, GpuIdentity, KernelLog, PciLocation, ReadLimits, XidReport,
};

impl GpuDiagServer {
    pub(super) async fn backend<T, F>(&self, f: F) -> Result<T, ToolError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn GpuBackend) -> T + Send + 'static,
    {
        if self.inner.overdue.load(Ordering::Acquire) {
            return Err(ToolError::StillHung);
        }
        let backend = self.inner.backend.clone();
        let overdue = self.inner.overdue.clone();
        let started = Instant::now();
        let timeout = self.inner.opts.backend_timeout;
        let handle = tokio::task::spawn_blocking(move || {
            let out = f(backend.as_ref());
            if started.elapsed() > timeout {
                overdue.store(false, Ordering::Release);
                tracing::warn!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "late GPU query returned"
                );
            }
            out
        });
        match tokio::time::timeout(timeout, handle).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(join)) => Err(ToolError::Internal(format!(
                "GPU query task failed: {join}"
            ))),
            Err(_) => {
                self.inner.overdue.store(true, Ordering::Release);
                Err(ToolError::Timeout(timeout))
            }
        }
    }

    /// `get_gpu_inventory`'s body: the typed result the MCP tool and `agent inventory` both print.
    pub async fn inventory(&self, args: GpuScopeArgs) -> Result<InventoryReport, ToolError> {
        let filter = args.filter();
        let snapshot = self.backend(move |b| b.snapshot(filter)).await??;
        let mut report = inventory::build(
            &snapshot,
            &self.inner.backend.source(),
            self.inner.opts.node_name.as_deref(),
        );
        self.attribute_processes(&mut report).await;
        Ok(report)
    }

    /// `get_gpu_health`'s body: the typed result the MCP tool and `agent health` both print.
    pub async fn health(&self, args: HealthArgs) -> Result<HealthResult, ToolError> {
        let filter = args.gpu_index.map_or(GpuFilter::All, GpuFilter::Index);
        let window = match args.window_seconds {
            Some(0) | None => None,
            Some(w @ 1..=60) => Some(Duration::from_secs(w.into())),
            Some(w) => {
                return Err(ToolError::Arguments {
                    tool: "get_gpu_health",
                    message: format!("window_seconds must be between 1 and 60, got {w}"),
                });
            }
        };
        let baseline = match window {
            Some(window) => {
                let first = self.backend(move |b| b.snapshot(filter)).await??;
                let taken = Instant::now();
                tokio::time::sleep(window).await;
                Some((taken, first))
            }
            None => self.previous_health_snapshot(),
        };
        let current = self.backend(move |b| b.snapshot(filter)).await??;
        let now = Instant::now();
        let mut baseline = baseline.map(|(taken, snapshot)| Baseline {
            snapshot,
            elapsed: now.duration_since(taken),
        });
        let history = self.history_for_health(&current).await;
        if window.is_none()
            && let Some(recorded) = history.as_ref().and_then(|h| h.0.clone())
        {
            // The recorder's sample covers a full rate window without waiting.
            baseline = Some(recorded);
        }
        let gpus: Vec<GpuIdentity> = current
            .devices
            .iter()
            .map(|d| gpu_identity(&d.identity()))
            .collect();
        let (xids, log_error) = match self.kernel_log().await {
            Ok(log) => {
                let opts = AnalyzeOptions {
                    gpu_index: args.gpu_index,
                    max_events: Some(1),
                    ..AnalyzeOptions::default()
                };
                (observed_xids(&xid::analyze(&log, &gpus, &opts)), None)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let mut report = health::evaluate(
            &current,
            baseline.as_ref(),
            &xids,
            &EvaluateOptions::default(),
        );
        if let Some(reason) = log_error {
            report.node.not_evaluated.push(NotEvaluated {
                check: Rule::XidKernelLog,
                reason: format!("Xid rules did not run: {reason}"),
            });
        }
        if let Some((_, findings)) = history {
            health::add_findings(&mut report, findings);
        }
        let affected = report
            .gpus
            .iter()
            .filter(|g| g.verdict != Verdict::Pass)
            .map(|g| {
                (
                    g.index,
                    format!("{} ({})", g.verdict.as_str(), first_check(g)),
                )
            })
            .collect();
        let (affected_workloads, kubernetes_unreadable) =
            self.workloads_of(&current, affected).await;
        self.remember_health_snapshot(now, current);
        Ok(HealthResult {
            data_source: self.inner.backend.source().to_string(),
            node_name: self.inner.opts.node_name.clone(),
            report,
            affected_workloads,
            kubernetes_unreadable,
        })
    }

    /// `analyze_xid_errors`' body: the typed result the MCP tool and `agent xid` both print.
    pub async fn xid(&self, args: XidArgs) -> Result<XidResult, ToolError> {
        if let Some(m) = args.max_events
            && !(1..=xid::MAX_EVENTS_LIMIT).contains(&m)
        {
            return Err(ToolError::Arguments {
                tool: "analyze_xid_errors",
                message: format!(
                    "max_events must be between 1 and {}, got {m}",
                    xid::MAX_EVENTS_LIMIT
                ),
            });
        }
        // The kernel log is worth reading even when NVML is broken (a lost GPU can take NVML down):
        // without GPU identities, Xids are reported by PCI address.
        let (gpus, gpu_note) = match self.backend(|b| b.identities()).await {
            Ok(Ok(ids)) => (ids.iter().map(gpu_identity).collect::<Vec<_>>(), None),
            Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        if let Some(index) = args.gpu_index
            && gpu_note.is_none()
            && index as usize >= gpus.len()
        {
            return Err(BackendError::NoSuchGpu {
                index,
                count: gpus.len() as u32,
            }
            .into());
        }
        let log = self.kernel_log().await?;
        let mut report = xid::analyze(
            &log,
            &gpus,
            &AnalyzeOptions {
                since_seconds: args.since_seconds,
                max_events: args.max_events,
                gpu_index: args.gpu_index,
            },
        );
        if let Some(why) = gpu_note {
            report.notes.push(format!(
                "The GPUs could not be enumerated, so Xids are attributed by PCI address only: {why}"
            ));
        }
        let hit: Vec<(u32, String)> = xid_hits(&report);
        let (affected_workloads, kubernetes_unreadable) = if hit.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            match self.backend(|b| b.snapshot(GpuFilter::All)).await {
                Ok(Ok(snapshot)) => self.workloads_of(&snapshot, hit).await,
                Ok(Err(e)) => (Vec::new(), vec![Unreadable::new("nvml", e.to_string())]),
                Err(e) => (Vec::new(), vec![Unreadable::new("nvml", e.to_string())]),
            }
        };
        Ok(XidResult {
            data_source: self.inner.backend.source().to_string(),
            node_name: self.inner.opts.node_name.clone(),
            report,
            affected_workloads,
            kubernetes_unreadable,
        })
    }

    /// The flight recorder's contribution to `get_gpu_health`: a recorded baseline (when the history
    /// covers a rate window) and the history-only findings. `None` without a recorder.
    async fn history_for_health(
        &self,
        current: &NodeSnapshot,
    ) -> Option<(Option<Baseline>, Vec<(u32, health::Finding)>)> {
        let dir = self.inner.opts.history_dir.clone()?;
        let current = current.clone();
        let task = tokio::task::spawn_blocking(move || {
            use crate::clock::WallClock;
            let now = crate::clock::SystemClock.now_unix_ms();
            let read = crate::recorder::store::read_history(&dir, now - 86_400_000).ok()?;
            let baseline = crate::recorder::health::baseline(&read, now, &current).map(
                |(snapshot, age_ms)| Baseline {
                    snapshot,
                    elapsed: Duration::from_millis(age_ms.max(0) as u64),
                },
            );
            Some((baseline, crate::recorder::health::findings(&read, now)))
        });
        match tokio::time::timeout(self.inner.opts.backend_timeout, task).await {
            Ok(Ok(found)) => found,
            _ => None,
        }
    }

    /// `get_gpu_timeline`: the flight recorder's history of the window (also `agent timeline`).
    pub async fn timeline(&self, args: TimelineArgs) -> Result<TimelineResult, ToolError> {
        let max_events = args.max_events.unwrap_or(200);
        if !(1..=5000).contains(&max_events) {
            return Err(ToolError::Arguments {
                tool: "get_gpu_timeline",
                message: format!("max_events must be between 1 and 5000, got {max_events}"),
            });
        }
        if args.since_seconds == Some(0) {
            return Err(ToolError::Arguments {
                tool: "get_gpu_timeline",
                message: "since_seconds must be at least 1 (the default is 3600)".into(),
            });
        }
        let query = crate::recorder::timeline::TimelineQuery {
            from_ms: 0,
            to_ms: 0,
            gpu: args.gpu.map(|g| match g {
                GpuRef::Index(i) => crate::recorder::timeline::GpuSelector::Index(i),
                GpuRef::Uuid(u) => crate::recorder::timeline::GpuSelector::Uuid(u),
            }),
            max_events: max_events as usize,
            max_bytes: crate::recorder::TIMELINE_MAX_BYTES,
        };
        let dir = self.inner.opts.history_dir.clone();
        let since = args.since_seconds.unwrap_or(3600);
        let task = tokio::task::spawn_blocking(move || {
            crate::recorder::read_timeline(dir.as_deref(), since, query, &crate::clock::SystemClock)
        });
        let report = task
            .await
            .map_err(|e| ToolError::Internal(format!("timeline task failed: {e}")))?;
        Ok(TimelineResult {
            data_source: self.inner.backend.source().to_string(),
            node_name: self.inner.opts.node_name.clone(),
            report,
        })
    }

    /// Reads the kernel log off the executor; the readers are bounded and never wait for new records.
    async fn kernel_log(&self) -> Result<KernelLog, ToolError> {
        let source = self.inner.opts.kernel_log.log_source();
        let timeout = self.inner.opts.backend_timeout;
        let task = tokio::task::spawn_blocking(move || {
            xid::read_kernel_log(&source, &ReadLimits::default())
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(log))) => Ok(log),
            Ok(Ok(Err(e))) => Err(ToolError::KernelLog(e.to_string())),
            Ok(Err(join)) => Err(ToolError::Internal(format!(
                "kernel log task failed: {join}"
            ))),
            Err(_) => Err(ToolError::KernelLog(format!(
                "reading the kernel log took longer than {timeout:?}; pass --kmsg-path to analyze a saved log"
            ))),
        }
    }

    /// The previous `get_gpu_health` reading, if it is at least a second old (shorter windows make
    /// per-minute rates meaningless).
    fn previous_health_snapshot(&self) -> Option<(Instant, NodeSnapshot)> {
        let last = self
            .inner
            .last_health
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(taken, _)| taken.elapsed() >= Duration::from_secs(1))
            .cloned()
    }

    fn remember_health_snapshot(&self, taken: Instant, snapshot: NodeSnapshot) {
        let mut last = self
            .inner
            .last_health
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *last = Some((taken, snapshot));
    }
}

/// The rule of a GPU's most severe finding.
fn first_check(g: &health::GpuHealth) -> String {
    g.findings
        .first()
        .map_or_else(|| "not evaluated".to_string(), |f| f.check.id())
}

/// "Xid 79, 13" per GPU with Xids, in index order.
fn xid_hits(report: &XidReport) -> Vec<(u32, String)> {
    let mut by_gpu: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for s in &report.summary {
        if let Some(i) = s.gpu_index {
            let codes = by_gpu.entry(i).or_default();
            let code = s.code.to_string();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
    }
    by_gpu
        .into_iter()
        .map(|(i, codes)| (i, format!("Xid {}", codes.join(", "))))
        .collect()
}

/// The Xid analysis' view of a GPU.
fn gpu_identity(d: &DeviceIdentity) -> GpuIdentity {
    GpuIdentity {
        index: d.index,
        uuid: d.uuid.as_ref().ok().cloned(),
        pci: d.pci.as_ref().ok().and_then(|p| {
            PciLocation::from_numeric(p.bus_id.domain, p.bus_id.bus.into(), p.bus_id.device.into())
        }),
    }
}

/// The health rules' input from an Xid analysis: one entry per GPU and code.
fn observed_xids(report: &XidReport) -> Vec<ObservedXid> {
    report
        .summary
        .iter()
        .map(|s| ObservedXid {
            gpu_index: s.gpu_index,
            code: s.code,
            count: u32::try_from(s.count).unwrap_or(u32::MAX),
            last_seen: s
                .last_seen
                .clone()
                .unwrap_or_else(|| "an unknown time".to_string()),
        })
        .collect()
}
