//! tracefs: where the syscall tracepoints live, and the layout of their records.

use std::path::{Path, PathBuf};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracefs mount pidns uses. When none is mounted, pidns mounts one in
/// a mount namespace of the calling thread's own (watch calls this from a
/// thread that ends once the probes are attached), so that no other process
/// (another pidns starting at the same time, say) sees it come or go and the
/// host is left as it was; and dropping this unmounts it again: the probes
/// need tracefs only to attach (aya reads the tracepoint ids from it), and
/// an attached tracepoint holds its perf event by fd, which outlives the
/// mount.
#[derive(Debug)]
pub struct Tracefs {
    path: PathBuf,
    mounted_by_pidns: bool,
}

impl Tracefs {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if !self.mounted_by_pidns {
            return;
        }
        if let Err(e) = nix::mount::umount(&self.path) {
            eprintln!(
                "pidns watch: cannot unmount the tracefs it mounted at {}: {e}",
                self.path.display()
            );
        }
    }
}

/// The tracefs mount; when there is none, one at /sys/kernel/tracing in a
/// new mount namespace (hosts without systemd). That takes CAP_SYS_ADMIN, and
/// moves the calling thread, and only it, into the new namespace: a slave of
/// the old one, so that later mounts still show. What pidns mounted is
/// unmounted when the returned value is dropped.
pub fn ensure_mounted() -> Result<Tracefs, String> {
    use nix::mount::MsFlags;
    if let Some(path) = CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
    {
        return Ok(Tracefs {
            path,
            mounted_by_pidns: false,
        });
    }
    let target = Path::new(CANDIDATES[0]);
    let failed = |what: &str, e: nix::Error| {
        format!(
            "tracefs is not mounted, and mounting it at {} failed: {what}: {e}",
            target.display()
        )
    };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| failed("a mount namespace of its own", e))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| failed("making its mounts private", e))?;
    nix::mount::mount(
        Some("tracefs"),
        target,
        Some("tracefs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| failed("mount", e))?;
    Ok(Tracefs {
        path: target.to_path_buf(),
        mounted_by_pidns: true,
    })
}

/// Offset of a field in a tracepoint's record, from its `format` file
/// (`\tfield:int fd;\toffset:16;\tsize:8;\tsigned:0;`).
pub fn field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let name = decl
            .rsplit(|c: char| c.is_whitespace() || c == '*')
            .next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        rest.split(';')
            .find_map(|kv| kv.trim().strip_prefix("offset:")?.parse().ok())
    })
}

/// The offset of a syscall tracepoint's first argument: the first field after `__syscall_nr`.
pub fn first_syscall_arg(format: &str) -> Option<u32> {
    let nr = field_offset(format, "__syscall_nr")?;
    format
        .lines()
        .filter_map(|line| {
            let decl = line.trim().strip_prefix("field:")?;
            let offset: u32 = decl
                .split(';')
                .find_map(|kv| kv.trim().strip_prefix("offset:")?.parse().ok())?;
            Some(offset)
        })
        .filter(|&o| o > nr)
        .min()
}

/// (offset of the first argument of `syscalls:sys_enter_setns`, offset of
/// `ret` in `syscalls:sys_exit_setns`): every syscall tracepoint shares them.
pub fn syscall_layout(tracefs: &Path) -> Result<(u32, u32), String> {
    let read = |rel: &str| {
        let p = tracefs.join(rel);
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let enter = read("events/syscalls/sys_enter_setns/format")?;
    let exit = read("events/syscalls/sys_exit_setns/format")?;
    let arg0 = first_syscall_arg(&enter)
        .ok_or("sys_enter_setns/format has no argument after __syscall_nr")?;
    let ret = field_offset(&exit, "ret").ok_or("sys_exit_setns/format has no ret field")?;
    Ok((arg0, ret))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTER: &str = "name: sys_enter_setns\nID: 871\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:int fd;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:int flags;\toffset:24;\tsize:8;\tsigned:0;\n\nprint fmt: \"fd: 0x%08lx, flags: 0x%08lx\", ((unsigned long)(REC->fd)), ((unsigned long)(REC->flags))\n";
    const EXIT: &str = "name: sys_exit_setns\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n";

    #[test]
    fn syscall_records() {
        assert_eq!(field_offset(ENTER, "fd"), Some(16));
        assert_eq!(field_offset(ENTER, "flags"), Some(24));
        assert_eq!(first_syscall_arg(ENTER), Some(16));
        assert_eq!(field_offset(EXIT, "ret"), Some(16));
        assert_eq!(field_offset(ENTER, "nstype"), None);
        assert_eq!(
            field_offset("field:struct clone_args * uargs;\toffset:16;", "uargs"),
            Some(16)
        );
        assert_eq!(
            field_offset("field:char comm[16];\toffset:8;", "comm"),
            Some(8)
        );
        assert_eq!(first_syscall_arg("garbage"), None);
    }
}
