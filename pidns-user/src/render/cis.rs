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
//!
//! As the benchmark's audit (`docker ps --all`), a container that is not
//! running (created, exited) but configured to share fails the control
//! too, on a line that says it is not running; `--running-only` leaves
//! such containers out.

use std::fmt::Write as _;

use super::{CONTROL_TITLE, REMEDIATION, enclosure, escape, label, short_id};
use crate::report::{Container, FoundBy, ScanReport, Verdict};

pub fn render(r: &ScanReport) -> String {
    let mut out = String::new();
    let g = Groups::of(r);
    let pass = g.sharing.is_empty() && g.unknown.is_empty() && g.outside.is_empty();
    let _ = writeln!(out, "[INFO] 5 - Container Runtime");
    let _ = writeln!(
        out,
        "[{}] 5.16 - {CONTROL_TITLE} (numbered 5.15 in CIS Docker Benchmark v1.1.0-v1.5.0)",
        if pass { "PASS" } else { "WARN" }
    );
    g.lines(&mut out);
    let _ = writeln!(out, "[INFO]      * {}", g.tally(r));
    if !g.sharing.is_empty() || !g.outside.is_empty() {
        let _ = writeln!(out, "[INFO]      * Remediation: {REMEDIATION}");
    } else if !g.unknown.is_empty() {
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

/// The containers by what the control says of them.
struct Groups<'a> {
    sharing: Vec<&'a Container>,
    allowed: Vec<&'a Container>,
    unknown: Vec<&'a Container>,
    unverified: Vec<&'a Container>,
    outside: Vec<&'a Container>,
}

impl<'a> Groups<'a> {
    fn of(r: &'a ScanReport) -> Groups<'a> {
        let with = |v: Verdict| -> Vec<&Container> {
            r.containers.iter().filter(|c| c.verdict == v).collect()
        };
        Groups {
            sharing: with(Verdict::Shares),
            allowed: with(Verdict::Allowed),
            unknown: with(Verdict::Unknown),
            unverified: with(Verdict::Unverified),
            outside: r
                .containers
                .iter()
                .filter(|c| !c.outside_cgroup_pids.is_empty())
                .collect(),
        }
    }

    /// One line per container the control has something to say about.
    fn lines(&self, out: &mut String) {
        for c in &self.sharing {
            if let Some(stopped) = super::configured::not_running(c) {
                let _ = writeln!(
                    out,
                    "[WARN]      * Configured to share the host PID namespace, {stopped}: {} ({}), {}",
                    label(c),
                    who(c),
                    super::configured::configuration(c).unwrap_or_default()
                );
                continue;
            }
            let pids: Vec<u32> = c.host_pidns_processes.iter().map(|p| p.pid).collect();
            let _ = writeln!(
                out,
                "[WARN]      * Host PID namespace shared with: {} ({}) pids {}",
                label(c),
                who(c),
                pid_list(&pids)
            );
        }
        for c in &self.outside {
            let _ = writeln!(
                out,
                "[WARN]      * Outside its container's cgroup: {} ({}) pids {}",
                label(c),
                who(c),
                pid_list(&c.outside_cgroup_pids)
            );
        }
        for c in &self.unknown {
            let _ = writeln!(
                out,
                "[WARN]      * Could not be checked: {} ({}): {}",
                label(c),
                who(c),
                escape(c.unknown_reason.as_deref().unwrap_or("unreadable"))
            );
        }
        for c in &self.allowed {
            let stopped = super::configured::not_running(c)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "[INFO]      * Allowed to share the host PID namespace: {} ({}){stopped}, {}",
                label(c),
                who(c),
                escape(c.allowed_by.as_deref().unwrap_or("allowed"))
            );
        }
        for c in &self.unverified {
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
    }

    /// How many were checked, and with what outcome.
    fn tally(&self, r: &ScanReport) -> String {
        let checked = r.summary.containers - self.unknown.len();
        let mut tally = format!(
            "{checked} of {} containers checked: {} in the host PID namespace without being allowed",
            r.summary.containers,
            self.sharing.len()
        );
        let stopped = self
            .sharing
            .iter()
            .filter(|c| c.found_by == FoundBy::State)
            .count();
        if stopped > 0 {
            let how = if r.offline {
                "read offline"
            } else {
                "not running"
            };
            let _ = write!(
                tally,
                " ({stopped} of them by their configuration alone, {how})"
            );
        }
        if !self.allowed.is_empty() {
            let _ = write!(tally, ", {} allowed to be", self.allowed.len());
        }
        if !self.unknown.is_empty() {
            let _ = write!(tally, ", {} could not be checked", self.unknown.len());
        }
        if !self.unverified.is_empty() {
            let _ = write!(tally, ", {} unverified claims", self.unverified.len());
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
        tally
    }
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
