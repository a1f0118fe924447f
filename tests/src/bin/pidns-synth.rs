//! `pidns-synth`: the syscalls runtimes do not make on cue, for pidns's
//! synthetic watch tests. Each verb does one thing and then execs or exits:
//!
//! - `join-cgroup DIR -- CMD...`: move into cgroup DIR, then exec CMD.
//! - `clone FLAGS -- CMD...`: clone(2) a child with namespace FLAGS
//!   (comma-separated: newns, newpid, newuts, none) that execs CMD; wait for it.
//! - `spawn -- CMD...`: posix_spawn(3) CMD (glibc: clone with CLONE_VM|CLONE_VFORK); wait.
//! - `fork -- CMD...`: the bare fork(2) syscall, as musl's fork makes it; the child execs CMD.
//! - `unshare-pid -- CMD...`: unshare(CLONE_NEWPID), then fork a child (the new
//!   namespace's init) that execs CMD; wait.
//! - `clone3-into DIR -- CMD...`: clone3(2) with CLONE_INTO_CGROUP: a child created
//!   directly in cgroup DIR, which execs CMD; wait.
//! - `setns TYPE PATH`: setns(2) into the namespace file PATH; exit 0 on success, 1 on failure.
//! - `pidfd-setns PID TYPES`: setns(2) through a pidfd of PID into its namespaces of
//!   TYPES (comma-separated); exit 0 on success, 1 on failure.
//! - `setns32 TYPE PATH`: as `setns`, through the 32-bit compat entry (`int 0x80`,
//!   x86_64 with IA32 emulation).
//! - `runtime DIR HOW -- CMD...`: what runc does: start a child that execs a
//!   setup stage (HOW: `self`, this same executable; `memfd`, a memfd copy of
//!   it; `copy:PATH`, another file, e.g. a copy elsewhere or one on an
//!   overlayfs), move that child into cgroup DIR, then let it exec CMD; wait.
//! - `await READY GO -- CMD...` (the setup stage): write a byte to fd READY,
//!   read one from fd GO, exec CMD.
//! - `flood setns|fork SECS`: what a tenant does to drown the agent: setns(2)
//!   into its own network namespace (a no-op, refused without CAP_SYS_ADMIN),
//!   or fork(2) a child that exits at once, in a tight loop for SECS seconds;
//!   prints how many calls it made.
//! - `vfork-exit`: vfork(2) a child that exits without exec'ing.
//! - `leader-exit -- CMD...`: the main thread exits while another thread
//!   lives on; that thread then forks a child that execs CMD, and waits.
//!
//! - `ptrace PID`: PTRACE_ATTACH to PID, wait for it to stop, PTRACE_DETACH;
//!   exit 0 on success, 1 when the kernel refused.
//! - `vm-read PID`: process_vm_readv(2) 8 bytes at the start of PID's first
//!   mapping (from /proc/PID/maps); exit 0 on success, 1 when refused.
//!
//! Each waiting verb prints the child's PID on stdout.

use std::{
    ffi::CString,
    os::{
        fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStringExt as _,
    },
    process::ExitCode,
};

