//! What `pods/exec` does on this server, since it has no kubelet: a list of rules, first match wins,
//! mapping a pod (by namespace, name, node, container, requested program) to a local command, a
//! session that never answers, or an RBAC denial.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The user named in 403 messages when [`ExecRules::user`] is not set: the kubeconfig the server
/// writes carries no credentials, so a real API server would see an anonymous request.
pub const ANONYMOUS: &str = "system:anonymous";

/// Every exec rule of a server, and the user its RBAC denials name.
///
/// YAML (`--exec-config FILE`) or JSON, e.g.:
/// ```yaml
/// user: alice@example.com
/// rules:
/// - match: {namespace: gpu-diagnostics, pod: agent-forbidden}
///   forbid: {}
/// - match: {node: gpu-hang}
///   hang: {}
/// - match: {node: gpu-a, container: agent, command: /agent}
///   run:
///     argv: [/repo/target/debug/agent]
///     env: {AGENT_NVML_MODE: mock, AGENT_MOCK_SCENARIO: healthy}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecRules {
    /// Who the 403 messages say was refused.
    #[serde(default = "anonymous")]
    pub user: String,
    /// Rules in order; the first whose `match` fits decides.
    #[serde(default)]
    pub rules: Vec<ExecRule>,
}

fn anonymous() -> String {
    ANONYMOUS.to_string()
}

impl Default for ExecRules {
    fn default() -> Self {
        Self {
            user: anonymous(),
            rules: Vec::new(),
        }
    }
}

/// One rule: which exec requests it applies to and what they get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRule {
    /// Which requests; an empty match applies to every request.
    #[serde(rename = "match", default)]
    pub matcher: ExecMatch,
    /// What they get.
    #[serde(flatten)]
    pub action: ExecAction,
}

/// Fields an exec request must have for a rule to apply (all that are set must match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecMatch {
    /// The pod's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pod's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The pod's `spec.nodeName` (survives a pod being replaced on the same node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The container the request names (or the pod's only container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The program the request runs (its `command` parameter's first value, e.g. `/agent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// What a matching exec request gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExecAction {
    /// Runs a local process in place of the container's program.
    Run(ExecCommand),
    /// Upgrades the connection, then never writes output or an exit status (a hung node).
    Hang {},
    /// Refuses before the upgrade with 403 Forbidden, as RBAC without `create pods/exec` does.
    Forbid {},
}

/// A local command standing in for the program a request runs in a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecCommand {
    /// Program and leading arguments; the request's arguments after its program are appended.
    pub argv: Vec<String>,
    /// Environment on top of the server's own and the container's `env` from the pod spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// The `resourceAttributes` of a SelfSubjectAccessReview.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessQuestion<'a> {
    /// Namespace asked about (`None`: all namespaces).
    pub namespace: Option<&'a str>,
    /// Verb (`create`, `get`, …).
    pub verb: &'a str,
    /// API group.
    pub group: &'a str,
    /// Resource (`pods`).
    pub resource: &'a str,
    /// Subresource (`exec`).
    pub subresource: &'a str,
    /// Object name, if the question is about one object.
    pub name: Option<&'a str>,
}

/// The facts about one exec request that rules match on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecTarget<'a> {
    /// Namespace of the pod.
    pub namespace: &'a str,
    /// Name of the pod.
    pub pod: &'a str,
    /// Node of the pod, once the pod was read.
    pub node: Option<&'a str>,
    /// The container, once resolved.
    pub container: Option<&'a str>,
    /// The requested program.
    pub command: Option<&'a str>,
}

impl ExecMatch {
    /// Whether every field this match sets equals the target's.
    pub fn matches(&self, target: &ExecTarget<'_>) -> bool {
        let field = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|want| Some(want) == have)
        };
        field(&self.namespace, Some(target.namespace))
            && field(&self.pod, Some(target.pod))
            && field(&self.node, target.node)
            && field(&self.container, target.container)
            && field(&self.command, target.command)
    }
}

impl ExecRule {
    /// A rule with an empty match.
    pub fn new(action: ExecAction) -> Self {
        Self {
            matcher: ExecMatch::default(),
            action,
        }
    }

