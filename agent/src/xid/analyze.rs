//! The pure analysis: kernel-log Xid records + the GPUs NVML reports + options → [`XidReport`].
//!
//! Xids are attributed by numeric PCI (domain, bus, device) match; the window and GPU filters apply
//! before counting; `max_events` only cuts the `events` list, never the summary or the findings.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::catalog::{self, Severity};
use super::coverage::{coverage, log_notes};
use super::detail::{self, NvlinkDetail};
use super::options::{AnalyzeOptions, GpuIdentity, MAX_EVENTS_LIMIT};
use super::parse::{PciLocation, RecordTime};
use super::report::{
    GpuXidAssessment, RecommendedAction, Verdict, XidCodeSummary, XidEvent, XidExplanation,
    XidReport, verdict_of,
};
use super::scan::{KernelLog, SourceKind, XidRecord};
use super::time::{format_rfc3339, micros_to_seconds};
use super::workflow::{self, NodeContext, NodeEvent, Observed};

/// Who an event belongs to: a GPU NVML reports, or just the PCI location from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Owner {
    Gpu(u32),
    Unattributed(PciLocation),
}

struct Placed<'l> {
    record: &'l XidRecord,
    owner: Owner,
    wall_micros: Option<i64>,
    since_boot_micros: Option<u64>,
}

/// The Xid records inside the window and the GPU filter, with what the filters left out.
#[derive(Default)]
struct Placement<'l> {
    placed: Vec<Placed<'l>>,
    untimed_excluded: u64,
    other_gpus_excluded: u64,
    /// Records whose since-boot time is later than the current uptime (an earlier boot's log).
    future: u64,
}

type PerOwner<'p, 'l> = BTreeMap<Owner, Vec<&'p Placed<'l>>>;

/// Analyses the Xids in `log` for `gpus`. Pure: the log carries the clock it was read with.
pub fn analyze(log: &KernelLog, gpus: &[GpuIdentity], options: &AnalyzeOptions) -> XidReport {
    let now = log.clock.realtime_unix_micros;
    let cutoff = options.window_start(now);
    let placement = place(log, gpus, options.gpu_index, cutoff);
    let placed = &placement.placed;
    let gpu_by_index: BTreeMap<u32, &GpuIdentity> = gpus.iter().map(|g| (g.index, g)).collect();
    let events: Vec<XidEvent> = placed
        .iter()
        .rev()
        .take(options.events_limit() as usize)
        .map(|p| event(p, &gpu_by_index))
        .collect();

    let mut per_owner: PerOwner<'_, '_> = BTreeMap::new();
    for p in placed {
        per_owner.entry(p.owner).or_default().push(p);
    }
    let node = node_context(&per_owner, placed);
    let assessments: Vec<GpuXidAssessment> = owners(gpus, options, &per_owner)
        .into_iter()
        .map(|owner| {
            let owned = per_owner.get(&owner).map(Vec::as_slice).unwrap_or_default();
            assess(owner, owned, gpus, &gpu_by_index, log, &node)
        })
        .collect();
    let summary = summarize(&per_owner, &gpu_by_index);
    let explanations = summary
        .iter()
        .map(|s| s.code)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(explain)
        .collect();
    let notes = notes(log, options, &placement, &gpu_by_index);
    XidReport {
        source: log.source.clone(),
        analyzed_at: format_rfc3339(now),
        coverage: coverage(log, options, cutoff),
        records_scanned: log.records_scanned,
        xid_event_count: placed.len() as u64,
        events_returned: events.len() as u32,
        truncated: placed.len() > events.len(),
        verdict: assessments
            .iter()
            .map(|a| a.verdict)
            .max()
            .unwrap_or(Verdict::Pass),
        recommended_action: assessments
            .iter()
            .map(|a| a.recommended_action)
            .max()
            .unwrap_or(RecommendedAction::None),
        gpus: assessments,
        summary,
        events,
        explanations,
        notes,
    }
}

