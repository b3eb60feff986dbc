//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the harness functions the
//! fuzz targets call, on stable Rust: every seed, and every input a fuzzer once crashed on, stays a
//! test that CI runs on any machine.

use std::path::PathBuf;

use agent::harness::{self, KernelLogInput};

/// The files of one target's corpus; a missing or empty corpus is a failure, not a pass.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

#[test]
fn stdio_session_corpus() {
    for (path, input) in corpus("stdio_session") {
        eprintln!("{}", path.display());
        let stdout = harness::stdio_session(&input);
        if path.ends_with("inventory-query.jsonl") {
            let replies: Vec<serde_json::Value> = stdout
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            assert_eq!(replies.len(), 2, "{replies:?}");
            assert_eq!(
                replies[1]["result"]["structuredContent"]["device_count"], 8,
                "{replies:?}"
            );
        }
    }
}

#[test]
fn kernel_log_corpora() {
    for (target, kind) in [
        ("kmsg_records", KernelLogInput::Kmsg),
        ("dmesg_lines", KernelLogInput::DmesgFile),
        ("syslog_buffer", KernelLogInput::Syslog),
    ] {
        for (path, input) in corpus(target) {
            eprintln!("{}", path.display());
            harness::kernel_log(kind, &input);
        }
    }
}

#[test]
fn fixture_yaml_corpus() {
    for (path, input) in corpus("fixture_yaml") {
        eprintln!("{}", path.display());
        harness::fixture_yaml(&input);
    }
}

#[test]
fn history_segment_corpus() {
    for (path, input) in corpus("history_segment") {
        eprintln!("{}", path.display());
        harness::history_segment(&input);
    }
}
