//! Entry points for the fuzz targets (`fuzz/`) and for the tests that replay their corpora on
//! stable Rust: each takes arbitrary bytes, runs real agent code on them, and panics only when an
//! invariant breaks (a reply that is not JSON-RPC, a session that never ends, a panic inside).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use gpu_fixture::Fixture;
use rmcp::ServiceExt;
use serde_json::Value;

use crate::gpu::mock::MockBackend;
use crate::gpu::{DataSource, GpuBackend, GpuFilter};
use crate::server::transport::{LineTransport, TransportLimits};
use crate::server::{GpuDiagServer, KernelLogSource, ServerOptions, ToolPermission};
use crate::xid::{
    AnalyzeOptions, Clock, GpuIdentity, KernelLogOs, KmsgDevice, LogSource, OpenedPath,
    PciLocation, ReadLimits, analyze, read_kernel_log_with,
};

/// Longest a session may last before it counts as a hang (virtual time under the fuzzer; every
/// wait in a session is bounded well below it).
const SESSION_LIMIT: Duration = Duration::from_secs(600);

/// Feeds `input` to the whole MCP server on the built-in healthy mock node, as stdin followed by
/// EOF, and returns stdout. Panics if the session does not end, or if stdout holds anything but
/// JSON-RPC 2.0 objects, one per line.
pub fn stdio_session(input: &[u8]) -> Vec<u8> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    // Under the fuzzer, time is virtual: a health window or a drain timeout passes at once, and a
    // session that never ends is found in a few milliseconds. Corpus replays run in real time.
    #[cfg(feature = "fuzzing")]
    builder.start_paused(true);
    let runtime = builder.build().expect("a current-thread runtime");
    let out = SharedBuffer::default();
    let written = out.clone();
    let input = input.to_vec();
    runtime.block_on(async move {
        let fixture = Fixture::builtin("healthy").expect("the built-in scenario loads");
        let mock = Arc::new(MockBackend::new(
            fixture,
            DataSource::MockScenario("healthy".into()),
        ));
        let backend: Arc<dyn GpuBackend> = mock.clone();
        let server = GpuDiagServer::new(
            backend,
            ServerOptions {
                node_name: Some("fuzz-node".into()),
                mode: ToolPermission::ReadOnly,
                backend_timeout: Duration::from_secs(10),
                kernel_log: KernelLogSource::Simulated(mock),
                history_dir: None,
                kube: crate::k8s::KubeOptions {
                    enabled: false,
                    ..Default::default()
                },
            },
        );
        let limits = TransportLimits {
            max_line_bytes: 64 * 1024,
            idle_timeout: None,
            drain_timeout: Duration::from_secs(30),
        };
        let (transport, writer) = LineTransport::new(io::Cursor::new(input), out, limits);
        let session = async {
            if let Ok(running) = server.serve(transport).await {
                let _ = running.waiting().await;
            }
            let _ = writer.task.await;
        };
        if tokio::time::timeout(SESSION_LIMIT, session).await.is_err() {
            panic!("the session did not end after stdin EOF");
        }
    });
    runtime.shutdown_background();
    let stdout = written.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    check_jsonrpc_lines(&stdout);
    stdout
}

/// Every line is one JSON-RPC 2.0 object: a response (with an id, and exactly one of result and
/// error) or a notification.
fn check_jsonrpc_lines(stdout: &[u8]) {
    for line in stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let value: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!(
                "stdout line is not JSON ({e}): {}",
                String::from_utf8_lossy(line)
            )
        });
        assert_eq!(value["jsonrpc"], "2.0", "{value}");
        if value.get("method").is_none() {
            assert!(
                value.get("id").is_some(),
                "a response without an id: {value}"
            );
            assert!(
                value.get("result").is_some() != value.get("error").is_some(),
                "a response needs exactly one of result and error: {value}"
            );
        }
    }
}

/// An in-memory stdout.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl tokio::io::AsyncWrite for SharedBuffer {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Which kernel-log reader [`kernel_log`] feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelLogInput {
    /// `/dev/kmsg` records, separated by NUL bytes in the input (one record per read).
    Kmsg,
    /// A saved log file (`dmesg`, `dmesg --time-format iso`, `journalctl -k`, kmsg lines).
    DmesgFile,
    /// A `syslog(2)` READ_ALL buffer; the first input byte picks a read limit that cuts it.
    Syslog,
}

