//! The real NVML backend against the fake `libnvidia-ml`: for every fixture, what the backend reads
//! through NVML's C API equals what the mock backend serves from the same fixture — same values, same
//! units, same reasons for unavailable values. Plus error paths, init retry, and the symbol contract
//! between the backend and the fake.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent::gpu::mock::MockBackend;
use agent::gpu::nvml::{NVML_SYMBOLS, NvmlBackend, NvmlOptions};
use agent::gpu::*;
use gpu_fixture::{Counter, Fixture, FixtureGpu, Fx, NvLinkCounter, builtin_names};
use support::fake_nvml::{self, FakeNvml, pci_sysfs};

/// The fixtures beyond the built-in scenarios (situations the H100 scenarios do not reach).
const FIXTURE_FILES: &[&str] = &[
    "v100-retired-pages-and-processes.yaml",
    "l4-restricted-container.yaml",
    "h100-handle-lost-and-absent.yaml",
];

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every fixture as (label, the fake's spec, the parsed fixture).
fn all_fixtures() -> Vec<(String, String, Fixture)> {
    let builtins = builtin_names().into_iter().map(|name| {
        let fixture = Fixture::builtin(name).unwrap();
        (name.to_string(), format!("builtin:{name}"), fixture)
    });
    let files = FIXTURE_FILES.iter().map(|name| {
        let path = fixture_path(name);
        let fixture = Fixture::from_path(&path).unwrap();
        (name.to_string(), path.display().to_string(), fixture)
    });
    builtins.chain(files).collect()
}

/// A real backend over `fake` serving `spec`, with a PCI bus matching `fixture`.
fn real_backend(
    fake: &FakeNvml,
    spec: &str,
    fixture: &Fixture,
    retry: Duration,
) -> (NvmlBackend, tempfile::TempDir) {
    fake.set_fixture(spec);
    let sysfs = pci_sysfs(fixture);
    let backend = NvmlBackend::with_options(
        fake.path().as_os_str(),
        NvmlOptions {
            pci_devices_dir: sysfs.path().to_path_buf(),
            init_retry_interval: retry,
        },
    );
    (backend, sysfs)
}

/// Growing counters differ only because the two backends started at different instants: check each is
/// within what `window` of growth allows, then set it to the fixture's starting value. PCI functions are
/// compared as a set.
fn freeze(snapshot: &mut NodeSnapshot, fixture: &Fixture, window: Duration) {
    let gpus: Vec<&FixtureGpu> = fixture.visible_gpus().collect();
    for d in &mut snapshot.devices {
        let g = gpus[d.index as usize];
        for (reading, counter) in [
            (&mut d.pcie_replay_counter, &g.pcie_replay_counter),
            (&mut d.ecc_volatile_corrected, &g.ecc_volatile_corrected),
            (&mut d.ecc_volatile_uncorrected, &g.ecc_volatile_uncorrected),
            (&mut d.ecc_aggregate_corrected, &g.ecc_aggregate_corrected),
            (
                &mut d.ecc_aggregate_uncorrected,
                &g.ecc_aggregate_uncorrected,
            ),
            (&mut d.violation_thermal_ns, &g.violation_thermal_ns),
            (&mut d.violation_power_ns, &g.violation_power_ns),
        ] {
            freeze_one(reading, counter, window);
        }
        if let (Ok(links), Fx::Value(fixture_links)) = (&mut d.nvlinks, &g.nvlinks) {
            for l in links {
                let f = fixture_links.link(l.link);
                freeze_one(
                    &mut l.crc_flit_errors,
                    &f.counter(NvLinkCounter::CrcFlit),
                    window,
                );
                freeze_one(
                    &mut l.crc_data_errors,
                    &f.counter(NvLinkCounter::CrcData),
                    window,
                );
                freeze_one(
                    &mut l.replay_errors,
                    &f.counter(NvLinkCounter::Replay),
                    window,
                );
                freeze_one(
                    &mut l.recovery_errors,
                    &f.counter(NvLinkCounter::Recovery),
                    window,
                );
            }
        }
    }
    if let Ok(functions) = &mut snapshot.pci_gpu_functions {
        functions.sort();
    }
}

fn code<T>(reading: &Reading<T>) -> Option<NvmlReturn> {
    reading.as_ref().err().map(|e| e.code)
}

fn freeze_one(reading: &mut Reading<u64>, counter: &Fx<Counter>, window: Duration) {
    if let (Ok(v), Fx::Value(Counter::Growing { value, per_minute })) = (reading.as_mut(), counter)
    {
        let max = value + (per_minute * window.as_secs_f64() / 60.0).ceil() as u64;
        assert!(
            (*value..=max).contains(v),
            "counter {v} outside {value}..={max}"
        );
        *v = *value;
    }
}

#[test]
fn every_fixture_reads_the_same_through_nvml_as_through_the_mock() {
    let fake = FakeNvml::load();
    for (label, spec, fixture) in all_fixtures() {
        let started = Instant::now();
        let mock = MockBackend::new(fixture.clone(), DataSource::MockScenario(label.clone()));
        let (real, _sysfs) = real_backend(&fake, &spec, &fixture, Duration::from_secs(60));
        let mut expected = mock.snapshot(GpuFilter::All).unwrap();
        let mut actual = real.snapshot(GpuFilter::All).unwrap();
        let last = GpuFilter::Index(expected.device_count - 1);
        let mut expected_one = mock.snapshot(last).unwrap();
        let mut actual_one = real.snapshot(last).unwrap();
        let window = started.elapsed();
        for s in [
            &mut expected,
            &mut actual,
            &mut expected_one,
            &mut actual_one,
        ] {
            freeze(s, &fixture, window);
        }
        assert_eq!(actual.devices.len(), expected.devices.len(), "{label}");
        for (a, e) in actual.devices.iter().zip(&expected.devices) {
            assert_eq!(a, e, "{label}: GPU {}", e.index);
        }
        assert_eq!(actual, expected, "{label}");
        assert_eq!(actual_one, expected_one, "{label}: the last GPU alone");
        assert_eq!(real.identities(), mock.identities(), "{label}");
        assert_eq!(real.source(), DataSource::Nvml);
    }
}

#[test]
fn the_backend_calls_exactly_the_listed_nvml_symbols_and_the_fake_exports_them() {
    let fake = FakeNvml::load();
    for name in NVML_SYMBOLS.iter().chain(fake_nvml::EXTRA_EXPORTS) {
        assert!(fake.exports(name), "the fake libnvidia-ml lacks {name}");
    }
    for (_, spec, fixture) in all_fixtures() {
        let (real, _sysfs) = real_backend(&fake, &spec, &fixture, Duration::from_secs(60));
        real.snapshot(GpuFilter::All).unwrap();
        real.identities().unwrap();
    }
    let called = fake.called_symbols();
    let listed: std::collections::BTreeSet<String> =
        NVML_SYMBOLS.iter().map(|s| s.to_string()).collect();
    let unlisted: Vec<&String> = called.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "the backend called NVML functions missing from NVML_SYMBOLS: {unlisted:?}"
    );
    let unexercised = fake_nvml::missing(NVML_SYMBOLS.iter().copied(), &called);
    assert!(
        unexercised.is_empty(),
        "no fixture makes the backend call {unexercised:?}: add one, or drop them from NVML_SYMBOLS"
    );
}

