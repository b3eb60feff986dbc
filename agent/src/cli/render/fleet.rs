//! The fleet tools' tables, one renderer per result type: `list_gpu_nodes` ([`nodes`]),
//! `get_fleet_gpu_health` ([`health`]) and `get_fleet_xid_errors` ([`xid`]). One line per node, in the
//! result's order (worst first); details below.

use std::fmt::Write;

use super::{NA, seconds};
use crate::cli::style::{Paint, Style};
use crate::cli::table::{Cell, Table};
use crate::fleet::{
    AccessDecision, FleetFinding, FleetHealth, FleetVerdict, FleetXid, NodeList, VerdictCounts,
};

/// The colour of a fleet verdict (UNKNOWN is as urgent as a warning: nothing was verified).
fn paint(verdict: FleetVerdict) -> Paint {
    match verdict {
        FleetVerdict::Pass => Paint::Green,
        FleetVerdict::Warn | FleetVerdict::Unknown => Paint::Yellow,
        FleetVerdict::Fail => Paint::Red,
    }
}

fn word(verdict: FleetVerdict) -> &'static str {
    match verdict {
        FleetVerdict::Pass => "PASS",
        FleetVerdict::Warn => "WARN",
        FleetVerdict::Fail => "FAIL",
        FleetVerdict::Unknown => "UNKNOWN",
    }
}

fn verdict_cell(verdict: FleetVerdict) -> Cell {
    Cell::painted(word(verdict), paint(verdict))
}

/// `2 FAIL, 1 UNKNOWN, 0 WARN, 5 PASS`.
fn counts(c: &VerdictCounts) -> String {
    format!(
        "{} FAIL, {} UNKNOWN, {} WARN, {} PASS",
        c.fail, c.unknown, c.warn, c.pass
    )
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => NA,
    }
}

/// `list_gpu_nodes` as a table: one line per node, then exec access and notes.
pub fn nodes(list: &NodeList, style: Style) -> String {
    let mut t = Table::new(&[
        "NODE",
        "GPUS",
        "PRODUCT",
        "READY",
        "AGENT POD",
        "POD READY",
        "CONFIG",
        "MODE",
        "PROBLEM",
    ]);
    for n in &list.nodes {
        let gpus = match (n.gpu_allocatable, n.gpu_capacity) {
            (Some(a), Some(c)) if a != c => format!("{a}/{c}"),
            (_, Some(c)) => c.to_string(),
            (Some(a), None) => a.to_string(),
            (None, None) => NA.to_string(),
        };
        let mut ready = yes_no(n.ready).to_string();
        if n.unschedulable {
            ready.push_str(",cordoned");
        }
        let (pod, pod_ready) = match &n.agent_pod {
            Some(p) => (
                format!("{}/{}", p.namespace, p.name),
                if p.ready {
                    Cell::painted("yes", Paint::Green)
                } else {
                    Cell::painted(
                        format!("no: {}", p.reason.as_deref().unwrap_or("not ready")),
                        Paint::Yellow,
                    )
                },
            ),
            None => (
                "-".to_string(),
                Cell::painted("no agent pod", Paint::Yellow),
            ),
        };
        t.row(vec![
            n.node.as_str().into(),
            gpus.into(),
            n.gpu_product.as_deref().unwrap_or("-").into(),
            ready.into(),
            pod.into(),
            pod_ready,
            n.config.as_deref().unwrap_or("-").into(),
            n.access_mode.as_deref().unwrap_or("-").into(),
            n.node_problem
                .as_ref()
                .map_or("-", |p| p.reason.as_str())
                .into(),
        ]);
    }
    let mut out = t.render(style);
    let mut access = String::new();
    for a in &list.exec_access {
        let (text, p) = match a.exec {
            AccessDecision::Allowed => ("allowed", Paint::Green),
            AccessDecision::Denied => ("denied", Paint::Red),
            AccessDecision::Unknown => ("unknown", Paint::Yellow),
        };
        let _ = writeln!(
            access,
            "pods/exec in {}: {}: {}",
            a.namespace,
            style.paint(text, p),
            a.detail
        );
    }
    if !access.is_empty() {
        let _ = write!(out, "\n{}\n{access}", style.heading("ACCESS"));
    }
    for note in &list.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out, "\n{} GPU node(s)", list.nodes.len());
    out
}

/// The most severe finding (fail, then warn, then info; first of equals), and how many others.
fn worst_finding(findings: &[FleetFinding]) -> String {
    let rank = |f: &FleetFinding| match f.severity.as_str() {
        "fail" => 2,
        "warn" => 1,
        _ => 0,
    };
    let Some(worst) = findings
        .iter()
        .enumerate()
        .max_by_key(|(i, f)| (rank(f), std::cmp::Reverse(*i)))
        .map(|(_, f)| f)
    else {
        return "-".to_string();
    };
    let mut text = match worst.gpu_index {
        Some(i) => format!("GPU {i} {}", worst.check),
        None => worst.check.clone(),
    };
    if rank(worst) == 0 {
        text.push_str(" (info)");
    }
    if findings.len() > 1 {
        let _ = write!(text, " (+{} more)", findings.len() - 1);
    }
    text
}

