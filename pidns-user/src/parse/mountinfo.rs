//! `/proc/<pid>/mountinfo`: the mount a process's root directory lies on.
//!
//! One line per mount (`proc(5)`): `id parent major:minor root mount-point
//! options [optional...] - fstype source super-options`. Each line is parsed
//! by the procfs crate's parser; this module only picks the line and decodes
//! what pidns reports. Mount paths may hold any bytes, so the file is taken
//! as bytes and a line is decoded lossily: a mount a container names with
//! invalid UTF-8 costs nothing but the exactness of that name.

use procfs::process::MountInfo;

/// The mount a process's root is on, as its own mountinfo describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootMount {
    /// `major:minor` of the filesystem: the kernel's `st_dev`, which a
    /// process cannot choose.
    pub major: u32,
    pub minor: u32,
    /// The directory of that filesystem the mount shows (`/` for its top,
    /// the bound directory for a bind mount).
    pub root: String,
    pub fs_type: String,
    /// The mount's source as the mounter gave it (`overlay`, `/dev/vda`,
    /// `tmpfs`; any text for filesystems without a device): a claim.
    pub source: Option<String>,
    /// An overlay's `upperdir` option, as the mounter gave it.
    pub upperdir: Option<String>,
}

/// The mount the root directory of the process is on: the last mount whose
/// mount point is `/` (the top of a stack of mounts there). A process whose
/// root is a directory below the top of a mount (a chroot) sees no `/` mount
/// point of its own; then the last mount on the root's device `dev`
/// (`major`, `minor`), when given, stands in.
pub fn root_mount(bytes: &[u8], dev: Option<(u32, u32)>) -> Option<RootMount> {
    let lines = || bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let at_root = lines().rfind(|l| field(l, 4) == Some(b"/"));
    let line = at_root.or_else(|| {
        let (major, minor) = dev?;
        let want = format!("{major}:{minor}");
        lines().rfind(|l| field(l, 2) == Some(want.as_bytes()))
    })?;
    parse_line(&String::from_utf8_lossy(line))
}

/// The `n`th space-separated field of a line (0-based).
fn field(line: &[u8], n: usize) -> Option<&[u8]> {
    line.split(|&b| b == b' ').nth(n)
}

fn parse_line(line: &str) -> Option<RootMount> {
    let m = MountInfo::from_line(line).ok()?;
    let (major, minor) = m.majmin.split_once(':')?;
    let upperdir = (m.fs_type == "overlay")
        .then(|| m.super_options.get("upperdir").cloned().flatten())
        .flatten()
        .map(|u| unescape(&u));
    Some(RootMount {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root: unescape(&m.root),
        fs_type: m.fs_type,
        source: m.mount_source.map(|s| unescape(&s)),
        upperdir,
    })
}

/// The kernel writes space, tab, newline and backslash in mountinfo's paths
/// as octal escapes (`\040`); the parser leaves them as they are.
pub fn unescape(field: &str) -> String {
    String::from_utf8_lossy(&unescape_bytes(field.as_bytes())).into_owned()
}

/// [`unescape`] for a path that need not be UTF-8.
pub fn unescape_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(octal) = bytes.get(i + 1..i + 4)
            && octal.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = octal
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = "75 51 0:40 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/PYDP:/var/lib/docker/overlay2/l/66X5,upperdir=/var/lib/docker/overlay2/700e77f9/diff,workdir=/var/lib/docker/overlay2/700e77f9/work\n\
76 75 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n";

    #[test]
    fn an_overlay_root_and_its_upperdir() {
        let m = root_mount(DOCKER.as_bytes(), None).expect("root mount");
        assert_eq!((m.major, m.minor), (0, 40));
        assert_eq!(m.fs_type, "overlay");
        assert_eq!(m.source.as_deref(), Some("overlay"));
        assert_eq!(m.root, "/");
        assert_eq!(
            m.upperdir.as_deref(),
            Some("/var/lib/docker/overlay2/700e77f9/diff")
        );
    }

    #[test]
    fn a_bind_mounted_root_names_its_directory() {
        let text = "204 105 254:0 /run/pidns-tests/root\\040fs / rw,relatime - ext4 /dev/vda rw\n";
        let m = root_mount(text.as_bytes(), None).expect("root mount");
        assert_eq!((m.major, m.minor), (254, 0));
        assert_eq!(m.root, "/run/pidns-tests/root fs");
        assert_eq!(m.source.as_deref(), Some("/dev/vda"));
        assert_eq!(m.upperdir, None, "not an overlay");
    }

    #[test]
    fn the_top_of_a_stack_and_a_chroot_below_a_mount() {
        let stacked = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:50 / /proc rw - proc proc rw\n3 1 0:60 / / rw - tmpfs top rw\n";
        let m = root_mount(stacked.as_bytes(), None).expect("top");
        assert_eq!(m.source.as_deref(), Some("top"));
        // a chroot into a directory: no `/` mount point, found by device
        let chrooted = "5 1 0:50 / /proc rw - proc proc rw\n";
        assert_eq!(root_mount(chrooted.as_bytes(), None), None);
        assert_eq!(
            root_mount(chrooted.as_bytes(), Some((0, 50)))
                .and_then(|m| m.source)
                .as_deref(),
            Some("proc")
        );
    }

    #[test]
    fn junk_and_invalid_utf8_cost_nothing_but_exact_names() {
        assert_eq!(root_mount(b"", None), None);
        assert_eq!(root_mount(b"garbage / line\n", None), None);
        let odd = b"9 1 0:70 /\xff\xfe / rw - tmpfs src\xff rw\n";
        let m = root_mount(odd, None).expect("lossy");
        assert_eq!((m.major, m.minor), (0, 70));
        assert!(m.root.starts_with('/'));
        assert_eq!(unescape("a\\134b\\011c\\999"), "a\\b\tc\\999");
    }

    #[test]
    fn every_escape_is_undone_and_other_bytes_kept() {
        assert_eq!(
            unescape_bytes(b"/sys/fs/cgroup/my\\040cg\\134x\\012\\377\\xff"),
            b"/sys/fs/cgroup/my cg\\x\n\xff\\xff"
        );
        assert_eq!(unescape_bytes(b"trailing\\04"), b"trailing\\04");
    }
}
