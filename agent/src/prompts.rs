//! The MCP prompts: ready-made instructions that tell an assistant which tools to call, in which order,
//! and how to read their results.

use std::collections::BTreeMap;

/// A prompt argument (all optional; MCP passes them as strings).
#[derive(Clone, Copy, Debug)]
pub struct PromptArg {
    pub name: &'static str,
    pub description: &'static str,
}

/// One prompt: its name, title, description, arguments and the text it expands to.
#[derive(Clone, Copy, Debug)]
pub struct PromptDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub args: &'static [PromptArg],
    render: fn(&Args) -> Result<String, String>,
}

impl PromptDef {
    /// The prompt's text for the given arguments, or why the arguments are wrong.
    pub fn render(&self, args: &BTreeMap<String, String>) -> Result<String, String> {
        if let Some(unknown) = args
            .keys()
            .find(|k| !self.args.iter().any(|a| a.name == k.as_str()))
        {
            let known: Vec<&str> = self.args.iter().map(|a| a.name).collect();
            return Err(format!(
                "prompt {:?} has no argument {unknown:?}; its arguments are: {}",
                self.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        (self.render)(&Args(args))
    }
}

struct Args<'a>(&'a BTreeMap<String, String>);

impl Args<'_> {
    fn number(&self, name: &str) -> Result<Option<u64>, String> {
        match self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| {
                format!("argument {name:?} must be a non-negative integer, got {s:?}")
            }),
        }
    }
}

const GPU_INDEX: PromptArg = PromptArg {
    name: "gpu_index",
    description: "Only this GPU (NVML index); all GPUs when omitted",
};
const SINCE_SECONDS: PromptArg = PromptArg {
    name: "since_seconds",
    description: "Only kernel-log events of the last N seconds; the whole ring buffer when omitted",
};

const SINCE_SECONDS_HISTORY: PromptArg = PromptArg {
    name: "since_seconds",
    description: "How far back to look, in seconds (default 3600; the recorder keeps 24 h of minutes)",
};

/// Every prompt, in listing order.
pub const PROMPTS: &[PromptDef] = &[
    PromptDef {
        name: "gpu-health-check",
        title: "GPU health check",
        description: "Check this node's GPUs for hardware faults and explain the verdict",
        args: &[GPU_INDEX],
        render: health_check,
    },
    PromptDef {
        name: "diagnose-xid-errors",
        title: "Diagnose Xid errors",
        description: "Read the kernel log's NVIDIA Xid errors and say what each means and what to do",
        args: &[SINCE_SECONDS, GPU_INDEX],
        render: diagnose_xid,
    },
    PromptDef {
        name: "gpu-incident-timeline",
        title: "What happened to the GPUs",
        description: "Reconstruct what happened to this node's GPUs before an incident (a job that died, a \
                      GPU that was hot or throttled earlier) from the flight recorder's history",
        args: &[SINCE_SECONDS_HISTORY, GPU_INDEX],
        render: incident_timeline,
    },
    PromptDef {
        name: "gpu-triage",
        title: "GPU triage",
        description: "Full triage of this node's GPUs: inventory, then health, then Xid errors, then a verdict",
        args: &[GPU_INDEX],
        render: triage,
    },
];

/// The prompt named `name`.
pub fn find(name: &str) -> Option<&'static PromptDef> {
    PROMPTS.iter().find(|p| p.name == name)
}

fn gpu_scope(args: &Args) -> Result<(String, String), String> {
    Ok(match args.number("gpu_index")? {
        Some(i) => (format!("GPU {i}"), format!("{{\"gpu_index\": {i}}}")),
        None => ("every GPU".to_string(), "{}".to_string()),
    })
}

/// Added to every prompt: a reported past event is a question for the flight recorder.
const PAST_EVENTS: &str = "\
If the user reports something that already happened (a job that crashed, a GPU that was slow, hot or \
missing earlier), the present state may look healthy again: call `get_gpu_timeline` with the GPU and a \
`since_seconds` that covers the reported time, and use its ordered events (throttling, temperature, \
counter increments, link changes, Xids, GPU lost/returned, recorder gaps) to say what happened when.";

