//! `/dev/kmsg` records (NUL-separated, one per read) → the kmsg reader → Xid parsing and analysis.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent::harness::kernel_log(agent::harness::KernelLogInput::Kmsg, data);
});
