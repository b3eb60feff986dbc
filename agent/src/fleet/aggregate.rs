//! Pure aggregation of the node agents' answers into fleet results: verdicts worst first, counts per
//! verdict, and the fleet-wide Xid summary. A node that did not answer is UNKNOWN with its error.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::errors::NodeError;
use super::model::{
    FleetFinding, FleetHealth, FleetVerdict, FleetXid, FleetXidCode, GpuVerdict, NodeHealthEntry,
    NodeXidCode, NodeXidEntry, VerdictCounts,
};

/// One node's answer: the node agent's `structuredContent`, or why there is none.
pub type NodeAnswer = (String, Result<Value, NodeError>);

/// The worst verdict of a set (PASS when empty).
pub fn worst(verdicts: impl IntoIterator<Item = FleetVerdict>) -> FleetVerdict {
    verdicts.into_iter().max().unwrap_or(FleetVerdict::Pass)
}

/// Nodes per verdict.
pub fn count(verdicts: impl IntoIterator<Item = FleetVerdict>) -> VerdictCounts {
    let mut counts = VerdictCounts::default();
    for v in verdicts {
        match v {
            FleetVerdict::Pass => counts.pass += 1,
            FleetVerdict::Warn => counts.warn += 1,
            FleetVerdict::Fail => counts.fail += 1,
            FleetVerdict::Unknown => counts.unknown += 1,
        }
    }
    counts
}

/// The part of `get_gpu_health`'s result the fleet reads.
#[derive(Deserialize)]
struct HealthWire {
    verdict: FleetVerdict,
    #[serde(default)]
    node: NodeLevelWire,
    #[serde(default)]
    gpus: Vec<GpuWire>,
}

#[derive(Default, Deserialize)]
struct NodeLevelWire {
    #[serde(default)]
    findings: Vec<FindingWire>,
}

#[derive(Deserialize)]
struct GpuWire {
    index: u32,
    #[serde(default)]
    uuid: Option<String>,
    verdict: FleetVerdict,
    #[serde(default)]
    findings: Vec<FindingWire>,
}

#[derive(Deserialize)]
struct FindingWire {
    check: String,
    severity: String,
    message: String,
    #[serde(default)]
    action: Option<String>,
}

impl FindingWire {
    fn into_finding(self, gpu_index: Option<u32>) -> FleetFinding {
        FleetFinding {
            gpu_index,
            check: self.check,
            severity: self.severity,
            message: self.message,
            action: self.action,
        }
    }
}

fn unreadable(what: &str, e: serde_json::Error) -> NodeError {
    NodeError::Session(format!(
        "its {what} result was not understood ({e}): the node agent's version may differ from the \
         fleet's"
    ))
}

