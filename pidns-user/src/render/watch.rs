//! `pidns watch --format human`: one readable line per event. (JSON lines
//! are the events' own serialisation, written by the watch output.)

use std::fmt::Write as _;

use super::{BOLD, CYAN, DIM, RED, YELLOW, escape, short_id};
use crate::report::{
    AccessTarget, AggregateEvent, Enforced, EscapeEvent, Finding, HostAccessAggregate,
    HostAccessEvent, Identity, NewPidnsEvent, NewPidnsVia, SetnsEvent, WatchEvent,
};

fn who(c: &Identity) -> String {
    let mut s = format!("{} {}", c.runtime, escape(short_id(&c.id)));
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
            enforce,
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
            if !enforce.is_empty() {
                how.push_str(&format!("; {RED}enforcing{RED:#} {}", enforce.join(",")));
            }
            format!(
                "{BOLD}ready{BOLD:#}: watching {containers} containers ({sharing} in the host PID namespace) against {ns}; {how}"
            )
        }
        WatchEvent::HostPidns(f) => finding(f),
        WatchEvent::Setns(s) => setns(s),
        WatchEvent::NewPidns(n) => new_pidns(n),
        WatchEvent::CgroupEscape(x) => escape_line(x),
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
        WatchEvent::Aggregate(a) => aggregate(a),
        WatchEvent::HostAccess(a) => host_access(a),
        WatchEvent::HostAccessAggregate(a) => host_access_aggregate(a),
        WatchEvent::Lost {
            stream,
            count,
            total,
            ts,
        } => {
            let what = if *stream == "findings" {
                "findings may be missing"
            } else {
                "no finding among them"
            };
            format!(
                "{ts} {CYAN}LOST{CYAN:#}       {count} {stream} events dropped by the kernel ({total} in all); {what}"
            )
        }
    }
}

fn finding(f: &Finding) -> String {
    let mut line = format!(
        "{} {RED}HOST PIDNS{RED:#} {:<13} {}  pid {} {}",
        f.at.ts,
        f.trigger.as_str(),
        who(&f.at.container),
        f.at.pid,
        escape(&f.at.comm)
    );
    if let Some(file) = &f.filename {
        let _ = write!(line, " {DIM}{}{DIM:#}", escape(file));
    }
    if let Some(flags) = &f.clone_flags
        && !flags.names.is_empty()
    {
        let _ = write!(line, " {DIM}{}{DIM:#}", flags.names.join("|"));
    }
    if f.outside_cgroup {
        let _ = write!(line, " {YELLOW}outside its container's cgroup{YELLOW:#}");
    }
    if let Some(e) = f.enforced {
        let _ = write!(line, " {BOLD}{}{BOLD:#}", enforced(e));
    }
    line
}

fn escape_line(x: &EscapeEvent) -> String {
    format!(
        "{} {RED}CGROUP ESCAPE{RED:#} {}  pid {} {} left {} for {} (moved by pid {})",
        x.at.ts,
        who(&x.at.container),
        x.at.pid,
        escape(&x.at.comm),
        escape(&x.from_cgroup),
        x.to_cgroup.as_deref().map_or_else(
            || "an unknown cgroup".to_owned(),
            |c| escape(c).into_owned()
        ),
        x.moved_by
    )
}

/// What `--enforce` did, as a human line says it.
fn enforced(e: Enforced) -> &'static str {
    match e {
        Enforced::Killed => "KILLED",
        Enforced::KilledByAgent => "KILLED by the agent",
    }
}

fn aggregate(a: &AggregateEvent) -> String {
    let what = match (a.trigger, a.ok) {
        (Some(t), _) => format!("{} {}", a.of, t.as_str()),
        (None, Some(true)) => format!("{} ({})", a.of, a.nstypes.join(",")),
        (None, Some(false)) => format!("refused {} ({})", a.of, a.nstypes.join(",")),
        (None, None) => a.of.to_owned(),
    };
    let style = if a.of == "new_pidns" { CYAN } else { RED };
    format!(
        "{} {style}AGGREGATE{style:#}  {} {} more {what} events, counted in the kernel  last pid {}",
        a.at.ts,
        who(&a.at.container),
        a.count,
        a.at.pid
    )
}

fn target(t: &AccessTarget) -> String {
    let comm = t
        .comm
        .as_deref()
        .map(escape)
        .unwrap_or_default()
        .into_owned();
    let whose = match (t.target.as_str(), &t.runtime) {
        ("host" | "unknown", _) => t.target.clone(),
        (id, Some(r)) => format!("{r} {}", escape(short_id(id))),
        (id, None) => escape(short_id(id)).into_owned(),
    };
    format!("pid {} {comm} ({whose})", t.pid)
}

