//! NVLink rules: link state, error totals since the driver loaded, and error rates over a window.
//! Skipped on GPUs without NVLink (NOT_SUPPORTED), so PCIe cards never get a false "link down".

use std::fmt::Write as _;

use crate::gpu::{DeviceSnapshot, NvLinkSnapshot, NvmlReturn, Reading};

use super::{Growth, Out, Window, gpu_label, reaches_per_minute, seconds};
use crate::health::report::{Finding, Severity};
use crate::health::rule::Rule;

/// The counters a rate rule sums on one link.
type Counters = fn(&NvLinkSnapshot) -> Vec<&Reading<u64>>;

/// The rate rules: rule, counter name (also the evidence key), counters, severity at ≥ 1 per minute.
const RATES: [(Rule, &str, Counters, Severity); 3] = [
    (
        Rule::NvlinkCrcRate,
        "crc",
        |l| vec![&l.crc_flit_errors, &l.crc_data_errors],
        Severity::Warn,
    ),
    (
        Rule::NvlinkReplayRate,
        "replay",
        |l| vec![&l.replay_errors],
        Severity::Fail,
    ),
    (
        Rule::NvlinkRecoveryRate,
        "recovery",
        |l| vec![&l.recovery_errors],
        Severity::Fail,
    ),
];

/// `nvlink.down`, `nvlink.error_totals`, `nvlink.crc_totals`, `nvlink.*_rate`.
pub(in crate::health) fn check(dev: &DeviceSnapshot, window: Window<'_>, out: &mut Out) {
    let links = match &dev.nvlinks {
        Ok(links) if !links.is_empty() => links,
        Ok(_) => return,
        Err(e) if e.code == NvmlReturn::NotSupported => return, // No NVLink on this part.
        Err(e) => {
            for rule in [
                Rule::NvlinkDown,
                Rule::NvlinkErrorTotals,
                Rule::NvlinkCrcTotals,
            ] {
                out.skip(rule, format!("NVLink: {e}"));
            }
            if !matches!(window, Window::Missing) {
                for (rule, ..) in RATES {
                    out.skip(rule, format!("NVLink: {e}"));
                }
            }
            return;
        }
    };
    check_state(dev, links, out);
    check_totals(dev, links, out);
    check_rates(dev, links, window, out);
}

