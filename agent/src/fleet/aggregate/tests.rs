use std::time::Duration;

use serde_json::json;

use super::*;

fn health(verdict: &str, gpus: &[(u32, &str)], finding: Option<(u32, &str)>) -> Value {
    json!({
        "data_source": "mock:x",
        "verdict": verdict,
        "summary": "",
        "node": {"verdict": "PASS", "findings": [], "not_evaluated": []},
        "gpus": gpus.iter().map(|(i, v)| json!({
            "index": i, "uuid": format!("GPU-{i}"), "verdict": v,
            "findings": finding.filter(|(g, _)| g == i).map(|(_, check)| vec![json!({
                "check": check, "severity": "fail", "message": "broken", "evidence": {}, "action": "drain"
            })]).unwrap_or_default(),
            "not_evaluated": []
        })).collect::<Vec<_>>()
    })
}

#[test]
fn health_is_ranked_worst_first_with_counts() {
    let answers = vec![
        (
            "n-pass".to_owned(),
            Ok(health("PASS", &[(0, "PASS")], None)),
        ),
        (
            "n-fail".to_owned(),
            Ok(health(
                "FAIL",
                &[(0, "PASS"), (1, "FAIL")],
                Some((1, "ecc.dbe")),
            )),
        ),
        (
            "n-timeout".to_owned(),
            Err(NodeError::Timeout(Duration::from_secs(3))),
        ),
        (
            "n-warn".to_owned(),
            Ok(health("WARN", &[(0, "WARN")], None)),
        ),
        ("a-pass".to_owned(), Ok(health("PASS", &[], None))),
    ];
    let fleet = fleet_health(answers);
    assert_eq!(fleet.verdict, FleetVerdict::Fail);
    assert_eq!(
        fleet.counts,
        VerdictCounts {
            pass: 2,
            warn: 1,
            fail: 1,
            unknown: 1
        }
    );
    let order: Vec<&str> = fleet.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(
        order,
        vec!["n-fail", "n-timeout", "n-warn", "a-pass", "n-pass"]
    );
    let fail = &fleet.nodes[0];
    assert_eq!(fail.gpus[1].verdict, FleetVerdict::Fail);
    assert_eq!(fail.findings[0].gpu_index, Some(1));
    assert_eq!(fail.findings[0].check, "ecc.dbe");
    assert_eq!(
        fleet.nodes[1].error.as_deref(),
        Some(
            NodeError::Timeout(Duration::from_secs(3))
                .to_string()
                .as_str()
        )
    );
}

#[test]
fn worst_of_nothing_is_pass_and_unknown_outranks_warn() {
    assert_eq!(worst([]), FleetVerdict::Pass);
    assert_eq!(
        worst([
            FleetVerdict::Warn,
            FleetVerdict::Unknown,
            FleetVerdict::Pass
        ]),
        FleetVerdict::Unknown
    );
    assert_eq!(
        worst([FleetVerdict::Unknown, FleetVerdict::Fail]),
        FleetVerdict::Fail
    );
}

#[test]
fn a_reply_of_another_shape_is_an_unknown_node_not_a_failure_of_the_call() {
    let fleet = fleet_health(vec![("n".to_owned(), Ok(json!({"verdict": "MAYBE"})))]);
    assert_eq!(fleet.verdict, FleetVerdict::Unknown);
    let error = fleet.nodes[0].error.as_deref().unwrap();
    assert!(error.contains("not understood"), "{error}");
}

fn xid(verdict: &str, summary: &[(u32, &str, &str, u64)]) -> Value {
    json!({
        "verdict": verdict,
        "recommended_action": if verdict == "PASS" { "NONE" } else { "RESET_GPU" },
        "xid_event_count": summary.iter().map(|s| s.3).sum::<u64>(),
        "summary": summary.iter().map(|(code, mnemonic, severity, count)| json!({
            "gpu_index": 0, "gpu_uuid": "GPU-0", "pci_bus_id": "0000:01:00.0", "code": code,
            "mnemonic": mnemonic, "severity": severity, "count": count
        })).collect::<Vec<_>>(),
        "explanations": summary.iter().map(|(code, _, _, _)| json!({
            "code": code, "immediate_instruction": format!("act on {code}")
        })).collect::<Vec<_>>()
    })
}

#[test]
fn xid_codes_are_summed_across_nodes_most_severe_first() {
    let answers = vec![
        (
            "n1".to_owned(),
            Ok(xid(
                "FAIL",
                &[
                    (79, "GPU_FALLEN_OFF_BUS", "critical", 1),
                    (13, "GR_EXCEPTION", "warning", 4),
                ],
            )),
        ),
        (
            "n2".to_owned(),
            Ok(xid("WARN", &[(13, "GR_EXCEPTION", "warning", 2)])),
        ),
        ("n3".to_owned(), Ok(xid("PASS", &[]))),
        (
            "n4".to_owned(),
            Err(NodeError::Agent("kernel log unreadable".into())),
        ),
    ];
    let fleet = fleet_xid(answers);
    assert_eq!(fleet.verdict, FleetVerdict::Fail);
    let codes: Vec<(u32, u64, Vec<&str>)> = fleet
        .codes
        .iter()
        .map(|c| {
            (
                c.code,
                c.event_count,
                c.nodes.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(codes, vec![(79, 1, vec!["n1"]), (13, 6, vec!["n1", "n2"])]);
    assert_eq!(
        fleet.codes[0].immediate_instruction.as_deref(),
        Some("act on 79")
    );
    let order: Vec<&str> = fleet.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(order, vec!["n1", "n4", "n2", "n3"]);
    assert_eq!(
        fleet.nodes[0].recommended_action.as_deref(),
        Some("RESET_GPU")
    );
    assert!(
        fleet.nodes[1]
            .error
            .as_deref()
            .unwrap()
            .contains("kernel log unreadable")
    );
    assert_eq!(fleet.counts.unknown, 1);
}