    /// Runs `argv` (plus the request's arguments) for matching requests.
    pub fn run<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Self::new(ExecAction::Run(ExecCommand {
            argv: argv.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
        }))
    }

    /// Matching requests hang after the upgrade.
    pub fn hang() -> Self {
        Self::new(ExecAction::Hang {})
    }

    /// Matching requests get 403 Forbidden (match by namespace and pod only, as RBAC does).
    pub fn forbid() -> Self {
        Self::new(ExecAction::Forbid {})
    }

    /// Adds an environment variable to a `run` rule (no effect on other rules).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        if let ExecAction::Run(command) = &mut self.action {
            command.env.insert(name.to_string(), value.to_string());
        }
        self
    }

    /// Narrows to one namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.matcher.namespace = Some(namespace.to_string());
        self
    }

    /// Narrows to one pod name.
    pub fn pod(mut self, pod: &str) -> Self {
        self.matcher.pod = Some(pod.to_string());
        self
    }

    /// Narrows to pods on one node.
    pub fn node(mut self, node: &str) -> Self {
        self.matcher.node = Some(node.to_string());
        self
    }

    /// Narrows to one container.
    pub fn container(mut self, container: &str) -> Self {
        self.matcher.container = Some(container.to_string());
        self
    }

    /// Narrows to requests running this program.
    pub fn command(mut self, program: &str) -> Self {
        self.matcher.command = Some(program.to_string());
        self
    }
}