/// Gives each Xid record its owner and wall-clock time, keeping those inside the window (`cutoff`,
/// µs since the epoch) and the GPU filter.
fn place<'l>(
    log: &'l KernelLog,
    gpus: &[GpuIdentity],
    gpu_index: Option<u32>,
    cutoff: Option<i64>,
) -> Placement<'l> {
    let clock = log.clock;
    let by_pci: HashMap<PciLocation, &GpuIdentity> = gpus
        .iter()
        .rev()
        .filter_map(|gpu| gpu.pci.map(|pci| (pci, gpu)))
        .collect();
    let mut placement = Placement::default();
    for record in &log.xids {
        let (wall_micros, since_boot_micros) = match record.time {
            RecordTime::SinceBoot(micros) => {
                if micros > clock.monotonic_micros {
                    placement.future += 1;
                }
                (Some(clock.wall_micros(micros)), Some(micros))
            }
            RecordTime::Wall(micros) => (Some(micros), None),
            RecordTime::Unknown => (None, None),
        };
        if let Some(cutoff) = cutoff {
            match wall_micros {
                Some(wall) if wall >= cutoff => {}
                Some(_) => continue,
                None => {
                    placement.untimed_excluded += 1;
                    continue;
                }
            }
        }
        let owner = by_pci
            .get(&record.pci)
            .map_or(Owner::Unattributed(record.pci), |gpu| Owner::Gpu(gpu.index));
        if gpu_index.is_some_and(|wanted| owner != Owner::Gpu(wanted)) {
            placement.other_gpus_excluded += 1;
            continue;
        }
        placement.placed.push(Placed {
            record,
            owner,
            wall_micros,
            since_boot_micros,
        });
    }
    placement
}

