//! A `--mock-fixture` file → the fixture parser (extends, overrides, validation) → a mock snapshot.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent::harness::fixture_yaml(data);
});
