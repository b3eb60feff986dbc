//! A fake `libnvidia-ml.so.1` for tests without a GPU. It exports the NVML C functions the agent's NVML
//! backend calls, with their real `nvml.h` signatures and `_v2`/`_v3` names, and answers them from a GPU
//! fixture — the same YAML format (and built-in scenarios) the agent's mock backend serves — so the real
//! NVML path can be run in CI and its output compared with the mock path's for the same situation.
//!
//! Configuration, read by the `nvmlInit_v2`/`nvmlInitWithFlags` call that takes NVML's reference count
//! from 0 to 1 (so a test can change it between `nvmlShutdown` and the next init):
//! - `FAKE_NVML_FIXTURE`: a fixture file path, or `builtin:<scenario>`; unset means `builtin:healthy`.
//! - `fake_nvml_set_fixture(const char *spec)`: the same, for tests that load the library in-process
//!   (it wins over the environment variable).
//!
//! Fixture semantics: each value is one NVML call's answer (converted to NVML's units: watts → mW,
//! `"12.4"` → 12040, …); `{error: CODE}` makes that call return `NVML_ERROR_CODE`; a value the fixture
//! leaves out returns `NOT_SUPPORTED`. Presence `lost` → the handle is returned but every query on it
//! fails with `GPU_IS_LOST`; `handle_lost` → `nvmlDeviceGetHandleByIndex_v2` fails; `absent` → not
//! enumerated. Growing counters grow, and the fixture's `timeline` plays, from the init that loaded the
//! fixture.
//!
//! Every export records its own name; `fake_nvml_called_symbols` lists them, so a test can check which
//! NVML functions the agent really called. No panic crosses the C boundary: a panicking export returns
//! `NVML_ERROR_UNKNOWN`; null pointer arguments return `NVML_ERROR_INVALID_ARGUMENT`.

mod control;
mod device;
mod ffi;
mod links;
mod state;
mod system;
mod values;
