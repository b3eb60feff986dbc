//! Kernel-log readers: `/dev/kmsg`, `syslog(2)`, a file, or in-memory lines. All bounded and
//! non-blocking: they read what is there and return, never wait for new records.
//!
//! The operating system sits behind [`KernelLogOs`] so the error paths (no device node, EPERM,
//! EPIPE, EAGAIN, EINVAL…) are testable without privileges; [`OsKernelLog`] is the real one.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::scan::{KernelLog, LogScanner, ReadLimits, SourceKind, SourceUsed};
use super::time::Clock;

/// The kernel's log device.
pub const DEFAULT_KMSG_PATH: &str = "/dev/kmsg";
/// One kmsg record per read(2); the kernel's records are at most ~1 KiB of text plus dictionary.
const KMSG_RECORD_BUFFER: usize = 8 * 1024;
/// Buffer tried once when the kernel answers EINVAL (record larger than the buffer).
const KMSG_LARGE_BUFFER: usize = 64 * 1024;
/// Consecutive EPIPE answers tolerated before giving up (a real kmsg answers EPIPE once per gap).
const MAX_CONSECUTIVE_EPIPE: u32 = 1000;
const FILE_BUFFER: usize = 64 * 1024;

/// Where to read the kernel log from.
#[derive(Debug, Clone, PartialEq)]
pub enum LogSource {
    /// `/dev/kmsg`, then `syslog(2)`.
    Auto,
    /// A kmsg-style character device.
    Kmsg(PathBuf),
    /// The `syslog(2)` system call (`klogctl` READ_ALL): needs CAP_SYSLOG, no device node.
    Syslog,
    /// A saved log (any supported line format) or a kmsg-style character device (`--kmsg-path`).
    File(PathBuf),
    /// In-memory lines, with the simulated uptime their since-boot stamps are relative to.
    Lines {
        lines: Vec<String>,
        uptime_seconds: f64,
    },
}

/// One source that could not be read: what was tried, which operation failed, and the OS error.
#[derive(Debug)]
pub struct SourceFailure {
    pub kind: SourceKind,
    pub path: Option<PathBuf>,
    pub operation: &'static str,
    pub error: io::Error,
}

impl SourceFailure {
    fn name(&self) -> String {
        match (&self.path, self.kind) {
            (_, SourceKind::Syslog) => "syslog(2)".to_owned(),
            (Some(path), _) => path.display().to_string(),
            (None, _) => format!("{:?}", self.kind),
        }
    }

    /// Why this error happens here, in terms of what the operator controls.
    pub fn hint(&self) -> &'static str {
        let errno = self.error.raw_os_error().unwrap_or(0);
        match (self.kind, errno) {
            (SourceKind::Kmsg, libc::ENOENT) => {
                "there is no kmsg device node in this container (normal unless it is privileged or mounts the device)"
            }
            (SourceKind::Kmsg, libc::EACCES | libc::EPERM) => {
                "access denied by the container's device cgroup, its AppArmor/SELinux profile, or kernel.dmesg_restrict=1 without CAP_SYSLOG"
            }
            (SourceKind::Kmsg, libc::EINVAL) => {
                "a kernel record did not fit the 64 KiB read buffer"
            }
            (SourceKind::Syslog, libc::EPERM | libc::EACCES) => {
                "the process lacks CAP_SYSLOG (required while kernel.dmesg_restrict=1), or the seccomp profile blocks syslog(2)"
            }
            (SourceKind::Syslog, libc::ENOSYS) => {
                "syslog(2) is unavailable: the seccomp profile blocks it or the kernel was built without printk"
            }
            (_, libc::ENOENT) => "no such file: check the --kmsg-path value",
            (_, libc::EACCES | libc::EPERM) => {
                "the agent's user may not read it: check the file's mode and owner"
            }
            (_, libc::EISDIR) => "it is a directory: pass a file",
            _ => "unexpected error",
        }
    }
}

/// The kernel log could not be read from any source tried.
#[derive(Debug, thiserror::Error)]
pub enum KernelLogError {
    #[error("{}", render_failures(.attempts))]
    Unreadable { attempts: Vec<SourceFailure> },
}

impl KernelLogError {
    /// Every source tried, in order.
    pub fn attempts(&self) -> &[SourceFailure] {
        match self {
            KernelLogError::Unreadable { attempts } => attempts,
        }
    }
}