use nix::{
    sched::{CloneFlags, clone, setns, unshare},
    spawn::{PosixSpawnAttr, PosixSpawnFileActions, posix_spawnp},
    sys::wait::{WaitStatus, waitpid},
    unistd::{ForkResult, execvp, fork},
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--");
    let (head, cmd) = match split {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&args[..], &[][..]),
    };
    let result = match head {
        [verb, dir] if verb == "join-cgroup" => join_cgroup(dir, cmd),
        [verb, flags] if verb == "clone" => clone_child(flags, cmd),
        [verb] if verb == "spawn" => spawn(cmd),
        [verb] if verb == "fork" => bare_fork(cmd),
        [verb] if verb == "unshare-pid" => unshare_pid(cmd),
        [verb, dir] if verb == "clone3-into" => clone3_into(dir, cmd),
        [verb, kind, path] if verb == "setns" => join_ns(kind, path),
        [verb, pid, kinds] if verb == "pidfd-setns" => pidfd_setns(pid, kinds, cmd),
        [verb, kind, path] if verb == "setns32" => join_ns_compat(kind, path),
        [verb, dir, how] if verb == "runtime" => act_as_runtime(dir, how, cmd),
        [verb, ready, go] if verb == "await" => await_then_exec(ready, go, cmd),
        [verb, what, secs] if verb == "flood" => flood(what, secs),
        [verb] if verb == "vfork-exit" => vfork_exit(),
        [verb] if verb == "leader-exit" => leader_exit(cmd),
        [verb, pid] if verb == "ptrace" => ptrace_attach(pid),
        [verb, pid] if verb == "vm-read" => vm_read(pid),
        _ => Err(
            "usage: pidns-synth join-cgroup DIR -- CMD | clone FLAGS -- CMD | spawn -- CMD | \
             fork -- CMD | unshare-pid -- CMD | clone3-into DIR -- CMD | setns TYPE PATH | \
             pidfd-setns PID TYPES [-- CMD] | setns32 TYPE PATH | runtime DIR HOW -- CMD | \
             flood setns|fork SECS | vfork-exit | leader-exit -- CMD | ptrace PID | vm-read PID"
                .into(),
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pidns-synth: {e}");
            ExitCode::from(2)
        }
    }
}

fn argv(cmd: &[String]) -> Result<Vec<CString>, String> {
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    if argv.is_empty() {
        return Err("no command".into());
    }
    Ok(argv)
}

fn exec(cmd: &[String]) -> Result<ExitCode, String> {
    exec_argv(&argv(cmd)?)
}

/// Execs an argv prepared beforehand (after a bare fork, the child allocates nothing).
fn exec_argv(argv: &[CString]) -> Result<ExitCode, String> {
    let err = match execvp(&argv[0], argv) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    Err(format!("exec {:?}: {err}", argv[0]))
}

/// In a child: exec, or say why not and exit at once.
fn child_exec(argv: &[CString]) -> ! {
    if let Err(e) = exec_argv(argv) {
        eprintln!("pidns-synth: {e}");
    }
    // SAFETY: _exit ends the child without running the parent's atexit handlers.
    unsafe { libc::_exit(127) }
}

fn wait_child(child: nix::unistd::Pid) -> Result<ExitCode, String> {
    println!("{child}");
    match waitpid(child, None).map_err(|e| format!("waitpid: {e}"))? {
        WaitStatus::Exited(_, 0) => Ok(ExitCode::SUCCESS),
        other => Err(format!("child {child}: {other:?}")),
    }
}

fn spawn(cmd: &[String]) -> Result<ExitCode, String> {
    let argv = argv(cmd)?;
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).ok()
        })
        .collect();
    let actions = PosixSpawnFileActions::init().map_err(|e| e.to_string())?;
    let attr = PosixSpawnAttr::init().map_err(|e| e.to_string())?;
    let child = posix_spawnp(&argv[0], &actions, &attr, &argv, &env)
        .map_err(|e| format!("posix_spawnp {cmd:?}: {e}"))?;
    wait_child(child)
}

fn bare_fork(cmd: &[String]) -> Result<ExitCode, String> {
    let argv = argv(cmd)?;
    // SAFETY: the raw fork syscall (no glibc fork handlers, as musl's fork()
    // makes it); this process is single-threaded, and the child only execs.
    let pid = unsafe { libc::syscall(libc::SYS_fork) };
    match pid {
        -1 => Err(format!("fork: {}", nix::errno::Errno::last())),
        0 => child_exec(&argv),
        pid => wait_child(nix::unistd::Pid::from_raw(pid as i32)),
    }
}

fn unshare_pid(cmd: &[String]) -> Result<ExitCode, String> {
    let argv = argv(cmd)?;
    unshare(CloneFlags::CLONE_NEWPID).map_err(|e| format!("unshare(CLONE_NEWPID): {e}"))?;
    // SAFETY: single-threaded; the child only execs.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => child_exec(&argv),
        ForkResult::Parent { child } => wait_child(child),
    }
}

