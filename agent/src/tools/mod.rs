//! The tools' pure halves: typed outputs built from GPU snapshots (and kernel logs), with no MCP or NVML
//! knowledge. The server module turns them into MCP results.

pub mod gpu_node;
pub mod inventory;
pub mod pod_gpus;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::gpu::{NvmlReturn, ReadError, Reading};

/// Why a field of a result is absent: the NVML code and a sentence saying what it means.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Unavailable {
    /// NVML's error code, e.g. `NOT_SUPPORTED`, `GPU_IS_LOST`, `NO_PERMISSION`.
    pub code: NvmlReturn,
    pub reason: String,
}

impl From<&ReadError> for Unavailable {
    fn from(e: &ReadError) -> Self {
        Unavailable {
            code: e.code,
            reason: e.to_string(),
        }
    }
}

/// Collects the readings of one result object: values pass through, errors are recorded under the
/// output field's name so nothing unreadable is ever reported as 0 or silently dropped.
#[derive(Default)]
pub struct Collector {
    pub unavailable: BTreeMap<String, Unavailable>,
}

impl Collector {
    /// The reading's value, or `None` with the reason recorded under `field`.
    pub fn take<T: Clone>(&mut self, field: &str, reading: &Reading<T>) -> Option<T> {
        match reading {
            Ok(v) => Some(v.clone()),
            Err(e) => {
                self.unavailable.insert(field.to_string(), e.into());
                None
            }
        }
    }

    /// Like [`take`](Self::take) for a reading that yields several output fields: records the error
    /// under each of `fields`.
    pub fn take_group<T: Clone>(&mut self, fields: &[&str], reading: &Reading<T>) -> Option<T> {
        match reading {
            Ok(v) => Some(v.clone()),
            Err(e) => {
                for f in fields {
                    self.unavailable.insert(f.to_string(), e.into());
                }
                None
            }
        }
    }
}