fn host_access(a: &HostAccessEvent) -> String {
    let what = match (a.signal, a.ptrace_request) {
        (Some(0), _) => "signal 0 (probe)".to_owned(),
        (Some(n), _) => format!("signal {n}"),
        (None, Some(r)) => format!("ptrace request {r:#x}"),
        (None, None) => match &a.file {
            Some(f) => format!("{} {}", a.op, escape(f)),
            None => a.op.to_owned(),
        },
    };
    let (style, verb) = if a.ok {
        (RED, "did")
    } else {
        (YELLOW, "tried")
    };
    let err = a
        .error
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    let group = if a.group {
        " (process group or all)"
    } else {
        ""
    };
    let allowed = if a.allowed_container {
        " (allowed container)"
    } else {
        ""
    };
    format!(
        "{} {style}HOST ACCESS{style:#} {}  pid {} {} {verb} {what}{group} on {}{err}{allowed}",
        a.at.ts,
        who(&a.at.container),
        a.at.pid,
        escape(&a.at.comm),
        target(&a.target),
    )
}

fn host_access_aggregate(a: &HostAccessAggregate) -> String {
    let shown: Vec<String> = a.targets.iter().take(8).map(target).collect();
    let more = a.targets_total.saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "{} {RED}HOST ACCESS{RED:#} {}  {} more {} in {}s ({} refused, {} probes) on {} targets: {}{more}",
        a.at.ts,
        who(&a.at.container),
        a.count,
        a.op,
        a.interval_s,
        a.failed,
        a.probes,
        a.targets_total,
        shown.join(", "),
    )
}

fn setns(s: &SetnsEvent) -> String {
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
    let allowed = if s.allowed_container {
        " (allowed to share the host PID namespace, not to join this)"
    } else {
        ""
    };
    let mut line = format!(
        "{} {style}SETNS{style:#}      {}{allowed} {what} the host's {} namespace{how}{err}  pid {} {}",
        s.at.ts,
        who(&s.at.container),
        s.nstype,
        s.at.pid,
        escape(&s.at.comm)
    );
    if let Some(e) = s.enforced {
        let _ = write!(line, " {BOLD}{}{BOLD:#}", enforced(e));
    }
    line
}

fn new_pidns(n: &NewPidnsEvent) -> String {
    let how = match n.via {
        NewPidnsVia::Clone => "cloned with CLONE_NEWPID",
        NewPidnsVia::UnshareOrSetns => "after unshare/setns of its PID namespace",
    };
    format!(
        "{} {CYAN}NEW PIDNS{CYAN:#}  {} child {} in pid:[{}], {how}  pid {} {}",
        n.at.ts,
        who(&n.at.container),
        n.child_pid,
        n.pidns_inode,
        n.at.pid,
        escape(&n.at.comm)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{HostMethod, HostPidns, MissingProbe};

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
            enforce: Vec::new(),
        };
        let line = human(&e);
        assert!(
            line.contains("1 probes attached; setns into host namespaces (escapes) NOT seen (sys_exit_setns missing)"),
            "{line}"
        );
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["probes_missing"][0]["probe"], "sys_exit_setns");
        assert_eq!(v["probes_missing"][0]["reason"], "tracefs is not mounted");
    }
}

#[cfg(test)]
mod golden {
    //! The exact JSON lines of every watch event kind: field names, order
    //! and omissions are the documented format (docs/watch-events.md).
    use super::*;
    use crate::report::*;

    fn container() -> Identity {
        Identity {
            id: "c6e9".into(),
            runtime: Runtime::Kubernetes,
            name: Some("web".into()),
            pod: Some(Pod {
                uid: Some("u-1".into()),
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
            }),
            cgroup: "/kubepods/podu-1/c6e9".into(),
        }
    }