impl ExecRules {
    /// Reads rules from a YAML or JSON file and checks them.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read exec rules from {}: {e}", path.display()))?;
        let rules: Self = serde_yaml::from_str(&text).map_err(|e| {
            format!(
                "{} is not a valid exec rule file: {e} (expected `user:` and `rules:` \
                 with `match:` plus one of `run:`, `hang:`, `forbid:`)",
                path.display()
            )
        })?;
        rules
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(rules)
    }

    /// Refuses rules that cannot work: an empty `argv`, or a `forbid` rule matching on more than
    /// the namespace and pod name (RBAC decides before the pod is read).
    pub fn check(&self) -> Result<(), String> {
        for (index, rule) in self.rules.iter().enumerate() {
            match &rule.action {
                ExecAction::Run(command) if command.argv.is_empty() => {
                    return Err(format!(
                        "rule {index}: `run.argv` is empty; give the program to run"
                    ));
                }
                ExecAction::Forbid {}
                    if rule.matcher.node.is_some()
                        || rule.matcher.container.is_some()
                        || rule.matcher.command.is_some() =>
                {
                    return Err(format!(
                        "rule {index}: a `forbid` rule matches as RBAC does, by `namespace` and `pod` only"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether RBAC refuses exec into this pod (checked before the pod is read, as the real server does).
    pub fn forbids(&self, namespace: &str, pod: &str) -> bool {
        let target = ExecTarget {
            namespace,
            pod,
            ..ExecTarget::default()
        };
        self.rules
            .iter()
            .any(|r| matches!(r.action, ExecAction::Forbid {}) && r.matcher.matches(&target))
    }

    /// Whether an access review for `verb` on `pods/exec` in `namespace` (of pod `name`, or of every pod
    /// when `None`) is allowed: a named pod is denied when a forbid rule matches it; a namespace-wide
    /// question only when a forbid rule covers every pod of the namespace. Both `get` and `create` are
    /// denied (a WebSocket exec needs both). Everything else is allowed, as this server allows it.
    pub fn allows(&self, review: &AccessQuestion<'_>) -> bool {
        let exec = review.group.is_empty()
            && review.resource == "pods"
            && review.subresource == "exec"
            && matches!(review.verb, "create" | "get" | "*");
        if !exec {
            return true;
        }
        let namespace = review.namespace.unwrap_or_default();
        !self.rules.iter().any(|rule| {
            matches!(rule.action, ExecAction::Forbid {})
                && rule
                    .matcher
                    .namespace
                    .as_deref()
                    .is_none_or(|n| n == namespace || namespace.is_empty())
                && match (&rule.matcher.pod, review.name) {
                    (None, _) => true,
                    (Some(pod), Some(name)) => pod == name,
                    (Some(_), None) => false,
                }
        })
    }

    /// The first `run` or `hang` rule for a request (forbid rules were applied earlier).
    pub fn decide(&self, target: &ExecTarget<'_>) -> Option<&ExecAction> {
        self.rules
            .iter()
            .filter(|r| !matches!(r.action, ExecAction::Forbid {}))
            .find(|r| r.matcher.matches(target))
            .map(|r| &r.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
user: alice@example.com
rules:
- match: {pod: agent-forbidden}
  forbid: {}
- match: {node: gpu-hang}
  hang: {}
- match: {node: gpu-a, container: agent, command: /agent}
  run:
    argv: [/bin/agent, --nvml-mode=mock]
    env: {AGENT_MOCK_SCENARIO: ecc-dbe}
- run: {argv: [/bin/true]}
"#;

    fn target<'a>(pod: &'a str, node: &'a str, command: &'a str) -> ExecTarget<'a> {
        ExecTarget {
            namespace: "gpu-diagnostics",
            pod,
            node: Some(node),
            container: Some("agent"),
            command: Some(command),
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let rules: ExecRules = serde_yaml::from_str(FILE).unwrap();
        rules.check().unwrap();
        assert_eq!(rules.user, "alice@example.com");
        assert!(rules.forbids("gpu-diagnostics", "agent-forbidden"));
        assert!(!rules.forbids("gpu-diagnostics", "agent-x"));
        assert_eq!(
            rules.decide(&target("agent-x", "gpu-hang", "/agent")),
            Some(&ExecAction::Hang {})
        );
        let Some(ExecAction::Run(command)) = rules.decide(&target("p", "gpu-a", "/agent")) else {
            panic!("gpu-a runs the agent");
        };
        assert_eq!(command.argv, ["/bin/agent", "--nvml-mode=mock"]);
        assert_eq!(command.env["AGENT_MOCK_SCENARIO"], "ecc-dbe");
        let Some(ExecAction::Run(fallback)) = rules.decide(&target("p", "gpu-a", "sh")) else {
            panic!("the catch-all rule applies");
        };
        assert_eq!(fallback.argv, ["/bin/true"]);
    }

    #[test]
    fn access_reviews_follow_the_forbid_rules() {
        let rules = ExecRules {
            rules: vec![
                ExecRule::forbid().namespace("gpu").pod("agent-x"),
                ExecRule::forbid().namespace("locked"),
            ],
            ..ExecRules::default()
        };
        let exec = |verb, namespace, name| AccessQuestion {
            namespace,
            verb,
            resource: "pods",
            subresource: "exec",
            name,
            ..AccessQuestion::default()
        };
        assert!(!rules.allows(&exec("create", Some("gpu"), Some("agent-x"))));
        assert!(!rules.allows(&exec("get", Some("gpu"), Some("agent-x"))));
        assert!(rules.allows(&exec("create", Some("gpu"), Some("agent-y"))));
        assert!(rules.allows(&exec("create", Some("gpu"), None)));
        assert!(!rules.allows(&exec("create", Some("locked"), None)));
        assert!(rules.allows(&exec("list", Some("locked"), None)));
        let pods = AccessQuestion {
            resource: "pods",
            ..exec("list", Some("locked"), None)
        };
        assert!(rules.allows(&AccessQuestion {
            subresource: "",
            ..pods
        }));
    }

    #[test]
    fn no_rule_no_decision_and_anonymous_user() {
        let rules: ExecRules = serde_yaml::from_str("rules: []").unwrap();
        assert_eq!(rules.user, ANONYMOUS);
        assert_eq!(rules.decide(&target("p", "n", "/agent")), None);
    }

    #[test]
    fn rules_that_cannot_work_are_refused() {
        let empty: ExecRules = serde_yaml::from_str("rules: [{run: {argv: []}}]").unwrap();
        assert!(empty.check().unwrap_err().contains("argv` is empty"));
        let by_node = ExecRules {
            rules: vec![ExecRule::forbid().node("gpu-a")],
            ..ExecRules::default()
        };
        assert!(by_node.check().unwrap_err().contains("RBAC"));
        assert!(serde_yaml::from_str::<ExecRules>("rules: [{match: {nod: x}, hang: {}}]").is_err());
    }

    #[test]
    fn builders_match_the_file_form() {
        let built = ExecRule::run(["/bin/agent", "--nvml-mode=mock"])
            .env("AGENT_MOCK_SCENARIO", "ecc-dbe")
            .node("gpu-a")
            .container("agent")
            .command("/agent");
        let parsed: ExecRules = serde_yaml::from_str(FILE).unwrap();
        assert_eq!(built, parsed.rules[2]);
        assert_eq!(
            serde_json::to_value(ExecRule::hang().pod("p")).unwrap(),
            serde_json::json!({"match": {"pod": "p"}, "hang": {}})
        );
    }
}
