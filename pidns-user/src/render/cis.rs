//! `--format cis`: benchmark-style lines, as compliance tooling prints them.
//!
//! The control is `[WARN]` when a container shares the host PID namespace
//! without being allowed, when a container process is outside its
//! container's cgroup, and also when a container could not be checked: an
//! unchecked container is not a pass. `[PASS]` means every container was
//! checked and none shares it, allowed ones aside. The exit code does not
//! follow the `[WARN]` of unchecked containers: it stays 0 unless one
//! shares or a process left its cgroup (README, "Exit codes"). An
//! unverified claim (a cgroup named like a container's, nothing else) is an
//! `[INFO]` line: it is not a container.

use std::fmt::Write as _;

use super::{CONTROL_TITLE, REMEDIATION, enclosure, escape, label, short_id};
use crate::report::{Container, ScanReport, Verdict};

pub fn render(r: &ScanReport) -> String {
    let mut out = String::new();
    let with = |v: Verdict| -> Vec<&Container> {
        r.containers.iter().filter(|c| c.verdict == v).collect()
    };
    let (sharing, allowed, unknown, unverified) = (
        with(Verdict::Shares),
        with(Verdict::Allowed),
        with(Verdict::Unknown),
        with(Verdict::Unverified),
    );
    let outside: Vec<&Container> = r
        .containers
        .iter()
        .filter(|c| !c.outside_cgroup_pids.is_empty())
        .collect();
    let pass = sharing.is_empty() && unknown.is_empty() && outside.is_empty();
    let _ = writeln!(out, "[INFO] 5 - Container Runtime");
    let _ = writeln!(
        out,
        "[{}] 5.16 - {CONTROL_TITLE} (numbered 5.15 in CIS Docker Benchmark v1.1.0-v1.5.0)",
        if pass { "PASS" } else { "WARN" }
    );
    for c in &sharing {
        let _ = writeln!(
            out,
            "[WARN]      * Host PID namespace shared with: {} ({}) pids {}",
            label(c),
            who(c),
            pid_list(
                &c.host_pidns_processes
                    .iter()
                    .map(|p| p.pid)
                    .collect::<Vec<_>>()
            )
        );
    }
    for c in &outside {
        let _ = writeln!(
            out,
            "[WARN]      * Outside its container's cgroup: {} ({}) pids {}",
            label(c),
            who(c),
            pid_list(&c.outside_cgroup_pids)
        );
    }
    for c in &unknown {
        let _ = writeln!(
            out,
            "[WARN]      * Could not be checked: {} ({}): {}",
            label(c),
            who(c),
            escape(c.unknown_reason.as_deref().unwrap_or("unreadable"))
        );
    }
    for c in &allowed {
        let _ = writeln!(
            out,
            "[INFO]      * Allowed to share the host PID namespace: {} ({}), {}",
            label(c),
            who(c),
            escape(c.allowed_by.as_deref().unwrap_or("allowed"))
        );
    }
    for c in &unverified {
        let _ = writeln!(
            out,
            "[INFO]      * Unverified claim, not a container: {} ({}) cgroup {}, owner uid {}: {}",
            label(c),
            who(c),
            escape(&c.cgroup),
            c.owner_uid
                .map_or_else(|| "?".to_owned(), |u| u.to_string()),
            escape(
                c.unverified_reason
                    .as_deref()
                    .unwrap_or("no container evidence")
            )
        );
    }
    let checked = r.summary.containers - unknown.len();
    let mut tally = format!(
        "{checked} of {} containers checked: {} in the host PID namespace without being allowed",
        r.summary.containers,
        sharing.len()
    );
    if !allowed.is_empty() {
        let _ = write!(tally, ", {} allowed to be", allowed.len());
    }
    if !unknown.is_empty() {
        let _ = write!(tally, ", {} could not be checked", unknown.len());
    }
    if !unverified.is_empty() {
        let _ = write!(tally, ", {} unverified claims", unverified.len());
    }
    if r.summary.outside_cgroup > 0 {
        let _ = write!(
            tally,
            ", {} processes outside their container's cgroup",
            r.summary.outside_cgroup
        );
    }
    if r.summary.cgroup_unreadable > 0 {
        let _ = write!(
            tally,
            ", {} processes with an unreadable cgroup file judged by their namespaces and root",
            r.summary.cgroup_unreadable
        );
    }
    let _ = writeln!(out, "[INFO]      * {tally}");
    if !sharing.is_empty() || !outside.is_empty() {
        let _ = writeln!(out, "[INFO]      * Remediation: {REMEDIATION}");
    } else if !unknown.is_empty() {
        let _ = writeln!(
            out,
            "[INFO]      * Remediation: run pidns as root (or with CAP_SYS_PTRACE) so that every container's namespace links are readable"
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "[NOTE]      * {}", escape(w));
    }
    let _ = writeln!(
        out,
        "[INFO] Checks: 1, Score: {}",
        if pass { 1 } else { -1 }
    );
    out
}

/// `docker 3f2a…` (and where it is nested).
fn who(c: &Container) -> String {
    format!("{} {}{}", c.runtime, escape(short_id(&c.id)), enclosure(c))
}

fn pid_list(pids: &[u32]) -> String {
    const SHOWN: usize = 8;
    let mut s: Vec<String> = pids.iter().take(SHOWN).map(u32::to_string).collect();
    if pids.len() > SHOWN {
        s.push(format!("and {} more", pids.len() - SHOWN));
    }
    s.join(", ")
}
