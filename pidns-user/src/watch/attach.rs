//! Attaching the probes: which program goes where, which are required,
//! and the optional ones skipped with why.

use std::path::Path;

use aya::{
    Btf, Ebpf,
    programs::{BtfTracePoint, TracePoint},
};
use pidns_ebpf::{Config, programs};

/// (program, BTF tracepoint, required): the required ones are what every
/// finding rests on.
const TRACEPOINTS: [(&str, &str, bool); 6] = [
    (programs::SCHED_PROCESS_EXEC, "sched_process_exec", true),
    (programs::TASK_NEWTASK, "task_newtask", true),
    (programs::SCHED_PROCESS_EXIT, "sched_process_exit", true),
    (programs::CGROUP_ATTACH_TASK, "cgroup_attach_task", true),
    (programs::CGROUP_MKDIR, "cgroup_mkdir", true),
    (programs::CGROUP_RMDIR, "cgroup_rmdir", true),
];
/// (program, `syscalls` tracepoint, required): setns (the escape) at
/// entry (the caller's namespaces before) and exit, and unshare
/// (namespaces host processes create) at exit.
const SYSCALL_TRACEPOINTS: [(&str, &str, bool); 3] = [
    (programs::SYS_ENTER_SETNS, "sys_enter_setns", false),
    (programs::SYS_EXIT_SETNS, "sys_exit_setns", false),
    (programs::SYS_EXIT_UNSHARE, "sys_exit_unshare", false),
];

/// `--enforce host-pidns`: the `syscalls` exit tracepoints a new process
/// returns to user space through, each attached to
/// [`programs::SYS_EXIT_FORK_CHILD`] (fork and vfork are absent on some
/// architectures: skipped there, said nowhere, as nothing can call them).
const FORK_CHILD_TRACEPOINTS: [&str; 4] = [
    "sys_exit_clone",
    "sys_exit_clone3",
    "sys_exit_fork",
    "sys_exit_vfork",
];
/// Host access (`access::SYSCALLS`): one program at the entry of each
/// syscall, one at the exit, and `signal_generate`, which names the task a
/// signal reached. Optional: without them, host access goes unseen.
const ACCESS_SYSCALL_PROGRAMS: [(&str, &str); 2] = [
    (programs::SYS_ENTER_ACCESS, "sys_enter_"),
    (programs::SYS_EXIT_ACCESS, "sys_exit_"),
];
const ACCESS_BTF_PROGRAM: (&str, &str) = (programs::SIGNAL_GENERATE, "signal_generate");

/// setns through the 32-bit compat entry: hooks every syscall's exit, so
/// only attached on request (see [`Probes::load`]).
pub const COMPAT_SETNS: (&str, &str) = (programs::SYS_EXIT_COMPAT_SETNS, "sys_exit");

/// An optional program not attached, and why.
pub(super) type Skipped = (String, String);

/// Attaches every program: the required ones or fail; the optional ones
/// (setns needs tracefs, compat setns is asked for) are listed as skipped,
/// with why, when they cannot be.
pub(super) fn attach(
    ebpf: &mut Ebpf,
    btf: &Btf,
    config: &Config,
    tracefs: &Result<std::path::PathBuf, String>,
    compat: bool,
) -> anyhow::Result<(Vec<String>, Vec<Skipped>)> {
    use anyhow::Context as _;
    let mut attached = Vec::new();
    let mut skipped = Vec::new();
    let mut outcome = |name: &str, required: bool, r: anyhow::Result<()>| -> anyhow::Result<()> {
        match r {
            Ok(()) => {
                attached.push(name.to_owned());
                Ok(())
            }
            Err(e) if !required => {
                skipped.push((name.to_owned(), format!("{e:#}")));
                Ok(())
            }
            Err(e) => Err(e.context(format!("attaching {name}"))),
        }
    };
    let compat = (compat && config.offsets.task_thread_info_status != 0).then_some((
        COMPAT_SETNS.0,
        COMPAT_SETNS.1,
        false,
    ));
    let access_btf = Some((ACCESS_BTF_PROGRAM.0, ACCESS_BTF_PROGRAM.1, false));
    for (name, tracepoint, required) in TRACEPOINTS.into_iter().chain(compat).chain(access_btf) {
        let r = (|| -> anyhow::Result<()> {
            let p: &mut BtfTracePoint = ebpf
                .program_mut(name)
                .context("missing from the object")?
                .try_into()?;
            p.load(tracepoint, btf)?;
            p.attach()?;
            Ok(())
        })();
        outcome(name, required, r)?;
    }
    for (name, tracepoint, required) in SYSCALL_TRACEPOINTS {
        let r = match &tracefs {
            Ok(_) => (|| -> anyhow::Result<()> {
                let p: &mut TracePoint = ebpf
                    .program_mut(name)
                    .context("missing from the object")?
                    .try_into()?;
                p.load()?;
                p.attach("syscalls", tracepoint)?;
                Ok(())
            })(),
            Err(why) => Err(anyhow::anyhow!("{why}")),
        };
        outcome(name, required, r)?;
    }
    if config.enforce & pidns_ebpf::enforce::HOST_PIDNS != 0 {
        let r = match &tracefs {
            Ok(path) => attach_fork_child(ebpf, path),
            Err(why) => Err(anyhow::anyhow!("{why}")),
        };
        // Required: without it `--enforce host-pidns` cannot be carried out.
        outcome(programs::SYS_EXIT_FORK_CHILD, true, r)?;
    }
    for (name, prefix) in ACCESS_SYSCALL_PROGRAMS {
        let r = match &tracefs {
            Ok(_) => attach_access(ebpf, name, prefix),
            Err(why) => Err(anyhow::anyhow!("{why}")),
        };
        outcome(name, false, r)?;
    }
    Ok((attached, skipped))
}

