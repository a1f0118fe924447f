//! `--format table`: the default, for people.

use std::fmt::Write as _;

use super::{BOLD, DIM, RED, display_name, enclosure, escape, label, short_id, verdict_style};
use crate::report::{Container, FoundBy, HostMethod, Method, ScanReport, Verdict};

pub fn render(r: &ScanReport) -> String {
    let mut out = String::new();
    host_line(&mut out, r);
    containers(&mut out, r);
    evidence(&mut out, r);
    summary(&mut out, r);
    out
}

/// Which namespace is the host's, and how that was established.
fn host_line(out: &mut String, r: &ScanReport) {
    let host = match (r.host_pidns.inode, r.host_pidns.method) {
        (Some(ino), HostMethod::NsLink) => {
            format!("pid:[{ino}] (ns/pid of PID {})", r.host_pidns.host_pid)
        }
        (Some(ino), HostMethod::Nspid) => format!(
            "pid:[{ino}] (PID {}'s link unreadable; NSpid, inode via PID {})",
            r.host_pidns.host_pid,
            r.host_pidns.inode_source_pid.unwrap_or_default()
        ),
        (_, HostMethod::Offline) => "not read (--offline: the runtimes' records only)".to_owned(),
        (None, _) => format!(
            "the proc root's own (NSpid of PID {})",
            r.host_pidns.host_pid
        ),
    };
    let _ = writeln!(out, "{BOLD}Host PID namespace{BOLD:#}: {host}");
}

/// One aligned row per container.
fn containers(out: &mut String, r: &ScanReport) {
    if r.containers.is_empty() {
        let _ = writeln!(
            out,
            "No containers found among {} processes.",
            r.summary.processes_scanned
        );
    } else {
        let rows: Vec<[String; 7]> = r
            .containers
            .iter()
            .map(|c| {
                let pidns = if !c.host_pidns_processes.is_empty() {
                    "host".to_owned()
                } else if c.found_by == FoundBy::State {
                    "-".to_owned()
                } else {
                    c.pidns_inodes
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                [
                    verdict_word(c.verdict).to_owned(),
                    c.runtime.to_string(),
                    escape(short_id(&c.id)).into_owned(),
                    display_name(c).map_or_else(|| "-".to_owned(), |n| escape(&n).into_owned()),
                    c.pids.len().to_string(),
                    if pidns.is_empty() { "?".into() } else { pidns },
                    c.state.to_string(),
                ]
            })
            .collect();
        let header = [
            "VERDICT",
            "RUNTIME",
            "CONTAINER",
            "NAME",
            "PIDS",
            "PIDNS",
            "STATE",
        ];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let _ = writeln!(out);
        let line: Vec<String> = header
            .iter()
            .zip(widths)
            .map(|(h, w)| format!("{h:<w$}"))
            .collect();
        let _ = writeln!(out, "{BOLD}{}{BOLD:#}", line.join("  ").trim_end());
        for (row, c) in rows.iter().zip(&r.containers) {
            let style = verdict_style(c.verdict);
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            let _ = writeln!(
                out,
                "{style}{}{style:#}  {}",
                cells[0],
                cells[1..].join("  ").trim_end()
            );
        }
    }
}

/// Why each sharing, unknown or unverified container, and each with a
/// process outside its cgroup, is flagged.
fn evidence(out: &mut String, r: &ScanReport) {
    let flagged: Vec<_> = r
        .containers
        .iter()
        .filter(|c| {
            c.shares_host_pidns == Some(true)
                || c.configured_host_pidns == Some(true)
                || matches!(c.verdict, Verdict::Unknown | Verdict::Unverified)
                || !c.outside_cgroup_pids.is_empty()
        })
        .collect();
    if !flagged.is_empty() {
        let _ = writeln!(out, "\n{BOLD}Evidence{BOLD:#}");
        for c in flagged {
            let _ = writeln!(
                out,
                "  {} {} ({}) cgroup {}{}",
                c.runtime,
                escape(short_id(&c.id)),
                label(c),
                escape(&c.cgroup),
                enclosure(c)
            );
            found_by_root(out, c);
            if let Some(clause) = super::configured::clause(c) {
                let _ = writeln!(out, "    {clause}");
            }
            processes(out, r, c);
            outside(out, c);
            if let Some(reason) = &c.unverified_reason {
                let uid = c
                    .owner_uid
                    .map_or_else(|| "?".to_owned(), |u| u.to_string());
                let _ = writeln!(
                    out,
                    "    {DIM}unverified claim, owner uid {uid}: {}{DIM:#}",
                    escape(reason)
                );
            }
            if let Some(by) = &c.allowed_by {
                let _ = writeln!(out, "    allowed by {}", escape(by));
            }
            if let Some(reason) = &c.unknown_reason {
                let _ = writeln!(out, "    {DIM}unknown: {}{DIM:#}", escape(reason));
            }
        }
    }
}

/// How a container found by its root was recognised.
fn found_by_root(out: &mut String, c: &Container) {
    if c.found_by != FoundBy::Root {
        return;
    }
    let mount = c.root_mount.as_ref().map_or_else(
        || "its root".to_owned(),
        |m| {
            let what = m
                .upperdir
                .as_deref()
                .map(|u| format!(" upperdir {}", escape(u)))
                .unwrap_or_else(|| format!(" {}", escape(m.source.as_deref().unwrap_or("-"))));
            format!("{}{what}, device {}", m.fs_type, m.device)
        },
    );
    let _ = match &c.rootfs {
        Some(rootfs) => writeln!(
            out,
            "    found by its root ({mount}): {}'s root filesystem {}",
            c.runtime,
            escape(rootfs)
        ),
        None => writeln!(
            out,
            "    found by its root ({mount}), its own mount namespace and root; no runtime's state names it"
        ),
    };
}

/// Its processes outside its container's cgroup that the lines above do
/// not show (those in a PID namespace of their own).
fn outside(out: &mut String, c: &Container) {
    let pids: Vec<String> = c
        .outside_cgroup_pids
        .iter()
        .filter(|&&pid| {
            !c.host_pidns_processes
                .iter()
                .any(|p| p.pid == pid && p.outside_cgroup)
        })
        .map(u32::to_string)
        .collect();
    if pids.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "    {RED}outside its container's cgroup{RED:#}: pids {}",
        pids.join(", ")
    );
}

