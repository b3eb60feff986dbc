//! PASS/WARN/FAIL: the one verdict scale the health check and the Xid analysis both judge with, kept
//! apart from either so neither has to import the other for it.

use schemars::JsonSchema;
use serde::Serialize;

/// The verdict of one GPU, the node-level checks, or the whole node.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// No finding above info.
    #[default]
    Pass,
    /// At least one warning, no failure.
    Warn,
    /// At least one failure.
    Fail,
}

impl Verdict {
    /// `PASS`, `WARN` or `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}
