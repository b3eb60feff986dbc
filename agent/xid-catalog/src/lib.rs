//! Parser, validator and code generator for `agent/data/xid-catalog.csv`.
//!
//! Used by the agent's `build.rs` (which turns the CSV into a static table, so a malformed row fails
//! the build) and by the agent's catalog tests (which exercise the error paths). Keep it
//! dependency-free.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Header row every catalog file must carry, in this order.
pub const COLUMNS: [&str; 11] = [
    "code",
    "mnemonic",
    "immediate_action",
    "investigatory_action",
    "fatal",
    "severity",
    "applies_to",
    "xid154_linkage",
    "description",
    "meaning",
    "notes",
];

/// Action-bucket names allowed in the CSV and the `ActionBucket` variant each one becomes.
pub const ACTION_BUCKETS: [(&str, &str); 25] = [
    ("RESTART_APP", "RestartApp"),
    ("RESET_GPU", "ResetGpu"),
    ("RESTART_BM", "RestartBm"),
    ("IGNORE", "Ignore"),
    ("CHECK_MECHANICALS", "CheckMechanicals"),
    ("UNEXPECTED_ERR_REPORT_ISSUE", "UnexpectedErrReportIssue"),
    ("CONTACT_SUPPORT", "ContactSupport"),
    ("RESTART_VM", "RestartVm"),
    ("UPDATE_SWFW", "UpdateSwfw"),
    ("CHECK_UVM", "CheckUvm"),
    ("WORKFLOW_XID_13", "WorkflowXid13"),
    ("WORKFLOW_XID_31", "WorkflowXid31"),
    ("WORKFLOW_XID_45", "WorkflowXid45"),
    ("WORKFLOW_XID_48", "WorkflowXid48"),
    ("WORKFLOW_NVLINK_ERR", "WorkflowNvlinkErr"),
    ("WORKFLOW_NVLINK5_ERR", "WorkflowNvlink5Err"),
    ("XID_154", "Xid154"),
    ("CHECK_APP_CUDA", "CheckAppCuda"),
    ("INVESTIGATE_SW", "InvestigateSw"),
    ("INVESTIGATE_SW_USER", "InvestigateSwUser"),
    ("INVESTIGATE_LINK_SI", "InvestigateLinkSi"),
    ("IGNORE_SYMPATHETIC", "IgnoreSympathetic"),
    ("SYMPATHETIC_REPORT_SOLO", "SympatheticReportSolo"),
    ("XID_137_FLOW", "Xid137Flow"),
    ("INFORMATIONAL", "Informational"),
];

/// Severity names allowed in the CSV and the `Severity` variant each one becomes.
pub const SEVERITIES: [(&str, &str); 4] = [
    ("info", "Info"),
    ("warning", "Warning"),
    ("error", "Error"),
    ("critical", "Critical"),
];

/// GPU families the catalog's "applies to" columns name.
pub const GPU_FAMILIES: [&str; 4] = ["A100", "H100", "B100", "GB200"];

/// The lowest code range the catalog must cover without a gap (NVIDIA's catalog, NVSentinel's CSV).
pub const REQUIRED_CODES: std::ops::RangeInclusive<u32> = 1..=162;

/// One validated catalog row; strings are trimmed and non-empty where required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRow {
    pub code: u32,
    pub mnemonic: String,
    pub immediate_action: &'static str,
    pub investigatory_action: &'static str,
    pub fatal: Option<bool>,
    pub severity: &'static str,
    pub applies_to: Vec<&'static str>,
    pub xid154_linkage: Option<String>,
    pub description: String,
    pub meaning: String,
    pub notes: String,
}

/// Parses and validates the whole catalog; the error names the line and what is wrong with it.
pub fn parse_catalog(text: &str) -> Result<Vec<CatalogRow>, String> {
    let mut rows: Vec<CatalogRow> = Vec::new();
    let mut header_seen = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.starts_with('#') || raw.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(raw).map_err(|e| format!("line {line}: {e}"))?;
        if !header_seen {
            if fields != COLUMNS {
                return Err(format!(
                    "line {line}: header must be `{}`, found `{}`",
                    COLUMNS.join(","),
                    fields.join(",")
                ));
            }
            header_seen = true;
            continue;
        }
        let row = parse_row(&fields).map_err(|e| format!("line {line}: {e}"))?;
        if let Some(previous) = rows.last()
            && row.code <= previous.code
        {
            return Err(format!(
                "line {line}: code {} must be greater than the previous row's code {} (rows are sorted, codes unique)",
                row.code, previous.code
            ));
        }
        rows.push(row);
    }
    if !header_seen {
        return Err("no header row: the catalog is empty".to_owned());
    }
    let codes: BTreeSet<u32> = rows.iter().map(|r| r.code).collect();
    let missing: Vec<String> = REQUIRED_CODES
        .filter(|c| !codes.contains(c))
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "codes {} are missing: the catalog must cover every code in {}..={}",
            missing.join(", "),
            REQUIRED_CODES.start(),
            REQUIRED_CODES.end()
        ));
    }
    Ok(rows)
}