#[test]
fn unsupported_denied_and_failing_reads_keep_their_reason_and_the_gpu_stays_listed() {
    let fake = FakeNvml::load();
    let path = fixture_path("l4-restricted-container.yaml");
    let fixture = Fixture::from_path(&path).unwrap();
    let (real, _sysfs) = real_backend(&fake, &path.display().to_string(), &fixture, Duration::MAX);
    let s = real.snapshot(GpuFilter::All).unwrap();
    assert_eq!(s.device_count, 1);
    let g = &s.devices[0];
    assert_eq!(code(&g.name), Some(NvmlReturn::Unknown));
    assert_eq!(
        g.uuid.as_deref(),
        Ok("GPU-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809")
    );
    assert_eq!(code(&g.serial), Some(NvmlReturn::NoPermission));
    assert_eq!(code(&g.nvlinks), Some(NvmlReturn::NotSupported));
    assert_eq!(
        code(&g.utilization),
        Some(NvmlReturn::InsufficientResources)
    );
    assert_eq!(code(&g.processes), Some(NvmlReturn::NoPermission));
    assert_eq!(
        code(&g.ecc_volatile_uncorrected),
        Some(NvmlReturn::NotSupported)
    );
    assert_eq!(code(&g.remap_failure), Some(NvmlReturn::Unknown));
    assert_eq!(g.remap_pending, Ok(false));
    assert_eq!(code(&s.nvml_version), Some(NvmlReturn::NotSupported));
    assert_eq!(g.power_draw_watts, Ok(16.2));
    assert_eq!(g.architecture, Ok(Architecture::Ada));
}

#[test]
fn lost_gpus_are_listed_with_the_reason_and_missing_ones_show_on_the_pci_bus() {
    let fake = FakeNvml::load();
    let fixture = Fixture::builtin("fallen-off-bus").unwrap();
    let (real, _sysfs) = real_backend(&fake, "builtin:fallen-off-bus", &fixture, Duration::MAX);
    let s = real.snapshot(GpuFilter::All).unwrap();
    let lost = &s.devices[5];
    assert_eq!(lost.handle, Ok(()));
    assert!(lost.uuid.as_ref().unwrap_err().is_gpu_lost());
    assert!(lost.nvlinks.as_ref().unwrap_err().is_gpu_lost());
    assert!(lost.recovery_action.as_ref().unwrap_err().is_gpu_lost());
    drop(real);

    let path = fixture_path("h100-handle-lost-and-absent.yaml");
    let fixture = Fixture::from_path(&path).unwrap();
    let (real, _sysfs) = real_backend(&fake, &path.display().to_string(), &fixture, Duration::MAX);
    let s = real.snapshot(GpuFilter::All).unwrap();
    assert_eq!(s.device_count, 7);
    assert_eq!(s.pci_gpu_functions.as_ref().unwrap().len(), 8);
    let handle_lost = &s.devices[2];
    assert_eq!(
        handle_lost.handle,
        Err(ReadError::new(NvmlReturn::GpuIsLost))
    );
    assert!(handle_lost.name.as_ref().unwrap_err().is_gpu_lost());
}

