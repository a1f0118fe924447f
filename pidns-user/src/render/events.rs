//! `pidns watch` output: JSON lines, or one readable line per event.

use std::fmt::Write as _;

use super::{BOLD, CYAN, DIM, RED, YELLOW, escape, short_id};
use crate::watch::events::{ContainerRef, NewPidnsVia, WatchEvent};

/// One JSON object, no newline.
pub fn json(e: &WatchEvent) -> String {
    serde_json::to_string(e)
        .unwrap_or_else(|err| format!("{{\"event\":\"error\",\"message\":\"{err}\"}}"))
}

fn who(c: &ContainerRef) -> String {
    let mut s = format!("{} {}", c.runtime, escape(short_id(&c.container_id)));
    let name = c
        .name
        .clone()
        .or_else(|| c.pod.as_ref().and_then(|p| p.name.clone()));
    if let Some(n) = name {
        let _ = write!(s, " ({})", escape(&n));
    }
    s
}

/// One line for a terminal.
pub fn human(e: &WatchEvent) -> String {
    match e {
        WatchEvent::Ready {
            mode,
            probes,
            probes_missing,
            host_pidns,
            containers,
            sharing,
            ..
        } => {
            let ns = host_pidns.inode.map_or_else(
                || "the proc root's own".to_owned(),
                |i| format!("pid:[{i}]"),
            );
            let mut how = if *mode == "ebpf" {
                format!("{} probes attached", probes.len())
            } else {
                "polling /proc".to_owned()
            };
            for m in probes_missing {
                how.push_str(&format!("; {} NOT seen ({} missing)", m.unseen, m.probe));
            }
            format!(
                "{BOLD}ready{BOLD:#}: watching {containers} containers ({sharing} in the host PID namespace) against {ns}; {how}"
            )
        }
        WatchEvent::HostPidns(f) => {
            let mut line = format!(
                "{} {RED}HOST PIDNS{RED:#} {:<13} {}  pid {} {}",
                f.ts,
                f.trigger.as_str(),
                who(&f.container),
                f.pid,
                escape(&f.comm)
            );
            if let Some(file) = &f.filename {
                let _ = write!(line, " {DIM}{}{DIM:#}", escape(file));
            }
            if let Some(flags) = &f.clone_flags
                && !flags.names.is_empty()
            {
                let _ = write!(line, " {DIM}{}{DIM:#}", flags.names.join("|"));
            }
            line
        }
        WatchEvent::Setns(s) => {
            let (style, what) = if s.ok {
                (RED, "joined")
            } else {
                (YELLOW, "tried to join")
            };
            let err = s
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            let how = match (s.target_pid, s.compat) {
                (Some(t), false) => format!(" (pidfd of pid {t})"),
                (Some(t), true) => format!(" (pidfd of pid {t}, 32-bit syscall)"),
                (None, true) => " (32-bit syscall)".to_owned(),
                (None, false) => String::new(),
            };
            format!(
                "{} {style}SETNS{style:#}      {} {what} the host's {} namespace{how}{err}  pid {} {}",
                s.ts,
                who(&s.container),
                s.nstype,
                s.pid,
                escape(&s.comm)
            )
        }
        WatchEvent::NewPidns(n) => {
            let how = match n.via {
                NewPidnsVia::Clone => "cloned with CLONE_NEWPID",
                NewPidnsVia::UnshareOrSetns => "after unshare/setns of its PID namespace",
            };
            format!(
                "{} {CYAN}NEW PIDNS{CYAN:#}  {} child {} in pid:[{}], {how}  pid {} {}",
                n.ts,
                who(&n.container),
                n.child_pid,
                n.pidns_inode,
                n.pid,
                escape(&n.comm)
            )
        }
        WatchEvent::Stats {
            events,
            unattributed,
            lost,
            ts,
        } => {
            format!(
                "{ts} {DIM}stats{DIM:#}: {events} kernel events, {unattributed} unattributed (process gone, cgroup unknown), {lost} lost"
            )
        }
        WatchEvent::Lost { count, total, ts } => {
            format!(
                "{ts} {CYAN}LOST{CYAN:#}       {count} events dropped by the kernel ({total} in all); findings may be missing"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        report::{HostMethod, HostPidns},
        watch::events::MissingProbe,
    };

    #[test]
    fn ready_says_what_a_missing_probe_leaves_unseen() {
        let e = WatchEvent::Ready {
            mode: "ebpf",
            probes: vec!["sched_process_exec".into()],
            probes_missing: vec![MissingProbe::new(
                "sys_exit_setns",
                "tracefs is not mounted",
            )],
            host_pidns: HostPidns {
                inode: Some(4026531836),
                method: HostMethod::Nspid,
                host_pid: 1,
                inode_source_pid: Some(2),
                procfs_own: true,
            },
            containers: 0,
            sharing: 0,
            metrics_addr: None,
            pidns_version: "0",
            ts: String::new(),
        };
        let line = human(&e);
        assert!(
            line.contains("1 probes attached; setns into host namespaces (escapes) NOT seen (sys_exit_setns missing)"),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&e)).expect("json");
        assert_eq!(v["probes_missing"][0]["probe"], "sys_exit_setns");
        assert_eq!(v["probes_missing"][0]["reason"], "tracefs is not mounted");
    }
}
