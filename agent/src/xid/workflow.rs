//! Companion-Xid workflows: judge the set of Xids one GPU logged, not each line alone (NVIDIA's
//! catalog workflows, gpu-health.md §5). Pure over the GPU's events in log order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::catalog::{self, ActionBucket, Severity};
use super::detail;
use super::report::{RecommendedAction, XidFinding, XidRule};

/// Xids within this distance of each other count as companions (one incident).
pub const COMPANION_WINDOW_MICROS: i64 = 60_000_000;
/// Lines of one code closer than this form one burst (Xid 13 prints several lines per fault).
pub const BURST_WINDOW_MICROS: i64 = 10_000_000;
/// Separate bursts on one GPU that make Xid 13/31 look like hardware rather than the application.
pub const RECURRENCE_BURSTS: usize = 3;
/// Xid 74 on the same link this often points at the link's mechanics.
pub const NVLINK_RECURRENCE: usize = 3;
const EVIDENCE_LINES: usize = 3;

/// One event of a GPU as the workflows see it.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub code: u32,
    /// Wall-clock time, µs since the epoch, when known.
    pub wall_micros: Option<i64>,
    pub message: &'a str,
    /// `<time> Xid <code>: <message>`, used as evidence.
    pub label: String,
}

fn near(a: &Observed<'_>, b: &Observed<'_>, window: i64) -> bool {
    match (a.wall_micros, b.wall_micros) {
        (Some(x), Some(y)) => (x - y).abs() <= window,
        _ => true,
    }
}

/// The catalog's immediate bucket as a concrete action (workflows refine the WORKFLOW_* ones).
pub fn action_for_bucket(bucket: ActionBucket) -> RecommendedAction {
    use ActionBucket as B;
    match bucket {
        B::RestartApp => RecommendedAction::RestartApplication,
        B::ResetGpu | B::WorkflowXid48 | B::WorkflowNvlinkErr | B::WorkflowNvlink5Err => {
            RecommendedAction::ResetGpu
        }
        B::RestartBm => RecommendedAction::RebootNode,
        B::CheckMechanicals => RecommendedAction::CheckMechanicals,
        B::UnexpectedErrReportIssue | B::ContactSupport | B::SympatheticReportSolo => {
            RecommendedAction::ReportIssue
        }
        B::RestartVm => RecommendedAction::RestartVm,
        B::UpdateSwfw => RecommendedAction::UpdateSoftware,
        B::CheckUvm | B::Xid154 => RecommendedAction::Monitor,
        B::WorkflowXid13
        | B::WorkflowXid31
        | B::CheckAppCuda
        | B::InvestigateSw
        | B::InvestigateSwUser
        | B::Xid137Flow => RecommendedAction::InvestigateApplication,
        B::InvestigateLinkSi => RecommendedAction::CheckMechanicals,
        B::WorkflowXid45 | B::Ignore | B::IgnoreSympathetic | B::Informational => {
            RecommendedAction::None
        }
    }
}

struct Builder<'e, 'a> {
    events: &'e [Observed<'a>],
    consumed: Vec<bool>,
    findings: Vec<XidFinding>,
}

impl<'e, 'a> Builder<'e, 'a> {
    fn open(&self, code: u32) -> Vec<usize> {
        (0..self.events.len())
            .filter(|i| !self.consumed[*i] && self.events[*i].code == code)
            .collect()
    }

    fn push(
        &mut self,
        rule: XidRule,
        severity: Severity,
        indices: &[usize],
        message: String,
        action: RecommendedAction,
    ) {
        let codes: BTreeSet<u32> = indices.iter().map(|i| self.events[*i].code).collect();
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        let evidence = sorted
            .iter()
            .skip(sorted.len().saturating_sub(EVIDENCE_LINES))
            .map(|i| self.events[*i].label.clone())
            .collect();
        for i in indices {
            self.consumed[*i] = true;
        }
        self.findings.push(XidFinding {
            rule,
            severity,
            codes: codes.into_iter().collect(),
            event_count: indices.len() as u64,
            message,
            recommended_action: action,
            action_instruction: action.instruction().to_owned(),
            evidence,
        });
    }

    fn near_any(&self, index: usize, anchors: &[usize], window: i64) -> bool {
        anchors
            .iter()
            .any(|a| near(&self.events[*a], &self.events[index], window))
    }
}

