//! `--format json`: the report as one JSON document (schema `pidns.scan/v1`).

use crate::report::ScanReport;

pub fn render(report: &ScanReport) -> String {
    // Serializing plain data with string keys cannot fail.
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