/// A flagged container's host-PID processes: the first read in detail, the
/// others listed (all in detail with --all-evidence).
fn processes(out: &mut String, r: &ScanReport, c: &Container) {
    let (detailed, rest): (Vec<_>, Vec<_>) = c
        .host_pidns_processes
        .iter()
        .partition(|p| p.comm.is_some() || p.children_pidns_inode.is_some());
    for p in detailed {
        let comm = escape(p.comm.as_deref().unwrap_or("?"));
        let how = match (p.pidns_inode, p.method) {
            (Some(ino), Method::NsLink) => format!("ns/pid is pid:[{ino}], the host's"),
            (_, _) => "NSpid has a single entry".to_owned(),
        };
        let children = match p.children_pidns_inode {
            Some(ino) if Some(ino) != r.host_pidns.inode => {
                format!("; its children get pid:[{ino}]")
            }
            _ => String::new(),
        };
        let cgroup = if p.outside_cgroup {
            format!(
                "; outside its container's cgroup (in {})",
                escape(p.cgroup.as_deref().unwrap_or("?"))
            )
        } else {
            String::new()
        };
        let _ = writeln!(out, "    pid {} {comm}: {how}{children}{cgroup}", p.pid);
    }
    if !rest.is_empty() {
        const SHOWN: usize = 12;
        let mut pids: Vec<String> = rest.iter().take(SHOWN).map(|p| p.pid.to_string()).collect();
        if rest.len() > SHOWN {
            pids.push(format!("and {} more", rest.len() - SHOWN));
        }
        let _ = writeln!(
            out,
            "    also in the host PID namespace: pids {}",
            pids.join(", ")
        );
    }
}

/// The verdict in one sentence, the counts, and the warnings.
fn summary(out: &mut String, r: &ScanReport) {
    let s = &r.summary;
    let _ = writeln!(out);
    if s.sharing > 0 {
        let stopped = r
            .containers
            .iter()
            .any(|c| c.verdict == Verdict::Shares && c.found_by == FoundBy::State);
        let _ = writeln!(
            out,
            "{RED}{} of {} containers share the host PID namespace{}{RED:#} ({}).",
            s.sharing,
            s.containers,
            if stopped { " or are configured to" } else { "" },
            super::CONTROL_IDS
        );
    } else {
        let _ = writeln!(
            out,
            "No container shares the host PID namespace ({} checked).",
            s.containers
        );
    }
    if s.outside_cgroup > 0 {
        let (n, are) = if s.outside_cgroup == 1 {
            ("process is", "its")
        } else {
            ("processes are", "their")
        };
        let _ = writeln!(
            out,
            "{RED}{} container {n} outside {are} container's cgroup.{RED:#}",
            s.outside_cgroup
        );
    }
    let mut notes = Vec::new();
    if s.unverified > 0 {
        notes.push(format!(
            "{} unverified (a cgroup named like a container's, nothing else)",
            s.unverified
        ));
    }
    if s.cgroup_unreadable > 0 {
        notes.push(format!(
            "{} processes with an unreadable cgroup file (judged by their namespaces and root)",
            s.cgroup_unreadable
        ));
    }
    if s.allowed > 0 {
        notes.push(format!("{} allowed", s.allowed));
    }
    if s.not_running > 0 {
        notes.push(format!(
            "{} not running (judged by their runtime's record{})",
            s.not_running,
            if r.offline { ", read offline" } else { "" }
        ));
    }
    if s.unknown > 0 {
        notes.push(format!("{} unknown", s.unknown));
    }
    if s.permission_errors > 0 {
        notes.push(format!("{} permission errors", s.permission_errors));
    }
    if s.processes_vanished > 0 {
        notes.push(format!(
            "{} processes vanished (exited during the scan, or missing from the tree)",
            s.processes_vanished
        ));
    }
    notes.push(format!(
        "{} processes in {:.1} ms",
        s.processes_scanned, r.duration_ms
    ));
    let _ = writeln!(out, "{DIM}{}{DIM:#}", notes.join(", "));
    for w in &r.warnings {
        let _ = writeln!(out, "{DIM}warning: {}{DIM:#}", escape(w));
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Shares => "SHARES",
        Verdict::Allowed => "allowed",
        Verdict::Unknown => "UNKNOWN",
        Verdict::Unverified => "unverified",
        Verdict::Isolated => "isolated",
    }
}
