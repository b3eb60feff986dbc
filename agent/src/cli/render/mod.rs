//! One renderer per tool output type: each turns the typed result an MCP tool returns into the table
//! a person reads. Renderers only arrange and format; every judgement comes from the result itself.

pub mod fleet;
pub mod health;
pub mod inventory;
pub mod pods;
pub mod timeline;
pub mod xid;

use serde::Serialize;

/// What a table shows for a value the tool reported as unavailable (the reason is in `-o yaml`).
pub const NA: &str = "N/A";

/// The wire form of an enum (`DRAIN_AND_RESET`, `xid48_with_row_remap`), as `-o json` shows it.
pub fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => NA.to_string(),
    }
}

/// `12345MiB`, as `nvidia-smi` writes memory.
pub fn mib(bytes: u64) -> String {
    format!("{}MiB", bytes / (1024 * 1024))
}

/// `used / total` memory, or N/A.
pub fn memory(used: Option<u64>, total: Option<u64>) -> String {
    match (used, total) {
        (Some(u), Some(t)) => format!("{} / {}", mib(u), mib(t)),
        (None, Some(t)) => format!("{NA} / {}", mib(t)),
        _ => NA.to_string(),
    }
}

/// `draw / limit` in whole watts, or N/A.
pub fn power(draw: Option<f64>, limit: Option<f64>) -> String {
    let w = |v: f64| format!("{v:.0}W");
    match (draw, limit) {
        (Some(d), Some(l)) => format!("{} / {}", w(d), w(l)),
        (Some(d), None) => w(d),
        (None, Some(l)) => format!("{NA} / {}", w(l)),
        (None, None) => NA.to_string(),
    }
}

/// `33C`, or N/A.
pub fn temperature(celsius: Option<u32>) -> String {
    celsius.map_or_else(|| NA.to_string(), |c| format!("{c}C"))
}

/// An RFC 3339 time cut to whole seconds (`2026-12-07T18:47:41Z`).
pub fn seconds(time: &str) -> String {
    match (time.find('.'), time.ends_with('Z')) {
        (Some(dot), true) => format!("{}Z", &time[..dot]),
        _ => time.to_string(),
    }
}

/// The header line naming the node and where the data came from.
pub fn node_line(node_name: Option<&str>, data_source: &str) -> String {
    match node_name {
        Some(node) => format!("node {node} ({data_source})"),
        None => format!("this node ({data_source})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_as_nvidia_smi_writes_them() {
        assert_eq!(mib(85_520_809_984), "81559MiB");
        assert_eq!(
            memory(Some(555_745_280), Some(85_520_809_984)),
            "530MiB / 81559MiB"
        );
        assert_eq!(memory(None, None), "N/A");
        assert_eq!(power(Some(71.52), Some(700.0)), "72W / 700W");
        assert_eq!(power(None, None), "N/A");
        assert_eq!(temperature(Some(88)), "88C");
        assert_eq!(temperature(None), "N/A");
        assert_eq!(
            seconds("2026-12-07T18:47:41.176224Z"),
            "2026-12-07T18:47:41Z"
        );
        assert_eq!(seconds("2026-12-07T18:47:41Z"), "2026-12-07T18:47:41Z");
    }
}
