//! The operator's RBAC rules as Helm named templates, straight from `operator::rbac::RBAC_RULES`
//! (the list the operator's own tests keep true), split into what must be cluster-wide and what
//! only concerns the release namespace.

use operator::rbac::Rule;

/// Rules granted in the release namespace only (a Role), by (API group, resource): the leader
/// election Lease lives next to the operator, so a cluster-wide grant would be more than needed.
const RELEASE_NAMESPACE_ONLY: &[(&str, &str)] = &[("coordination.k8s.io", "leases")];

/// The rules, split by where they are granted.
#[derive(Debug, PartialEq, Eq)]
pub struct SplitRules<'a> {
    /// For the ClusterRole.
    pub cluster: Vec<&'a Rule>,
    /// For the Role in the release namespace (leader election only).
    pub release_namespace: Vec<&'a Rule>,
}

/// Errors splitting the rules.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RbacError {
    /// A rule mixes namespace-only and cluster-wide resources, so it cannot go to one place.
    #[error(
        "RBAC rule for {group:?} {resources:?} mixes resources granted in the release namespace with \
         cluster-wide ones: split it in operator/src/rbac.rs"
    )]
    MixedRule {
        /// API group.
        group: String,
        /// Resources of the rule.
        resources: Vec<String>,
    },
}

/// Splits `rules` into the ClusterRole's and the release-namespace Role's.
pub fn split(rules: &[Rule]) -> Result<SplitRules<'_>, RbacError> {
    let mut split = SplitRules {
        cluster: Vec::new(),
        release_namespace: Vec::new(),
    };
    for rule in rules {
        let local_count = rule
            .resources
            .iter()
            .filter(|resource| RELEASE_NAMESPACE_ONLY.contains(&(rule.api_group, **resource)))
            .count();
        if local_count == 0 {
            split.cluster.push(rule);
        } else if local_count == rule.resources.len() {
            split.release_namespace.push(rule);
        } else {
            return Err(RbacError::MixedRule {
                group: rule.api_group.to_owned(),
                resources: rule.resources.iter().map(|r| (*r).to_owned()).collect(),
            });
        }
    }
    Ok(split)
}

/// PolicyRule YAML list items, each preceded by a comment saying why the operator needs it.
pub fn rules_yaml(rules: &[&Rule]) -> String {
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    for rule in rules {
        out.push_str(&format!("# {}\n", rule.why));
        out.push_str(&format!("- apiGroups: [{:?}]\n", rule.api_group));
        out.push_str(&format!("  resources: [{}]\n", list(rule.resources)));
        if !rule.resource_names.is_empty() {
            out.push_str(&format!(
                "  resourceNames: [{}]\n",
                list(rule.resource_names)
            ));
        } else if let Some(path) = rule.names_from_values {
            out.push_str(&format!(
                "  {{{{- with .Values.{path} }}}}\n  resourceNames: {{{{ toJson . }}}}\n  {{{{- end }}}}\n"
            ));
        }
        out.push_str(&format!("  verbs: [{}]\n", list(rule.verbs)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use operator::rbac::RBAC_RULES;

    #[test]
    fn every_rule_lands_in_exactly_one_place_and_leases_stay_namespaced() {
        let split = split(RBAC_RULES).unwrap();
        assert_eq!(
            split.cluster.len() + split.release_namespace.len(),
            RBAC_RULES.len()
        );
        assert_eq!(split.release_namespace.len(), 1);
        assert_eq!(split.release_namespace[0].resources, ["leases"]);
        assert!(
            split
                .cluster
                .iter()
                .all(|r| r.api_group != "coordination.k8s.io")
        );
    }

    #[test]
    fn a_rule_mixing_lease_and_cluster_resources_is_refused() {
        let mixed = [Rule {
            api_group: "coordination.k8s.io",
            resources: &["leases", "other"],
            verbs: &["get"],
            resource_names: &[],
            names_from_values: None,
            why: "test",
        }];
        assert!(matches!(split(&mixed), Err(RbacError::MixedRule { .. })));
    }

    #[test]
    fn a_rule_narrowed_by_a_value_renders_its_names_only_when_the_list_is_set() {
        let rule = Rule {
            api_group: "",
            resources: &["namespaces"],
            verbs: &["get", "patch"],
            resource_names: &[],
            names_from_values: Some("operator.rbac.agentNamespaces"),
            why: "label agent namespaces",
        };
        assert_eq!(
            rules_yaml(&[&rule]),
            "# label agent namespaces\n- apiGroups: [\"\"]\n  resources: [\"namespaces\"]\n  \
             {{- with .Values.operator.rbac.agentNamespaces }}\n  resourceNames: {{ toJson . }}\n  \
             {{- end }}\n  verbs: [\"get\", \"patch\"]\n"
        );
    }

    #[test]
    fn rules_render_as_commented_policy_rules() {
        let rule = Rule {
            api_group: "apiextensions.k8s.io",
            resources: &["customresourcedefinitions"],
            verbs: &["get", "patch"],
            resource_names: &["x.example.com"],
            names_from_values: None,
            why: "install the CRD",
        };
        assert_eq!(
            rules_yaml(&[&rule]),
            "# install the CRD\n- apiGroups: [\"apiextensions.k8s.io\"]\n  resources: \
             [\"customresourcedefinitions\"]\n  resourceNames: [\"x.example.com\"]\n  verbs: [\"get\", \"patch\"]\n"
        );
    }
}
