//! `--format cis`: benchmark-style lines, as compliance tooling prints them.

use std::fmt::Write as _;

use super::{CONTROL_TITLE, REMEDIATION, label, short_id};
use crate::report::{ScanReport, Verdict};

pub fn render(r: &ScanReport) -> String {
    let mut out = String::new();
    let sharing: Vec<_> = r
        .containers
        .iter()
        .filter(|c| c.verdict == Verdict::Shares)
        .collect();
    let status = if sharing.is_empty() { "PASS" } else { "WARN" };
    let _ = writeln!(out, "[INFO] 5 - Container Runtime");
    let _ = writeln!(
        out,
        "[{status}] 5.16 - {CONTROL_TITLE} (numbered 5.15 in CIS Docker Benchmark v1.1.0-v1.5.0)"
    );
    for c in &sharing {
        let _ = writeln!(
            out,
            "[WARN]      * Host PID namespace shared with: {} ({} {}) pids {}",
            label(c),
            c.runtime,
            short_id(&c.id),
            pid_list(
                &c.host_pidns_processes
                    .iter()
                    .map(|p| p.pid)
                    .collect::<Vec<_>>()
            )
        );
    }
    for c in r
        .containers
        .iter()
        .filter(|c| c.verdict == Verdict::Allowed)
    {
        let _ = writeln!(
            out,
            "[INFO]      * Allowed to share the host PID namespace: {} ({} {})",
            label(c),
            c.runtime,
            short_id(&c.id)
        );
    }
    for c in r
        .containers
        .iter()
        .filter(|c| c.verdict == Verdict::Unknown)
    {
        let _ = writeln!(
            out,
            "[INFO]      * Could not check: {} ({} {}): {}",
            label(c),
            c.runtime,
            short_id(&c.id),
            c.unknown_reason.as_deref().unwrap_or("unreadable")
        );
    }
    if sharing.is_empty() {
        let _ = writeln!(
            out,
            "[INFO]      * {} containers checked, none in the host PID namespace",
            r.summary.containers
        );
    } else {
        let _ = writeln!(out, "[INFO]      * Remediation: {REMEDIATION}");
    }
    let _ = writeln!(
        out,
        "[INFO] Checks: 1, Score: {}",
        if sharing.is_empty() { 1 } else { -1 }
    );
    out
}

fn pid_list(pids: &[u32]) -> String {
    const SHOWN: usize = 8;
    let mut s: Vec<String> = pids.iter().take(SHOWN).map(u32::to_string).collect();
    if pids.len() > SHOWN {
        s.push(format!("and {} more", pids.len() - SHOWN));
    }
    s.join(", ")
}
