//! A saved kernel log (dmesg, ISO, journal, syslog lines) → the file reader → Xid parsing and analysis.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent::harness::kernel_log(agent::harness::KernelLogInput::DmesgFile, data);
});