fn render_failures(attempts: &[SourceFailure]) -> String {
    let names: Vec<String> = attempts.iter().map(SourceFailure::name).collect();
    let mut text = format!("cannot read the kernel log; tried {}:", names.join(", "));
    for attempt in attempts {
        text.push_str(&format!(
            "\n- {}: {} failed: {} — {}",
            attempt.name(),
            attempt.operation,
            attempt.error,
            attempt.hint()
        ));
    }
    let only_files = attempts.iter().all(|a| a.kind == SourceKind::File);
    text.push_str(if only_files {
        "\nTo fix: pass a readable kernel-log file to --kmsg-path (output of `dmesg --raw`, `dmesg --time-format iso` or `journalctl -k -o short-iso`), or leave it unset to read the kernel log directly."
    } else {
        "\nTo fix: grant the agent container CAP_SYSLOG (GpuDiagnosticsConfig `agent.kernelLog: true` adds it), keep a seccomp profile that allows syslog(2) (RuntimeDefault does once CAP_SYSLOG is granted) and check `sysctl kernel.dmesg_restrict`; or pass --kmsg-path FILE with a saved kernel log."
    });
    text
}

/// A kmsg-style device: one record per read, `WouldBlock` when caught up.
pub trait KmsgDevice {
    fn read_record(&mut self, buffer: &mut [u8]) -> io::Result<usize>;
}

/// A regular file that can be read from its end.
pub trait SeekRead: Read + Seek {}
impl<T: Read + Seek> SeekRead for T {}

/// What a `--kmsg-path` turned out to be.
pub enum OpenedPath {
    CharDevice(Box<dyn KmsgDevice>),
    File {
        file: Box<dyn SeekRead>,
        len: u64,
    },
    /// A FIFO or socket: read as lines until EOF or `WouldBlock`.
    Stream(Box<dyn Read>),
}

/// The operating-system calls the readers make (the seam for tests).
pub trait KernelLogOs {
    /// Opens a kmsg device non-blocking, positioned at its oldest record.
    fn open_kmsg(&self, path: &Path) -> io::Result<Box<dyn KmsgDevice>>;
    /// Opens a `--kmsg-path`, non-blocking.
    fn open_path(&self, path: &Path) -> io::Result<OpenedPath>;
    /// `klogctl(SYSLOG_ACTION_SIZE_BUFFER)`.
    fn syslog_buffer_size(&self) -> io::Result<usize>;
    /// `klogctl(SYSLOG_ACTION_READ_ALL)` into `buffer` (the last `buffer.len()` bytes of the log).
    fn syslog_read_all(&self, buffer: &mut [u8]) -> io::Result<usize>;
    fn clock(&self) -> Clock;
}

/// The real operating system.
pub struct OsKernelLog;

struct FileDevice(fs::File);

impl KmsgDevice for FileDevice {
    fn read_record(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.0.read(buffer)
    }
}

const SYSLOG_ACTION_READ_ALL: libc::c_int = 3;
const SYSLOG_ACTION_SIZE_BUFFER: libc::c_int = 10;

fn open_nonblocking(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

impl KernelLogOs for OsKernelLog {
    fn open_kmsg(&self, path: &Path) -> io::Result<Box<dyn KmsgDevice>> {
        let mut file = open_nonblocking(path)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Box::new(FileDevice(file)))
    }

    fn open_path(&self, path: &Path) -> io::Result<OpenedPath> {
        let metadata = fs::metadata(path)?;
        if metadata.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        if metadata.file_type().is_char_device() {
            return self.open_kmsg(path).map(OpenedPath::CharDevice);
        }
        let file = open_nonblocking(path)?;
        Ok(if metadata.is_file() {
            OpenedPath::File {
                file: Box::new(file),
                len: metadata.len(),
            }
        } else {
            OpenedPath::Stream(Box::new(file))
        })
    }

    fn syslog_buffer_size(&self) -> io::Result<usize> {
        // SAFETY: SIZE_BUFFER ignores the buffer arguments.
        let size = unsafe { libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0) };
        usize::try_from(size).map_err(|_| io::Error::last_os_error())
    }

    fn syslog_read_all(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let len = libc::c_int::try_from(buffer.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the kernel writes at most `len` bytes into `buffer`, which is at least that long.
        let read =
            unsafe { libc::klogctl(SYSLOG_ACTION_READ_ALL, buffer.as_mut_ptr().cast(), len) };
        usize::try_from(read).map_err(|_| io::Error::last_os_error())
    }

    fn clock(&self) -> Clock {
        Clock::now()
    }
}

/// Reads the kernel log from `source` with the real operating system. Blocking but bounded: run it
/// off the async executor (`spawn_blocking`).
pub fn read_kernel_log(
    source: &LogSource,
    limits: &ReadLimits,
) -> Result<KernelLog, KernelLogError> {
    read_kernel_log_with(&OsKernelLog, source, limits)
}