fn clone3_into(dir: &str, cmd: &[String]) -> Result<ExitCode, String> {
    let argv = argv(cmd)?;
    let cgroup = std::fs::File::open(dir).map_err(|e| format!("open {dir}: {e}"))?;
    // SAFETY: clone_args is plain data; zero is "unset" for every field.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = libc::SIGCHLD as u64;
    args.cgroup = cgroup.as_raw_fd() as u64;
    // SAFETY: clone3 without a stack behaves like fork; single-threaded, and
    // the child only execs.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match pid {
        -1 => Err(format!(
            "clone3(CLONE_INTO_CGROUP): {}",
            nix::errno::Errno::last()
        )),
        0 => child_exec(&argv),
        pid => wait_child(nix::unistd::Pid::from_raw(pid as i32)),
    }
}

/// `CLONE_INTO_CGROUP` (`include/uapi/linux/sched.h`).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A pipe whose ends survive exec (the setup stage inherits them).
fn inheritable_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::empty()).map_err(|e| format!("pipe: {e}"))
}

fn act_as_runtime(dir: &str, how: &str, cmd: &[String]) -> Result<ExitCode, String> {
    let exe = match how {
        "self" => "/proc/self/exe".to_owned(),
        "memfd" => {
            let memfd = nix::sys::memfd::memfd_create(
                c"runc_cloned:/proc/self/exe",
                nix::sys::memfd::MFdFlags::empty(),
            )
            .map_err(|e| format!("memfd_create: {e}"))?;
            let mut copy = std::fs::File::from(memfd);
            std::io::copy(
                &mut std::fs::File::open("/proc/self/exe").map_err(|e| e.to_string())?,
                &mut copy,
            )
            .map_err(|e| format!("copying into the memfd: {e}"))?;
            let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
            std::mem::forget(copy); // inherited by the child, which execs it
            path
        }
        other => other
            .strip_prefix("copy:")
            .ok_or_else(|| format!("unknown setup stage {other}"))?
            .to_owned(),
    };
    let (ready_r, ready_w) = inheritable_pipe()?;
    let (go_r, go_w) = inheritable_pipe()?;
    let mut argv_strings = vec![
        exe.clone(),
        "await".into(),
        ready_w.as_raw_fd().to_string(),
        go_r.as_raw_fd().to_string(),
        "--".into(),
    ];
    argv_strings.extend(cmd.iter().cloned());
    let stage = argv(&argv_strings)?;
    let exe = CString::new(exe).map_err(|e| e.to_string())?;
    // SAFETY: single-threaded; the child only execs.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let _ = nix::unistd::execv(&exe, &stage);
            // SAFETY: _exit ends the child without running atexit handlers.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => child,
    };
    drop((ready_w, go_r));
    let mut byte = [0u8; 1];
    nix::unistd::read(&ready_r, &mut byte).map_err(|e| format!("waiting for the stage: {e}"))?;
    std::fs::write(format!("{dir}/cgroup.procs"), child.to_string())
        .map_err(|e| format!("moving {child} into {dir}: {e}"))?;
    nix::unistd::write(&go_w, b"x").map_err(|e| format!("releasing the stage: {e}"))?;
    wait_child(child)
}

fn await_then_exec(ready: &str, go: &str, cmd: &[String]) -> Result<ExitCode, String> {
    let fd = |s: &str| -> Result<OwnedFd, String> {
        let n: i32 = s.parse().map_err(|e| format!("fd {s}: {e}"))?;
        // SAFETY: an fd handed down by `runtime`, owned by nothing else here.
        Ok(unsafe { OwnedFd::from_raw_fd(n) })
    };
    let (ready, go) = (fd(ready)?, fd(go)?);
    nix::unistd::write(&ready, b"x").map_err(|e| format!("ready: {e}"))?;
    let mut byte = [0u8; 1];
    nix::unistd::read(&go, &mut byte).map_err(|e| format!("go: {e}"))?;
    drop((ready, go));
    exec(cmd)
}

fn join_cgroup(dir: &str, cmd: &[String]) -> Result<ExitCode, String> {
    std::fs::write(
        format!("{dir}/cgroup.procs"),
        std::process::id().to_string(),
    )
    .map_err(|e| format!("joining {dir}: {e}"))?;
    exec(cmd)
}

