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
        api_group: "resource.k8s.io",
        resources: &["resourceslices"],
        verbs: &["list"],
        resource_names: &[],
        why: "granted to the agent (a ClusterRole may grant only what its writer holds)",
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

/// What the agent pods may do (their ClusterRole): read the node they run on, the pods and DRA
/// ResourceSlices on it, and Warning events (every call in `agent/src/k8s/api.rs`).
pub const AGENT_RULES: &[Rule] = &[
    Rule {
        api_group: "",
        resources: &["nodes"],
        verbs: &["get"],
        resource_names: &[],
        why: "describe_gpu_node: its node's GFD labels, GPU capacity/allocatable, conditions, taints",
    },
    Rule {
        api_group: "",
        resources: &["pods"],
        verbs: &["list"],
        resource_names: &[],
        why: "pods on its node (spec.nodeName field selector): process owners, stale GPU assignments",
    },
    Rule {
        api_group: "",
        resources: &["events"],
        verbs: &["list"],
        resource_names: &[],
        why: "describe_gpu_node: Warning events of its node and its own pod",
    },
    Rule {
        api_group: "resource.k8s.io",
        resources: &["resourceslices"],
        verbs: &["list"],
        resource_names: &[],
        why: "DRA devices of its node's ResourceSlices (spec.nodeName field selector), to map claims to GPUs",
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