type Attempt = Result<KernelLog, SourceFailure>;

/// [`read_kernel_log`] over any [`KernelLogOs`].
pub fn read_kernel_log_with(
    os: &dyn KernelLogOs,
    source: &LogSource,
    limits: &ReadLimits,
) -> Result<KernelLog, KernelLogError> {
    let attempts: Vec<Attempt> = match source {
        LogSource::Auto => {
            let kmsg = read_kmsg(os, Path::new(DEFAULT_KMSG_PATH), limits);
            match kmsg {
                Ok(log) => return Ok(log),
                Err(failure) => {
                    tracing::debug!(error = %failure.error, "/dev/kmsg unreadable, trying syslog(2)");
                    vec![Err(failure), read_syslog(os, limits)]
                }
            }
        }
        LogSource::Kmsg(path) => vec![read_kmsg(os, path, limits)],
        LogSource::Syslog => vec![read_syslog(os, limits)],
        LogSource::File(path) => vec![read_path(os, path, limits)],
        LogSource::Lines {
            lines,
            uptime_seconds,
        } => {
            let source = SourceUsed {
                kind: SourceKind::Lines,
                path: None,
            };
            return Ok(KernelLog::from_lines(
                lines,
                source,
                Clock::with_uptime(*uptime_seconds),
                limits,
            ));
        }
    };
    let mut failures = Vec::new();
    for attempt in attempts {
        match attempt {
            Ok(log) => return Ok(log),
            Err(failure) => failures.push(failure),
        }
    }
    Err(KernelLogError::Unreadable { attempts: failures })
}

fn failure(
    kind: SourceKind,
    path: Option<&Path>,
    operation: &'static str,
) -> impl FnOnce(io::Error) -> SourceFailure {
    let path = path.map(Path::to_path_buf);
    move |error| SourceFailure {
        kind,
        path,
        operation,
        error,
    }
}

fn read_kmsg(os: &dyn KernelLogOs, path: &Path, limits: &ReadLimits) -> Attempt {
    let mut device = os
        .open_kmsg(path)
        .map_err(failure(SourceKind::Kmsg, Some(path), "open"))?;
    let mut scanner = LogScanner::new(limits);
    drain_kmsg(device.as_mut(), &mut scanner, limits).map_err(failure(
        SourceKind::Kmsg,
        Some(path),
        "read",
    ))?;
    let source = SourceUsed {
        kind: SourceKind::Kmsg,
        path: Some(path.display().to_string()),
    };
    Ok(scanner.finish(source, os.clock()))
}