fn parse_row(fields: &[String]) -> Result<CatalogRow, String> {
    if fields.len() != COLUMNS.len() {
        return Err(format!(
            "expected {} fields ({}), found {}",
            COLUMNS.len(),
            COLUMNS.join(","),
            fields.len()
        ));
    }
    let field = |i: usize| fields[i].trim();
    let code: u32 = field(0)
        .parse()
        .map_err(|_| format!("code `{}` is not a positive integer", field(0)))?;
    if code == 0 {
        return Err("code 0 is not an Xid".to_owned());
    }
    let mnemonic = field(1);
    if mnemonic.is_empty()
        || !mnemonic
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "_ /".contains(c))
    {
        return Err(format!(
            "mnemonic `{mnemonic}` must be non-empty upper-case ASCII (A-Z, 0-9, _, ' / ')"
        ));
    }
    let immediate_action = lookup(&ACTION_BUCKETS, field(2), "immediate_action")?;
    let investigatory_action = lookup(&ACTION_BUCKETS, field(3), "investigatory_action")?;
    let fatal = match field(4) {
        "FATAL" => Some(true),
        "NONFATAL" => Some(false),
        "UNKNOWN" => None,
        other => {
            return Err(format!(
                "fatal `{other}` must be FATAL, NONFATAL or UNKNOWN"
            ));
        }
    };
    let severity = lookup(&SEVERITIES, field(5), "severity")?;
    let mut applies_to = Vec::new();
    for family in field(6).split_whitespace() {
        let known = GPU_FAMILIES.iter().find(|f| **f == family).ok_or_else(|| {
            format!(
                "applies_to `{family}` is not one of {}",
                GPU_FAMILIES.join(", ")
            )
        })?;
        applies_to.push(*known);
    }
    let xid154_linkage = Some(field(7).to_owned()).filter(|s| !s.is_empty());
    let description = field(8).to_owned();
    let meaning = field(9).to_owned();
    if description.is_empty() || meaning.is_empty() {
        return Err("description and meaning must not be empty".to_owned());
    }
    Ok(CatalogRow {
        code,
        mnemonic: mnemonic.to_owned(),
        immediate_action,
        investigatory_action,
        fatal,
        severity,
        applies_to,
        xid154_linkage,
        description,
        meaning,
        notes: field(10).to_owned(),
    })
}

fn lookup(
    table: &[(&'static str, &'static str)],
    value: &str,
    column: &str,
) -> Result<&'static str, String> {
    table
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(name, _)| *name)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            format!("{column} `{value}` is not one of {}", names.join(", "))
        })
}

fn variant(table: &[(&'static str, &'static str)], name: &str) -> &'static str {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap_or("Unknown")
}

/// Splits one CSV line (RFC 4180 quoting, no embedded newlines) into its fields.
pub fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    let mut field_was_quoted = false;
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            (true, '"') => {
                in_quotes = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err(format!(
                        "text after a closing quote in field {}",
                        fields.len() + 1
                    ));
                }
            }
            (true, c) => current.push(c),
            (false, '"') if current.is_empty() && !field_was_quoted => {
                in_quotes = true;
                field_was_quoted = true;
            }
            (false, '"') => {
                return Err(format!(
                    "stray quote in unquoted field {}",
                    fields.len() + 1
                ));
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut current));
                field_was_quoted = false;
            }
            (false, c) => current.push(c),
        }
    }
    if in_quotes {
        return Err(format!("unterminated quote in field {}", fields.len() + 1));
    }
    fields.push(current);
    Ok(fields)
}

/// Renders the validated rows as the Rust source of `CATALOG` (included by `catalog.rs`).
pub fn render_rust(rows: &[CatalogRow]) -> String {
    let mut out = String::new();
    out.push_str(
        "// @generated by agent/build.rs from agent/data/xid-catalog.csv; edit the CSV, not this file.\n",
    );
    let _ = writeln!(
        out,
        "pub(crate) static CATALOG: [XidCatalogEntry; {}] = [",
        rows.len()
    );
    for row in rows {
        let fatal = match row.fatal {
            Some(true) => "Some(true)",
            Some(false) => "Some(false)",
            None => "None",
        };
        let applies: Vec<String> = row.applies_to.iter().map(|f| format!("{f:?}")).collect();
        let linkage = match &row.xid154_linkage {
            Some(text) => format!("Some({text:?})"),
            None => "None".to_owned(),
        };
        let _ = writeln!(
            out,
            "    XidCatalogEntry {{ code: {}, mnemonic: {:?}, immediate_action: ActionBucket::{}, \
             investigatory_action: ActionBucket::{}, fatal: {fatal}, severity: Severity::{}, \
             applies_to: &[{}], xid154_linkage: {linkage}, description: {:?}, meaning: {:?}, notes: {:?} }},",
            row.code,
            row.mnemonic,
            variant(&ACTION_BUCKETS, row.immediate_action),
            variant(&ACTION_BUCKETS, row.investigatory_action),
            variant(&SEVERITIES, row.severity),
            applies.join(", "),
            row.description,
            row.meaning,
            row.notes,
        );
    }
    out.push_str("];\n");
    out
}