const READING_RULES: &str = "\
How to read the results:
- `data_source` says where the data came from. `nvml` is the real driver; anything starting with `mock` \
is simulated data — say so plainly and do not present it as the state of a real node.
- A value listed under `unavailable` (or a rule under `not_evaluated`) could not be read; its `reason` \
says why (e.g. NOT_SUPPORTED on this GPU model, NO_PERMISSION in this container). Never treat it as zero \
or as healthy — say it was not checked.
- Severity: `fail` means take the GPU out of service now, `warn` means act soon or watch, `info` is context.";

fn health_check(args: &Args) -> Result<String, String> {
    let (scope, call_args) = gpu_scope(args)?;
    Ok(format!(
        "Check the health of {scope} on this Kubernetes node.

1. Call `get_gpu_health` with {call_args}. If you need rate-based checks (PCIe replay rate, NVLink \
error rates, thermal/power violation time) and the result lists them under rate rules not evaluated, \
call it again with `\"window_seconds\": 10` to sample two snapshots 10 s apart.
2. Report the overall verdict (PASS, WARN or FAIL) in one line.
3. For every GPU whose verdict is not PASS, list each finding above `info`: the GPU (index, UUID, PCI \
bus id), the `check`, the `message`, the key numbers from `evidence`, and the `action` — verbatim \
commands included. Order by severity, `fail` first.
4. If a GPU is lost or missing from NVML, say that the node likely needs a power cycle and that the \
Kubernetes device plugin may stop allocating GPUs on this node until then.
5. End with what the operator should do next, in order (e.g. cordon and drain the node, reset a GPU, \
open an RMA case).

{PAST_EVENTS}

{READING_RULES}"
    ))
}

