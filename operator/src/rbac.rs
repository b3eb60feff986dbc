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
        why: "watch the configs it reconciles",
    },
    Rule {
        api_group: "gpu.k8s-mcp-agent.io",
        resources: &["gpudiagnosticsconfigs/status"],
        verbs: &["patch"],
        resource_names: &[],
        why: "report mode, conditions and node problems",
    },
    Rule {
        api_group: "apiextensions.k8s.io",
        resources: &["customresourcedefinitions"],
        verbs: &["get", "create", "patch"],
        resource_names: &["gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io"],
        why: "--install-crd: apply its own CRD at start-up and wait until Established",
    },
    Rule {
        api_group: "",
        resources: &["namespaces"],
        verbs: &["get", "create", "patch"],
        resource_names: &[],
        why: "create and label the agent namespace (namespace.create)",
    },
    Rule {
        api_group: "",
        resources: &["serviceaccounts"],
        verbs: &["get", "list", "create", "patch", "delete"],
        resource_names: &[],
        why: "the agent ServiceAccount; list+delete prune one left behind by a rename",
    },
    Rule {
        api_group: "rbac.authorization.k8s.io",
        resources: &["clusterroles", "clusterrolebindings"],
        verbs: &["get", "create", "patch"],
        resource_names: &[],
        why: "the agent's ClusterRole (get nodes, list pods) and its binding",
    },
    Rule {
        api_group: "apps",
        resources: &["daemonsets"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        resource_names: &[],
        why: "the agent DaemonSet; watch its status for readiness",
    },
    Rule {
        api_group: "apps",
        resources: &["daemonsets/finalizers"],
        verbs: &["update"],
        resource_names: &[],
        why: "set blockOwnerDeletion on the claim template's owner reference to the DaemonSet",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["resourceclaimtemplates"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        resource_names: &[],
        why: "the agent's claim template in DRA mode; dry-run apply probes admin access",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["deviceclasses"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        why: "DRA mode needs the DeviceClass; re-resolve when one appears or goes",
    },
    Rule {
        api_group: "node.k8s.io",
        resources: &["runtimeclasses"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        why: "RuntimeClass mode needs the RuntimeClass; re-resolve when one appears or goes",
    },
    Rule {
        api_group: "",
        resources: &["nodes"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        why: "GPU capacity and runtime handlers of the selected nodes (a paged LIST per reconcile; one watch notices changes); get is also granted to the agent",
    },
    Rule {
        api_group: "",
        resources: &["pods"],
        verbs: &["list"],
        resource_names: &[],
        why: "agent pods, for per-node problems; list is also granted to the agent",
    },
    Rule {
        api_group: "",
        resources: &["events"],
        verbs: &["list"],
        resource_names: &[],
        why: "kubelet events on agent pods (FailedCreatePodSandBox: runtime handler missing)",
    },
    Rule {
        api_group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
        resource_names: &[],
        why: "events on mode changes and failures",
    },
    Rule {
        api_group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["get", "create", "patch"],
        resource_names: &[],
        why: "--leader-elect",
    },
];

/// What the agent pods may do (their ClusterRole): read the node they run on and the pods on it.
pub const AGENT_RULES: &[Rule] = &[
    Rule {
        api_group: "",
        resources: &["nodes"],
        verbs: &["get"],
        resource_names: &[],
        why: "node facts for diagnostics",
    },
    Rule {
        api_group: "",
        resources: &["pods"],
        verbs: &["list"],
        resource_names: &[],
        why: "which workloads use which GPU",
    },
];

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
        why: "list_gpu_nodes: GPU capacity, labels, conditions and taints of every node",
    },
    Rule {
        api_group: "gpu.k8s-mcp-agent.io",
        resources: &["gpudiagnosticsconfigs"],
        verbs: &["get", "list"],
        resource_names: &[],
        why: "the agent namespace, access mode and nodeProblems of each config",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["resourceslices"],
        verbs: &["list"],
        resource_names: &[],
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
        why: "find the agent pod of each node",
    },
    Rule {
        api_group: "",
        resources: &["pods/exec"],
        verbs: &["get", "create"],
        resource_names: &[],
        why: "run /agent in the agent pods (a WebSocket exec is a GET authorized as get, and as create on newer API servers)",
    },
];

/// Whether `rules` allow `verb` on `resource` (with `/subresource`) of `api_group`, named `name`.
pub fn allows(
    rules: &[Rule],
    api_group: &str,
    resource: &str,
    verb: &str,
    name: Option<&str>,
) -> bool {
    rules.iter().any(|rule| {
        rule.api_group == api_group
            && rule.resources.contains(&resource)
            && rule.verbs.contains(&verb)
            && (rule.resource_names.is_empty()
                || name.is_some_and(|n| rule.resource_names.contains(&n)))
    })
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