fn link_list(links: &[u32]) -> String {
    links
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_state(dev: &DeviceSnapshot, links: &[NvLinkSnapshot], out: &mut Out) {
    let label = gpu_label(dev);
    let i = dev.index;
    let down: Vec<u32> = links
        .iter()
        .filter(|l| l.active == Ok(false))
        .map(|l| l.link)
        .collect();
    let up = links.iter().filter(|l| l.active == Ok(true)).count();
    let unknown: Vec<String> = links
        .iter()
        .filter_map(|l| {
            l.active
                .as_ref()
                .err()
                .map(|e| format!("link {}: {e}", l.link))
        })
        .collect();
    if !unknown.is_empty() {
        out.skip(
            Rule::NvlinkDown,
            format!("NVLink state unreadable for {}", unknown.join("; ")),
        );
    }
    if down.is_empty() {
        return;
    }
    let finding = if up > 0 {
        Finding::new(
            Rule::NvlinkDown,
            Severity::Fail,
            format!(
                "{label} has NVLink {} down while {up} other link(s) are up: GPU-to-GPU traffic is \
                 degraded or fails.",
                link_list(&down)
            ),
        )
        .action(format!(
            "Drain the node's GPU workloads; check `nvidia-smi nvlink -s -i {i}` and the fabric \
             manager (`systemctl status nvidia-fabricmanager`), then reset GPU {i} (`nvidia-smi -r -i \
             {i}`) or reboot; a link that stays down needs the GPU or baseboard serviced."
        ))
    } else {
        Finding::new(
            Rule::NvlinkDown,
            Severity::Warn,
            format!(
                "None of {label}'s {} NVLinks is active: either no NVLink bridge or fabric is \
                 connected, or every link failed.",
                down.len()
            ),
        )
        .action(format!(
            "If this GPU should have NVLink (HGX baseboard or bridge), check `nvidia-smi nvlink -s -i \
             {i}` and the fabric manager; otherwise nothing to do."
        ))
    };
    out.push(
        finding
            .with("links_down", link_list(&down))
            .with("links_up", up as u64)
            .with("links_total", links.len() as u64),
    );
}

fn check_totals(dev: &DeviceSnapshot, links: &[NvLinkSnapshot], out: &mut Out) {
    let label = gpu_label(dev);
    let mut serious = Finding::new(Rule::NvlinkErrorTotals, Severity::Warn, "");
    let mut crc = Finding::new(Rule::NvlinkCrcTotals, Severity::Info, "");
    let (mut serious_links, mut crc_links) = (Vec::new(), Vec::new());
    let (mut serious_sum, mut crc_sum) = (0u64, 0u64);
    let mut unreadable = Vec::new();
    for l in links {
        for (name, r, is_crc) in [
            ("replay_errors", &l.replay_errors, false),
            ("recovery_errors", &l.recovery_errors, false),
            ("crc_flit_errors", &l.crc_flit_errors, true),
            ("crc_data_errors", &l.crc_data_errors, true),
        ] {
            match r {
                Ok(0) => {}
                Ok(n) => {
                    let (key, n) = (format!("link_{}_{name}", l.link), *n);
                    let (f, ls, sum) = if is_crc {
                        (&mut crc, &mut crc_links, &mut crc_sum)
                    } else {
                        (&mut serious, &mut serious_links, &mut serious_sum)
                    };
                    f.evidence.insert(key, n.into());
                    if ls.last() != Some(&l.link) {
                        ls.push(l.link);
                    }
                    *sum = sum.saturating_add(n);
                }
                Err(e) if e.code == NvmlReturn::NotSupported => {}
                Err(e) => unreadable.push(format!("link {} {name}: {e}", l.link)),
            }
        }
    }
    if !unreadable.is_empty() {
        out.skip(
            Rule::NvlinkErrorTotals,
            format!(
                "NVLink error counters unreadable: {}",
                unreadable.join("; ")
            ),
        );
    }
    if serious_sum > 0 {
        serious.message = format!(
            "{label} logged {serious_sum} NVLink replay/recovery error(s) since the driver loaded, on \
             link(s) {}.",
            link_list(&serious_links)
        );
        out.push(serious.action(format!(
            "Check whether they still grow: the nvlink.*_rate rules judge new errors over a window \
             (pass `window_seconds` when they were not evaluated); `nvidia-smi nvlink -e -i {}` shows \
             the counters.",
            dev.index
        )));
    }
    if crc_sum > 0 {
        crc.message = format!(
            "{label} logged {crc_sum} NVLink CRC error(s) since the driver loaded, on link(s) {} \
             (retried by the link; a concern only while they keep growing).",
            link_list(&crc_links)
        );
        out.push(crc);
    }
}

fn check_rates(dev: &DeviceSnapshot, links: &[NvLinkSnapshot], window: Window<'_>, out: &mut Out) {
    let (before, millis) = match window {
        Window::Missing => return,
        Window::Unusable(reason) => {
            for (rule, ..) in RATES {
                out.skip(rule, reason);
            }
            return;
        }
        Window::Ready { before, millis } => (before, millis),
    };
    let before_links = match &before.nvlinks {
        Ok(l) => l,
        Err(e) => {
            for (rule, ..) in RATES {
                out.skip(rule, format!("NVLink in the baseline: {e}"));
            }
            return;
        }
    };
    let label = gpu_label(dev);
    let secs = seconds(millis);
    for (rule, what, read, severity) in RATES {
        let mut finding = Finding::new(rule, severity, "");
        let mut firing = Vec::new();
        let mut total = 0u64;
        let mut notes = String::new();
        let mut ran = false;
        for l in links {
            let Some(b) = before_links.iter().find(|b| b.link == l.link) else {
                let _ = write!(notes, "link {} is not in the baseline; ", l.link);
                continue;
            };
            let (now, then) = match (sum(read(l)), sum(read(b))) {
                (Ok(now), Ok(then)) => (now, then),
                (Err(e), _) | (_, Err(e)) => {
                    let _ = write!(notes, "link {} {what} counter: {e}; ", l.link);
                    continue;
                }
            };
            ran = true;
            let growth = Growth::between(then, now);
            if reaches_per_minute(growth.count, 1, millis) {
                finding = finding.with(
                    &format!("link_{}_{what}_errors_delta", l.link),
                    growth.count,
                );
                if growth.reset.is_some() {
                    finding = finding.with(&format!("link_{}_counter_reset", l.link), true);
                }
                firing.push(l.link);
                total = total.saturating_add(growth.count);
            } else if let Some((b, a)) = growth.reset {
                let _ = write!(
                    notes,
                    "link {} {what} counter went back from {b} to {a}; ",
                    l.link
                );
            }
        }
        if ran {
            out.rates_run.insert(rule);
        }
        if !notes.is_empty() {
            out.skip(rule, notes.trim_end_matches("; "));
        }
        if firing.is_empty() {
            continue;
        }
        finding.message = format!(
            "{label} NVLink {} logged {total} new {} error(s) in the last {secs:.1} s: 1 or more per \
             minute means the link is {}.",
            link_list(&firing),
            if what == "crc" { "CRC" } else { what },
            if severity == Severity::Fail {
                "failing"
            } else {
                "degrading"
            },
        );
        let i = dev.index;
        let action = if severity == Severity::Fail {
            format!(
                "Drain GPU {i}'s workloads, inspect the link (`nvidia-smi nvlink -s -i {i}`, \
                 `nvidia-smi nvlink -e -i {i}`) and reset the GPU (`nvidia-smi -r -i {i}`); if errors \
                 recur on the same link, have the GPU or baseboard serviced."
            )
        } else {
            format!(
                "Watch the link (`nvidia-smi nvlink -e -i {i}`); if the CRC errors keep growing, plan \
                 a reset of GPU {i} and service of the link."
            )
        };
        out.push(
            finding
                .with("links", link_list(&firing))
                .with("window_seconds", secs)
                .with("threshold_errors_per_minute", 1u32)
                .action(action),
        );
    }
}

/// The sum of a rule's counters on one link (NOT_SUPPORTED counters count as absent, not as 0 errors:
/// the sum fails only when every counter fails).
fn sum(counters: Vec<&Reading<u64>>) -> Result<u64, String> {
    let mut total = None;
    let mut err = None;
    for c in counters {
        match c {
            Ok(n) => total = Some(total.unwrap_or(0u64).saturating_add(*n)),
            Err(e) => err = Some(e.to_string()),
        }
    }
    total.ok_or_else(|| err.unwrap_or_default())
}