/// One program on every fork-family exit tracepoint the kernel has.
fn attach_fork_child(ebpf: &mut Ebpf, tracefs: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let p: &mut TracePoint = ebpf
        .program_mut(programs::SYS_EXIT_FORK_CHILD)
        .context("missing from the object")?
        .try_into()?;
    p.load()?;
    for tracepoint in FORK_CHILD_TRACEPOINTS {
        let exists = tracefs.join("events/syscalls").join(tracepoint).exists();
        if !exists && matches!(tracepoint, "sys_exit_fork" | "sys_exit_vfork") {
            continue;
        }
        p.attach("syscalls", tracepoint)
            .with_context(|| format!("attaching to syscalls:{tracepoint}"))?;
    }
    Ok(())
}

/// `--proc-access`: the open probe at the exit of every open syscall this
/// kernel has (`open` is x86_64's only); asked for, so required.
pub(super) fn attach_proc_open(
    ebpf: &mut Ebpf,
    tracefs: &Result<std::path::PathBuf, String>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Err(why) = tracefs {
        anyhow::bail!("{why}");
    }
    let p: &mut TracePoint = ebpf
        .program_mut(programs::SYS_EXIT_PROC_OPEN)
        .context("missing from the object")?
        .try_into()?;
    p.load()?;
    let mut any = false;
    for syscall in pidns_ebpf::access::OPEN_SYSCALLS {
        let tracepoint = format!("sys_exit_{syscall}");
        match p.attach("syscalls", &tracepoint) {
            Ok(_) => any = true,
            Err(e) if syscall == "open" => {
                let _ = e; // no `open` on arm64
            }
            Err(e) => return Err(e).with_context(|| format!("syscalls:{tracepoint}")),
        }
    }
    anyhow::ensure!(any, "no open tracepoint attached");
    Ok(())
}

/// One program at `<prefix><syscall>` of every host access syscall; a
/// tracepoint this kernel lacks fails the whole program, said as skipped.
fn attach_access(ebpf: &mut Ebpf, name: &str, prefix: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let p: &mut TracePoint = ebpf
        .program_mut(name)
        .context("missing from the object")?
        .try_into()?;
    p.load()?;
    for syscall in pidns_ebpf::access::SYSCALLS {
        let tracepoint = format!("{prefix}{syscall}");
        p.attach("syscalls", &tracepoint)
            .with_context(|| format!("syscalls:{tracepoint}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_is_attached_by_one_table() {
        let mut tables: Vec<&str> = TRACEPOINTS
            .iter()
            .map(|t| t.0)
            .chain(SYSCALL_TRACEPOINTS.iter().map(|t| t.0))
            .chain([
                COMPAT_SETNS.0,
                programs::SYS_EXIT_FORK_CHILD,
                ACCESS_BTF_PROGRAM.0,
                programs::SYS_EXIT_PROC_OPEN,
            ])
            .chain(ACCESS_SYSCALL_PROGRAMS.iter().map(|t| t.0))
            .collect();
        let mut all = programs::ALL.to_vec();
        tables.sort_unstable();
        all.sort_unstable();
        assert_eq!(tables, all);
    }
}
