//! The mock backend: serves a fixture (built-in scenario or YAML file) as if NVML read it, with counters
//! that grow, and a scripted timeline that plays, from the moment the backend starts. For demos and
//! tests; never chosen implicitly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gpu_fixture::{
    Counter, Fixture, FixtureGpu, FixtureMemory, FixtureMigMode, FixtureNvLinks, FixturePci,
    FixtureProcess, FixtureUtilization, Fx, NvLinkCounter, Presence,
};

use super::*;
use crate::clock::WallClock;

/// A [`GpuBackend`] over a fixture.
pub struct MockBackend {
    fixture: Fixture,
    source: DataSource,
    /// A test's clock, or `None` for the monotonic clock (nanosecond precision for growing counters).
    clock: Option<Arc<dyn WallClock>>,
    started_unix_ms: i64,
    started: Instant,
}

impl MockBackend {
    /// A backend serving `fixture`, labelled `source`.
    pub fn new(fixture: Fixture, source: DataSource) -> MockBackend {
        MockBackend {
            fixture,
            source,
            clock: None,
            started_unix_ms: 0,
            started: Instant::now(),
        }
    }

    /// A backend whose time (growing counters, the timeline) follows `clock` from now on.
    pub fn with_clock(
        fixture: Fixture,
        source: DataSource,
        clock: Arc<dyn WallClock>,
    ) -> MockBackend {
        let started_unix_ms = clock.now_unix_ms();
        MockBackend {
            fixture,
            source,
            clock: Some(clock),
            started_unix_ms,
            started: Instant::now(),
        }
    }

    /// The fixture served.
    pub fn fixture(&self) -> &Fixture {
        &self.fixture
    }

    /// Time since the backend started, by its clock.
    pub fn elapsed(&self) -> Duration {
        match &self.clock {
            Some(clock) => {
                let ms = clock.now_unix_ms() - self.started_unix_ms;
                Duration::from_millis(ms.max(0) as u64)
            }
            None => self.started.elapsed(),
        }
    }

    /// Seconds since the simulated node booted (anchors the fixture's kernel log).
    pub fn uptime_seconds(&self) -> f64 {
        self.fixture.node.uptime_seconds + self.elapsed().as_secs_f64()
    }

    /// The node's kernel log as of now: the fixture's lines and the timeline's lines printed so far.
    pub fn kernel_log(&self) -> Vec<String> {
        self.fixture.kernel_log_at(self.elapsed())
    }

    fn device(&self, index: u32, gpu: &FixtureGpu, elapsed: Duration) -> DeviceSnapshot {
        let lost = ReadError::new(NvmlReturn::GpuIsLost);
        match gpu.presence {
            Presence::HandleLost => {
                return DeviceSnapshot::unreachable(index, Err(lost.clone()), lost);
            }
            Presence::Lost => {
                // The driver keeps a lost GPU's PCI location from enumeration.
                let mut d = DeviceSnapshot::unreachable(index, Ok(()), lost);
                d.pci = mock::<kind::Pci>(&gpu.pci, elapsed);
                return d;
            }
            Presence::Present | Presence::Absent => {}
        }
        mock_device(index, gpu, elapsed)
    }

    fn visible(&self, elapsed: Duration) -> impl Iterator<Item = (u32, &FixtureGpu)> {
        self.fixture
            .visible_gpus_at(elapsed)
            .enumerate()
            .map(|(i, g)| (i as u32, g))
    }

    fn check_node(&self, elapsed: Duration) -> Result<u32, BackendError> {
        if self.fixture.node.query_delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.fixture.node.query_delay_ms));
        }
        if let Some(code) = self.fixture.node.init_error {
            return Err(BackendError::init_failed(ReadError::new(code)));
        }
        if let Some(code) = self.fixture.node.device_count_error {
            return Err(BackendError::DeviceCount(ReadError::new(code)));
        }
        Ok(self.fixture.visible_gpus_at(elapsed).count() as u32)
    }
}

impl GpuBackend for MockBackend {
    fn source(&self) -> DataSource {
        self.source.clone()
    }

    fn snapshot(&self, filter: GpuFilter) -> Result<NodeSnapshot, BackendError> {
        self.snapshot_at(filter, self.elapsed())
    }

    fn identities(&self) -> Result<Vec<DeviceIdentity>, BackendError> {
        let elapsed = self.elapsed();
        self.check_node(elapsed)?;
        Ok(self
            .visible(elapsed)
            .map(|(i, g)| self.device(i, g, elapsed).identity())
            .collect())
    }
}

