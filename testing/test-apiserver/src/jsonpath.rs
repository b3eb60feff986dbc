//! The JSONPath subset CRD `additionalPrinterColumns` use (`.status.conditions[?(@.type=="Ready")].status`),
//! so `kubectl get <cr>` shows the same columns as against a real cluster.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter {
        path: Vec<String>,
        value: String,
        negated: bool,
    },
}

/// Evaluates `path` against `root` and returns every value it selects, in order.
/// An unparsable path selects nothing (the column then shows `<none>`, as kubectl does for missing values).
pub fn evaluate<'a>(path: &str, root: &'a Value) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![root];
    for step in &steps {
        let mut next = Vec::new();
        for value in current {
            match step {
                Step::Field(name) => next.extend(value.get(name)),
                Step::Index(index) => next.extend(value.get(index)),
                Step::All => match value {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
                Step::Filter {
                    path,
                    value: wanted,
                    negated,
                } => {
                    if let Value::Array(items) = value {
                        next.extend(items.iter().filter(|item| {
                            let mut field = Some(*item);
                            for segment in path {
                                field = field.and_then(|f| f.get(segment));
                            }
                            let actual = match field {
                                Some(Value::String(s)) => Some(s.clone()),
                                Some(Value::Null) | None => None,
                                Some(other) => Some(other.to_string()),
                            };
                            (actual.as_deref() == Some(wanted.as_str())) != *negated
                        }));
                    }
                }
            }
        }
        current = next;
    }
    current
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let mut steps = Vec::new();
    let mut rest = path.strip_prefix('$').unwrap_or(path);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() {
                return None;
            }
            steps.push(if name == "*" {
                Step::All
            } else {
                Step::Field(name.to_string())
            });
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = closing_bracket(after)?;
            steps.push(parse_bracket(after[..end].trim())?);
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The index of the `]` closing a bracket, skipping brackets inside quotes.
fn closing_bracket(text: &str) -> Option<usize> {
    let mut quote = None;
    for (index, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, ']') => return Some(index),
            _ => {}
        }
    }
    None
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(index) = inner.parse() {
        return Some(Step::Index(index));
    }
    if let Some(quoted) = unquote(inner) {
        return Some(Step::Field(quoted));
    }
    let filter = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, rhs, negated) = if let Some((l, r)) = filter.split_once("!=") {
        (l, r, true)
    } else {
        let (l, r) = filter.split_once("==")?;
        (l, r, false)
    };
    let path = lhs
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_string)
        .collect();
    let value = unquote(rhs.trim()).unwrap_or_else(|| rhs.trim().to_string());
    Some(Step::Filter {
        path,
        value,
        negated,
    })
}

fn unquote(text: &str) -> Option<String> {
    let text = text.replace("\\\"", "\"");
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return Some(inner.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> Value {
        json!({
            "metadata": {"name": "default", "labels": {"a.b/c": "x"}},
            "spec": {"mode": "Auto"},
            "status": {
                "mode": "RuntimeClass",
                "desired": 3,
                "conditions": [
                    {"type": "Progressing", "status": "False"},
                    {"type": "Ready", "status": "True"}
                ]
            }
        })
    }

    #[test]
    fn printer_column_paths() {
        let object = config();
        let cases = [
            (".status.mode", vec![json!("RuntimeClass")]),
            (".status.desired", vec![json!(3)]),
            (
                ".status.conditions[?(@.type==\"Ready\")].status",
                vec![json!("True")],
            ),
            (
                ".status.conditions[?(@.type!=\"Ready\")].type",
                vec![json!("Progressing")],
            ),
            (".status.conditions[1].type", vec![json!("Ready")]),
            (
                ".status.conditions[*].type",
                vec![json!("Progressing"), json!("Ready")],
            ),
            ("{.spec.mode}", vec![json!("Auto")]),
            (".metadata.labels['a.b/c']", vec![json!("x")]),
            (".status.missing", vec![]),
            ("not a path", vec![]),
        ];
        for (path, expected) in cases {
            let got: Vec<Value> = evaluate(path, &object).into_iter().cloned().collect();
            assert_eq!(got, expected, "{path}");
        }
    }
}