/// What the companion-Xid workflows need to know about the whole node.
fn node_context(per_owner: &PerOwner<'_, '_>, placed: &[Placed<'_>]) -> NodeContext {
    let mut node = NodeContext::default();
    for owned in per_owner.values() {
        for code in owned.iter().map(|p| p.record.code).collect::<BTreeSet<_>>() {
            *node.gpus_with_code.entry(code).or_default() += 1;
        }
    }
    node.events = placed
        .iter()
        .map(|p| NodeEvent {
            owner: owner_label(p.owner),
            code: p.record.code,
            wall_micros: p.wall_micros,
        })
        .collect();
    node
}

/// Every GPU the filter keeps (with or without Xids), then the unattributed PCI locations.
fn owners(
    gpus: &[GpuIdentity],
    options: &AnalyzeOptions,
    per_owner: &PerOwner<'_, '_>,
) -> Vec<Owner> {
    let mut owners: Vec<Owner> = gpus
        .iter()
        .filter(|g| options.gpu_index.is_none_or(|wanted| wanted == g.index))
        .map(|g| Owner::Gpu(g.index))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    owners.extend(
        per_owner
            .keys()
            .filter(|o| matches!(o, Owner::Unattributed(_))),
    );
    owners
}

/// The report's notes: caps and filters first, then the caveats of the log itself.
fn notes(
    log: &KernelLog,
    options: &AnalyzeOptions,
    placement: &Placement<'_>,
    gpu_by_index: &BTreeMap<u32, &GpuIdentity>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if options.max_events.is_some_and(|m| m > MAX_EVENTS_LIMIT) {
        notes.push(format!("max_events is capped at {MAX_EVENTS_LIMIT}."));
    }
    if let Some(wanted) = options.gpu_index
        && !gpu_by_index.contains_key(&wanted)
    {
        let known: Vec<String> = gpu_by_index.keys().map(u32::to_string).collect();
        notes.push(format!(
            "no GPU has index {wanted}; known indices: {}.",
            known.join(", ")
        ));
    }
    if placement.other_gpus_excluded > 0 {
        notes.push(format!("{} Xid event(s) of other GPUs or unattributed PCI locations left out by the gpu_index filter.", placement.other_gpus_excluded));
    }
    if placement.untimed_excluded > 0 {
        notes.push(format!(
            "{} Xid line(s) without a recognised timestamp left out by the since_seconds filter.",
            placement.untimed_excluded
        ));
    }
    if placement.future > 0 {
        notes.push(format!("{} Xid record(s) carry a since-boot time later than the current uptime: the log comes from an earlier boot, so their wall-clock times are wrong.", placement.future));
    }
    if log.source.kind == SourceKind::File
        && log
            .xids
            .iter()
            .any(|x| matches!(x.time, RecordTime::SinceBoot(_)))
    {
        notes.push("since-boot timestamps in the file were converted to wall-clock time assuming the file comes from this machine's current boot.".to_owned());
    }
    notes.extend(log_notes(log));
    notes
}

fn event(p: &Placed<'_>, gpu_by_index: &BTreeMap<u32, &GpuIdentity>) -> XidEvent {
    let record = p.record;
    let entry = catalog::lookup(record.code);
    let (gpu_index, gpu_uuid) = match p.owner {
        Owner::Gpu(index) => (
            Some(index),
            gpu_by_index.get(&index).and_then(|g| g.uuid.clone()),
        ),
        Owner::Unattributed(_) => (None, None),
    };
    XidEvent {
        time: p.wall_micros.map(format_rfc3339),
        seconds_since_boot: p.since_boot_micros.map(micros_to_seconds),
        sequence: record.sequence,
        code: record.code,
        mnemonic: entry.map_or("UNKNOWN", |e| e.mnemonic).to_owned(),
        severity: entry.map_or(Severity::Unknown, |e| e.severity),
        immediate_action: entry.map(|e| e.immediate_action),
        pci_bus_id: record.pci.to_string(),
        gpu_index,
        gpu_uuid,
        gpu_instance_id: record.gpu_instance_id,
        compute_instance_id: record.compute_instance_id,
        pid: record.pid,
        process_name: record.process_name.clone(),
        message: record.message.clone(),
        nvlink: nvlink(record),
    }
}

fn nvlink(record: &XidRecord) -> Option<NvlinkDetail> {
    match record.code {
        74 => detail::nvlink74(&record.message),
        144..=150 => detail::nvlink5(&record.message),
        _ => None,
    }
}

fn assess(
    owner: Owner,
    owned: &[&Placed<'_>],
    gpus: &[GpuIdentity],
    gpu_by_index: &BTreeMap<u32, &GpuIdentity>,
    log: &KernelLog,
    node: &NodeContext,
) -> GpuXidAssessment {
    let observed: Vec<Observed<'_>> = owned
        .iter()
        .map(|p| Observed {
            code: p.record.code,
            wall_micros: p.wall_micros,
            message: &p.record.message,
            label: label(p),
        })
        .collect();
    let findings = workflow::findings(&observed, &owner_label(owner), node);
    let verdict = findings
        .iter()
        .map(|f| verdict_of(f.severity))
        .max()
        .unwrap_or(Verdict::Pass);
    let recommended_action = findings
        .iter()
        .map(|f| f.recommended_action)
        .max()
        .unwrap_or(RecommendedAction::None);
    let codes: Vec<u32> = owned
        .iter()
        .map(|p| p.record.code)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (gpu, pci) = match owner {
        Owner::Gpu(index) => {
            let gpu = gpu_by_index.get(&index).copied();
            (gpu, gpu.and_then(|g| g.pci))
        }
        Owner::Unattributed(pci) => (None, Some(pci)),
    };
    let unattributed_reason =
        matches!(owner, Owner::Unattributed(_)).then(|| unattributed_reason(pci, gpus));
    GpuXidAssessment {
        gpu_index: gpu.map(|g| g.index),
        gpu_uuid: gpu.and_then(|g| g.uuid.clone()),
        pci_bus_id: pci.map(|p| p.to_string()),
        attributed: gpu.is_some(),
        unattributed_reason,
        uuid_from_kernel_log: pci.and_then(|p| log.uuids_from_log.get(&p).cloned()),
        xid_event_count: owned.len() as u64,
        codes,
        verdict,
        recommended_action,
        findings,
    }
}

fn owner_label(owner: Owner) -> String {
    match owner {
        Owner::Gpu(index) => format!("GPU {index}"),
        Owner::Unattributed(pci) => format!("PCI {pci}"),
    }
}

fn unattributed_reason(pci: Option<PciLocation>, gpus: &[GpuIdentity]) -> String {
    let pci = pci.map_or_else(|| "?".to_owned(), |p| p.to_string());
    if gpus.is_empty() {
        return format!("no GPU list to match PCI {pci} against (NVML unavailable?)");
    }
    let without_pci = gpus.iter().filter(|g| g.pci.is_none()).count();
    let mut reason = format!(
        "no GPU NVML reports is at PCI {pci}: the GPU may have fallen off the bus or been removed, or the log comes from another machine"
    );
    if without_pci > 0 {
        reason.push_str(&format!("; {without_pci} GPU(s) have no readable PCI info"));
    }
    reason
}

fn label(p: &Placed<'_>) -> String {
    let when = match (p.wall_micros, p.since_boot_micros) {
        (Some(wall), _) => format_rfc3339(wall),
        (None, Some(boot)) => format!("{:.6} s after boot", micros_to_seconds(boot)),
        (None, None) => "time unknown".to_owned(),
    };
    let mut text = format!("{when} Xid {}: {}", p.record.code, p.record.message);
    if text.len() > 240 {
        let cut = (0..=240)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn summarize(
    per_owner: &PerOwner<'_, '_>,
    gpu_by_index: &BTreeMap<u32, &GpuIdentity>,
) -> Vec<XidCodeSummary> {
    let mut summary = Vec::new();
    for (owner, owned) in per_owner {
        let mut by_code: BTreeMap<u32, Vec<&Placed<'_>>> = BTreeMap::new();
        for p in owned {
            by_code.entry(p.record.code).or_default().push(p);
        }
        for (code, list) in by_code {
            let entry = catalog::lookup(code);
            let (gpu_index, gpu_uuid) = match owner {
                Owner::Gpu(index) => (
                    Some(*index),
                    gpu_by_index.get(index).and_then(|g| g.uuid.clone()),
                ),
                Owner::Unattributed(_) => (None, None),
            };
            let walls: Vec<i64> = list.iter().filter_map(|p| p.wall_micros).collect();
            summary.push(XidCodeSummary {
                gpu_index,
                gpu_uuid,
                pci_bus_id: list[0].record.pci.to_string(),
                code,
                mnemonic: entry.map_or("UNKNOWN", |e| e.mnemonic).to_owned(),
                severity: entry.map_or(Severity::Unknown, |e| e.severity),
                count: list.len() as u64,
                first_seen: walls.iter().min().copied().map(format_rfc3339),
                last_seen: walls.iter().max().copied().map(format_rfc3339),
            });
        }
    }
    summary
}

/// The catalog's explanation of `code` (or the unknown-code text).
pub fn explain(code: u32) -> XidExplanation {
    match catalog::lookup(code) {
        Some(e) => XidExplanation {
            code,
            mnemonic: e.mnemonic.to_owned(),
            in_catalog: true,
            meaning: e.meaning.to_owned(),
            severity: e.severity,
            fatal: e.fatal,
            immediate_action: Some(e.immediate_action),
            immediate_instruction: Some(e.immediate_action.instruction().to_owned()),
            investigatory_action: Some(e.investigatory_action),
            investigatory_instruction: Some(e.investigatory_action.instruction().to_owned()),
            applies_to: e.applies_to.iter().map(|f| (*f).to_owned()).collect(),
            xid154_linkage: e.xid154_linkage.map(str::to_owned),
            notes: e.notes.to_owned(),
        },
        None => XidExplanation {
            code,
            mnemonic: "UNKNOWN".to_owned(),
            in_catalog: false,
            meaning: catalog::unknown_code_meaning(),
            severity: Severity::Unknown,
            fatal: None,
            immediate_action: None,
            immediate_instruction: None,
            investigatory_action: None,
            investigatory_instruction: None,
            applies_to: Vec::new(),
            xid154_linkage: None,
            notes: String::new(),
        },
    }
}

#[cfg(test)]
mod tests;