fn clone_child(flags: &str, cmd: &[String]) -> Result<ExitCode, String> {
    let mut f = CloneFlags::empty();
    for name in flags.split(',') {
        f |= match name {
            "newns" => CloneFlags::CLONE_NEWNS,
            "newpid" => CloneFlags::CLONE_NEWPID,
            "newuts" => CloneFlags::CLONE_NEWUTS,
            "none" => CloneFlags::empty(),
            other => return Err(format!("unknown flag {other}")),
        };
    }
    let mut stack = vec![0u8; 1 << 20];
    let cmd = cmd.to_vec();
    // SAFETY: the child only execs (or exits) and touches no shared state.
    let child = unsafe {
        clone(
            Box::new(move || match exec(&cmd) {
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("pidns-synth: {e}");
                    127
                }
            }),
            &mut stack,
            f,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(|e| format!("clone({flags}): {e}"))?;
    wait_child(child)
}

fn ns_flag(kind: &str) -> Result<CloneFlags, String> {
    Ok(match kind {
        "mnt" => CloneFlags::CLONE_NEWNS,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "net" => CloneFlags::CLONE_NEWNET,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "pid" => CloneFlags::CLONE_NEWPID,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "user" => CloneFlags::CLONE_NEWUSER,
        other => return Err(format!("unknown namespace type {other}")),
    })
}

fn join_ns(kind: &str, path: &str) -> Result<ExitCode, String> {
    let flag = ns_flag(kind)?;
    let file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    Ok(match setns(file.as_fd(), flag) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pidns-synth: setns {path}: {e}");
            ExitCode::from(1)
        }
    })
}

/// setns through `int 0x80`: the i386 ABI, syscall 346, arguments in ebx and ecx.
#[cfg(target_arch = "x86_64")]
fn join_ns_compat(kind: &str, path: &str) -> Result<ExitCode, String> {
    const I386_NR_SETNS: i64 = 346;
    let flag = ns_flag(kind)?;
    let file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    let ret: i64;
    // SAFETY: a syscall through the compat gate with two integer arguments;
    // int 0x80 clobbers nothing but eax (r8-r11 are zeroed on return). rbx
    // is LLVM's, so it is saved around the call.
    unsafe {
        std::arch::asm!(
            "xchg {fd}, rbx",
            "int 0x80",
            "xchg {fd}, rbx",
            fd = inout(reg) i64::from(file.as_raw_fd()) => _,
            inlateout("rax") I386_NR_SETNS => ret,
            in("rcx") i64::from(flag.bits()),
            lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
        );
    }
    let ret = ret as i32;
    if ret == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "pidns-synth: setns32 {path}: {}",
            nix::errno::Errno::from_raw(-ret)
        );
        Ok(ExitCode::from(1))
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn join_ns_compat(_: &str, _: &str) -> Result<ExitCode, String> {
    Err("setns32 needs x86_64".into())
}

/// `pidfd-setns PID TYPES [-- CMD]`: setns through a pidfd of PID into its
/// namespaces of TYPES, then exec CMD there if one is given.
fn pidfd_setns(pid: &str, kinds: &str, cmd: &[String]) -> Result<ExitCode, String> {
    let pid: libc::pid_t = pid.parse().map_err(|e| format!("pid {pid}: {e}"))?;
    let mut flags = CloneFlags::empty();
    for kind in kinds.split(',') {
        flags |= ns_flag(kind)?;
    }
    // SAFETY: pidfd_open(pid, 0) returns a new fd or -1; nix has no wrapper.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(format!("pidfd_open({pid}): {}", nix::errno::Errno::last()));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    Ok(match setns(pidfd.as_fd(), flags) {
        Ok(()) if !cmd.is_empty() => return exec(cmd),
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pidns-synth: setns(pidfd of {pid}, {kinds}): {e}");
            ExitCode::from(1)
        }
    })
}