impl MockBackend {
    /// The snapshot as read `elapsed` after the backend started: deterministic counters for tests of
    /// rate rules (two snapshots a known time apart).
    pub fn snapshot_at(
        &self,
        filter: GpuFilter,
        elapsed: Duration,
    ) -> Result<NodeSnapshot, BackendError> {
        let count = self.check_node(elapsed)?;
        if let GpuFilter::Index(index) = filter
            && index >= count
        {
            return Err(BackendError::NoSuchGpu { index, count });
        }
        let node = &self.fixture.node;
        Ok(NodeSnapshot {
            driver_version: read(&node.driver_version),
            cuda_driver_version: read(&node.cuda_driver_version),
            nvml_version: read(&node.nvml_version),
            device_count: count,
            devices: self
                .visible(elapsed)
                .filter(|(i, _)| filter.includes(*i))
                .map(|(i, g)| self.device(i, g, elapsed))
                .collect(),
            pci_gpu_functions: read(&self.fixture.pci_gpu_functions()),
        })
    }
}

/// Writes `mock_device`, which reads every value of the table of GPU values from the fixture.
macro_rules! mock_device {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $kind:ident, unit $unit:literal, nvml $call:expr, fixture $key:literal,
            output [$($(#[doc = $odoc:literal])* $okey:ident: $oty:ty),* $(,)?];
    )*) => {
        /// A present GPU as the fixture describes it `elapsed` after the backend started.
        fn mock_device(index: u32, gpu: &FixtureGpu, elapsed: Duration) -> DeviceSnapshot {
            DeviceSnapshot {
                index,
                handle: Ok(()),
                $($name: mock::<kind::$kind>(&gpu.$name, elapsed),)*
            }
        }
    };
}
gpu_fixture::gpu_values!(mock_device);

/// How the mock backend reads a kind of value from its fixture: what NVML would report for it.
trait MockValue: ReadingKind {
    /// The reading of a fixture value `elapsed` after the backend started.
    fn reading(value: &Self::Fixture, elapsed: Duration) -> Reading<Self::Reading>;
}

fn mock<K: MockValue>(value: &Fx<K::Fixture>, elapsed: Duration) -> Reading<K::Reading> {
    value
        .as_result()
        .map_err(ReadError::new)
        .and_then(|v| K::reading(v, elapsed))
}

/// Kinds whose fixture value is the reading.
macro_rules! as_read {
    ($($kind:ident),*) => {$(
        impl MockValue for kind::$kind {
            fn reading(value: &Self::Fixture, _: Duration) -> Reading<Self::Reading> {
                Ok(value.clone())
            }
        }
    )*};
}
as_read!(Text, Count, Flag, Arch, Compute, Inforom);

impl MockValue for kind::Cumulative {
    fn reading(value: &Counter, elapsed: Duration) -> Reading<u64> {
        Ok(value.value_at(elapsed))
    }
}

impl MockValue for kind::Watts {
    /// NVML reports milliwatts: round through them so mock and real agree to the milliwatt.
    fn reading(watts: &f64, _: Duration) -> Reading<f64> {
        Ok((watts * 1000.0).round() / 1000.0)
    }
}

impl MockValue for kind::Reasons {
    fn reading(reasons: &Vec<ClockEventReason>, _: Duration) -> Reading<u64> {
        Ok(ClockEventReason::mask(reasons))
    }
}

impl MockValue for kind::Capability {
    fn reading(text: &String, _: Duration) -> Reading<ComputeCapability> {
        ComputeCapability::parse(text)
            .map_err(|e| ReadError::with_detail(NvmlReturn::InvalidArgument, e))
    }
}

impl MockValue for kind::Pci {
    fn reading(p: &FixturePci, _: Duration) -> Reading<PciInfo> {
        Ok(PciInfo {
            bus_id: p.bus_id,
            device_id: p.device_id,
            subsystem_id: p.subsystem_id,
        })
    }
}

impl MockValue for kind::Memory {
    fn reading(m: &FixtureMemory, _: Duration) -> Reading<MemoryInfo> {
        Ok(MemoryInfo {
            total_bytes: m.total_bytes,
            used_bytes: m.used_bytes,
            free_bytes: m.free(),
        })
    }
}

impl MockValue for kind::Utilization {
    fn reading(u: &FixtureUtilization, _: Duration) -> Reading<Utilization> {
        Ok(Utilization {
            gpu_percent: u.gpu_percent,
            memory_percent: u.memory_percent,
        })
    }
}

impl MockValue for kind::Mig {
    fn reading(m: &FixtureMigMode, _: Duration) -> Reading<MigMode> {
        Ok(MigMode {
            current: m.current,
            pending: m.pending,
        })
    }
}

impl MockValue for kind::Processes {
    fn reading(ps: &Vec<FixtureProcess>, _: Duration) -> Reading<Vec<GpuProcess>> {
        Ok(ps
            .iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                used_memory_bytes: p.used_memory_bytes,
            })
            .collect())
    }
}

impl MockValue for kind::NvLinks {
    fn reading(links: &FixtureNvLinks, elapsed: Duration) -> Reading<Vec<NvLinkSnapshot>> {
        let counter = |c: &Fx<Counter>| mock::<kind::Cumulative>(c, elapsed);
        Ok((0..links.links)
            .map(|n| {
                let l = links.link(n);
                let c = |which| counter(&l.counter(which));
                NvLinkSnapshot {
                    link: n,
                    active: read(&l.active()),
                    crc_flit_errors: c(NvLinkCounter::CrcFlit),
                    crc_data_errors: c(NvLinkCounter::CrcData),
                    replay_errors: c(NvLinkCounter::Replay),
                    recovery_errors: c(NvLinkCounter::Recovery),
                }
            })
            .collect())
    }
}

