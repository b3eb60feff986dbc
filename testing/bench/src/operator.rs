//! The operator's side of the bench (filled in once the operator lands on main).

use crate::report::{Row, Target};

/// The operator's numbers.
pub struct OperatorResults {}

/// The operator's table rows.
pub fn rows(_op: &OperatorResults) -> Vec<Row> {
    Vec::new()
}

/// The operator's targets.
pub fn targets(_op: Option<&OperatorResults>) -> Vec<Target> {
    Vec::new()
}

/// The operator's Method lines.
pub fn method(_op: &OperatorResults) -> Vec<String> {
    Vec::new()
}

/// The operator's lessons.
pub fn learned(_op: &OperatorResults) -> Vec<String> {
    Vec::new()
}

/// Measures the operator.
pub fn measure(_bin_dir: &std::path::Path, _quick: bool) -> Result<OperatorResults, String> {
    Err("the operator has not landed on main yet".to_owned())
}
