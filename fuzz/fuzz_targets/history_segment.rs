//! History segment files (`raw-*.seg`, `min-*.seg`) → the recorder's decoder, whole and streamed.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent::harness::history_segment(data);
});