/// 2026-11-27T10:00:00Z, two hours after boot: a fixed clock, so a run is reproducible.
const CLOCK: Clock = Clock {
    realtime_unix_micros: 1_795_773_600_000_000,
    monotonic_micros: 7_200_000_000,
};

/// Reads `input` through the real kernel-log reader `kind`, then analyses it for two GPUs and
/// serializes the report, as `analyze_xid_errors` does. Panics only on a bug.
pub fn kernel_log(kind: KernelLogInput, input: &[u8]) {
    let mut limits = ReadLimits::default();
    let (os, source) = match kind {
        KernelLogInput::Kmsg => (
            FakeOs::new(input),
            LogSource::Kmsg(PathBuf::from("/dev/kmsg")),
        ),
        KernelLogInput::DmesgFile => (FakeOs::new(input), LogSource::File("/var/log/dmesg".into())),
        KernelLogInput::Syslog => {
            let (first, rest) = input.split_first().unwrap_or((&0, &[]));
            if *first > 0x80 {
                limits.max_bytes = u64::from(*first - 0x80);
            }
            (FakeOs::new(rest), LogSource::Syslog)
        }
    };
    let log = read_kernel_log_with(&os, &source, &limits).expect("in-memory reads never fail");
    let gpus = [
        GpuIdentity {
            index: 0,
            uuid: Some("GPU-aaaa".into()),
            pci: PciLocation::parse("00000000:3B:00.0"),
        },
        GpuIdentity {
            index: 1,
            uuid: None,
            pci: PciLocation::parse("00000000:B3:00.0"),
        },
    ];
    let report = analyze(&log, &gpus, &AnalyzeOptions::default());
    serde_json::to_string(&report).expect("the report serializes");
}

/// Parses `input` as a fixture file (`--mock-fixture`); a fixture that loads must also serve a
/// node snapshot through the mock backend.
pub fn fixture_yaml(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(fixture) = Fixture::from_yaml(text) else {
        return;
    };
    if fixture.node.query_delay_ms > 0 {
        return; // a slow node only sleeps
    }
    let mock = MockBackend::new(fixture, DataSource::MockFixture("fuzz.yaml".into()));
    let _ = mock.snapshot(GpuFilter::All);
}

/// The operating system of the kernel-log readers, serving `input` from memory.
struct FakeOs {
    input: Vec<u8>,
}

impl FakeOs {
    fn new(input: &[u8]) -> FakeOs {
        FakeOs {
            input: input.to_vec(),
        }
    }
}

struct Records(std::vec::IntoIter<Vec<u8>>);

impl KmsgDevice for Records {
    fn read_record(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.0.next() {
            None => Err(io::ErrorKind::WouldBlock.into()),
            Some(record) if record.len() > buffer.len() => {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            }
            Some(record) => {
                buffer[..record.len()].copy_from_slice(&record);
                Ok(record.len())
            }
        }
    }
}

impl KernelLogOs for FakeOs {
    fn open_kmsg(&self, _: &Path) -> io::Result<Box<dyn KmsgDevice>> {
        let records: Vec<Vec<u8>> = self
            .input
            .split(|b| *b == 0)
            .filter(|r| !r.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Box::new(Records(records.into_iter())))
    }
    fn open_path(&self, _: &Path) -> io::Result<OpenedPath> {
        Ok(OpenedPath::File {
            len: self.input.len() as u64,
            file: Box::new(io::Cursor::new(self.input.clone())),
        })
    }
    fn syslog_buffer_size(&self) -> io::Result<usize> {
        Ok(self.input.len())
    }
    fn syslog_read_all(&self, buffer: &mut [u8]) -> io::Result<usize> {
        // READ_ALL returns the newest bytes that fit.
        let start = self.input.len().saturating_sub(buffer.len());
        let tail = &self.input[start..];
        buffer[..tail.len()].copy_from_slice(tail);
        Ok(tail.len())
    }
    fn clock(&self) -> Clock {
        CLOCK
    }
}

/// Decodes `input` as a history segment file twice — whole, and streamed through a 7-byte read
/// buffer as the history reader does — which must agree, and neither may panic.
pub fn history_segment(input: &[u8]) {
    use crate::recorder::store::{decode, decode_from};
    let whole = decode(input);
    let streamed = decode_from(io::BufReader::with_capacity(7, input));
    assert_eq!(whole.records, streamed.records, "streamed decode differs");
    assert_eq!(whole.problem, streamed.problem, "streamed decode differs");
}
