//! Fixtures whose growing counters are frozen, written as files, and wall-clock times masked: what two
//! runs of the agent at different instants need to print exactly the same thing.

use std::path::{Path, PathBuf};

use gpu_fixture::{Fixture, FixtureGpu};

/// Sets every growing counter of `gpu` to its starting value.
pub fn freeze_counters(gpu: &mut FixtureGpu) {
    gpu.freeze_counters();
}

/// A fixture as a YAML document of the fixture format (GPUs fully spelled out, no `gpu_defaults`).
pub fn fixture_yaml(f: &Fixture) -> String {
    // Through serde_yaml values, not JSON: NVLink overrides are keyed by integers.
    let mut doc = serde_yaml::Mapping::new();
    let mut put = |key: &str, value: serde_yaml::Value| doc.insert(key.into(), value);
    put("description", f.description.clone().into());
    put("node", serde_yaml::to_value(&f.node).unwrap());
    put("gpus", serde_yaml::to_value(&f.gpus).unwrap());
    put("kernel_log", serde_yaml::to_value(&f.kernel_log).unwrap());
    serde_yaml::to_string(&doc).unwrap()
}

/// Writes the built-in scenario `name`, counters frozen, to `dir/NAME.yaml`.
pub fn frozen_builtin(dir: &Path, name: &str) -> PathBuf {
    let mut fixture = Fixture::builtin(name).unwrap();
    for gpu in &mut fixture.gpus {
        freeze_counters(gpu);
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, fixture_yaml(&fixture)).unwrap();
    path
}

/// Every RFC 3339 date-time inside `s` with its digits as `x`, so columns keep their width.
pub fn mask_timestamps(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if is_timestamp(rest) {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || "-:T.Z+".contains(c)))
                .unwrap_or(rest.len());
            out.extend(
                rest[..end]
                    .chars()
                    .map(|c| if c.is_ascii_digit() { 'x' } else { c }),
            );
            rest = &rest[end..];
        } else {
            let ch = rest.chars().next().unwrap();
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

/// RFC 3339 date-times (`2026-11-27T11:34:40.292838Z`).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
}
