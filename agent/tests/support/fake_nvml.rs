//! The fake `libnvidia-ml` for tests: built on demand, loaded in-process (one private copy per test, so
//! tests running in parallel threads never share its state), and a sysfs tree matching a fixture.

use std::collections::BTreeSet;
use std::ffi::{CString, c_char, c_uint};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gpu_fixture::Fixture;

/// Environment variable: use this fake library instead of building `fake-nvml`.
pub const FAKE_NVML_LIB_ENV: &str = "FAKE_NVML_LIB";

/// The path of the fake `libnvidia_ml.so`: `$FAKE_NVML_LIB`, else built with `cargo build -p fake-nvml`
/// into the target directory and profile this test runs from (a no-op when it is up to date).
pub fn library() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os(FAKE_NVML_LIB_ENV) {
            return PathBuf::from(path);
        }
        super::build_package("fake-nvml", "libnvidia_ml.so")
    })
}

/// A private copy of the fake library, loaded in this process.
pub struct FakeNvml {
    _dir: tempfile::TempDir,
    path: PathBuf,
    lib: libloading::Library,
}

impl FakeNvml {
    /// Copies the fake library (a distinct file is a distinct instance for the dynamic loader) and loads it.
    pub fn load() -> FakeNvml {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("libnvidia-ml.so.1");
        std::fs::copy(library(), &path).expect("copy the fake library");
        // SAFETY: the fake's initialisers are Rust statics; loading it runs no foreign code.
        let lib = unsafe { libloading::Library::new(&path) }.expect("load the fake library");
        FakeNvml {
            _dir: dir,
            path,
            lib,
        }
    }

    /// The copy's path, for `NvmlBackend::new` (which then shares this instance).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves `spec` (`builtin:<name>` or a file path) from the next NVML init.
    pub fn set_fixture(&self, spec: &str) {
        let spec = CString::new(spec).expect("no NUL in a fixture spec");
        // SAFETY: the signature is the fake's `fake_nvml_set_fixture`.
        let code = unsafe {
            let f = self
                .lib
                .get::<unsafe extern "C" fn(*const c_char) -> c_uint>(b"fake_nvml_set_fixture")
                .expect("the fake exports fake_nvml_set_fixture");
            f(spec.as_ptr())
        };
        assert_eq!(code, 0, "fake_nvml_set_fixture failed");
    }

    /// The NVML functions called on this instance so far.
    pub fn called_symbols(&self) -> BTreeSet<String> {
        let mut buf = vec![0 as c_char; 64 * 1024];
        // SAFETY: the signature is the fake's `fake_nvml_called_symbols`; `buf` is writable.
        let code = unsafe {
            let f = self
                .lib
                .get::<unsafe extern "C" fn(*mut c_char, c_uint) -> c_uint>(
                    b"fake_nvml_called_symbols",
                )
                .expect("the fake exports fake_nvml_called_symbols");
            f(buf.as_mut_ptr(), buf.len() as c_uint)
        };
        assert_eq!(code, 0, "fake_nvml_called_symbols failed");
        // SAFETY: on success the fake wrote a NUL-terminated string into `buf`.
        let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        text.to_string_lossy().lines().map(str::to_string).collect()
    }

    /// Whether the library exports `symbol`.
    pub fn exports(&self, symbol: &str) -> bool {
        // SAFETY: only the address is looked up; nothing is called.
        unsafe { self.lib.get::<*const ()>(symbol.as_bytes()) }.is_ok()
    }
}

/// A directory laid out like `/sys/bus/pci/devices` listing the fixture's NVIDIA GPU functions (and a
/// host bridge, as a real one would), for the NVML backend's PCI-bus scan.
pub fn pci_sysfs(fixture: &Fixture) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    fixture
        .write_pci_sysfs(dir.path())
        .expect("write the fake PCI sysfs tree");
    dir
}

/// Every NVML name the fake must export beyond what the backend calls (other clients call them).
pub const EXTRA_EXPORTS: &[&str] = &["nvmlInitWithFlags", "nvmlErrorString"];

/// Names in `a` missing from `b`, for readable assertion messages.
pub fn missing<'a>(a: impl IntoIterator<Item = &'a str>, b: &BTreeSet<String>) -> Vec<&'a str> {
    a.into_iter().filter(|s| !b.contains(*s)).collect()
}
