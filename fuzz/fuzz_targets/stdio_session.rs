//! Any byte stream on stdin → the whole MCP server (mock node) → JSON-RPC replies; never a panic or a hang.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent::harness::stdio_session(data);
});
