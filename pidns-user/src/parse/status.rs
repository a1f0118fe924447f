//! The few fields pidns needs from `/proc/<pid>/status`.
//!
//! `NSpid` lists the process's PID in every PID namespace from the one the
//! procfs was mounted in down to its own. One entry therefore means the
//! process lives in the procfs's own PID namespace: the fact pidns falls back
//! on when namespace links are unreadable (hardened hosts deny readlink on
//! PID 1's `ns/` even to root). `Name` may hold any bytes, including `:`, so it
//! is taken verbatim after the first tab.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub name: Option<String>,
    pub ppid: Option<u32>,
    /// The real user id (the first of `Uid:`'s four).
    pub uid: Option<u32>,
    /// `None` when the kernel predates `NSpid` (Linux < 4.1) or the file was cut.
    pub nspid: Option<Vec<u32>>,
}

impl Status {
    /// Whether the process lives in the PID namespace of the procfs it was read from.
    pub fn in_procfs_pidns(&self) -> Option<bool> {
        self.nspid.as_ref().map(|ids| ids.len() == 1)
    }
}

pub fn parse(bytes: &[u8]) -> Status {
    let mut status = Status::default();
    for line in bytes.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        match key {
            b"Name" => {
                let value = value.strip_prefix(b"\t").unwrap_or(value);
                status.name = Some(unescape_name(value));
            }
            b"PPid" => {
                status.ppid = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
            }
            b"Uid" => {
                status.uid = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.split_ascii_whitespace().next()?.parse().ok())
            }
            b"NSpid" => {
                let ids: Option<Vec<u32>> = std::str::from_utf8(value)
                    .ok()
                    .map(|v| {
                        v.split_ascii_whitespace()
                            .map(|id| id.parse().ok())
                            .collect()
                    })
                    .and_then(|ids: Option<Vec<u32>>| ids.filter(|ids| !ids.is_empty()));
                status.nspid = ids;
            }
            _ => {}
        }
    }
    status
}

/// The kernel escapes `\n` and `\\` in `Name` (`proc_task_name` with
/// `ESCAPE_SPACE | ESCAPE_SPECIAL`); other bytes are shown as they are.
fn unescape_name(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match (raw[i], raw.get(i + 1)) {
            (b'\\', Some(b'n')) => {
                out.push(b'\n');
                i += 2;
            }
            (b'\\', Some(b'\\')) => {
                out.push(b'\\');
                i += 2;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4436\nNgid:\t0\nPid:\t4436\nPPid:\t4416\nUid:\t1000\t1000\t1000\t1000\nNStgid:\t4436\nNSpid:\t4436\nNSpgid:\t4436\n";

    #[test]
    fn host_process() {
        let s = parse(HOST.as_bytes());
        assert_eq!(s.name.as_deref(), Some("sleep"));
        assert_eq!(s.ppid, Some(4416));
        assert_eq!(s.uid, Some(1000));
        assert_eq!(s.nspid, Some(vec![4436]));
        assert_eq!(s.in_procfs_pidns(), Some(true));
    }

    #[test]
    fn nested_process() {
        let s = parse(b"Name:\tsleep\nPPid:\t4350\nNSpid:\t4372\t1\n");
        assert_eq!(s.nspid, Some(vec![4372, 1]));
        assert_eq!(s.in_procfs_pidns(), Some(false));
    }

    #[test]
    fn odd_names() {
        assert_eq!(parse(b"Name:\ta:b c\n").name.as_deref(), Some("a:b c"));
        assert_eq!(parse(b"Name:\tx\\ny\n").name.as_deref(), Some("x\ny"));
        assert_eq!(parse(b"Name:\t\xff\n").name.as_deref(), Some("\u{fffd}"));
        assert_eq!(
            parse(b"Name:\trunc:[1:CHILD]\n").name.as_deref(),
            Some("runc:[1:CHILD]")
        );
    }

    #[test]
    fn missing_or_broken_fields() {
        assert_eq!(parse(b""), Status::default());
        let s = parse(b"NSpid:\t\nPPid:\tx\n");
        assert_eq!(s.nspid, None);
        assert_eq!(s.ppid, None);
        assert_eq!(parse(b"NSpid:\t1\tz\n").nspid, None);
    }
}