fn diagnose_xid(args: &Args) -> Result<String, String> {
    let (scope, _) = gpu_scope(args)?;
    let mut call = serde_json::Map::new();
    if let Some(s) = args.number("since_seconds")? {
        call.insert("since_seconds".into(), s.into());
    }
    if let Some(i) = args.number("gpu_index")? {
        call.insert("gpu_index".into(), i.into());
    }
    let window = match args.number("since_seconds")? {
        Some(s) => format!("the last {s} seconds"),
        None => "everything still in the kernel ring buffer".to_string(),
    };
    Ok(format!(
        "Diagnose the NVIDIA Xid errors of {scope} on this node, covering {window}.

1. Call `analyze_xid_errors` with {}. If it returns an error saying the kernel log cannot be read, \
relay the fix it names (the agent needs CAP_SYSLOG: the operator's `agent.kernelLog: true`) and stop.
2. State the time span the log covers (oldest record) so that \"no Xid errors\" is qualified.
3. Summarise per GPU: which Xid codes, how many times, first and last seen. Events the agent could not \
attribute to a GPU are still errors on this node: report them with their PCI address.
4. For each code, give its name, what it means and the immediate action from the catalog. Apply the \
workflows the result lists (`findings`): e.g. Xid 48 with 63/64 on the same GPU means drain and reset \
so the row remap applies (64: replacement candidate); Xid 79 means the GPU fell off the bus (power \
cycle the node); Xid 43 and 45 are follow-ups of an earlier error — report that earlier error instead; \
13/31 repeating on one GPU point at hardware, spread across GPUs at the application.
5. Recommend the next step per GPU, most severe first.

{READING_RULES}",
        serde_json::Value::Object(call)
    ))
}

fn incident_timeline(args: &Args) -> Result<String, String> {
    let (scope, _) = gpu_scope(args)?;
    let since = args.number("since_seconds")?.unwrap_or(3600);
    let mut call = serde_json::Map::new();
    if let Some(i) = args.number("gpu_index")? {
        call.insert("gpu".into(), i.into());
    }
    call.insert("since_seconds".into(), since.into());
    Ok(format!(
        "Reconstruct what happened to {scope} on this node in the last {since} seconds.

1. Call `get_gpu_timeline` with {}. If `recorder_available` is false, say that this agent keeps no \
history (its `notes` say why and how to enable it) and fall back to `get_gpu_health` and \
`analyze_xid_errors`, which only see the present and the kernel log.
2. Tell the story in time order: for each GPU with events, what changed when (temperature crossing the \
slowdown threshold, throttle reasons starting and ending, ECC / remapped-row / PCIe / NVLink counter \
increments, link changes, Xids, the GPU lost and back). Events marked `approximate` are known to the \
minute only. Use the per-bucket min/max/mean/last of each metric for the trend before the first event.
3. Name the recorder gaps (`node_events`: agent restarts, skipped samples) that limit what is known.
4. If `truncated` is true, follow `narrow` (one GPU, a shorter window) before concluding.
5. Say what most likely caused the incident and which evidence supports it, then call \
`get_gpu_health` for the present state and recommend the next step.

{READING_RULES}",
        serde_json::Value::Object(call)
    ))
}

fn triage(args: &Args) -> Result<String, String> {
    let (scope, call_args) = gpu_scope(args)?;
    Ok(format!(
        "Triage {scope} on this Kubernetes node. Work through the tools in this order and reason over \
all three results together.

1. `get_gpu_inventory` with {call_args}: note the driver and CUDA versions, how many GPUs NVML sees \
(`device_count`), and any GPU with an `error` or with values under `unavailable`.
2. `get_gpu_health` with {call_args}: the verdict per GPU and its findings (thermal, power, clocks, \
ECC, row remapping, PCIe, NVLink, lost GPUs, recovery action).
3. `analyze_xid_errors` with {call_args}: the kernel's Xid errors per GPU and the catalog's actions.
4. Correlate: an ECC or row-remap finding with Xid 48/63/64 on the same GPU, a lost GPU with Xid 79, \
NVLink findings with Xid 74, throttling with temperatures near the slowdown threshold. Say which \
evidence supports each conclusion.
5. Give a verdict for the node (healthy / degraded / take out of service) and a numbered list of actions \
with the GPU each applies to.

{PAST_EVENTS}

{READING_RULES}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_prompt_names_the_tools_it_needs() {
        let triage = find("gpu-triage").unwrap().render(&args(&[])).unwrap();
        let a = triage.find("get_gpu_inventory").unwrap();
        let b = triage.find("get_gpu_health").unwrap();
        let c = triage.find("analyze_xid_errors").unwrap();
        assert!(a < b && b < c, "inventory → health → xid");
        let health = find("gpu-health-check")
            .unwrap()
            .render(&args(&[]))
            .unwrap();
        assert!(health.contains("get_gpu_health"));
        let xid = find("diagnose-xid-errors")
            .unwrap()
            .render(&args(&[]))
            .unwrap();
        assert!(xid.contains("analyze_xid_errors"));
        assert!(triage.contains("get_gpu_timeline") && health.contains("get_gpu_timeline"));
        let past = find("gpu-incident-timeline")
            .unwrap()
            .render(&args(&[("gpu_index", "3"), ("since_seconds", "7200")]))
            .unwrap();
        assert!(
            past.contains(r#"`get_gpu_timeline` with {"gpu":3,"since_seconds":7200}"#),
            "{past}"
        );
    }

    #[test]
    fn arguments_shape_the_tool_calls() {
        let t = find("diagnose-xid-errors")
            .unwrap()
            .render(&args(&[("since_seconds", "3600"), ("gpu_index", "2")]))
            .unwrap();
        assert!(t.contains(r#"{"gpu_index":2,"since_seconds":3600}"#), "{t}");
        assert!(t.contains("the last 3600 seconds") && t.contains("GPU 2"));
        let h = find("gpu-health-check")
            .unwrap()
            .render(&args(&[("gpu_index", "5")]))
            .unwrap();
        assert!(h.contains(r#"{"gpu_index": 5}"#), "{h}");
    }

    #[test]
    fn bad_arguments_are_explained() {
        let e = find("gpu-health-check")
            .unwrap()
            .render(&args(&[("gpu_index", "two")]))
            .unwrap_err();
        assert!(
            e.contains("gpu_index") && e.contains("non-negative integer"),
            "{e}"
        );
        let e = find("gpu-triage")
            .unwrap()
            .render(&args(&[("node", "x")]))
            .unwrap_err();
        assert!(
            e.contains("no argument \"node\"") && e.contains("gpu_index"),
            "{e}"
        );
    }
}
