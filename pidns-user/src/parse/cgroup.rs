//! `/proc/<pid>/cgroup`: one `hierarchy-ID:controllers:path` line per hierarchy.
//!
//! Paths are bytes: cgroup names may be any bytes but `/` and NUL, so a
//! non-UTF-8 name must not cost us the process (the procfs crate's parser
//! rejects such files, which is why this one exists).

/// One line of a `/proc/<pid>/cgroup` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 0 for the cgroup v2 (unified) hierarchy.
    pub hierarchy: u32,
    /// Comma-separated controllers; empty for v2, `name=systemd` for the
    /// systemd named hierarchy.
    pub controllers: &'a [u8],
    pub path: &'a [u8],
}

impl Line<'_> {
    pub fn is_unified(&self) -> bool {
        self.hierarchy == 0 && self.controllers.is_empty()
    }

    pub fn is_systemd(&self) -> bool {
        self.controllers == b"name=systemd"
    }
}

/// A cgroup file's lines, without allocating for the dozen a hybrid host has.
pub type Lines<'a> = smallvec::SmallVec<[Line<'a>; 16]>;

/// Parses every well-formed line; malformed lines are skipped.
pub fn parse(bytes: &[u8]) -> impl Iterator<Item = Line<'_>> {
    bytes.split(|&b| b == b'\n').filter_map(parse_line)
}

/// Whether any hierarchy of a cgroup file places the process at `cgroup` or
/// below it; `None` when the file has no well-formed line.
pub fn any_within(bytes: &[u8], cgroup: &[u8]) -> Option<bool> {
    let mut any = false;
    for line in parse(bytes) {
        any = true;
        if is_within(line.path, cgroup) {
            return Some(true);
        }
    }
    any.then_some(false)
}

/// Whether `path` is `cgroup` or one of its descendants.
pub fn is_within(path: &[u8], cgroup: &[u8]) -> bool {
    let cgroup = cgroup.strip_suffix(b"/").unwrap_or(cgroup);
    match path.strip_prefix(cgroup) {
        Some(rest) => rest.is_empty() || rest.starts_with(b"/") || cgroup.is_empty(),
        None => false,
    }
}

/// The longest cgroup path the kernel prints whole: it writes a path into a
/// PATH_MAX buffer, and a longer one comes out cut to this length (Linux
/// 6.x) or not at all (ENAMETOOLONG, older kernels).
pub const PATH_CUT: usize = 4095;

/// Why a cgroup file is not as the kernel writes it, if it is not: a line
/// that does not parse, a blank line before the end, no line at all, or a
/// hierarchy listed twice. The kernel prints cgroup names unescaped, so a
/// cgroup named with a newline (`x\n0::` with a child `docker`), which
/// anyone who can create cgroups can make where the kernel allows it, adds
/// lines of its choosing; they never parse as a file of unique
/// hierarchies. (Recent kernels refuse such names with EINVAL; 6.18 here
/// does; older ones and their backports may not.) A path the kernel cut at
/// PATH_MAX says nothing of where the process really is either.
pub fn malformed(bytes: &[u8]) -> Option<&'static str> {
    checked(bytes).err()
}

/// The lines of a cgroup file as the kernel writes it, or why it is not one
/// (see [`malformed`]), in one pass.
pub fn checked(bytes: &[u8]) -> Result<Lines<'_>, &'static str> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Err("no cgroup line");
    }
    let mut lines = Lines::new();
    let mut seen: u64 = 0;
    for line in body.split(|&b| b == b'\n') {
        let l = parse_line(line).ok_or("a line that is not `hierarchy:controllers:path`")?;
        let twice = match 1u64.checked_shl(l.hierarchy) {
            Some(bit) if l.hierarchy < 64 => {
                let was = seen & bit != 0;
                seen |= bit;
                was
            }
            _ => lines.iter().any(|o| o.hierarchy == l.hierarchy),
        };
        if twice {
            return Err("a hierarchy listed twice");
        }
        if l.path.len() >= PATH_CUT {
            return Err("a path cut at PATH_MAX");
        }
        lines.push(l);
    }
    Ok(lines)
}

/// The unified (v2) cgroup of a file the kernel could have written; `None`
/// for a file with forged lines (see [`malformed`]) or without that line.
pub fn unified_path(bytes: &[u8]) -> Option<&[u8]> {
    checked(bytes)
        .ok()?
        .into_iter()
        .find(|l| l.is_unified())
        .map(|l| l.path)
}

/// The path to show for a process's cgroup: the unified (v2) hierarchy's,
/// else systemd's named hierarchy's, else the first line's.
pub fn shown_path(bytes: &[u8]) -> Option<&[u8]> {
    let lines: Lines<'_> = parse(bytes).collect();
    lines
        .iter()
        .find(|l| l.is_unified())
        .or_else(|| lines.iter().find(|l| l.is_systemd()))
        .or(lines.first())
        .map(|l| l.path)
}

