//! Replays the committed `config_pipeline` fuzz corpus (`fuzz/corpus/config_pipeline/`) through
//! the harness the fuzz target calls, on stable Rust, so CI runs every seed and every input a
//! fuzzer once crashed on.

use std::path::PathBuf;

#[test]
fn config_pipeline_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config_pipeline");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for path in files {
        eprintln!("{}", path.display());
        operator::harness::config_pipeline(&std::fs::read(&path).unwrap());
    }
}
