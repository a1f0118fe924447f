//! Renderers: turn reports and events into text. They never touch /proc.
//!
//! Human formats emit ANSI styles unconditionally; the caller writes through
//! an `anstream` stream, which strips them unless stdout is a terminal and
//! `NO_COLOR` is unset (or `--color` says otherwise).

pub mod cis;
mod configured;
pub mod json;
pub mod sarif;
pub mod table;
pub mod watch;

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
        Verdict::Unverified => DIM,
        Verdict::Isolated => GREEN,
    }
}

/// Text from /proc, cgroup paths or runtimes' state, made safe for a
/// terminal: control characters (C0, DEL, C1) and the Unicode bidi overrides
/// that reorder what is shown become `\u{..}` escapes. A comm of
/// `\x1b]0;pwned\x07` prints as `\u{1b}]0;pwned\u{7}`. Backslashes stay
/// (systemd's `\x2d` in cgroup paths reads as it is).
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
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

/// How to name the container in a sentence: its name, else its short id
/// (escaped for a terminal).
pub(crate) fn label(c: &Container) -> String {
    escape(&display_name(c).unwrap_or_else(|| short_id(&c.id).to_owned())).into_owned()
}

/// Where a nested container sits, for people: ` inside docker 3f2a… (kind-node)`.
pub(crate) fn enclosure(c: &Container) -> String {
    c.enclosed_by
        .iter()
        .rev()
        .map(|e| {
            let name = e
                .name
                .as_deref()
                .map(|n| format!(" ({})", escape(n)))
                .unwrap_or_default();
            format!(" inside {} {}{name}", e.runtime, escape(short_id(&e.id)))
        })
        .collect()
}

pub const CONTROL_TITLE: &str = "Ensure that the host's process namespace is not shared";
pub const CONTROL_IDS: &str = "CIS Docker Benchmark 5.16 (v1.6.0+), 5.15 (v1.1.0-v1.5.0)";

/// Our remediation wording for the control.
pub const REMEDIATION: &str = "Start containers in their own PID namespace: drop --pid=host (Docker, Podman), \
hostPID: true (Kubernetes) and any pid namespace path pointing at a host process (containerd, runc). \
If one workload truly needs to see host processes, give that one container the access and list it with --allow.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_terminal_controls() {
        assert_eq!(escape("sleep"), "sleep");
        assert!(matches!(escape("web-1.a"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(escape("\x1b]0;pwned\x07"), "\\u{1b}]0;pwned\\u{7}");
        assert_eq!(escape("a\nb\rc\td"), "a\\u{a}b\\u{d}c\\u{9}d");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m", "C1 CSI");
        assert_eq!(
            escape("x\u{202e}gpj.exe"),
            "x\\u{202e}gpj.exe",
            "bidi override"
        );
        assert_eq!(escape("\x7f"), "\\u{7f}");
        assert_eq!(escape("deb\\x2dbox"), "deb\\x2dbox");
        assert_eq!(escape("café ☕"), "café ☕");
    }
}