fn parse_line(line: &[u8]) -> Option<Line<'_>> {
    let mut parts = line.splitn(3, |&b| b == b':');
    let hierarchy = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let controllers = parts.next()?;
    let path = parts.next()?;
    if !path.starts_with(b"/") {
        return None;
    }
    Some(Line {
        hierarchy,
        controllers,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_host() {
        let text = b"9:name=systemd:/docker/abc\n4:memory:/docker/abc\n0::/docker/abc\n";
        let lines: Vec<_> = parse(text).collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].is_systemd());
        assert_eq!(lines[1].controllers, b"memory");
        assert!(lines[2].is_unified());
        assert_eq!(lines[2].path, b"/docker/abc");
    }

    #[test]
    fn paths_may_contain_colons_and_non_utf8() {
        let text = b"0::/kubepods-pod1.slice:cri-containerd:abc\n1:cpu:/a\xff\xfeb\n";
        let lines: Vec<_> = parse(text).collect();
        assert_eq!(lines[0].path, b"/kubepods-pod1.slice:cri-containerd:abc");
        assert_eq!(lines[1].path, b"/a\xff\xfeb");
    }

    #[test]
    fn within_a_cgroup() {
        let c = b"/docker/abc";
        assert!(is_within(b"/docker/abc", c));
        assert!(is_within(b"/docker/abc/init.scope", c));
        assert!(!is_within(b"/docker/abcd", c), "a sibling sharing a prefix");
        assert!(!is_within(b"/docker", c));
        assert!(!is_within(b"/", c));
        let parent = b"9:name=systemd:/\n4:memory:/docker/abc/sub\n0::/\n";
        assert_eq!(any_within(parent, c), Some(true), "any hierarchy counts");
        assert_eq!(
            any_within(b"0::/system.slice/containerd.service\n", c),
            Some(false)
        );
        assert_eq!(any_within(b"", c), None);
        assert_eq!(any_within(b"garbage", c), None);
    }

    #[test]
    fn files_the_kernel_would_not_write_are_malformed() {
        assert_eq!(malformed(b"9:name=systemd:/\n4:memory:/a\n0::/\n"), None);
        assert_eq!(malformed(b"0::/a"), None, "cut short is still lines");
        // a cgroup named `x\n0::/docker/<id>` adds a line of its choosing
        assert!(malformed(b"0::/x\n0::/docker/abc\n").is_some());
        assert!(malformed(b"0::/x\ny\n").is_some());
        assert!(malformed(b"0::/x\n\n1:cpu:/\n").is_some());
        assert!(
            malformed(b"100::/x\n100:cpu:/\n").is_some(),
            "beyond the bitmask too"
        );
        assert_eq!(checked(b"9:name=systemd:/\n0::/\n").map(|l| l.len()), Ok(2));
        assert!(malformed(b"").is_some());
        assert!(malformed(b"\n").is_some());
        // a path over PATH_MAX, as Linux 6.x prints it: cut at 4095 bytes
        let cut = format!("1:cpu:/\n0::/{}\n", "p".repeat(PATH_CUT - 1));
        assert_eq!(malformed(cut.as_bytes()), Some("a path cut at PATH_MAX"));
        let whole = format!("0::/{}\n", "p".repeat(PATH_CUT - 2));
        assert_eq!(malformed(whole.as_bytes()), None);
    }

    #[test]
    fn the_path_shown_for_a_process() {
        assert_eq!(
            shown_path(b"9:name=systemd:/s\n4:memory:/m\n0::/u\n"),
            Some(&b"/u"[..])
        );
        assert_eq!(
            shown_path(b"4:memory:/m\n9:name=systemd:/s\n"),
            Some(&b"/s"[..])
        );
        assert_eq!(shown_path(b"4:memory:/m\n"), Some(&b"/m"[..]));
        assert_eq!(shown_path(b""), None);
    }

    #[test]
    fn junk_lines_are_skipped() {
        let text = b"\n\nnot a line\nx::/a\n0::relative\n0:/missing\n0::/ok";
        let lines: Vec<_> = parse(text).collect();
        assert_eq!(
            lines,
            vec![Line {
                hierarchy: 0,
                controllers: b"",
                path: b"/ok"
            }]
        );
    }

    #[test]
    fn the_unified_path_of_a_forged_file_is_no_path() {
        assert_eq!(unified_path(b"4:memory:/m\n0::/u\n"), Some(&b"/u"[..]));
        assert_eq!(unified_path(b"4:memory:/m\n"), None);
        // a host process in a v1 cgroup named "x\n0::/docker/abc"
        let forged = b"4:memory:/x\n0::/docker/abc\n1:name=systemd:/\n0::/\n";
        assert_eq!(unified_path(forged), None);
    }
}