/// `get_fleet_gpu_health` as a table: one line per node, worst first; findings and errors below.
pub fn health(h: &FleetHealth, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} node(s): {} ({})\n",
        h.nodes.len(),
        style.paint(word(h.verdict), paint(h.verdict)),
        counts(&h.counts)
    );
    let mut t = Table::new(&["NODE", "VERDICT", "GPUS", "WORST FINDING"]);
    for n in &h.nodes {
        let gpus = if n.error.is_some() {
            "-".to_string()
        } else {
            let bad = n
                .gpus
                .iter()
                .filter(|g| g.verdict != FleetVerdict::Pass)
                .count();
            format!("{} ({} not PASS)", n.gpus.len(), bad)
        };
        let worst = match &n.error {
            Some(_) => "did not answer (see ERRORS)".to_string(),
            None => worst_finding(&n.findings),
        };
        t.row(vec![
            n.node.as_str().into(),
            verdict_cell(n.verdict),
            gpus.into(),
            worst.into(),
        ]);
    }
    out.push_str(&t.render(style));

    let mut findings = String::new();
    for n in &h.nodes {
        for f in n.findings.iter().filter(|f| f.severity != "info") {
            let owner = match f.gpu_index {
                Some(i) => format!("{} GPU {i}", n.node),
                None => n.node.clone(),
            };
            let p = if f.severity == "fail" {
                Paint::Red
            } else {
                Paint::Yellow
            };
            let _ = writeln!(
                findings,
                "{owner}   {}   {}: {}",
                style.paint(&f.severity, p),
                f.check,
                f.message
            );
            if let Some(action) = &f.action {
                let _ = writeln!(findings, "    action: {action}");
            }
        }
    }
    if !findings.is_empty() {
        let _ = write!(out, "\n{}\n{findings}", style.heading("FINDINGS"));
    }
    errors(&mut out, h.nodes.iter().map(|n| (&n.node, &n.error)), style);
    out
}

/// `get_fleet_xid_errors` as a table: one line per node, worst first; the fleet's codes and errors
/// below.
pub fn xid(x: &FleetXid, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} node(s): {} ({})\n",
        x.nodes.len(),
        style.paint(word(x.verdict), paint(x.verdict)),
        counts(&x.counts)
    );
    let mut t = Table::new(&["NODE", "VERDICT", "EVENTS", "XIDS", "LAST SEEN", "ACTION"]);
    for n in &x.nodes {
        let codes: Vec<String> = n
            .codes
            .iter()
            .map(|c| match c.gpu_index {
                Some(i) => format!("GPU{i}:{} x{}", c.code, c.count),
                None => format!("{}:{} x{}", c.pci_bus_id, c.code, c.count),
            })
            .collect();
        let last = n
            .codes
            .iter()
            .filter_map(|c| c.last_seen.as_deref())
            .max()
            .map_or_else(|| "-".to_string(), seconds);
        let (events, action) = match &n.error {
            Some(_) => ("-".to_string(), "did not answer (see ERRORS)".to_string()),
            None => (
                n.xid_event_count.to_string(),
                n.recommended_action.clone().unwrap_or_else(|| "-".into()),
            ),
        };
        t.row(vec![
            n.node.as_str().into(),
            verdict_cell(n.verdict),
            events.into(),
            if codes.is_empty() {
                "-".to_string()
            } else {
                codes.join(", ")
            }
            .into(),
            last.into(),
            action.into(),
        ]);
    }
    out.push_str(&t.render(style));

    if !x.codes.is_empty() {
        let mut codes = Table::new(&["XID", "MNEMONIC", "SEVERITY", "EVENTS", "NODES", "ACTION"]);
        for c in &x.codes {
            codes.row(vec![
                c.code.to_string().into(),
                c.mnemonic.as_str().into(),
                c.severity.as_str().into(),
                c.event_count.to_string().into(),
                c.nodes.join(",").into(),
                c.immediate_instruction.as_deref().unwrap_or("-").into(),
            ]);
        }
        let _ = write!(
            out,
            "\n{}\n{}",
            style.heading("XID CODES ACROSS THE FLEET"),
            codes.render(style)
        );
    }
    errors(&mut out, x.nodes.iter().map(|n| (&n.node, &n.error)), style);
    out
}

/// The nodes that did not answer, and why.
fn errors<'a>(
    out: &mut String,
    nodes: impl Iterator<Item = (&'a String, &'a Option<String>)>,
    style: Style,
) {
    let mut lines = String::new();
    for (node, error) in nodes {
        if let Some(e) = error {
            let _ = writeln!(lines, "{node}   {}", style.paint(e, Paint::Yellow));
        }
    }
    if !lines.is_empty() {
        let _ = write!(out, "\n{}\n{lines}", style.heading("ERRORS"));
    }
}