/// Reads records until the device is caught up (EAGAIN), at EOF, or at a limit. Never waits.
fn drain_kmsg(
    device: &mut dyn KmsgDevice,
    scanner: &mut LogScanner,
    limits: &ReadLimits,
) -> io::Result<()> {
    let mut buffer = vec![0u8; KMSG_RECORD_BUFFER];
    let mut bytes_read: u64 = 0;
    let mut consecutive_epipe = 0;
    loop {
        match device.read_record(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => {
                consecutive_epipe = 0;
                bytes_read += read as u64;
                if !scanner.push_kmsg_record(&buffer[..read]) {
                    return Ok(());
                }
                if bytes_read >= limits.max_bytes {
                    scanner.stopped_early = Some(format!(
                        "stopped after {bytes_read} bytes (the agent's read limit)"
                    ));
                    return Ok(());
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.raw_os_error() == Some(libc::EPIPE) => {
                // Records were overwritten before we read them; the next read continues after the gap.
                scanner.lost_records += 1;
                consecutive_epipe += 1;
                if consecutive_epipe >= MAX_CONSECUTIVE_EPIPE {
                    return Err(error);
                }
            }
            Err(error)
                if error.raw_os_error() == Some(libc::EINVAL)
                    && buffer.len() < KMSG_LARGE_BUFFER =>
            {
                buffer.resize(KMSG_LARGE_BUFFER, 0);
            }
            Err(error) => return Err(error),
        }
    }
}

fn read_syslog(os: &dyn KernelLogOs, limits: &ReadLimits) -> Attempt {
    let size = os.syslog_buffer_size().map_err(failure(
        SourceKind::Syslog,
        None,
        "klogctl(SYSLOG_ACTION_SIZE_BUFFER)",
    ))?;
    let len = usize::try_from(limits.max_bytes)
        .unwrap_or(usize::MAX)
        .min(size);
    let mut buffer = vec![0u8; len];
    let read = os.syslog_read_all(&mut buffer).map_err(failure(
        SourceKind::Syslog,
        None,
        "klogctl(SYSLOG_ACTION_READ_ALL)",
    ))?;
    let mut scanner = LogScanner::new(limits);
    let mut text = &buffer[..read.min(len)];
    if len < size {
        // READ_ALL returned the last `len` bytes: the first line is cut.
        text = memchr::memchr(b'\n', text).map_or(&[], |first| &text[first + 1..]);
        scanner.stopped_early = Some(format!(
            "read the newest {len} of {size} bytes (the agent's read limit)"
        ));
    }
    let whole = memchr::memrchr(b'\n', text).map_or(0, |last| last + 1);
    if scanner.push_lines(&text[..whole]) && whole < text.len() {
        scanner.push_line(&text[whole..]);
    }
    Ok(scanner.finish(
        SourceUsed {
            kind: SourceKind::Syslog,
            path: None,
        },
        os.clock(),
    ))
}

fn read_path(os: &dyn KernelLogOs, path: &Path, limits: &ReadLimits) -> Attempt {
    let opened = os
        .open_path(path)
        .map_err(failure(SourceKind::File, Some(path), "open"))?;
    let mut scanner = LogScanner::new(limits);
    let kind = match opened {
        OpenedPath::CharDevice(mut device) => {
            drain_kmsg(device.as_mut(), &mut scanner, limits).map_err(failure(
                SourceKind::Kmsg,
                Some(path),
                "read",
            ))?;
            SourceKind::Kmsg
        }
        OpenedPath::File { mut file, len } => {
            let skip_first = if len > limits.max_bytes {
                let start = len - limits.max_bytes;
                file.seek(SeekFrom::Start(start)).map_err(failure(
                    SourceKind::File,
                    Some(path),
                    "seek",
                ))?;
                scanner.stopped_early = Some(format!(
                    "read the newest {} of {len} bytes (the agent's read limit)",
                    limits.max_bytes
                ));
                true
            } else {
                false
            };
            let reader = BufReader::with_capacity(FILE_BUFFER, file.take(limits.max_bytes));
            read_lines(reader, &mut scanner, limits, skip_first).map_err(failure(
                SourceKind::File,
                Some(path),
                "read",
            ))?;
            SourceKind::File
        }
        OpenedPath::Stream(stream) => {
            let reader = BufReader::with_capacity(FILE_BUFFER, stream.take(limits.max_bytes));
            read_lines(reader, &mut scanner, limits, false).map_err(failure(
                SourceKind::File,
                Some(path),
                "read",
            ))?;
            SourceKind::File
        }
    };
    let source = SourceUsed {
        kind,
        path: Some(path.display().to_string()),
    };
    Ok(scanner.finish(source, os.clock()))
}

/// Splits a byte stream into lines without holding more than one (bounded) line beyond the read
/// buffer in memory: the buffer's whole lines go to the scanner as one run, the line cut by the
/// buffer's end is carried into the next.
fn read_lines(
    mut reader: impl BufRead,
    scanner: &mut LogScanner,
    limits: &ReadLimits,
    mut skip_first: bool,
) -> io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let line_cap = limits.max_line_bytes + 1;
    let mut at_line_start = true;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        };
        if chunk.is_empty() {
            break;
        }
        let mut start = 0;
        if !at_line_start || skip_first {
            // Finish the line the previous chunk cut (or the first line, when it is to be skipped).
            let Some(newline) = memchr::memchr(b'\n', chunk) else {
                let room = line_cap.saturating_sub(carry.len());
                carry.extend_from_slice(&chunk[..chunk.len().min(room)]);
                at_line_start = false;
                let consumed = chunk.len();
                reader.consume(consumed);
                continue;
            };
            let room = line_cap.saturating_sub(carry.len());
            carry.extend_from_slice(&chunk[..newline.min(room)]);
            let keep_going = std::mem::take(&mut skip_first) || scanner.push_line(&carry);
            carry.clear();
            if !keep_going {
                return Ok(());
            }
            start = newline + 1;
        }
        if let Some(last) = memchr::memrchr(b'\n', &chunk[start..]) {
            let end = start + last + 1;
            if !scanner.push_lines(&chunk[start..end]) {
                return Ok(());
            }
            start = end;
        }
        let rest = &chunk[start..];
        carry.extend_from_slice(&rest[..rest.len().min(line_cap)]);
        at_line_start = rest.is_empty();
        let consumed = chunk.len();
        reader.consume(consumed);
    }
    if !carry.is_empty() && !skip_first {
        scanner.push_line(&carry);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
