//! The library's process-wide state: NVML's init reference count, the fixture being served and when it
//! was loaded (growing counters grow from there), device handles, and which exports were called.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gpu_fixture::{Fixture, FixtureError, FixtureGpu, NvmlReturn, Presence};
use nvml_wrapper_sys::bindings::nvmlDevice_t;

use crate::ffi::NvmlResult;

/// Environment variable naming the fixture: a file path or `builtin:<scenario>`.
pub const FIXTURE_ENV: &str = "FAKE_NVML_FIXTURE";
/// The fixture served when neither [`FIXTURE_ENV`] nor `fake_nvml_set_fixture` names one.
pub const DEFAULT_FIXTURE: &str = "builtin:healthy";

/// Device handles are opaque to callers: a fixed base plus the NVML index, never dereferenced.
const HANDLE_BASE: usize = 0x6e76_6d6c_0000;

/// A loaded fixture, as NVML enumerates it.
pub struct Node {
    pub fixture: Fixture,
    started: Instant,
}

impl Node {
    fn new(fixture: Fixture) -> Node {
        Node {
            fixture,
            started: Instant::now(),
        }
    }

    /// The GPUs NVML enumerates now, in index order (`absent` ones left out), as the fixture's
    /// timeline has them at this moment.
    pub fn visible(&self) -> Vec<&FixtureGpu> {
        self.fixture.visible_gpus_at(self.elapsed()).collect()
    }

    /// Time since the fixture was loaded, for growing counters.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The handle of GPU `index`, as `nvmlDeviceGetHandleByIndex_v2` returns it.
    pub fn handle(&self, index: u32) -> NvmlResult<nvmlDevice_t> {
        let visible = self.visible();
        let gpu = visible
            .get(index as usize)
            .ok_or(NvmlReturn::InvalidArgument)?;
        if gpu.presence == Presence::HandleLost {
            return Err(NvmlReturn::GpuIsLost);
        }
        Ok(std::ptr::without_provenance_mut(
            HANDLE_BASE + index as usize,
        ))
    }

    /// The GPU behind a handle; a `lost` GPU answers every query with `GPU_IS_LOST`.
    pub fn gpu(&self, device: nvmlDevice_t) -> NvmlResult<&FixtureGpu> {
        let gpu = self.gpu_including_lost(device)?;
        match gpu.presence {
            Presence::Lost => Err(NvmlReturn::GpuIsLost),
            _ => Ok(gpu),
        }
    }

    /// The GPU behind a handle even when it is lost: the driver keeps a lost GPU's PCI location from
    /// enumeration (nvidia-smi still names its bus id).
    pub fn gpu_including_lost(&self, device: nvmlDevice_t) -> NvmlResult<&FixtureGpu> {
        device
            .addr()
            .checked_sub(HANDLE_BASE)
            .and_then(|index| self.visible().get(index).copied())
            .ok_or(NvmlReturn::InvalidArgument)
    }
}

struct State {
    refcount: u32,
    node: Option<Arc<Node>>,
    fixture_spec: Option<String>,
}

static STATE: Mutex<State> = Mutex::new(State {
    refcount: 0,
    node: None,
    fixture_spec: None,
});
static CALLED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic caught at the FFI boundary must not wedge every later call.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Notes that an export was called.
pub fn record(symbol: &'static str) {
    lock(&CALLED).insert(symbol);
}

/// Every export called so far, sorted.
pub fn called() -> Vec<&'static str> {
    lock(&CALLED).iter().copied().collect()
}

/// Chooses the fixture for the next init that loads one (overrides [`FIXTURE_ENV`]).
pub fn set_fixture_spec(spec: String) {
    lock(&STATE).fixture_spec = Some(spec);
}

/// `nvmlInit`: loads the fixture on the first reference, then counts references like NVML.
pub fn init() -> NvmlResult<()> {
    let mut state = lock(&STATE);
    if state.refcount == 0 {
        let spec = state
            .fixture_spec
            .clone()
            .or_else(|| std::env::var(FIXTURE_ENV).ok())
            .unwrap_or_else(|| DEFAULT_FIXTURE.to_string());
        let fixture = load(&spec).map_err(|e| {
            eprintln!("fake-nvml: cannot load the fixture {spec:?} (set {FIXTURE_ENV}): {e}");
            NvmlReturn::Unknown
        })?;
        if let Some(code) = fixture.node.init_error {
            return Err(code);
        }
        state.node = Some(Arc::new(Node::new(fixture)));
    }
    state.refcount += 1;
    Ok(())
}

/// `nvmlShutdown`: drops one reference; the last one unloads the fixture.
pub fn shutdown() -> NvmlResult<()> {
    let mut state = lock(&STATE);
    if state.refcount == 0 {
        return Err(NvmlReturn::Uninitialized);
    }
    state.refcount -= 1;
    if state.refcount == 0 {
        state.node = None;
    }
    Ok(())
}

/// The loaded fixture, or `UNINITIALIZED` before `nvmlInit`.
pub fn node() -> NvmlResult<Arc<Node>> {
    lock(&STATE).node.clone().ok_or(NvmlReturn::Uninitialized)
}

/// Runs a query against the GPU behind `device`.
pub fn query<T>(
    device: nvmlDevice_t,
    read: impl FnOnce(&FixtureGpu, Duration) -> NvmlResult<T>,
) -> NvmlResult<T> {
    let node = node()?;
    let gpu = node.gpu(device)?;
    read(gpu, node.elapsed())
}

/// Like [`query`], answering for a lost GPU too (its PCI location survives the loss).
pub fn query_enumeration<T>(
    device: nvmlDevice_t,
    read: impl FnOnce(&FixtureGpu, Duration) -> NvmlResult<T>,
) -> NvmlResult<T> {
    let node = node()?;
    let gpu = node.gpu_including_lost(device)?;
    read(gpu, node.elapsed())
}

/// Loads `builtin:<name>` or a fixture file.
pub fn load(spec: &str) -> Result<Fixture, FixtureError> {
    match spec.strip_prefix("builtin:") {
        Some(name) => Fixture::builtin(name),
        None => Fixture::from_path(Path::new(spec)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_presence_is_honoured() {
        let yaml = "node: {}\ngpus: [{name: A}, {presence: lost}, {presence: handle_lost}, {presence: absent}, {name: E}]";
        let node = Node::new(Fixture::from_yaml(yaml).unwrap());
        assert_eq!(node.visible().len(), 4);
        let h0 = node.handle(0).unwrap();
        assert_eq!(node.gpu(h0).unwrap().name.value().unwrap(), "A");
        let h1 = node.handle(1).unwrap();
        assert_eq!(node.gpu(h1).err(), Some(NvmlReturn::GpuIsLost));
        assert_eq!(node.handle(2).err(), Some(NvmlReturn::GpuIsLost));
        let h3 = node.handle(3).unwrap();
        assert_eq!(node.gpu(h3).unwrap().name.value().unwrap(), "E");
        assert_eq!(node.handle(4).err(), Some(NvmlReturn::InvalidArgument));
        assert_eq!(
            node.gpu(std::ptr::null_mut()).err(),
            Some(NvmlReturn::InvalidArgument)
        );
    }

    #[test]
    fn specs_name_builtins_or_files() {
        assert_eq!(load("builtin:ecc-dbe").unwrap().gpus.len(), 8);
        let e = load("builtin:nope").unwrap_err().to_string();
        assert!(e.contains("unknown built-in scenario"), "{e}");
        let e = load("/nonexistent/fixture.yaml").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/fixture.yaml"), "{e}");
    }
}
