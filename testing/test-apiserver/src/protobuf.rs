//! Just enough Kubernetes protobuf to read request bodies from client-go's typed clients, which always
//! send protobuf for built-in kinds: helm stores releases as Secrets (or ConfigMaps) and creates
//! namespaces that way, and deletes with a protobuf `DeleteOptions`. Responses stay JSON, which those
//! clients accept.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, StatusReason};

/// The media type client-go uses for protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\x00";

#[derive(Clone, Copy)]
enum Kind {
    String,
    Bytes,
    Int,
    Bool,
    Time,
    Message(&'static [Field]),
    RepeatedString,
    RepeatedMessage(&'static [Field]),
    MapString,
    MapBytes,
}

struct Field {
    number: u64,
    name: &'static str,
    kind: Kind,
}

const fn f(number: u64, name: &'static str, kind: Kind) -> Field {
    Field { number, name, kind }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Kind::String),
    f(3, "name", Kind::String),
    f(4, "uid", Kind::String),
    f(5, "apiVersion", Kind::String),
    f(6, "controller", Kind::Bool),
    f(7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Kind::String),
    f(2, "generateName", Kind::String),
    f(3, "namespace", Kind::String),
    f(5, "uid", Kind::String),
    f(6, "resourceVersion", Kind::String),
    f(7, "generation", Kind::Int),
    f(8, "creationTimestamp", Kind::Time),
    f(9, "deletionTimestamp", Kind::Time),
    f(10, "deletionGracePeriodSeconds", Kind::Int),
    f(11, "labels", Kind::MapString),
    f(12, "annotations", Kind::MapString),
    f(
        13,
        "ownerReferences",
        Kind::RepeatedMessage(OWNER_REFERENCE),
    ),
    f(14, "finalizers", Kind::RepeatedString),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Kind::Message(OBJECT_META)),
    f(2, "data", Kind::MapBytes),
    f(3, "type", Kind::String),
    f(4, "stringData", Kind::MapString),
    f(5, "immutable", Kind::Bool),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Kind::Message(OBJECT_META)),
    f(2, "data", Kind::MapString),
    f(3, "binaryData", Kind::MapBytes),
    f(4, "immutable", Kind::Bool),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Kind::Message(OBJECT_META)),
    f(
        2,
        "spec",
        Kind::Message(&[f(1, "finalizers", Kind::RepeatedString)]),
    ),
    f(3, "status", Kind::Message(&[f(1, "phase", Kind::String)])),
];

const DELETE_OPTIONS: &[Field] = &[
    f(1, "gracePeriodSeconds", Kind::Int),
    f(
        2,
        "preconditions",
        Kind::Message(&[
            f(1, "uid", Kind::String),
            f(2, "resourceVersion", Kind::String),
        ]),
    ),
    f(3, "orphanDependents", Kind::Bool),
    f(4, "propagationPolicy", Kind::String),
    f(5, "dryRun", Kind::RepeatedString),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Kind::String),
    f(2, "verb", Kind::String),
    f(3, "group", Kind::String),
    f(4, "version", Kind::String),
    f(5, "resource", Kind::String),
    f(6, "subresource", Kind::String),
    f(7, "name", Kind::String),
];

const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Kind::Message(OBJECT_META)),
    f(
        2,
        "spec",
        Kind::Message(&[
            f(1, "resourceAttributes", Kind::Message(RESOURCE_ATTRIBUTES)),
            f(
                2,
                "nonResourceAttributes",
                Kind::Message(&[f(1, "path", Kind::String), f(2, "verb", Kind::String)]),
            ),
        ]),
    ),
];

const TYPE_META: &[Field] = &[f(1, "apiVersion", Kind::String), f(2, "kind", Kind::String)];

const UNKNOWN: &[Field] = &[
    f(1, "typeMeta", Kind::Message(TYPE_META)),
    f(2, "raw", Kind::Bytes),
    f(3, "contentEncoding", Kind::String),
    f(4, "contentType", Kind::String),
];

/// Whether a Content-Type header names protobuf.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or_default().trim() == MEDIA_TYPE
}

/// Decodes a protobuf request body (the `k8s\0` envelope) into the JSON object it encodes.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unsupported = |why: String| {
        ApiError::new(
            StatusReason::UnsupportedMediaType,
            format!("{why}; send the body as application/json"),
        )
    };
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| unsupported("protobuf body without the k8s envelope".into()))?;
    let unknown = message(envelope, UNKNOWN)
        .map_err(|e| unsupported(format!("unreadable protobuf envelope: {e}")))?;
    let api_version = unknown
        .pointer("/typeMeta/apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = unknown
        .pointer("/typeMeta/kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let raw = unknown
        .get("raw")
        .and_then(Value::as_str)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let schema = match kind.as_str() {
        "Secret" => SECRET,
        "ConfigMap" => CONFIG_MAP,
        "Namespace" => NAMESPACE,
        "DeleteOptions" => DELETE_OPTIONS,
        "SelfSubjectAccessReview" => SELF_SUBJECT_ACCESS_REVIEW,
        other => {
            return Err(unsupported(format!(
                "this test server reads protobuf only for Secret, ConfigMap, Namespace, DeleteOptions and SelfSubjectAccessReview, not {other:?}"
            )));
        }
    };
    let mut object = message(&raw, schema)
        .map_err(|e| unsupported(format!("unreadable protobuf {kind}: {e}")))?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn length_delimited<'a>(bytes: &'a [u8], at: &mut usize) -> Result<&'a [u8], String> {
    let length = usize::try_from(varint(bytes, at)?).map_err(|_| "length too large")?;
    let end = at
        .checked_add(length)
        .filter(|end| *end <= bytes.len())
        .ok_or("truncated field")?;
    let slice = &bytes[*at..end];
    *at = end;
    Ok(slice)
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 in a string field".to_string())
}

