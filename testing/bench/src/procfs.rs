//! What a process costs the node, read from `/proc`: resident memory (now and peak) and CPU time.
//! Parsing is pure; the readers are thin.

use std::time::Duration;

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_bytes: u64,
    /// `VmHWM`: the most it was ever resident.
    pub hwm_bytes: u64,
}

/// Reading `/proc` failed: the process is gone or the file changed shape.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read /proc/{pid}/{file}: {source} (did the process exit early?)")]
    Read {
        pid: u32,
        file: &'static str,
        source: std::io::Error,
    },
    #[error("/proc/{pid}/{file} has no {field} field: not a Linux procfs this harness understands")]
    Field {
        pid: u32,
        file: &'static str,
        field: &'static str,
    },
}

/// Reads VmRSS and VmHWM of `pid`.
pub fn memory(pid: u32) -> Result<Memory, ProcError> {
    let text = read(pid, "status")?;
    let field = |name: &'static str| {
        status_kib(&text, name)
            .map(|kib| kib * 1024)
            .ok_or(ProcError::Field {
                pid,
                file: "status",
                field: name,
            })
    };
    Ok(Memory {
        rss_bytes: field("VmRSS")?,
        hwm_bytes: field("VmHWM")?,
    })
}

/// CPU time `pid`'s live threads have used so far, in nanoseconds from the scheduler
/// (`/proc/PID/task/*/schedstat`), falling back to `/proc/PID/stat`'s utime+stime (10 ms ticks)
/// where the kernel keeps no schedstat. Time of threads that already exited is not counted by the
/// first: measure windows in which the process keeps its threads.
pub fn cpu_time(pid: u32) -> Result<Duration, ProcError> {
    if let Some(nanos) = schedstat_nanos(pid) {
        return Ok(Duration::from_nanos(nanos));
    }
    let text = read(pid, "stat")?;
    let ticks = stat_cpu_ticks(&text).ok_or(ProcError::Field {
        pid,
        file: "stat",
        field: "utime/stime",
    })?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second(),
    ))
}

fn schedstat_nanos(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        // A thread that exits between the listing and the read is simply not counted.
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            total += schedstat_first(&text)?;
        }
    }
    Some(total)
}

/// The first field of a schedstat line: nanoseconds spent on a CPU.
fn schedstat_first(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

fn read(pid: u32, file: &'static str) -> Result<String, ProcError> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).map_err(|source| ProcError::Read {
        pid,
        file,
        source,
    })
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// The value in KiB of a `Name:   123 kB` line of `/proc/PID/status`.
fn status_kib(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// utime + stime (fields 14 and 15) of `/proc/PID/stat`, read after the `)` that closes the command
/// name (which may itself hold spaces and parentheses).
fn stat_cpu_ticks(text: &str) -> Option<u64> {
    let after_name = &text[text.rfind(')')? + 1..];
    // Fields after the name start at field 3 (state); utime is field 14.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_in_kib() {
        let text = "Name:\tagent\nVmPeak:\t  12000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n";
        assert_eq!(status_kib(text, "VmRSS"), Some(4096));
        assert_eq!(status_kib(text, "VmHWM"), Some(5120));
        assert_eq!(status_kib(text, "VmSwap"), None);
    }

    #[test]
    fn cpu_ticks_after_a_name_with_spaces_and_parens() {
        let text =
            "4242 (odd (name) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0 123 0 0";
        assert_eq!(stat_cpu_ticks(text), Some(42));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn schedstat_runtime_is_the_first_field() {
        assert_eq!(
            schedstat_first("227087868 322058908 767\n"),
            Some(227_087_868)
        );
        assert_eq!(schedstat_first(""), None);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let m = memory(pid).expect("own status");
        assert!(m.rss_bytes > 0 && m.hwm_bytes >= m.rss_bytes);
        cpu_time(pid).expect("own stat");
    }
}