/// A tight loop of no-op setns calls (or forks) for `secs` seconds.
fn flood(what: &str, secs: &str) -> Result<ExitCode, String> {
    let secs: f64 = secs.parse().map_err(|e| format!("seconds {secs}: {e}"))?;
    let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    let mut calls: u64 = 0;
    match what {
        "setns" => {
            let own = std::fs::File::open("/proc/self/ns/net").map_err(|e| e.to_string())?;
            while std::time::Instant::now() < until {
                for _ in 0..1000 {
                    let _ = setns(own.as_fd(), CloneFlags::CLONE_NEWNET);
                }
                calls += 1000;
            }
        }
        "fork" => {
            while std::time::Instant::now() < until {
                // SAFETY: the raw fork syscall; the child exits at once.
                match unsafe { libc::syscall(libc::SYS_fork) } {
                    -1 => return Err(format!("fork: {}", nix::errno::Errno::last())),
                    // SAFETY: leaving the child without running anything else.
                    0 => unsafe { libc::_exit(0) },
                    pid => {
                        let _ = waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
                    }
                }
                calls += 1;
            }
        }
        other => return Err(format!("unknown flood {other}")),
    }
    println!("{calls}");
    Ok(ExitCode::SUCCESS)
}

/// A vfork child (CLONE_VM|CLONE_VFORK, as posix_spawn makes it) that
/// exits without exec'ing. It runs on a stack of its own, so the parent's
/// is untouched when it resumes.
fn vfork_exit() -> Result<ExitCode, String> {
    let mut stack = vec![0u8; 64 << 10];
    // SAFETY: the child only returns, which exits it.
    let child = unsafe {
        clone(
            Box::new(|| 0),
            &mut stack,
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(|e| format!("clone(CLONE_VM|CLONE_VFORK): {e}"))?;
    wait_child(child)
}

/// The thread group's leader exits (the raw exit syscall, not exit_group),
/// and a second thread, still the same process, forks a child that execs
/// `cmd`; the process ends when that child has.
fn leader_exit(cmd: &[String]) -> Result<ExitCode, String> {
    let argv = argv(cmd)?;
    std::thread::spawn(move || {
        // Let the leader go first.
        std::thread::sleep(std::time::Duration::from_millis(300));
        // SAFETY: the raw fork syscall; the child only execs.
        let code = match unsafe { libc::syscall(libc::SYS_fork) } {
            -1 => 2,
            0 => child_exec(&argv),
            pid => match wait_child(nix::unistd::Pid::from_raw(pid as i32)) {
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("pidns-synth: {e}");
                    1
                }
            },
        };
        std::process::exit(code);
    });
    // SAFETY: ends this thread only; the process lives on in the other one.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    Err("the leader survived its exit".into())
}

/// PTRACE_ATTACH, wait for the stop, PTRACE_DETACH.
fn ptrace_attach(pid: &str) -> Result<ExitCode, String> {
    let pid: libc::pid_t = pid.parse().map_err(|e| format!("pid {pid}: {e}"))?;
    let null = std::ptr::null_mut::<libc::c_void>();
    // SAFETY: PTRACE_ATTACH takes no pointers.
    if unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, null, null) } != 0 {
        eprintln!(
            "pidns-synth: ptrace(ATTACH, {pid}): {}",
            nix::errno::Errno::last()
        );
        return Ok(ExitCode::from(1));
    }
    let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
    // SAFETY: as above.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, null, null) };
    Ok(ExitCode::SUCCESS)
}

/// Reads 8 bytes of another process's memory.
fn vm_read(pid: &str) -> Result<ExitCode, String> {
    let n: libc::pid_t = pid.parse().map_err(|e| format!("pid {pid}: {e}"))?;
    let maps = std::fs::read_to_string(format!("/proc/{n}/maps"))
        .map_err(|e| format!("/proc/{n}/maps: {e}"))?;
    let start = maps
        .split(['-', '\n'])
        .next()
        .and_then(|a| usize::from_str_radix(a, 16).ok())
        .ok_or_else(|| format!("/proc/{n}/maps: no mapping"))?;
    let mut buf = [0u8; 8];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: start as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: one local iovec over `buf`, one remote one the kernel checks.
    let r = unsafe { libc::process_vm_readv(n, &local, 1, &remote, 1, 0) };
    if r < 0 {
        eprintln!(
            "pidns-synth: process_vm_readv({n}): {}",
            nix::errno::Errno::last()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
