//! Every Kubernetes API call the operator (and the agent it deploys) makes, as RBAC rules: the one
//! list the chart's ClusterRole is generated from and checked against, kept true by the reconcile
//! tests (each request they record must be allowed here).

/// One RBAC rule, with the reason it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` is the core group).
    pub api_group: &'static str,
    /// Resources, with `/subresource` where it applies.
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
    /// Object names the rule is limited to (empty: any).
    pub resource_names: &'static [&'static str],
    /// A chart value (a list of names) that, when not empty, limits the rule to those names in the
    /// chart's ClusterRole: for objects whose names only the installer knows.
    pub names_from_values: Option<&'static str>,
    /// What the operator does with it.
    pub why: &'static str,
}

/// What the operator needs, cluster-wide (one ClusterRole).
pub const RBAC_RULES: &[Rule] = &[
    Rule {
        api_group: "gpu.k8s-mcp-agent.io",
        resources: &["gpudiagnosticsconfigs"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        names_from_values: None,
        why: "watch the configs it reconciles",
    },
    Rule {
        api_group: "gpu.k8s-mcp-agent.io",
        resources: &["gpudiagnosticsconfigs/status"],
        verbs: &["patch"],
        resource_names: &[],
        names_from_values: None,
        why: "report mode, conditions and node problems",
    },
    Rule {
        api_group: "apiextensions.k8s.io",
        resources: &["customresourcedefinitions"],
        verbs: &["get", "patch"],
        resource_names: &["gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io"],
        names_from_values: None,
        why: "--install-crd: apply its own CRD at start-up (server-side apply: a patch, also when it creates) and wait until Established",
    },
    Rule {
        api_group: "",
        resources: &["namespaces"],
        verbs: &["get", "patch"],
        resource_names: &[],
        names_from_values: Some("operator.rbac.agentNamespaces"),
        why: "create and label the agent namespace (namespace.create; server-side apply)",
    },
    Rule {
        api_group: "",
        resources: &["serviceaccounts"],
        verbs: &["get", "list", "patch", "delete"],
        resource_names: &[],
        names_from_values: None,
        why: "the agent ServiceAccount (server-side apply); list+delete prune one left behind by a rename",
    },
    Rule {
        api_group: "rbac.authorization.k8s.io",
        resources: &["clusterroles", "clusterrolebindings"],
        verbs: &["get", "list", "watch", "patch"],
        resource_names: &[],
        names_from_values: None,
        why: "the agent's ClusterRole (get nodes, list pods) and its binding; list+watch keep the operator's own (by label) in its cache",
    },
    Rule {
        api_group: "apps",
        resources: &["daemonsets"],
        verbs: &["get", "list", "watch", "patch", "delete"],
        resource_names: &[],
        names_from_values: None,
        why: "the agent DaemonSet; watch its status for readiness",
    },
    Rule {
        api_group: "apps",
        resources: &["daemonsets/finalizers"],
        verbs: &["update"],
        resource_names: &[],
        names_from_values: None,
        why: "set blockOwnerDeletion on the claim template's owner reference to the DaemonSet",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["resourceclaimtemplates"],
        verbs: &["get", "list", "watch", "patch", "delete"],
        resource_names: &[],
        names_from_values: None,
        why: "the agent's claim template in DRA mode; dry-run apply probes admin access",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["deviceclasses"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        names_from_values: None,
        why: "DRA mode needs the DeviceClass; re-resolve when one appears or goes",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["resourceslices"],
        verbs: &["list"],
        resource_names: &[],
        names_from_values: None,
        why: "granted to the agent (a ClusterRole may grant only what its writer holds)",
    },
    Rule {
        api_group: "node.k8s.io",
        resources: &["runtimeclasses"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        names_from_values: None,
        why: "RuntimeClass mode needs the RuntimeClass; re-resolve when one appears or goes",
    },
    Rule {
        api_group: "",
        resources: &["nodes"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        names_from_values: None,
        why: "GPU capacity and runtime handlers of the selected nodes (a paged LIST per reconcile; one watch notices changes); get is also granted to the agent",
    },
    Rule {
        api_group: "",
        resources: &["pods"],
        verbs: &["list"],
        resource_names: &[],
        names_from_values: None,
        why: "agent pods, for per-node problems; list is also granted to the agent",
    },
    Rule {
        api_group: "",
        resources: &["events"],
        verbs: &["list"],
        resource_names: &[],
        names_from_values: None,
        why: "kubelet events on agent pods (FailedCreatePodSandBox: runtime handler missing)",
    },
    Rule {
        api_group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
        resource_names: &[],
        names_from_values: None,
        why: "events on mode changes and failures",
    },
    Rule {
        api_group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["get", "create", "patch"],
        resource_names: &[],
        names_from_values: None,
        why: "--leader-elect",
    },
];

/// What the agent pods may do (their ClusterRole): read the node they run on, the pods and DRA
/// ResourceSlices on it, and Warning events (every call in `agent/src/k8s/api.rs`).
pub const AGENT_RULES: &[Rule] = &[
    Rule {
        api_group: "",
        resources: &["nodes"],
        verbs: &["get"],
        resource_names: &[],
        names_from_values: None,
        why: "describe_gpu_node: its node's GFD labels, GPU capacity/allocatable, conditions, taints",
    },
    Rule {
        api_group: "",
        resources: &["pods"],
        verbs: &["list"],
        resource_names: &[],
        names_from_values: None,
        why: "pods on its node (spec.nodeName field selector): process owners, stale GPU assignments",
    },
    Rule {
        api_group: "",
        resources: &["events"],
        verbs: &["list"],
        resource_names: &[],
        names_from_values: None,
        why: "describe_gpu_node: Warning events of its node and its own pod",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["resourceslices"],
        verbs: &["list"],
        resource_names: &[],
        names_from_values: None,
        why: "DRA devices of its node's ResourceSlices (spec.nodeName field selector), to map claims to GPUs",
    },
];

/// Verbs whose requests carry no object name when they are authorized, so a rule limited by
/// `resourceNames` never matches them: a create's name is not known yet, a deletecollection has
/// none. (A server-side apply that creates an object is a `patch` with the name, and matches.)
pub const VERBS_NEVER_MATCHED_BY_NAME: &[&str] = &["create", "deletecollection"];

/// The ClusterRole the chart renders for people running `agent fleet` on their own machines; an
/// admin binds it cluster-wide (`kubectl create clusterrolebinding`).
pub const FLEET_ROLE: &str = "k8s-mcp-agent-fleet";

/// What `agent fleet` reads cluster-wide (the `FLEET_ROLE` ClusterRole).
pub const FLEET_RULES: &[Rule] = &[
    Rule {
        api_group: "",
        resources: &["nodes"],
        verbs: &["get", "list"],
        resource_names: &[],
        names_from_values: None,
        why: "list_gpu_nodes: GPU capacity, labels, conditions and taints of every node",
    },
    Rule {
        api_group: "gpu.k8s-mcp-agent.io",
        resources: &["gpudiagnosticsconfigs"],
        verbs: &["get", "list"],
        resource_names: &[],
        names_from_values: None,
        why: "the agent namespace, access mode and nodeProblems of each config",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["resourceslices"],
        verbs: &["list"],
        resource_names: &[],
        names_from_values: None,
        why: "nodes that publish GPUs through DRA",
    },
];

/// The ClusterRole granting exec into the agent pods; an admin binds it in the agent namespace only
/// (`kubectl create rolebinding`), so it grants nothing elsewhere.
pub const FLEET_EXEC_ROLE: &str = "k8s-mcp-agent-fleet-exec";

/// What `agent fleet` does in the agent namespace (the `FLEET_EXEC_ROLE` ClusterRole, bound there).
pub const FLEET_EXEC_RULES: &[Rule] = &[
    Rule {
        api_group: "",
        resources: &["pods"],
        verbs: &["get", "list"],
        resource_names: &[],
        names_from_values: None,
        why: "find the agent pod of each node",
    },
    Rule {
        api_group: "",
        resources: &["pods/exec"],
        verbs: &["get", "create"],
        resource_names: &[],
        names_from_values: None,
        why: "run /agent in the agent pods (a WebSocket exec is a GET authorized as get, and as create on newer API servers)",
    },
];

/// Whether `rules` allow `verb` on `resource` (with `/subresource`) of `api_group`, named `name`,
/// matching as Kubernetes RBAC does: `*` matches any group, resource or verb; a rule with
/// `resourceNames` matches only requests that carry one of those names, and never a create or a
/// deletecollection. (List and watch carry a name only with a `metadata.name` field selector,
/// which the caller passes as `name`.)
pub fn allows(
    rules: &[Rule],
    api_group: &str,
    resource: &str,
    verb: &str,
    name: Option<&str>,
) -> bool {
    rules
        .iter()
        .any(|rule| rule_allows(rule, api_group, resource, verb, name))
}

fn rule_allows(
    rule: &Rule,
    api_group: &str,
    resource: &str,
    verb: &str,
    name: Option<&str>,
) -> bool {
    let any = |items: &[&str], item: &str| items.iter().any(|i| *i == "*" || *i == item);
    let resource_matches = rule.resources.iter().any(|r| {
        *r == "*"
            || *r == resource
            || r.strip_prefix("*/")
                .is_some_and(|sub| resource.split_once('/').is_some_and(|(_, s)| s == sub))
    });
    any(&[rule.api_group], api_group)
        && resource_matches
        && any(rule.verbs, verb)
        && (rule.resource_names.is_empty()
            || (!VERBS_NEVER_MATCHED_BY_NAME.contains(&verb)
                && name.is_some_and(|n| rule.resource_names.contains(&n))))
}

/// Grants in `rules` that Kubernetes can never match (a create or deletecollection limited by
/// `resourceNames`), as `group/resource verb` with the reason: a rule must only claim what it grants.
pub fn ineffective_grants(rules: &[Rule]) -> Vec<String> {
    let mut found = Vec::new();
    for rule in rules.iter().filter(|r| !r.resource_names.is_empty()) {
        for verb in rule
            .verbs
            .iter()
            .filter(|v| VERBS_NEVER_MATCHED_BY_NAME.contains(v))
        {
            found.push(format!(
                "{}/{} {verb}: a rule with resourceNames never matches a {verb} (the request \
                 carries no name when it is authorized); grant it without resourceNames or drop it",
                rule.api_group,
                rule.resources.join(",")
            ));
        }
    }
    found
}

/// The rules as Kubernetes `PolicyRule`s (for ClusterRoles the operator or the chart writes).
pub fn policy_rules(rules: &[Rule]) -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    rules
        .iter()
        .map(|rule| k8s_openapi::api::rbac::v1::PolicyRule {
            api_groups: Some(vec![rule.api_group.to_owned()]),
            resources: Some(strings(rule.resources)),
            verbs: strings(rule.verbs),
            resource_names: (!rule.resource_names.is_empty()).then(|| strings(rule.resource_names)),
            non_resource_urls: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_holds_every_permission_it_grants_the_agent() {
        // Kubernetes refuses to let the operator create a ClusterRole granting more than it holds.
        for rule in AGENT_RULES {
            for resource in rule.resources {
                for verb in rule.verbs {
                    assert!(
                        allows(RBAC_RULES, rule.api_group, resource, verb, None),
                        "{resource} {verb}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_grant_can_match_a_request() {
        assert_eq!(ineffective_grants(RBAC_RULES), Vec::<String>::new());
        assert_eq!(ineffective_grants(AGENT_RULES), Vec::<String>::new());
    }

    const NAMED_CREATE: Rule = Rule {
        api_group: "apiextensions.k8s.io",
        resources: &["customresourcedefinitions"],
        verbs: &["get", "create", "patch"],
        resource_names: &["x.example.com"],
        names_from_values: None,
        why: "test",
    };

    #[test]
    fn a_create_is_never_matched_by_resource_names() {
        let rules = [NAMED_CREATE];
        let crd = "customresourcedefinitions";
        let group = "apiextensions.k8s.io";
        assert!(!allows(&rules, group, crd, "create", None));
        assert!(!allows(&rules, group, crd, "create", Some("x.example.com")));
        assert!(allows(&rules, group, crd, "patch", Some("x.example.com")));
        assert!(!allows(&rules, group, crd, "patch", None));
        assert_eq!(
            ineffective_grants(&rules),
            [
                "apiextensions.k8s.io/customresourcedefinitions create: a rule with resourceNames \
              never matches a create (the request carries no name when it is authorized); grant \
              it without resourceNames or drop it"
            ]
        );
    }

    #[test]
    fn wildcards_match_as_kubernetes_does() {
        let rules = [Rule {
            api_group: "*",
            resources: &["*/status", "pods"],
            verbs: &["*"],
            resource_names: &[],
            names_from_values: None,
            why: "test",
        }];
        assert!(allows(&rules, "apps", "daemonsets/status", "patch", None));
        assert!(allows(&rules, "", "pods", "list", None));
        assert!(!allows(&rules, "apps", "daemonsets", "patch", None));
        assert!(!allows(&rules, "", "pods/log", "get", Some("p")));
    }

    #[test]
    fn resource_names_restrict_a_rule() {
        let crd = "customresourcedefinitions";
        assert!(allows(
            RBAC_RULES,
            "apiextensions.k8s.io",
            crd,
            "patch",
            Some(crds::CRD_NAME)
        ));
        assert!(!allows(
            RBAC_RULES,
            "apiextensions.k8s.io",
            crd,
            "patch",
            Some("other.example.com")
        ));
        assert!(!allows(
            RBAC_RULES,
            "apiextensions.k8s.io",
            crd,
            "list",
            None
        ));
    }
}
