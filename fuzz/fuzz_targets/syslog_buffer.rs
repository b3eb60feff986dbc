//! A `syslog(2)` READ_ALL buffer (first byte: read limit) → the syslog reader → Xid parsing and analysis.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent::harness::kernel_log(agent::harness::KernelLogInput::Syslog, data);
});
