//! Cluster facts + a GpuDiagnosticsConfig spec → resolve → render → status: no panic, deterministic,
//! nothing to apply against itself, status idempotent.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    operator::harness::config_pipeline(data);
});
