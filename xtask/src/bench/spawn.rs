//! Exec storms: `xtask bench-spawn` starting a program N times (fork+execve
//! or posix_spawn), several of them at once, and the cheapest program there
//! is to start.

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use nix::unistd::Pid;

use super::xtask_exe;
use crate::target_dir;

/// How a storm starts each process.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum SpawnMethod {
    /// fork() then execve() in the child: in a host-PID container the probes
    /// report the fork and then the exec (two findings per process).
    Fork,
    /// posix_spawn(), which glibc implements with vfork semantics: the
    /// probes report only the exec (one finding per process).
    PosixSpawn,
}

impl SpawnMethod {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            SpawnMethod::Fork => "fork+execve",
            SpawnMethod::PosixSpawn => "posix_spawn",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            SpawnMethod::Fork => "fork",
            SpawnMethod::PosixSpawn => "posix-spawn",
        }
    }
}

/// `xtask bench-spawn [--cgroup DIR] [--method fork|posix-spawn] -- N PROGRAM ARGS...`
#[derive(clap::Args)]
pub struct SpawnArgs {
    /// Join this cgroup first.
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = SpawnMethod::Fork)]
    pub method: SpawnMethod,
    /// N PROGRAM [ARGS...]
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

/// An exec storm: `workers` spawners at once, each starting `per_worker`
/// processes, one after the other.
pub(super) struct Storm {
    pub workers: usize,
    pub per_worker: usize,
    pub method: SpawnMethod,
}

impl Storm {
    /// One spawner, `execs` times.
    pub fn serial(execs: usize, method: SpawnMethod) -> Storm {
        Storm {
            workers: 1,
            per_worker: execs,
            method,
        }
    }

    /// `/bin/true`, from the host's cgroup, as the cost parts run it.
    pub fn run_true(&self) -> Result<f64> {
        self.run(None, &["/bin/true".to_owned()])
    }

    pub fn execs(&self) -> usize {
        self.workers * self.per_worker
    }

    /// Runs the storm (each spawner joining `cgroup` first); returns the wall time.
    pub fn run(&self, cgroup: Option<&Path>, argv: &[String]) -> Result<f64> {
        let xtask = xtask_exe()?;
        let start = Instant::now();
        let mut spawners = Vec::new();
        for _ in 0..self.workers {
            let mut c = Command::new(&xtask);
            c.arg("bench-spawn").args(["--method", self.method.flag()]);
            if let Some(dir) = cgroup {
                c.arg("--cgroup").arg(dir);
            }
            c.arg("--").arg(self.per_worker.to_string()).args(argv);
            spawners.push(c.spawn().context("starting a spawner")?);
        }
        // Every spawner is waited for, also when one fails: none may outlive
        // the storm in a cgroup that is about to be removed.
        let mut ok = true;
        for mut s in spawners {
            ok &= s.wait().is_ok_and(|st| st.success());
        }
        if !ok {
            bail!("exec storm spawner failed");
        }
        Ok(start.elapsed().as_secs_f64())
    }
}

/// `xtask bench-spawn`: joins a cgroup, then starts PROGRAM N times, one
/// after the other, with an empty environment, waiting for each.
pub fn spawn_main(a: SpawnArgs) -> Result<()> {
    let [n, program, args @ ..] = a.argv.as_slice() else {
        bail!(
            "usage: bench-spawn [--cgroup DIR] [--method fork|posix-spawn] -- N PROGRAM [ARGS...]"
        );
    };
    let n: usize = n.parse().with_context(|| format!("bad count {n}"))?;
    if let Some(dir) = &a.cgroup {
        fs::write(dir.join("cgroup.procs"), "0")
            .with_context(|| format!("joining {}", dir.display()))?;
        // Then exec, as a container's first process does: a task moved into
        // a container's cgroup counts as the runtime's until it execs, so
        // its children's forks are findings only from here on.
        let err = Command::new("/proc/self/exe")
            .args(["bench-spawn", "--method", a.method.flag(), "--"])
            .args(&a.argv)
            .exec();
        return Err(err).context("re-executing bench-spawn in the cgroup");
    }
    let path = std::ffi::CString::new(program.as_str())?;
    let argv: Vec<std::ffi::CString> = std::iter::once(program)
        .chain(args)
        .map(|s| std::ffi::CString::new(s.as_str()))
        .collect::<Result<_, _>>()?;
    match a.method {
        SpawnMethod::Fork => fork_exec(n, &path, &argv),
        SpawnMethod::PosixSpawn => posix_spawn(n, &path, &argv),
    }
}

/// fork() and execve() in the child, `n` times.
fn fork_exec(n: usize, path: &std::ffi::CStr, argv: &[std::ffi::CString]) -> Result<()> {
    use nix::{
        sys::wait::{WaitStatus, waitpid},
        unistd::{ForkResult, execve, fork},
    };
    let env: [&std::ffi::CStr; 0] = [];
    for _ in 0..n {
        // SAFETY: this process is single-threaded (bench-spawn starts no
        // threads), so the child may do anything before execve.
        match unsafe { fork() }.context("fork")? {
            ForkResult::Child => {
                let _ = execve(path, argv, &env);
                // SAFETY: leaving the forked child without running the parent's atexit handlers.
                unsafe { libc::_exit(127) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).context("waitpid")? {
                WaitStatus::Exited(_, 0) => {}
                other => bail!("{} failed: {other:?}", path.to_string_lossy()),
            },
        }
    }
    Ok(())
}

/// posix_spawn (vfork semantics in glibc) then wait, `n` times.
fn posix_spawn(n: usize, path: &std::ffi::CStr, argv: &[std::ffi::CString]) -> Result<()> {
    let mut argv_ptrs: Vec<*mut libc::c_char> =
        argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv_ptrs.push(std::ptr::null_mut());
    let envp: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
    for _ in 0..n {
        let mut pid: libc::pid_t = 0;
        // SAFETY: valid NUL-terminated path and NULL-terminated argv/envp that outlive the call.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv_ptrs.as_ptr(),
                envp.as_ptr(),
            )
        };
        if rc != 0 {
            bail!(
                "posix_spawn {}: {}",
                path.to_string_lossy(),
                std::io::Error::from_raw_os_error(rc)
            );
        }
        match nix::sys::wait::waitpid(Pid::from_raw(pid), None).context("waitpid")? {
            nix::sys::wait::WaitStatus::Exited(_, 0) => {}
            other => bail!("{} failed: {other:?}", path.to_string_lossy()),
        }
    }
    Ok(())
}

/// A minimal static x86_64 executable that exits 0 (129 bytes: ELF header,
/// one PT_LOAD, `mov eax, 60; xor edi, edi; syscall`). Exec storms need the
/// cheapest possible exec to reach 10k/s on a small machine; `/bin/true`'s
/// dynamic loading costs ~0.4 ms. Other architectures use busybox's `true`.
/// Returns the program and its arguments.
pub(super) fn tiny_true() -> Result<Vec<String>> {
    if std::env::consts::ARCH != "x86_64" {
        let busybox = which::which("busybox").context("busybox for the exec storm")?;
        return Ok(vec![busybox.display().to_string(), "true".into()]);
    }
    const BASE: u64 = 0x40_0000;
    let code: [u8; 9] = [0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
    let size = (64 + 56 + code.len()) as u64;
    let mut elf = Vec::with_capacity(size as usize);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + 64 + 56).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // shoff
    elf.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0u64, BASE, BASE, size, size, 0x1000] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&code);
    let path = target_dir()?.join("bench/true");
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    fs::write(&path, &elf)?;
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(vec![path.display().to_string()])
}