fn read<T: Clone>(fx: &Fx<T>) -> Reading<T> {
    fx.as_result().cloned().map_err(ReadError::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(name: &str) -> MockBackend {
        MockBackend::new(
            Fixture::builtin(name).unwrap(),
            DataSource::MockScenario(name.into()),
        )
    }

    #[test]
    fn healthy_serves_eight_h100s() {
        let s = backend("healthy").snapshot(GpuFilter::All).unwrap();
        assert_eq!(s.device_count, 8);
        assert_eq!(s.devices.len(), 8);
        assert_eq!(s.driver_version.as_deref(), Ok("550.54.15"));
        let g = &s.devices[3];
        assert_eq!(g.index, 3);
        assert_eq!(g.name.as_deref(), Ok("NVIDIA H100 80GB HBM3"));
        assert_eq!(
            g.pci.as_ref().unwrap().bus_id.nvml_bus_id(),
            "00000000:5D:00.0"
        );
        assert_eq!(g.memory.as_ref().unwrap().total_bytes, 85_520_809_984);
        assert_eq!(g.nvlinks.as_ref().unwrap().len(), 18);
        assert_eq!(
            g.retired_pages_sbe,
            Err(ReadError::new(NvmlReturn::NotSupported))
        );
        assert_eq!(g.clock_event_reasons, Ok(0x1));
    }

    #[test]
    fn filter_selects_one_gpu_and_rejects_missing_indices() {
        let b = backend("healthy");
        let s = b.snapshot(GpuFilter::Index(7)).unwrap();
        assert_eq!(s.devices.len(), 1);
        assert_eq!(s.devices[0].index, 7);
        assert_eq!(s.device_count, 8);
        let e = b.snapshot(GpuFilter::Index(8)).unwrap_err();
        assert_eq!(e, BackendError::NoSuchGpu { index: 8, count: 8 });
        assert!(e.to_string().contains("NVML reports 8 GPU(s)"));
    }

    #[test]
    fn a_lost_gpu_is_listed_with_its_error() {
        let s = backend("fallen-off-bus").snapshot(GpuFilter::All).unwrap();
        assert_eq!(s.devices.len(), 8);
        let g = &s.devices[5];
        assert_eq!(g.handle, Ok(()));
        assert!(g.name.as_ref().unwrap_err().is_gpu_lost());
        assert!(g.temperature_c.as_ref().unwrap_err().is_gpu_lost());
    }

    #[test]
    fn absent_gpus_are_not_enumerated_but_stay_on_the_pci_bus() {
        let yaml = "extends: healthy\ngpu_overrides: {6: {presence: absent}}";
        let b = MockBackend::new(
            Fixture::from_yaml(yaml).unwrap(),
            DataSource::MockFixture("x.yaml".into()),
        );
        let s = b.snapshot(GpuFilter::All).unwrap();
        assert_eq!(s.device_count, 7);
        assert_eq!(s.pci_gpu_functions.as_ref().unwrap().len(), 8);
        assert_eq!(s.devices[6].pci.as_ref().unwrap().bus_id.bus, 0xDB);
        assert_eq!(b.identities().unwrap().len(), 7);
    }

    #[test]
    fn node_level_failures_become_backend_errors() {
        let b = MockBackend::new(
            Fixture::from_yaml("node: {init_error: DRIVER_NOT_LOADED}\ngpus: []").unwrap(),
            DataSource::MockFixture("x".into()),
        );
        let e = b.snapshot(GpuFilter::All).unwrap_err().to_string();
        assert!(e.contains("NVIDIA kernel driver is not loaded"), "{e}");
        assert!(e.contains("lsmod"), "{e}");
        let b = MockBackend::new(
            Fixture::from_yaml("node: {device_count_error: UNKNOWN}\ngpus: []").unwrap(),
            DataSource::MockFixture("x".into()),
        );
        assert!(matches!(
            b.snapshot(GpuFilter::All),
            Err(BackendError::DeviceCount(_))
        ));
    }

    #[test]
    fn growing_counters_advance_with_time() {
        let b = backend("nvlink-errors");
        let link2 = |s: &NodeSnapshot| {
            s.devices[3].nvlinks.as_ref().unwrap()[2]
                .replay_errors
                .clone()
                .unwrap()
        };
        let first = link2(&b.snapshot(GpuFilter::All).unwrap());
        assert!(first >= 310);
        let link7 = &b.snapshot(GpuFilter::All).unwrap().devices[3]
            .nvlinks
            .clone()
            .unwrap()[7];
        assert_eq!(link7.active, Ok(false));
    }
}