/// What the workflows need to know about the whole node, beyond one GPU's events.
#[derive(Debug, Default, Clone)]
pub struct NodeContext {
    /// Per code, how many GPUs (and unattributed PCI locations) logged it in the window: the
    /// spread that tells application from hardware for Xid 13/31.
    pub gpus_with_code: HashMap<u32, usize>,
    /// Every event of the node, for node-wide companions (Xid 45 after a fault on another GPU).
    pub events: Vec<NodeEvent>,
}

/// One event of the node, with who logged it.
#[derive(Debug, Clone)]
pub struct NodeEvent {
    /// `GPU 3` or `PCI 0000:ba:00`.
    pub owner: String,
    pub code: u32,
    pub wall_micros: Option<i64>,
}

/// Findings for the GPU `owner` (as in [`NodeEvent::owner`]) whose events are `events`.
pub fn findings(events: &[Observed<'_>], owner: &str, node: &NodeContext) -> Vec<XidFinding> {
    let mut b = Builder {
        events,
        consumed: vec![false; events.len()],
        findings: Vec::new(),
    };
    xid48(&mut b);
    remap_without_48(&mut b);
    xid45(&mut b, owner, node);
    xid43(&mut b);
    for code in [13, 31] {
        recurrence(
            &mut b,
            code,
            node.gpus_with_code.get(&code).copied().unwrap_or(1),
        );
    }
    xid74(&mut b);
    nvlink5(&mut b);
    simple(&mut b);
    xid154(&mut b);
    catalog_rest(&mut b);
    b.findings
}

fn xid48(b: &mut Builder<'_, '_>) {
    let dbe = b.open(48);
    if dbe.is_empty() {
        return;
    }
    let companions = |b: &Builder<'_, '_>, code| -> Vec<usize> {
        b.open(code)
            .into_iter()
            .filter(|i| b.near_any(*i, &dbe, COMPANION_WINDOW_MICROS))
            .collect()
    };
    let (remapped, failed) = (companions(b, 63), companions(b, 64));
    let details: Vec<usize> = [171, 172]
        .into_iter()
        .flat_map(|c| companions(b, c))
        .collect();
    let sram = dbe
        .iter()
        .chain(&details)
        .any(|i| b.events[*i].code == 172 || detail::is_sram_error(b.events[*i].message));
    let mut all: Vec<usize> = dbe
        .iter()
        .chain(&remapped)
        .chain(&failed)
        .chain(&details)
        .copied()
        .collect();
    all.sort_unstable();
    let count = dbe.len();
    let (rule, action, mut message) = if !failed.is_empty() {
        (
            XidRule::Xid48WithRemapFailure,
            RecommendedAction::ReplaceGpu,
            format!(
                "uncorrectable ECC error (Xid 48 ×{count}) and the row remap failed (Xid 64): the memory can no longer be repaired; drain the GPU and open an RMA (a reset only keeps it running until replaced)."
            ),
        )
    } else if !remapped.is_empty() {
        (
            XidRule::Xid48WithRowRemap,
            RecommendedAction::DrainAndReset,
            format!(
                "uncorrectable ECC error (Xid 48 ×{count}) with a row remap recorded (Xid 63): drain the GPU's workloads and reset it so the remap takes effect; check pending remaps with `nvidia-smi -q -d ROW_REMAPPER`."
            ),
        )
    } else {
        (
            XidRule::Xid48Dbe,
            RecommendedAction::ResetGpu,
            format!(
                "uncorrectable ECC error (Xid 48 ×{count}) without a row-remap event: reset the GPU, then run field diagnostics; check `nvidia-smi -q -d ECC,ROW_REMAPPER`."
            ),
        )
    };
    if sram {
        message.push_str(" The error is in SRAM: check the SRAM error-threshold flag and run field diagnostics if it is set.");
    }
    b.push(rule, Severity::Critical, &all, message, action);
}

fn remap_without_48(b: &mut Builder<'_, '_>) {
    let remapped = b.open(63);
    if !remapped.is_empty() {
        let message = format!(
            "row remap recorded (Xid 63 ×{}) after a memory error: reset the GPU when convenient so it takes effect, and watch `nvidia-smi -q -d ROW_REMAPPER`.",
            remapped.len()
        );
        b.push(
            XidRule::Xid63RowRemap,
            Severity::Warning,
            &remapped,
            message,
            RecommendedAction::Monitor,
        );
    }
    let failed = b.open(64);
    if !failed.is_empty() {
        let message = format!(
            "recording a row remap failed (Xid 64 ×{}): reset the GPU; this GPU is an RMA candidate — check 'Remapping Failure Occurred' in `nvidia-smi -q -d ROW_REMAPPER`.",
            failed.len()
        );
        b.push(
            XidRule::Xid64RemapFailure,
            Severity::Critical,
            &failed,
            message,
            RecommendedAction::ResetGpu,
        );
    }
}

fn xid45(b: &mut Builder<'_, '_>, owner: &str, node: &NodeContext) {
    let mut cleanup = Vec::new();
    let mut alone = Vec::new();
    let mut blamed: BTreeSet<String> = BTreeSet::new();
    for i in b.open(45) {
        let event = &b.events[i];
        let culprit = detail::blamed_xid(event.message)
            .map(|code| code.to_string())
            .or_else(|| {
                b.events
                    .iter()
                    .find(|other| other.code != 45 && near(other, event, COMPANION_WINDOW_MICROS))
                    .map(|other| other.code.to_string())
            })
            .or_else(|| {
                // Strictly timed: a fault on another GPU of the same job tears this one's channels down.
                node.events
                    .iter()
                    .filter(|other| other.owner != owner && other.code != 45)
                    .find(|other| match (other.wall_micros, event.wall_micros) {
                        (Some(x), Some(y)) => (x - y).abs() <= COMPANION_WINDOW_MICROS,
                        _ => false,
                    })
                    .map(|other| format!("{} on {}", other.code, other.owner))
            });
        match culprit {
            Some(culprit) => {
                blamed.insert(culprit);
                cleanup.push(i);
            }
            None => alone.push(i),
        }
    }
    if !cleanup.is_empty() {
        let blamed: Vec<String> = blamed.into_iter().collect();
        let message = format!(
            "Xid 45 ×{} is channel cleanup after Xid {}: follow the findings for those.",
            cleanup.len(),
            blamed.join(", ")
        );
        b.push(
            XidRule::Xid45Cleanup,
            Severity::Info,
            &cleanup,
            message,
            RecommendedAction::None,
        );
    }
    if !alone.is_empty() {
        let message = format!(
            "Xid 45 ×{} with no other Xid on the node within {} s: an application was torn down (Ctrl-C, kill, GPU reset). If nobody did that, restart the fabric manager (NVSwitch systems).",
            alone.len(),
            COMPANION_WINDOW_MICROS / 1_000_000
        );
        b.push(
            XidRule::Xid45Alone,
            Severity::Warning,
            &alone,
            message,
            RecommendedAction::RestartFabricManager,
        );
    }
}

fn xid43(b: &mut Builder<'_, '_>) {
    let mut after_other = Vec::new();
    let mut preceding = BTreeSet::new();
    let mut alone = Vec::new();
    for i in b.open(43) {
        match b.events[..i]
            .iter()
            .rev()
            .find(|e| !matches!(e.code, 43 | 45))
        {
            Some(previous) => {
                preceding.insert(previous.code);
                after_other.push(i);
            }
            None => alone.push(i),
        }
    }
    if !after_other.is_empty() {
        let message = format!(
            "Xid 43 ×{} followed Xid {}: the GPU stopped the faulting application; act on that Xid.",
            after_other.len(),
            join(&preceding)
        );
        b.push(
            XidRule::Xid43AfterOtherXid,
            Severity::Info,
            &after_other,
            message,
            RecommendedAction::None,
        );
    }
    if !alone.is_empty() {
        let message = format!(
            "Xid 43 ×{}: an application hit a software fault and was stopped; the GPU stays healthy.",
            alone.len()
        );
        b.push(
            XidRule::Xid43Alone,
            Severity::Warning,
            &alone,
            message,
            RecommendedAction::InvestigateApplication,
        );
    }
}

fn recurrence(b: &mut Builder<'_, '_>, code: u32, gpus_with_code: usize) {
    let indices = b.open(code);
    let Some(&first) = indices.first() else {
        return;
    };
    let mut bursts = 0;
    let mut previous = &b.events[first];
    let mut locations: BTreeMap<(u32, u32), BTreeSet<usize>> = BTreeMap::new();
    for (n, i) in indices.iter().enumerate() {
        let event = &b.events[*i];
        if n == 0 || !near(previous, event, BURST_WINDOW_MICROS) {
            bursts += 1;
        }
        previous = event;
        if let Some(location) = detail::gpc_tpc(event.message) {
            locations.entry(location).or_default().insert(bursts);
        }
    }
    let repeated: Vec<String> = locations
        .iter()
        .filter(|(_, seen_in)| seen_in.len() >= 2)
        .map(|((gpc, tpc), seen_in)| format!("GPC {gpc}, TPC {tpc} in {} bursts", seen_in.len()))
        .collect();
    let hardware = if code == 13 && !locations.is_empty() {
        !repeated.is_empty()
    } else {
        bursts >= RECURRENCE_BURSTS && gpus_with_code <= 1
    };
    let name = if code == 13 {
        "graphics exception"
    } else {
        "MMU fault"
    };
    if hardware {
        let place = if repeated.is_empty() {
            format!("in {bursts} separate bursts on this GPU only")
        } else {
            format!("on the same unit ({})", repeated.join("; "))
        };
        let message = format!(
            "Xid {code} ({name}) recurs {place}: possible hardware fault; drain the GPU and run DCGM diagnostics, then field diagnostics."
        );
        b.push(
            XidRule::RecurringOnOneGpu,
            Severity::Error,
            &indices,
            message,
            RecommendedAction::RunFieldDiagnostics,
        );
    } else if gpus_with_code > 1 {
        let message = format!(
            "Xid {code} ({name}) ×{} here and on {} other GPU(s): points to the application; debug it with compute-sanitizer or cuda-gdb.",
            indices.len(),
            gpus_with_code - 1
        );
        b.push(
            XidRule::ApplicationFault,
            Severity::Warning,
            &indices,
            message,
            RecommendedAction::InvestigateApplication,
        );
    } else {
        let message = format!(
            "Xid {code} ({name}) in {bursts} burst(s) on this GPU: an application fault; restart the application and debug it if it recurs."
        );
        b.push(
            XidRule::ApplicationFault,
            Severity::Warning,
            &indices,
            message,
            RecommendedAction::RestartApplication,
        );
    }
}

fn xid74(b: &mut Builder<'_, '_>) {
    let indices = b.open(74);
    if indices.is_empty() {
        return;
    }
    let mut per_link: BTreeMap<u32, usize> = BTreeMap::new();
    let mut hints: BTreeSet<String> = BTreeSet::new();
    for i in &indices {
        if let Some(link) = detail::nvlink74(b.events[*i].message) {
            *per_link.entry(link.link).or_default() += 1;
            hints.extend(link.register_hints);
        }
    }
    let links: Vec<String> = per_link
        .iter()
        .map(|(link, n)| format!("link {link} ×{n}"))
        .collect();
    let recurring = per_link.values().any(|n| *n >= NVLINK_RECURRENCE);
    let mut message = format!(
        "NVLink error (Xid 74 ×{}{}): check the links with `nvidia-smi nvlink -s` and `-e`, then reset the GPU; a failing peer GPU also makes its neighbours log Xid 74.",
        indices.len(),
        if links.is_empty() {
            String::new()
        } else {
            format!(" on {}", links.join(", "))
        }
    );
    if recurring {
        message.push_str(&format!(" It recurs on the same link ({NVLINK_RECURRENCE}+ times): reseat the link/GPU and run field diagnostics."));
    }
    for hint in hints {
        message.push_str(&format!(" {hint}."));
    }
    let action = if recurring {
        RecommendedAction::CheckMechanicals
    } else {
        RecommendedAction::ResetGpu
    };
    b.push(
        XidRule::Xid74Nvlink,
        Severity::Critical,
        &indices,
        message,
        action,
    );
}

fn nvlink5(b: &mut Builder<'_, '_>) {
    let indices: Vec<usize> = (144..=150).flat_map(|code| b.open(code)).collect();
    if indices.is_empty() {
        return;
    }
    let decoded: Vec<_> = indices
        .iter()
        .filter_map(|i| detail::nvlink5(b.events[*i].message))
        .collect();
    let fatal = decoded.iter().any(|d| d.fatal != Some(false)) || decoded.len() < indices.len();
    let units: BTreeSet<String> = decoded
        .iter()
        .map(|d| format!("{} link {}", d.subcode.as_deref().unwrap_or("?"), d.link))
        .collect();
    let units: Vec<String> = units.into_iter().collect();
    let message = format!(
        "NVLink5 error ×{} ({}; {}): decode intrInfo/errorStatus with NVIDIA's Xid 144-150 table; {}",
        indices.len(),
        if units.is_empty() {
            "undecoded".to_owned()
        } else {
            units.join(", ")
        },
        if fatal { "fatal" } else { "non-fatal" },
        if fatal {
            "reset the GPU."
        } else {
            "no reset needed; watch the link."
        }
    );
    let (severity, action) = if fatal {
        (Severity::Critical, RecommendedAction::ResetGpu)
    } else {
        (Severity::Warning, RecommendedAction::Monitor)
    };
    b.push(XidRule::Nvlink5Error, severity, &indices, message, action);
}

fn simple(b: &mut Builder<'_, '_>) {
    let rules = [
        (
            79,
            XidRule::Xid79FallenOffBus,
            Severity::Critical,
            RecommendedAction::RebootNode,
            "the GPU fell off the PCIe bus: power-cycle the node and check PCIe seating, power and cooling; until then the device plugin may fail GPU allocations node-wide.",
        ),
        (
            94,
            XidRule::Xid94Contained,
            Severity::Warning,
            RecommendedAction::RestartApplication,
            "contained uncorrectable error: only the application that hit it was affected; restart it and keep the GPU in service (reset it when convenient).",
        ),
        (
            95,
            XidRule::Xid95Uncontained,
            Severity::Critical,
            RecommendedAction::ResetGpu,
            "uncontained uncorrectable error: several applications may be affected and the GPU state is suspect; reset the GPU before new work.",
        ),
    ];
    for (code, rule, severity, action, text) in rules {
        let indices = b.open(code);
        if !indices.is_empty() {
            let message = format!("Xid {code} ×{}: {text}", indices.len());
            b.push(rule, severity, &indices, message, action);
        }
    }
}

fn xid154(b: &mut Builder<'_, '_>) {
    let indices = b.open(154);
    let Some(&last) = indices.last() else {
        return;
    };
    let change = detail::recovery_change(b.events[last].message);
    let (severity, action, name) = match change.as_ref().map(|c| (c.value, c.name.as_str())) {
        Some((0, _)) => (Severity::Info, RecommendedAction::None, "None"),
        Some((1, _)) => (
            Severity::Critical,
            RecommendedAction::ResetGpu,
            "GPU Reset Required",
        ),
        Some((2, _)) => (
            Severity::Critical,
            RecommendedAction::RebootNode,
            "Node Reboot Required",
        ),
        Some((3, _)) => (Severity::Warning, RecommendedAction::DrainP2p, "Drain P2P"),
        Some((4, _)) => (
            Severity::Critical,
            RecommendedAction::DrainAndReset,
            "Drain and Reset",
        ),
        Some((6, _)) => (Severity::Critical, RecommendedAction::ResetGpu, "Bus Reset"),
        Some((7, _)) => (
            Severity::Critical,
            RecommendedAction::RebootNode,
            "System Reboot",
        ),
        Some((_, name)) => (Severity::Warning, RecommendedAction::ConsultCatalog, name),
        None => (
            Severity::Warning,
            RecommendedAction::ConsultCatalog,
            "unreadable",
        ),
    };
    let value = change
        .as_ref()
        .map_or_else(|| "?".to_owned(), |c| format!("{:#x}", c.value));
    let message = format!(
        "the driver's recovery action for this GPU is now {value} ({name}) (latest of {} Xid 154): follow it; NVML field 230 shows the current value.",
        indices.len()
    );
    b.push(
        XidRule::Xid154RecoveryAction,
        severity,
        &indices,
        message,
        action,
    );
}

fn catalog_rest(b: &mut Builder<'_, '_>) {
    let codes: BTreeSet<u32> = (0..b.events.len())
        .filter(|i| !b.consumed[*i])
        .map(|i| b.events[i].code)
        .collect();
    for code in codes {
        let indices = b.open(code);
        match catalog::lookup(code) {
            Some(entry) => {
                let message = format!(
                    "Xid {code} {} ×{}: {}.",
                    entry.mnemonic,
                    indices.len(),
                    entry.meaning
                );
                b.push(
                    XidRule::Catalog,
                    entry.severity,
                    &indices,
                    message,
                    action_for_bucket(entry.immediate_action),
                );
            }
            None => {
                let message = format!(
                    "Xid {code} ×{}: {}.",
                    indices.len(),
                    catalog::unknown_code_meaning()
                );
                b.push(
                    XidRule::UnknownCode,
                    Severity::Unknown,
                    &indices,
                    message,
                    RecommendedAction::ConsultCatalog,
                );
            }
        }
    }
}

fn join(codes: &BTreeSet<u32>) -> String {
    codes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
