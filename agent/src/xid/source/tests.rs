//! Reader tests: the kmsg/syslog/file state machines over a scripted OS, the error texts, and a few
//! real-filesystem cases (which also run as root).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::xid::parse::RecordTime;

const CLOCK: Clock = Clock {
    realtime_unix_micros: 1_795_773_600_000_000,
    monotonic_micros: 7_200_000_000,
};

/// One scripted answer of a fake kmsg read.
#[derive(Clone)]
enum Step {
    Record(&'static str),
    Errno(i32),
}

/// A scripted kmsg: records and errors in order, then EAGAIN forever (caught up).
struct FakeKmsg {
    steps: VecDeque<Step>,
    reads: Rc<Cell<u32>>,
    after_caught_up: Rc<Cell<u32>>,
}

impl KmsgDevice for FakeKmsg {
    fn read_record(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.reads.set(self.reads.get() + 1);
        match self.steps.front().cloned() {
            None => {
                self.after_caught_up.set(self.after_caught_up.get() + 1);
                Err(io::Error::from_raw_os_error(libc::EAGAIN))
            }
            Some(Step::Record(text)) if text.len() > buffer.len() => {
                // The kernel keeps the record and answers EINVAL when the buffer is too small.
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            }
            Some(Step::Record(text)) => {
                self.steps.pop_front();
                buffer[..text.len()].copy_from_slice(text.as_bytes());
                Ok(text.len())
            }
            Some(Step::Errno(errno)) => {
                self.steps.pop_front();
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }
}

#[derive(Default)]
struct FakeOs {
    kmsg: Option<Result<Vec<Step>, i32>>,
    syslog_size: Option<Result<usize, i32>>,
    syslog_text: Option<Result<&'static str, i32>>,
    file: Option<Result<&'static str, i32>>,
    reads: Rc<Cell<u32>>,
    after_caught_up: Rc<Cell<u32>>,
    opened: RefCell<Vec<PathBuf>>,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl FakeOs {
    fn device(&self, steps: &[Step]) -> Box<dyn KmsgDevice> {
        Box::new(FakeKmsg {
            steps: steps.iter().cloned().collect(),
            reads: Rc::clone(&self.reads),
            after_caught_up: Rc::clone(&self.after_caught_up),
        })
    }
}

impl KernelLogOs for FakeOs {
    fn open_kmsg(&self, path: &Path) -> io::Result<Box<dyn KmsgDevice>> {
        self.opened.borrow_mut().push(path.to_path_buf());
        match &self.kmsg {
            Some(Ok(steps)) => Ok(self.device(steps)),
            Some(Err(code)) => Err(errno(*code)),
            None => Err(errno(libc::ENOENT)),
        }
    }

    fn open_path(&self, path: &Path) -> io::Result<OpenedPath> {
        self.opened.borrow_mut().push(path.to_path_buf());
        match (&self.file, &self.kmsg) {
            (Some(Ok(text)), _) => Ok(OpenedPath::File {
                len: text.len() as u64,
                file: Box::new(Cursor::new(text.as_bytes())),
            }),
            (Some(Err(code)), _) => Err(errno(*code)),
            (None, Some(Ok(steps))) => Ok(OpenedPath::CharDevice(self.device(steps))),
            (None, _) => Err(errno(libc::ENOENT)),
        }
    }

    fn syslog_buffer_size(&self) -> io::Result<usize> {
        match self.syslog_size {
            Some(Ok(size)) => Ok(size),
            Some(Err(code)) => Err(errno(code)),
            None => Err(errno(libc::EPERM)),
        }
    }

    fn syslog_read_all(&self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.syslog_text {
            Some(Ok(text)) => {
                // READ_ALL hands back the last `buffer.len()` bytes.
                let bytes = text.as_bytes();
                let tail = &bytes[bytes.len().saturating_sub(buffer.len())..];
                buffer[..tail.len()].copy_from_slice(tail);
                Ok(tail.len())
            }
            Some(Err(code)) => Err(errno(code)),
            None => Err(errno(libc::EPERM)),
        }
    }

    fn clock(&self) -> Clock {
        CLOCK
    }
}

const XID79: &str = "3,889,1843308145,-;NVRM: Xid (PCI:0000:b3:00): 79, pid=1234, name=python3, GPU has fallen off the bus.\n SUBSYSTEM=pci\n DEVICE=+pci:0000:b3:00.0\n";
const USB: &str = "6,890,1843400000,-;usb 1-1: new high-speed USB device number 2 using xhci_hcd\n";

#[test]
fn kmsg_reads_until_caught_up_and_never_waits() {
    let os = FakeOs {
        kmsg: Some(Ok(vec![Step::Record(USB), Step::Record(XID79)])),
        ..FakeOs::default()
    };
    let log =
        read_kernel_log_with(&os, &LogSource::Auto, &ReadLimits::default()).expect("kmsg readable");
    assert_eq!(
        log.source,
        SourceUsed {
            kind: SourceKind::Kmsg,
            path: Some("/dev/kmsg".into())
        }
    );
    assert_eq!(log.records_scanned, 2);
    assert_eq!(log.xids.len(), 1);
    assert_eq!(log.xids[0].time, RecordTime::SinceBoot(1_843_308_145));
    assert_eq!(log.clock, CLOCK);
    assert_eq!(os.reads.get(), 3, "two records, then one EAGAIN");
    assert_eq!(
        os.after_caught_up.get(),
        1,
        "EAGAIN means caught up: the reader must not retry"
    );
}

#[test]
fn kmsg_overwritten_records_are_counted_and_reading_continues() {
    let steps = vec![
        Step::Errno(libc::EPIPE),
        Step::Record(USB),
        Step::Errno(libc::EINTR),
        Step::Errno(libc::EPIPE),
        Step::Record(XID79),
    ];
    let os = FakeOs {
        kmsg: Some(Ok(steps)),
        ..FakeOs::default()
    };
    let log = read_kernel_log_with(
        &os,
        &LogSource::Kmsg("/dev/kmsg".into()),
        &ReadLimits::default(),
    )
    .expect("readable");
    assert_eq!(log.lost_records, 2);
    assert_eq!(log.records_scanned, 2);
    assert_eq!(log.xids.len(), 1);
}

#[test]
fn kmsg_record_larger_than_8_kib_is_retried_with_a_larger_buffer() {
    let big: &'static str = Box::leak(
        format!(
            "4,1,1000000,-;NVRM: Xid (PCI:0000:3b:00): 13, {}\n",
            "x".repeat(9000)
        )
        .into_boxed_str(),
    );
    let os = FakeOs {
        kmsg: Some(Ok(vec![Step::Record(big), Step::Record(XID79)])),
        ..FakeOs::default()
    };
    let log =
        read_kernel_log_with(&os, &LogSource::Auto, &ReadLimits::default()).expect("readable");
    assert_eq!(
        log.xids.iter().map(|x| x.code).collect::<Vec<_>>(),
        [13, 79]
    );
}

#[test]
fn kmsg_read_errors_fall_back_to_syslog_in_auto_mode() {
    let os = FakeOs {
        kmsg: Some(Ok(vec![Step::Record(USB), Step::Errno(libc::EIO)])),
        syslog_size: Some(Ok(4096)),
        syslog_text: Some(Ok(
            "<3>[ 1843.308145] NVRM: Xid (PCI:0000:b3:00): 79, GPU has fallen off the bus.\n<6>[ 1900.000000] eth0: up\n",
        )),
        ..FakeOs::default()
    };
    let log = read_kernel_log_with(&os, &LogSource::Auto, &ReadLimits::default())
        .expect("syslog readable");
    assert_eq!(
        log.source,
        SourceUsed {
            kind: SourceKind::Syslog,
            path: None
        }
    );
    assert_eq!(log.records_scanned, 2);
    assert_eq!(log.newest, Some(RecordTime::SinceBoot(1_900_000_000)));
    assert_eq!(log.xids[0].code, 79);
}

#[test]
fn syslog_larger_than_the_limit_reads_the_newest_bytes_and_drops_the_cut_line() {
    let text = "<6>[    1.000000] first line that will be cut\n<3>[    2.000000] NVRM: Xid (PCI:0000:3b:00): 31, MMU Fault\n";
    let os = FakeOs {
        syslog_size: Some(Ok(text.len())),
        syslog_text: Some(Ok(text)),
        ..FakeOs::default()
    };
    let limits = ReadLimits {
        max_bytes: 70,
        ..ReadLimits::default()
    };
    let log = read_kernel_log_with(&os, &LogSource::Syslog, &limits).expect("readable");
    assert_eq!(log.records_scanned, 1);
    assert_eq!(log.xids[0].code, 31);
    assert_eq!(
        log.stopped_early.as_deref(),
        Some(
            format!(
                "read the newest 70 of {} bytes (the agent's read limit)",
                text.len()
            )
            .as_str()
        )
    );
}

#[test]
fn every_source_failing_names_each_attempt_its_os_error_and_the_fix() {
    let os = FakeOs {
        kmsg: Some(Err(libc::ENOENT)),
        syslog_size: Some(Err(libc::EPERM)),
        ..FakeOs::default()
    };
    let error =
        read_kernel_log_with(&os, &LogSource::Auto, &ReadLimits::default()).expect_err("both fail");
    assert_eq!(error.attempts().len(), 2);
    assert_eq!(
        error.to_string(),
        "cannot read the kernel log; tried /dev/kmsg, syslog(2):\n\
         - /dev/kmsg: open failed: No such file or directory (os error 2) — there is no kmsg device node in this container (normal unless it is privileged or mounts the device)\n\
         - syslog(2): klogctl(SYSLOG_ACTION_SIZE_BUFFER) failed: Operation not permitted (os error 1) — the process lacks CAP_SYSLOG (required while kernel.dmesg_restrict=1), or the seccomp profile blocks syslog(2)\n\
         To fix: grant the agent container CAP_SYSLOG (GpuDiagnosticsConfig `agent.kernelLog: true` adds it), keep a seccomp profile that allows syslog(2) (RuntimeDefault does once CAP_SYSLOG is granted) and check `sysctl kernel.dmesg_restrict`; or pass --kmsg-path FILE with a saved kernel log."
    );
}

#[test]
fn each_os_error_gets_its_own_hint() {
    let cases: &[(LogSource, FakeOs, &str)] = &[
        (
            LogSource::Kmsg("/host/dev/kmsg".into()),
            FakeOs {
                kmsg: Some(Err(libc::EACCES)),
                ..FakeOs::default()
            },
            "- /host/dev/kmsg: open failed: Permission denied (os error 13) — access denied by the container's device cgroup, its AppArmor/SELinux profile, or kernel.dmesg_restrict=1 without CAP_SYSLOG",
        ),
        (
            LogSource::Kmsg("/dev/kmsg".into()),
            FakeOs {
                kmsg: Some(Err(libc::EPERM)),
                ..FakeOs::default()
            },
            "- /dev/kmsg: open failed: Operation not permitted (os error 1) — access denied by the container's device cgroup",
        ),
        (
            LogSource::Syslog,
            FakeOs {
                syslog_size: Some(Ok(1024)),
                syslog_text: Some(Err(libc::ENOSYS)),
                ..FakeOs::default()
            },
            "- syslog(2): klogctl(SYSLOG_ACTION_READ_ALL) failed: Function not implemented (os error 38) — syslog(2) is unavailable: the seccomp profile blocks it",
        ),
        (
            LogSource::File("/var/log/missing.log".into()),
            FakeOs {
                file: Some(Err(libc::ENOENT)),
                ..FakeOs::default()
            },
            "- /var/log/missing.log: open failed: No such file or directory (os error 2) — no such file: check the --kmsg-path value",
        ),
        (
            LogSource::File("/root/kern.log".into()),
            FakeOs {
                file: Some(Err(libc::EACCES)),
                ..FakeOs::default()
            },
            "- /root/kern.log: open failed: Permission denied (os error 13) — the agent's user may not read it: check the file's mode and owner",
        ),
        (
            LogSource::File("/var/log".into()),
            FakeOs {
                file: Some(Err(libc::EISDIR)),
                ..FakeOs::default()
            },
            "- /var/log: open failed: Is a directory (os error 21) — it is a directory: pass a file",
        ),
    ];
    for (source, os, expected) in cases {
        let text = read_kernel_log_with(os, source, &ReadLimits::default())
            .expect_err("fails")
            .to_string();
        assert!(
            text.contains(expected),
            "{source:?}:\n{text}\nshould contain\n{expected}"
        );
    }
}

#[test]
fn a_failing_file_source_suggests_fixing_the_path_not_capabilities() {
    let os = FakeOs {
        file: Some(Err(libc::ENOENT)),
        ..FakeOs::default()
    };
    let text = read_kernel_log_with(&os, &LogSource::File("/x".into()), &ReadLimits::default())
        .expect_err("fails")
        .to_string();
    assert!(text.ends_with("To fix: pass a readable kernel-log file to --kmsg-path (output of `dmesg --raw`, `dmesg --time-format iso` or `journalctl -k -o short-iso`), or leave it unset to read the kernel log directly."), "{text}");
    assert!(!text.contains("CAP_SYSLOG"));
}

#[test]
fn endless_epipe_gives_up_instead_of_spinning() {
    let steps = vec![Step::Errno(libc::EPIPE); 1001];
    let os = FakeOs {
        kmsg: Some(Ok(steps)),
        ..FakeOs::default()
    };
    let error = read_kernel_log_with(
        &os,
        &LogSource::Kmsg("/dev/kmsg".into()),
        &ReadLimits::default(),
    )
    .expect_err("gives up");
    assert!(
        error
            .to_string()
            .contains("/dev/kmsg: read failed: Broken pipe"),
        "{error}"
    );
}

#[test]
fn a_kmsg_path_that_is_a_character_device_is_read_record_by_record() {
    let os = FakeOs {
        kmsg: Some(Ok(vec![Step::Record(XID79)])),
        ..FakeOs::default()
    };
    let log = read_kernel_log_with(
        &os,
        &LogSource::File("/host/dev/kmsg".into()),
        &ReadLimits::default(),
    )
    .expect("readable");
    assert_eq!(
        log.source,
        SourceUsed {
            kind: SourceKind::Kmsg,
            path: Some("/host/dev/kmsg".into())
        }
    );
    assert_eq!(log.xids[0].sequence, Some(889));
    assert_eq!(
        os.opened.borrow().as_slice(),
        [PathBuf::from("/host/dev/kmsg")]
    );
}

#[test]
fn files_in_every_format_are_read_line_by_line() {
    let os = FakeOs {
        file: Some(Ok(
            "[    0.000000] Linux version 6.8.0\n[ 1843.308145] NVRM: Xid (PCI:0000:b3:00): 79, GPU has fallen off the bus.\n2026-11-27T09:59:00,000000+00:00 NVRM: Xid (PCI:0000:3b:00): 13, pid=7, name=a, Graphics Exception\nno newline at the end",
        )),
        ..FakeOs::default()
    };
    let log = read_kernel_log_with(
        &os,
        &LogSource::File("saved.log".into()),
        &ReadLimits::default(),
    )
    .expect("readable");
    assert_eq!(
        log.source,
        SourceUsed {
            kind: SourceKind::File,
            path: Some("saved.log".into())
        }
    );
    assert_eq!(log.records_scanned, 4);
    assert_eq!(log.xids[1].time, RecordTime::Wall(1_795_773_540_000_000));
}

#[test]
fn lines_source_uses_the_simulated_uptime() {
    let source = LogSource::Lines {
        lines: vec!["[ 3599.000000] NVRM: Xid (PCI:0000:3b:00): 63, Row Remapper".into()],
        uptime_seconds: 3600.0,
    };
    let log = read_kernel_log(&source, &ReadLimits::default()).expect("always readable");
    assert_eq!(log.clock.monotonic_micros, 3_600_000_000);
    assert_eq!(log.source.kind, SourceKind::Lines);
    assert_eq!(log.xids[0].code, 63);
}

// ---- the real operating system --------------------------------------------------------------

#[test]
fn real_files_large_and_small_are_read_within_limits() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for i in 0..1000 {
        writeln!(file, "[ {i}.000000] noise line {i}").expect("write");
    }
    writeln!(
        file,
        "[ 1000.000000] NVRM: Xid (PCI:0000:3b:00): 48, pid=1, name=x, DBE"
    )
    .expect("write");
    let path = file.path().to_path_buf();
    let log =
        read_kernel_log(&LogSource::File(path.clone()), &ReadLimits::default()).expect("readable");
    assert_eq!((log.records_scanned, log.xids.len()), (1001, 1));
    let limits = ReadLimits {
        max_bytes: 2000,
        ..ReadLimits::default()
    };
    let log = read_kernel_log(&LogSource::File(path), &limits).expect("readable");
    assert!(
        log.records_scanned < 100,
        "only the tail is read: {}",
        log.records_scanned
    );
    assert_eq!(log.xids.len(), 1, "the newest lines are the ones kept");
    assert!(
        log.stopped_early
            .as_deref()
            .is_some_and(|s| s.starts_with("read the newest 2000 of"))
    );
}

#[test]
fn real_missing_path_and_directory_fail_with_their_os_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.log");
    let text = read_kernel_log(&LogSource::File(missing), &ReadLimits::default())
        .expect_err("missing")
        .to_string();
    assert!(
        text.contains("open failed: No such file or directory (os error 2) — no such file"),
        "{text}"
    );
    let text = read_kernel_log(&LogSource::File(dir.path().into()), &ReadLimits::default())
        .expect_err("dir")
        .to_string();
    assert!(
        text.contains("open failed: Is a directory (os error 21) — it is a directory"),
        "{text}"
    );
}

#[test]
fn real_fifo_with_a_silent_writer_does_not_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("kmsg.fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: c_path is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    // Hold a writer open (O_RDWR does not block) that never writes: a blocking reader would hang.
    let _writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("writer");
    let started = Instant::now();
    let log = read_kernel_log(&LogSource::File(fifo), &ReadLimits::default()).expect("readable");
    assert_eq!(log.records_scanned, 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the read must return at once"
    );
}

#[test]
fn real_dev_kmsg_when_readable_returns_promptly() {
    let started = Instant::now();
    match read_kernel_log(
        &LogSource::Kmsg(DEFAULT_KMSG_PATH.into()),
        &ReadLimits::default(),
    ) {
        Ok(log) => {
            assert!(
                log.records_scanned > 0,
                "a readable /dev/kmsg has boot messages"
            );
            assert!(log.oldest.is_some());
        }
        Err(error) => eprintln!("skipped: /dev/kmsg not readable here: {error}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "non-blocking: returns once caught up"
    );
}

#[test]
fn real_syslog_when_permitted_returns_records() {
    match read_kernel_log(&LogSource::Syslog, &ReadLimits::default()) {
        Ok(log) => assert_eq!(log.source.kind, SourceKind::Syslog),
        Err(error) => {
            let text = error.to_string();
            assert!(text.contains("syslog(2): klogctl("), "{text}");
        }
    }
}

#[test]
fn real_unreadable_file_reports_permission_denied_when_not_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!(
            "skipped: root reads mode-000 files; the EACCES mapping is covered by each_os_error_gets_its_own_hint"
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let text = read_kernel_log(&LogSource::File(file.path().into()), &ReadLimits::default())
        .expect_err("unreadable")
        .to_string();
    assert!(
        text.contains(
            "open failed: Permission denied (os error 13) — the agent's user may not read it"
        ),
        "{text}"
    );
}

/// Reads `text` as a file through a read buffer of `capacity` bytes.
fn read_in_chunks(text: &str, capacity: usize, limits: &ReadLimits, skip_first: bool) -> KernelLog {
    let mut scanner = LogScanner::new(limits);
    let reader = io::BufReader::with_capacity(capacity, Cursor::new(text.as_bytes().to_vec()));
    read_lines(reader, &mut scanner, limits, skip_first).unwrap();
    scanner.finish(
        SourceUsed {
            kind: SourceKind::File,
            path: None,
        },
        CLOCK,
    )
}

/// The same text taken one line at a time, the plain way.
fn read_line_by_line(text: &str, limits: &ReadLimits, skip_first: bool) -> KernelLog {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    let lines = &lines[usize::from(skip_first).min(lines.len())..];
    let mut log = KernelLog::from_lines(
        lines,
        SourceUsed {
            kind: SourceKind::File,
            path: None,
        },
        CLOCK,
        limits,
    );
    log.source.kind = SourceKind::File;
    log
}

#[test]
fn whole_line_runs_count_and_keep_exactly_what_line_by_line_reading_does() {
    let timed = "<6>[   10.000000] eth0: link up\n\
        <6>[   11.000000] NVRM: GPU at PCI:0000:3b:00: GPU-aaaa\n\
        <4>[   12.000000] NVRM: Xid (PCI:0000:3b:00): 79, pid=0, name=, GPU has fallen off the bus.\n\
        \x20SUBSYSTEM=pci\n\
        \n\
        <6>[   13.000000] NVRM: GPU Board Serial Number: 1 NVRM: Xid (PCI:0000:3b:00): 13, hidden\n\
        <4>[   14.000000] NVRM: Xid (PCI:0000:3b:00): thirteen\n\
        <6>[   15.000000] NVRM: GPU at PCI:0000:3b:00: GPU-bbbb\n\
        <6>[   16.000000] usb 1-1: new device\n";
    let cases: Vec<(&str, String)> = vec![
        ("timed dmesg --raw", timed.to_owned()),
        ("no trailing newline", timed.trim_end().to_owned()),
        (
            "untimed head and tail",
            format!("Nov 27 host kernel: boot\n{timed}Nov 27 host kernel: NVRM: Xid (PCI:0000:3b:00): 31, tail\n"),
        ),
        (
            "syslog stamps only",
            "Nov 27 host kernel: [ 5.0] a\nNov 27 host kernel: [ 6.0] NVRM: Xid (PCI:0000:3b:00): 43, x\nNov 27 host: no stamp\n"
                .to_owned(),
        ),
        (
            "over-long lines",
            format!("[ 1.0] {}\n[ 2.0] NVRM: Xid (PCI:0000:3b:00): 48, {}\n[ 3.0] short\n", "x".repeat(300), "y".repeat(300)),
        ),
        ("crlf", timed.replace('\n', "\r\n")),
    ];
    let limits = [
        ReadLimits::default(),
        ReadLimits {
            max_line_bytes: 100,
            ..ReadLimits::default()
        },
        ReadLimits {
            max_records: 4,
            ..ReadLimits::default()
        },
    ];
    for (name, text) in &cases {
        for limit in &limits {
            for skip_first in [false, true] {
                let expected = read_line_by_line(text, limit, skip_first);
                for capacity in [1, 2, 7, 16, 61, 64, 200, 4096] {
                    let got = read_in_chunks(text, capacity, limit, skip_first);
                    assert_eq!(
                        got, expected,
                        "{name}, {limit:?}, skip_first {skip_first}, buffer {capacity}"
                    );
                }
            }
        }
    }
}