    pub(crate) fn every_kind() -> Vec<WatchEvent> {
        vec![
            WatchEvent::Ready {
                mode: "ebpf",
                probes: vec!["sched_process_exec".into()],
                probes_missing: vec![MissingProbe::new("sys_exit_setns", "no tracefs")],
                host_pidns: HostPidns {
                    inode: Some(4026531836),
                    method: HostMethod::Nspid,
                    host_pid: 1,
                    inode_source_pid: Some(2),
                    procfs_own: true,
                },
                containers: 3,
                sharing: 1,
                metrics_addr: Some("127.0.0.1:9100".into()),
                pidns_version: "0.1.0",
                ts: "T0".into(),
                enforce: vec!["setns", "host-pidns"],
            },
            WatchEvent::HostPidns(Finding {
                trigger: Trigger::Exec,
                at: Envelope {
                    pid: 42,
                    comm: "sleep".into(),
                    container: container(),
                    ts: "T1".into(),
                },
                ppid: Some(41),
                filename: Some("/bin/sleep".into()),
                clone_flags: Some(CloneFlags::new(0x4100)),
                exited: false,
                latency_us: Some(17),
                outside_cgroup: false,
                enforced: Some(Enforced::Killed),
            }),
            WatchEvent::HostPidns(Finding {
                trigger: Trigger::Scan,
                at: Envelope {
                    pid: 43,
                    comm: "sh".into(),
                    container: Identity {
                        name: None,
                        pod: None,
                        ..container()
                    },
                    ts: "T2".into(),
                },
                ppid: None,
                filename: None,
                clone_flags: None,
                exited: false,
                latency_us: None,
                outside_cgroup: true,
                enforced: None,
            }),
            WatchEvent::Setns(SetnsEvent {
                nstype: "mnt",
                target: "host",
                ok: false,
                via: SetnsVia::Pidfd,
                target_pid: Some(1),
                compat: true,
                allowed_container: false,
                error: Some("EPERM".into()),
                at: Envelope {
                    pid: 44,
                    comm: "nsenter".into(),
                    container: container(),
                    ts: "T3".into(),
                },
                ns_inode: Some(4026531840),
                latency_us: Some(5),
                enforced: None,
            }),
            WatchEvent::Setns(SetnsEvent {
                nstype: "net",
                target: "host",
                ok: true,
                via: SetnsVia::NsFile,
                target_pid: None,
                compat: false,
                allowed_container: true,
                error: None,
                at: Envelope {
                    pid: 45,
                    comm: "ip".into(),
                    container: container(),
                    ts: "T4".into(),
                },
                ns_inode: None,
                latency_us: None,
                enforced: Some(Enforced::Killed),
            }),
            WatchEvent::NewPidns(NewPidnsEvent {
                via: NewPidnsVia::UnshareOrSetns,
                at: Envelope {
                    pid: 46,
                    comm: "unshare".into(),
                    container: container(),
                    ts: "T5".into(),
                },
                clone_flags: CloneFlags::new(0x2002_0000),
                child_pid: 47,
                pidns_inode: 4026532999,
                latency_us: Some(9),
            }),
            WatchEvent::Aggregate(AggregateEvent {
                of: "setns",
                trigger: None,
                ok: Some(false),
                nstypes: vec!["net"],
                count: 1_234_567,
                at: Envelope {
                    pid: 48,
                    comm: String::new(),
                    container: container(),
                    ts: "T5b".into(),
                },
                allowed_container: true,
            }),
            WatchEvent::CgroupEscape(EscapeEvent {
                at: Envelope {
                    pid: 49,
                    comm: "sh".into(),
                    container: container(),
                    ts: "T5c".into(),
                },
                from_cgroup: "/kubepods/podu-1/c6e9".into(),
                to_cgroup: Some("/".into()),
                moved_by: 49,
                latency_us: Some(11),
            }),
            WatchEvent::Lost {
                stream: "findings",
                count: 3,
                total: 10,
                ts: "T6".into(),
            },
            WatchEvent::Stats {
                events: 100,
                unattributed: 2,
                lost: 10,
                ts: "T7".into(),
            },
            WatchEvent::HostAccess(HostAccessEvent {
                op: "signal",
                signal: Some(19),
                ptrace_request: None,
                file: None,
                path: false,
                target: host_target(4242),
                group: false,
                ok: true,
                error: None,
                allowed_container: false,
                at: Envelope {
                    pid: 50,
                    comm: "sh".into(),
                    container: container(),
                    ts: "T8".into(),
                },
                latency_us: Some(12),
            }),
            WatchEvent::HostAccess(HostAccessEvent {
                op: "proc_open",
                signal: None,
                ptrace_request: None,
                file: Some("environ".into()),
                path: false,
                target: AccessTarget {
                    pid: 4343,
                    comm: Some("db".into()),
                    target: "d".repeat(64),
                    runtime: Some(Runtime::Docker),
                    name: Some("db".into()),
                },
                group: false,
                ok: false,
                error: Some("EACCES".into()),
                allowed_container: true,
                at: Envelope {
                    pid: 51,
                    comm: "cat".into(),
                    container: container(),
                    ts: "T9".into(),
                },
                latency_us: None,
            }),
            WatchEvent::HostAccessAggregate(HostAccessAggregate {
                op: "signal",
                count: 300,
                probes: 300,
                failed: 12,
                targets: vec![host_target(1), host_target(4242)],
                targets_total: 2,
                interval_s: 1,
                allowed_container: false,
                at: Envelope {
                    pid: 52,
                    comm: "sh".into(),
                    container: container(),
                    ts: "T10".into(),
                },
            }),
        ]
    }

    fn host_target(pid: u32) -> AccessTarget {
        AccessTarget {
            pid,
            comm: Some("sleep".into()),
            target: "host".into(),
            runtime: None,
            name: None,
        }
    }

    const GOLDEN: &str = include_str!("../../tests/golden/watch-events.jsonl");

    #[test]
    fn every_event_kind_serialises_exactly_as_documented() {
        let got: Vec<String> = every_kind()
            .iter()
            .map(|e| serde_json::to_string(e).expect("json"))
            .collect();
        if std::env::var_os("PIDNS_BLESS").is_some() {
            println!("{}", got.join("\n"));
        }
        assert_eq!(got, GOLDEN.lines().collect::<Vec<_>>());
    }

    const GOLDEN_HUMAN: &str = include_str!("../../tests/golden/watch-events.txt");

    #[test]
    fn every_event_kind_reads_exactly_as_before() {
        let got: Vec<String> = every_kind().iter().map(human).collect();
        if std::env::var_os("PIDNS_BLESS").is_some() {
            println!("{}", got.join("\n"));
        }
        assert_eq!(got, GOLDEN_HUMAN.lines().collect::<Vec<_>>());
    }
}
