//! Label and field selectors (`?labelSelector=`, `?fieldSelector=`) parsed once per request and
//! matched against every listed or watched object.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector: every requirement must hold (an empty selector matches everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_label_requirement(part)?);
        }
        Ok(Self { requirements })
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                LabelRequirement::Equals(k, v) => get(k) == Some(v.as_str()),
                LabelRequirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
                LabelRequirement::In(k, set) => get(k).is_some_and(|value| set.contains(value)),
                LabelRequirement::NotIn(k, set) => get(k).is_none_or(|value| !set.contains(value)),
                LabelRequirement::Exists(k) => get(k).is_some(),
                LabelRequirement::DoesNotExist(k) => get(k).is_none(),
            })
    }

    /// Whether the object's `metadata.labels` are selected.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(
            object
                .pointer("/metadata/labels")
                .and_then(Value::as_object),
        )
    }
}

/// Splits on commas that are not inside `( … )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_label_requirement(part: &str) -> Result<LabelRequirement, ApiError> {
    let invalid = |why: &str| {
        ApiError::bad_request(format!("unable to parse requirement: {why}: \"{part}\""))
    };
    if let Some(key) = part.strip_prefix('!') {
        return Ok(LabelRequirement::DoesNotExist(valid_key(key.trim(), part)?));
    }
    for (op, negated) in [(" notin ", true), (" in ", false)] {
        if let Some(index) = part.find(op) {
            let key = valid_key(part[..index].trim(), part)?;
            let set = part[index + op.len()..].trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| invalid("expected a parenthesised set of values"))?;
            let values = inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            return Ok(if negated {
                LabelRequirement::NotIn(key, values)
            } else {
                LabelRequirement::In(key, values)
            });
        }
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(LabelRequirement::NotEquals(
            valid_key(key.trim(), part)?,
            value.trim().to_string(),
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(LabelRequirement::Equals(
            valid_key(key.trim(), part)?,
            value.trim().to_string(),
        ));
    }
    Ok(LabelRequirement::Exists(valid_key(part, part)?))
}

fn valid_key(key: &str, part: &str) -> Result<String, ApiError> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "unable to parse requirement: invalid label key \"{key}\" in \"{part}\""
        )))
    }
}

/// One requirement of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    path: Vec<String>,
    value: String,
    negated: bool,
}

/// A parsed field selector over dotted paths of the object as served (`spec.nodeName=n1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `path=value`, `path==value`, `path!=value`, comma separated (`\,` escapes a comma).
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_unescaped_commas(text) {
            if part.trim().is_empty() {
                continue;
            }
            let (path, value, negated) = if let Some((p, v)) = part.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (p, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: '{part}': expected path=value, path==value or path!=value"
                )));
            };
            let path: Vec<String> = path.trim().split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector path in '{part}'"
                )));
            }
            requirements.push(FieldRequirement {
                path,
                value: unescape(value.trim()),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    /// Whether the object is selected. A missing field compares as the empty string, as the real
    /// server's field sets do (`spec.nodeName=` selects unscheduled pods).
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|requirement| {
            let mut current = Some(object);
            for segment in &requirement.path {
                current = current.and_then(|value| value.get(segment));
            }
            let actual = match current {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (actual == requirement.value) != requirement.negated
        })
    }

    /// Whether the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

fn split_unescaped_commas(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    let last = parts.last_mut().expect("parts always has an element");
                    last.push('\\');
                    last.push(next);
                }
            }
            ',' => parts.push(String::new()),
            c => parts
                .last_mut()
                .expect("parts always has an element")
                .push(c),
        }
    }
    parts
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> serde_json::Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect()
    }

    #[test]
    fn label_operators() {
        let l = labels(&[("app", "agent"), ("tier", "node")]);
        let cases = [
            ("", true),
            ("app=agent", true),
            ("app==agent", true),
            ("app=other", false),
            ("app!=other", true),
            ("app!=agent", false),
            ("missing!=x", true),
            ("app in (agent, other)", true),
            ("app in (other)", false),
            ("app notin (other)", true),
            ("missing notin (other)", true),
            ("app notin (agent)", false),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("app=agent,tier=node", true),
            ("app=agent,tier=gpu", false),
            ("app in (a,agent),!missing", true),
        ];
        for (selector, expected) in cases {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(Some(&l)), expected, "selector {selector:?}");
        }
    }

    #[test]
    fn objects_without_labels() {
        let object = json!({"metadata": {"name": "x"}});
        assert!(
            LabelSelector::parse("!app")
                .unwrap()
                .matches_object(&object)
        );
        assert!(!LabelSelector::parse("app").unwrap().matches_object(&object));
    }

    #[test]
    fn bad_label_selector_is_a_400() {
        let error = LabelSelector::parse("app in agent").unwrap_err();
        assert_eq!(error.code, 400);
        assert!(error.message.contains("app in agent"), "{}", error.message);
    }

    #[test]
    fn field_selectors_walk_dotted_paths() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "priority": 5},
            "involvedObject": {"kind": "Pod"}
        });
        let cases = [
            ("spec.nodeName=n1", true),
            ("spec.nodeName==n1", true),
            ("spec.nodeName=n2", false),
            ("spec.nodeName!=n2", true),
            ("metadata.name=p,metadata.namespace=ns", true),
            ("metadata.name=p,metadata.namespace=other", false),
            ("involvedObject.kind=Pod", true),
            ("spec.priority=5", true),
            ("status.phase=", true),
            ("status.phase!=", false),
        ];
        for (selector, expected) in cases {
            assert_eq!(
                FieldSelector::parse(selector).unwrap().matches(&pod),
                expected,
                "{selector}"
            );
        }
    }

    #[test]
    fn field_selector_escapes() {
        let object = json!({"reason": "a,b"});
        assert!(
            FieldSelector::parse(r"reason=a\,b")
                .unwrap()
                .matches(&object)
        );
        assert!(FieldSelector::parse("reason").is_err());
    }
}