fn health_entry(node: String, answer: Result<Value, NodeError>) -> NodeHealthEntry {
    let parsed = answer.and_then(|v| {
        serde_json::from_value::<HealthWire>(v).map_err(|e| unreadable("get_gpu_health", e))
    });
    match parsed {
        Ok(h) => {
            let mut findings: Vec<FleetFinding> = h
                .node
                .findings
                .into_iter()
                .map(|f| f.into_finding(None))
                .collect();
            let mut gpus = Vec::with_capacity(h.gpus.len());
            for g in h.gpus {
                findings.extend(
                    g.findings
                        .into_iter()
                        .map(|f| f.into_finding(Some(g.index))),
                );
                gpus.push(GpuVerdict {
                    index: g.index,
                    uuid: g.uuid,
                    verdict: g.verdict,
                });
            }
            NodeHealthEntry {
                node,
                verdict: h.verdict,
                gpus,
                findings,
                error: None,
            }
        }
        Err(e) => NodeHealthEntry {
            node,
            verdict: FleetVerdict::Unknown,
            gpus: Vec::new(),
            findings: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// `get_fleet_gpu_health`'s result from every node's `get_gpu_health` answer.
pub fn fleet_health(answers: Vec<NodeAnswer>) -> FleetHealth {
    let mut nodes: Vec<NodeHealthEntry> = answers
        .into_iter()
        .map(|(node, answer)| health_entry(node, answer))
        .collect();
    nodes.sort_by(|a, b| b.verdict.cmp(&a.verdict).then_with(|| a.node.cmp(&b.node)));
    FleetHealth {
        verdict: worst(nodes.iter().map(|n| n.verdict)),
        counts: count(nodes.iter().map(|n| n.verdict)),
        nodes,
    }
}

/// The part of `analyze_xid_errors`' result the fleet reads.
#[derive(Deserialize)]
struct XidWire {
    verdict: FleetVerdict,
    recommended_action: String,
    xid_event_count: u64,
    #[serde(default)]
    summary: Vec<NodeXidCode>,
    #[serde(default)]
    explanations: Vec<ExplanationWire>,
}

#[derive(Deserialize)]
struct ExplanationWire {
    code: u32,
    #[serde(default)]
    immediate_instruction: Option<String>,
}

/// Catalog severities, mildest first; a code the catalog does not know ranks with `error`.
fn severity_rank(severity: &str) -> u8 {
    match severity {
        "info" => 0,
        "warning" => 1,
        "error" | "unknown" => 2,
        "critical" => 3,
        _ => 2,
    }
}

/// `get_fleet_xid_errors`' result from every node's `analyze_xid_errors` answer.
pub fn fleet_xid(answers: Vec<NodeAnswer>) -> FleetXid {
    let mut codes: BTreeMap<u32, FleetXidCode> = BTreeMap::new();
    let mut code_nodes: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut nodes = Vec::with_capacity(answers.len());
    for (node, answer) in answers {
        let parsed = answer.and_then(|v| {
            serde_json::from_value::<XidWire>(v).map_err(|e| unreadable("analyze_xid_errors", e))
        });
        match parsed {
            Ok(x) => {
                let instructions: BTreeMap<u32, Option<String>> = x
                    .explanations
                    .into_iter()
                    .map(|e| (e.code, e.immediate_instruction))
                    .collect();
                for c in &x.summary {
                    let entry = codes.entry(c.code).or_insert_with(|| FleetXidCode {
                        code: c.code,
                        mnemonic: c.mnemonic.clone(),
                        severity: c.severity.clone(),
                        event_count: 0,
                        nodes: Vec::new(),
                        immediate_instruction: instructions.get(&c.code).cloned().flatten(),
                    });
                    entry.event_count += c.count;
                    code_nodes.entry(c.code).or_default().insert(node.clone());
                }
                nodes.push(NodeXidEntry {
                    node,
                    verdict: x.verdict,
                    recommended_action: Some(x.recommended_action),
                    xid_event_count: x.xid_event_count,
                    codes: x.summary,
                    error: None,
                });
            }
            Err(e) => nodes.push(NodeXidEntry {
                node,
                verdict: FleetVerdict::Unknown,
                recommended_action: None,
                xid_event_count: 0,
                codes: Vec::new(),
                error: Some(e.to_string()),
            }),
        }
    }
    let mut codes: Vec<FleetXidCode> = codes
        .into_values()
        .map(|mut c| {
            c.nodes = code_nodes
                .remove(&c.code)
                .unwrap_or_default()
                .into_iter()
                .collect();
            c
        })
        .collect();
    codes.sort_by(|a, b| {
        severity_rank(&b.severity)
            .cmp(&severity_rank(&a.severity))
            .then(b.event_count.cmp(&a.event_count))
            .then(a.code.cmp(&b.code))
    });
    nodes.sort_by(|a, b| b.verdict.cmp(&a.verdict).then_with(|| a.node.cmp(&b.node)));
    FleetXid {
        verdict: worst(nodes.iter().map(|n| n.verdict)),
        counts: count(nodes.iter().map(|n| n.verdict)),
        codes,
        nodes,
    }
}

#[cfg(test)]
mod tests;
