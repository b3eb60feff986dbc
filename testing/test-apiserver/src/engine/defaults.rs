//! What the API server fills in and rewrites on DaemonSets: the defaults of the DaemonSet and its pod
//! template, and resource quantities in canonical form (`1000m` → `1`, `1024Mi` → `1Gi`), so a client
//! comparing what it applied with what is stored meets what a real cluster returns.

use serde_json::{Map, Value, json};

/// `SetDefaults_DaemonSet` and the pod template defaults under it (the fields a client is likely to
/// compare; the real list is longer).
pub(super) fn daemon_set(object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    fill(spec, "revisionHistoryLimit", json!(10));
    fill(
        spec,
        "updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    );
    if let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        pod_spec(pod);
    }
}

fn pod_spec(pod: &mut Map<String, Value>) {
    fill(pod, "dnsPolicy", json!("ClusterFirst"));
    fill(pod, "restartPolicy", json!("Always"));
    fill(pod, "schedulerName", json!("default-scheduler"));
    fill(pod, "securityContext", json!({}));
    fill(pod, "terminationGracePeriodSeconds", json!(30));
    for list in ["initContainers", "containers"] {
        for container in pod
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            container_defaults(container);
        }
    }
}

fn container_defaults(container: &mut Map<String, Value>) {
    fill(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    fill(container, "terminationMessagePolicy", json!("File"));
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tag = image
        .rsplit('/')
        .next()
        .and_then(|last| last.split_once(':'))
        .map(|(_, t)| t);
    let pull = if matches!(tag, None | Some("latest")) && !image.contains('@') {
        "Always"
    } else {
        "IfNotPresent"
    };
    fill(container, "imagePullPolicy", json!(pull));
    for port in objects_in(container, "ports") {
        fill(port, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = container.get_mut(probe).and_then(Value::as_object_mut) {
            fill(probe, "timeoutSeconds", json!(1));
            fill(probe, "periodSeconds", json!(10));
            fill(probe, "successThreshold", json!(1));
            fill(probe, "failureThreshold", json!(3));
        }
    }
    for env in objects_in(container, "env") {
        if let Some(field_ref) = env
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            fill(field_ref, "apiVersion", json!("v1"));
        }
    }
    if let Some(resources) = container
        .get_mut("resources")
        .and_then(Value::as_object_mut)
    {
        for section in ["limits", "requests"] {
            for value in resources
                .get_mut(section)
                .and_then(Value::as_object_mut)
                .into_iter()
                .flat_map(|q| q.values_mut())
            {
                if let Some(canonical) = value.as_str().and_then(canonical_quantity) {
                    *value = json!(canonical);
                }
            }
        }
    }
}

fn fill(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key).or_insert(value);
}

fn objects_in<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

const BINARY: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// How a quantity was written, which decides how it is written back.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    Binary,
    Decimal,
    Exponent,
}

/// A quantity as `resource.Quantity.String()` prints it after parsing: binary suffixes keep the
/// largest power of 1024 that divides the value (below 1024 or fractional, decimal instead); decimal
/// ones the largest power of 1000. `None` for what does not parse (left as written).
pub fn canonical_quantity(text: &str) -> Option<String> {
    let (nanos, format) = parse_nanos(text)?;
    let negative = nanos < 0;
    let magnitude = nanos.unsigned_abs();
    let sign = if negative { "-" } else { "" };
    const ONE: u128 = 1_000_000_000;
    if format == Format::Binary && magnitude >= 1024 * ONE && magnitude % ONE == 0 {
        let (mut amount, mut power) = (magnitude / ONE, 0);
        while amount % 1024 == 0 && power < BINARY.len() - 1 {
            amount /= 1024;
            power += 1;
        }
        return Some(format!("{sign}{amount}{}", BINARY[power]));
    }
    if magnitude == 0 {
        return Some("0".into());
    }
    let (mut amount, mut exponent) = (magnitude, -9);
    while amount % 1000 == 0 && exponent < 18 {
        amount /= 1000;
        exponent += 3;
    }
    if format == Format::Exponent {
        return Some(match exponent {
            0 => format!("{sign}{amount}"),
            e => format!("{sign}{amount}e{e}"),
        });
    }
    let suffix = DECIMAL.iter().find(|(_, e)| *e == exponent)?.0;
    Some(format!("{sign}{amount}{suffix}"))
}

/// The value in units of 10⁻⁹ (rounded up, as the API server rounds to nano) and its format.
fn parse_nanos(text: &str) -> Option<(i128, Format)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let split = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let scale = -(fraction.len() as i32);
    let (multiplier, exponent, format): (i128, i32, Format) =
        if let Some(power) = BINARY.iter().position(|s| !s.is_empty() && *s == suffix) {
            (1024_i128.checked_pow(power as u32)?, 0, Format::Binary)
        } else if let Some((_, e)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
            (1, *e, Format::Decimal)
        } else if let Some(e) = suffix.strip_prefix(['e', 'E']) {
            (1, e.parse().ok()?, Format::Exponent)
        } else {
            return None;
        };
    let shift = scale + exponent + 9;
    let value = mantissa.checked_mul(multiplier)?;
    let nanos = if shift >= 0 {
        value.checked_mul(10_i128.checked_pow(shift as u32)?)?
    } else {
        let divisor = 10_i128.checked_pow((-shift) as u32)?;
        (value + divisor - 1) / divisor
    };
    Some((if negative { -nanos } else { nanos }, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_come_back_canonical() {
        for (written, stored) in [
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("2000", "2k"),
            ("100", "100"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("128Mi", "128Mi"),
            ("1e3", "1e3"),
            ("1000e3", "1e6"),
            ("0", "0"),
            ("-1000m", "-1"),
        ] {
            assert_eq!(
                canonical_quantity(written).as_deref(),
                Some(stored),
                "{written}"
            );
        }
        assert_eq!(canonical_quantity("lots"), None);
        assert_eq!(canonical_quantity("1Qi"), None);
    }

    #[test]
    fn daemon_sets_get_their_defaults_and_keep_what_was_set() {
        let mut ds = json!({"spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{
            "name": "agent", "image": "ghcr.io/x/agent:0.1.0",
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 30},
            "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "resources": {"requests": {"cpu": "1000m"}, "limits": {"memory": "1024Mi"}}}]}}}});
        daemon_set(&mut ds);
        let spec = &ds["spec"];
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["updateStrategy"]["type"], "RollingUpdate");
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        let container = &pod["containers"][0];
        assert_eq!(container["imagePullPolicy"], "IfNotPresent");
        assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(container["readinessProbe"]["periodSeconds"], 30);
        assert_eq!(container["readinessProbe"]["successThreshold"], 1);
        assert_eq!(
            container["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(
            container["resources"],
            json!({"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}})
        );
    }
}