#[test]
fn node_failures_are_backend_errors_and_a_failed_init_is_retried() {
    let fake = FakeNvml::load();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, yaml: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, yaml).unwrap();
        p.display().to_string()
    };
    let no_driver = write(
        "no-driver.yaml",
        "node: {init_error: DRIVER_NOT_LOADED}\ngpus: []",
    );
    let fixture = Fixture::builtin("healthy").unwrap();

    // Not retried within the interval, even though the driver has appeared.
    let (real, _sysfs) = real_backend(&fake, &no_driver, &fixture, Duration::MAX);
    let e = real.snapshot(GpuFilter::All).unwrap_err();
    assert_eq!(
        e,
        BackendError::init_failed(ReadError::new(NvmlReturn::DriverNotLoaded))
    );
    assert!(e.to_string().contains("lsmod"), "{e}");
    fake.set_fixture("builtin:healthy");
    assert_eq!(real.identities().unwrap_err(), e);
    drop(real);

    // Retried once the interval has passed: the driver that appeared is found.
    let (real, _sysfs) = real_backend(&fake, &no_driver, &fixture, Duration::ZERO);
    assert!(real.identities().is_err());
    fake.set_fixture("builtin:healthy");
    assert_eq!(real.identities().unwrap().len(), 8);
    drop(real);

    let no_count = write(
        "no-count.yaml",
        "node: {device_count_error: UNKNOWN}\ngpus: []",
    );
    let (real, _sysfs) = real_backend(&fake, &no_count, &fixture, Duration::MAX);
    assert_eq!(
        real.snapshot(GpuFilter::All).unwrap_err(),
        BackendError::DeviceCount(ReadError::new(NvmlReturn::Unknown))
    );
    drop(real);

    let (real, _sysfs) = real_backend(&fake, "builtin:healthy", &fixture, Duration::MAX);
    assert_eq!(
        real.snapshot(GpuFilter::Index(8)).unwrap_err(),
        BackendError::NoSuchGpu { index: 8, count: 8 }
    );
}

#[test]
fn growing_counters_grow_on_the_real_path() {
    let fake = FakeNvml::load();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fast-replays.yaml");
    std::fs::write(
        &path,
        "extends: healthy\ngpu_overrides: {0: {pcie_replay_counter: {value: 5, per_minute: 6000000}}}",
    )
    .unwrap();
    let fixture = Fixture::from_path(&path).unwrap();
    let (real, _sysfs) = real_backend(&fake, &path.display().to_string(), &fixture, Duration::MAX);
    let read = || {
        real.snapshot(GpuFilter::Index(0)).unwrap().devices[0]
            .pcie_replay_counter
            .clone()
    };
    let first = read().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let second = read().unwrap();
    assert!(first >= 5 && second > first, "{first} then {second}");
}

#[test]
fn a_library_that_is_not_nvml_is_reported_as_such() {
    let backend = NvmlBackend::new(OsStr::new("libc.so.6"));
    let e = backend.snapshot(GpuFilter::All).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("NVML library libc.so.6 could not be loaded (it lacks nvmlInit_v2"),
        "{text}"
    );
}

#[test]
fn a_scripted_timeline_plays_the_same_on_the_real_path_as_on_the_mock() {
    let fake = FakeNvml::load();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heats-up-then-falls-off.yaml");
    std::fs::write(
        &path,
        "extends: healthy\ntimeline:\n\
         - {at: 400ms, gpu: 2, set: {temperature_c: 91, clock_event_reasons: [hw_slowdown], pcie_width_current: 8}}\n\
         - {at: 400ms, gpu: 6, set: {presence: absent}}\n",
    )
    .unwrap();
    let fixture = Fixture::from_path(&path).unwrap();
    let (real, _sysfs) = real_backend(&fake, &path.display().to_string(), &fixture, Duration::MAX);
    let before = real.snapshot(GpuFilter::All).unwrap();
    let mock = MockBackend::new(fixture, DataSource::MockFixture("t".into()));
    let mock_before = mock.snapshot(GpuFilter::All).unwrap();
    assert_eq!(before.devices.len(), 8);
    assert_eq!(before.devices[2].temperature_c, Ok(33));
    assert_eq!(mock_before.devices[2].temperature_c, Ok(33));
    std::thread::sleep(Duration::from_millis(600));
    let (real_after, mock_after) = (
        real.snapshot(GpuFilter::All).unwrap(),
        mock.snapshot(GpuFilter::All).unwrap(),
    );
    for after in [&real_after, &mock_after] {
        assert_eq!(after.device_count, 7, "GPU 6 is no longer enumerated");
        let g = &after.devices[2];
        assert_eq!(g.temperature_c, Ok(91));
        assert_eq!(g.clock_event_reasons, Ok(0x8));
        assert_eq!(g.pcie_width_current, Ok(8));
    }
    assert_eq!(real_after.devices[6].uuid, mock_after.devices[6].uuid);
}
