//! Renderers: turn reports and events into text. They never touch /proc.
//!
//! Human formats emit ANSI styles unconditionally; the caller writes through
//! an `anstream` stream, which strips them unless stdout is a terminal and
//! `NO_COLOR` is unset (or `--color` says otherwise).

pub mod cis;
pub mod events;
pub mod json;
pub mod sarif;
pub mod table;

use anstyle::{AnsiColor, Style};

use crate::report::{Container, Verdict};

pub(crate) const BOLD: Style = Style::new().bold();
pub(crate) const RED: Style = AnsiColor::Red.on_default().bold();
pub(crate) const YELLOW: Style = AnsiColor::Yellow.on_default();
pub(crate) const GREEN: Style = AnsiColor::Green.on_default();
pub(crate) const CYAN: Style = AnsiColor::Cyan.on_default();
pub(crate) const DIM: Style = Style::new().dimmed();

pub(crate) fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Shares => RED,
        Verdict::Allowed => CYAN,
        Verdict::Unknown => YELLOW,
        Verdict::Isolated => GREEN,
    }
}

/// `docker ps`-style short id for 64-hex ids; names are kept whole.
pub(crate) fn short_id(id: &str) -> &str {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}

/// The container's name as a person knows it (`namespace/pod:container` for
/// Kubernetes), when the runtime's state gave one.
pub(crate) fn display_name(c: &Container) -> Option<String> {
    let pod = c.pod.as_ref().and_then(|p| match (&p.namespace, &p.name) {
        (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        (None, Some(name)) => Some(name.clone()),
        _ => None,
    });
    match (c.name.as_deref(), pod) {
        (Some(name), Some(pod)) => Some(format!("{pod}:{name}")),
        (Some(name), None) => Some(name.to_owned()),
        (None, pod) => pod,
    }
}

/// How to name the container in a sentence: its name, else its short id.
pub(crate) fn label(c: &Container) -> String {
    display_name(c).unwrap_or_else(|| short_id(&c.id).to_owned())
}

pub const CONTROL_TITLE: &str = "Ensure that the host's process namespace is not shared";
pub const CONTROL_IDS: &str = "CIS Docker Benchmark 5.16 (v1.6.0+), 5.15 (v1.1.0-v1.5.0)";

/// Our remediation wording for the control.
pub const REMEDIATION: &str = "Start containers in their own PID namespace: drop --pid=host (Docker, Podman), \
hostPID: true (Kubernetes) and any pid namespace path pointing at a host process (containerd, runc). \
If one workload truly needs to see host processes, give that one container the access and list it with --allow.";