fn message(bytes: &[u8], schema: &[Field]) -> Result<Value, String> {
    let mut object = Map::new();
    let mut at = 0;
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        let (number, wire_type) = (key >> 3, key & 7);
        let field = schema.iter().find(|f| f.number == number);
        let raw_varint;
        let raw_bytes;
        match wire_type {
            0 => {
                raw_varint = Some(varint(bytes, &mut at)?);
                raw_bytes = None;
            }
            2 => {
                raw_varint = None;
                raw_bytes = Some(length_delimited(bytes, &mut at)?);
            }
            1 => {
                at += 8;
                continue;
            }
            5 => {
                at += 4;
                continue;
            }
            other => return Err(format!("unsupported wire type {other}")),
        }
        let Some(field) = field else {
            continue;
        };
        let name = field.name.to_string();
        match (field.kind, raw_varint, raw_bytes) {
            (Kind::Int, Some(v), _) => {
                object.insert(name, json!(v as i64));
            }
            (Kind::Bool, Some(v), _) => {
                object.insert(name, json!(v != 0));
            }
            (Kind::String, _, Some(b)) => {
                object.insert(name, json!(text(b)?));
            }
            (Kind::Bytes, _, Some(b)) => {
                object.insert(
                    name,
                    json!(base64::engine::general_purpose::STANDARD.encode(b)),
                );
            }
            (Kind::Time, _, Some(b)) => {
                let time = message(b, &[f(1, "seconds", Kind::Int)])?;
                let seconds = time.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                let stamp = jiff::Timestamp::from_second(seconds).map_err(|e| e.to_string())?;
                object.insert(
                    name,
                    json!(stamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
            }
            (Kind::Message(inner), _, Some(b)) => {
                object.insert(name, message(b, inner)?);
            }
            (Kind::RepeatedString, _, Some(b)) => {
                let list = object.entry(name).or_insert_with(|| json!([]));
                list.as_array_mut()
                    .ok_or("repeated field clash")?
                    .push(json!(text(b)?));
            }
            (Kind::RepeatedMessage(inner), _, Some(b)) => {
                let item = message(b, inner)?;
                let list = object.entry(name).or_insert_with(|| json!([]));
                list.as_array_mut()
                    .ok_or("repeated field clash")?
                    .push(item);
            }
            (Kind::MapString | Kind::MapBytes, _, Some(b)) => {
                let value_kind = if matches!(field.kind, Kind::MapBytes) {
                    Kind::Bytes
                } else {
                    Kind::String
                };
                let entry = message(b, &[f(1, "key", Kind::String), f(2, "value", value_kind)])?;
                let key = entry
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let value = entry.get("value").cloned().unwrap_or_else(|| json!(""));
                let map = object.entry(name).or_insert_with(|| json!({}));
                map.as_object_mut()
                    .ok_or("map field clash")?
                    .insert(key, value);
            }
            _ => return Err(format!("field {} has an unexpected wire type", field.name)),
        }
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(number: u64, wire: u64) -> Vec<u8> {
        encode_varint((number << 3) | wire)
    }

    fn encode_varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = tag(number, 2);
        out.extend(encode_varint(payload.len() as u64));
        out.extend(payload);
        out
    }

    fn map_entry(number: u64, key: &str, value: &[u8]) -> Vec<u8> {
        let mut entry = bytes_field(1, key.as_bytes());
        entry.extend(bytes_field(2, value));
        bytes_field(number, &entry)
    }

    #[test]
    fn decodes_a_helm_release_secret() {
        let mut metadata = bytes_field(1, b"sh.helm.release.v1.demo.v1");
        metadata.extend(bytes_field(3, b"default"));
        metadata.extend(map_entry(11, "owner", b"helm"));
        metadata.extend(map_entry(11, "status", b"deployed"));
        let mut secret = bytes_field(1, &metadata);
        secret.extend(map_entry(2, "release", b"\x01\x02"));
        secret.extend(bytes_field(3, b"helm.sh/release.v1"));
        let mut type_meta = bytes_field(1, b"v1");
        type_meta.extend(bytes_field(2, b"Secret"));
        let mut unknown = bytes_field(1, &type_meta);
        unknown.extend(bytes_field(2, &secret));
        let mut body = MAGIC.to_vec();
        body.extend(unknown);

        let decoded = decode(&body).unwrap();
        assert_eq!(decoded["kind"], "Secret");
        assert_eq!(decoded["apiVersion"], "v1");
        assert_eq!(decoded["metadata"]["name"], "sh.helm.release.v1.demo.v1");
        assert_eq!(
            decoded["metadata"]["labels"],
            json!({"owner": "helm", "status": "deployed"})
        );
        assert_eq!(decoded["data"]["release"], "AQI=");
        assert_eq!(decoded["type"], "helm.sh/release.v1");
    }

    #[test]
    fn unknown_kinds_and_garbage_are_415() {
        let mut type_meta = bytes_field(1, b"v1");
        type_meta.extend(bytes_field(2, b"Pod"));
        let mut body = MAGIC.to_vec();
        body.extend(bytes_field(1, &type_meta));
        let error = decode(&body).unwrap_err();
        assert_eq!(error.code, 415);
        assert!(error.message.contains("\"Pod\""), "{}", error.message);
        assert_eq!(decode(b"{}").unwrap_err().code, 415);
    }
}
