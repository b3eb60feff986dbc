//! Xid analysis: reads the kernel log, finds the NVIDIA driver's Xid lines, attributes them to GPUs
//! and explains them with NVIDIA's Xid catalog and its companion-Xid workflows.
//!
//! Flow: [`read_kernel_log`] (I/O, bounded, non-blocking) → [`KernelLog`] (Xid records + coverage +
//! the clock it was read with) → [`analyze`] (pure) → [`XidReport`] (the tool's structured output).
//!
//! ```no_run
//! use agent::xid::{analyze, read_kernel_log, AnalyzeOptions, GpuIdentity, LogSource, PciLocation, ReadLimits};
//! let log = read_kernel_log(&LogSource::Auto, &ReadLimits::default())?;
//! let gpus = [GpuIdentity { index: 0, uuid: None, pci: PciLocation::parse("00000000:3B:00.0") }];
//! let report = analyze(&log, &gpus, &AnalyzeOptions::default());
//! println!("{}", serde_json::to_string(&report)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod analyze;
pub mod catalog;
mod coverage;
pub mod detail;
mod options;
pub mod parse;
mod report;
mod scan;
mod source;
pub mod time;
mod workflow;

pub use analyze::{analyze, explain};
pub use options::{AnalyzeOptions, DEFAULT_MAX_EVENTS, GpuIdentity, MAX_EVENTS_LIMIT};
pub use parse::{PciLocation, RecordTime};
pub use report::{
    GpuXidAssessment, LogCoverage, RecommendedAction, Verdict, XidCodeSummary, XidEvent,
    XidExplanation, XidFinding, XidReport, XidRule,
};
pub use scan::{KernelLog, ReadLimits, SourceKind, SourceUsed, XidRecord};
pub use source::{
    DEFAULT_KMSG_PATH, KernelLogError, KernelLogOs, KmsgDevice, LogSource, OpenedPath, OsKernelLog,
    SeekRead, SourceFailure, read_kernel_log, read_kernel_log_with,
};
pub use time::Clock;
