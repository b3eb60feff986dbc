//! Helpers shared by the agent's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

pub mod fake_nvml;
pub mod frozen;
pub mod test_apiserver;
