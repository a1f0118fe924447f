//! Part 6, enforcement: the cost of `--enforce setns,host-pidns` on the
//! fork+exec storm (the same storm as part 3, against no agent), and the
//! time from a host-PID container's first exec to its death.
//!
//! The second half creates each "container process" the way runc and crun
//! do: a host process (this one) creates it straight in a fake Docker
//! container's cgroup (clone3 `CLONE_INTO_CGROUP`), in the host PID
//! namespace, so the probes know it as the runtime's setup process; its
//! exec of `/bin/true` is the container's first exec, where
//! `--enforce host-pidns` kills it. The child takes CLOCK_MONOTONIC just
//! before execve and hands it over a pipe; the parent takes it again when
//! waitpid returns the death. Without the agent the same measures exec to
//! the natural exit of `/bin/true`, for scale.

use std::{fs::File, io::Read as _, os::fd::AsRawFd as _, path::Path, time::Duration};

use anyhow::{Context as _, Result, bail};
use nix::{
    sys::{
        signal::Signal,
        wait::{WaitStatus, waitpid},
    },
    unistd::{Pid, pipe},
};
use pidns_tests::{cgroups::FakeContainer, pidns::Watch};
use serde_json::{Value, json};

use super::{
    interrupted,
    spawn::SpawnMethod,
    stats::{median, percentiles},
    watch::DockerRecord,
    watch::cost_with,
};

/// The agent's arguments.
const ENFORCING: [&str; 4] = ["--mode", "ebpf", "--enforce", "setns,host-pidns"];

/// The cost of enforcing on the fork+exec storm.
pub(super) fn cost(
    pidns: &Path,
    execs: usize,
    rounds: usize,
    method: SpawnMethod,
) -> Result<Value> {
    cost_with(pidns, &ENFORCING, execs, rounds, method)
}

/// Exec-to-death of `n` host-PID container processes under the agent, and
/// exec-to-exit of as many without it.
pub(super) fn exec_to_death(pidns: &Path, unified: &Path, n: usize) -> Result<Value> {
    let fake = FakeContainer::docker_in(&[unified.to_path_buf()], false)?;
    let cgroup =
        File::open(&fake.dir).with_context(|| format!("opening {}", fake.dir.display()))?;
    let mut natural = Vec::new();
    for _ in 0..n {
        interrupted()?;
        let (status, us) = first_exec(&cgroup)?;
        if !matches!(status, WaitStatus::Exited(_, 0)) {
            bail!("without the agent, /bin/true ended {status:?}");
        }
        natural.push(us);
    }
    // The record a real container has: a cgroup's name alone is a claim.
    let record = DockerRecord::new(&fake.id)?;
    let root = record.host_root();
    let mut args = ENFORCING.to_vec();
    args.extend(["--host-root", &root]);
    let agent = Watch::start_with(pidns, &args)?;
    let mut killed = Vec::new();
    let mut survived = 0;
    for _ in 0..n {
        interrupted()?;
        let (status, us) = first_exec(&cgroup)?;
        match status {
            WaitStatus::Signaled(_, Signal::SIGKILL, _) => killed.push(us),
            _ => survived += 1,
        }
    }
    agent.settle(Duration::from_millis(300), Duration::from_secs(10));
    let lines = agent.finish(Signal::SIGTERM)?;
    let reported = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l.text).ok())
        .filter(|v| {
            v["event"] == "host_pidns"
                && v["container_id"] == fake.id.as_str()
                && v["enforced"] == "killed"
        })
        .count();
    drop(fake);
    Ok(json!({
        "processes": n,
        "killed": killed.len(),
        "survived": survived,
        "reported_killed": reported,
        "exec_to_death": percentiles(&mut killed),
        "exec_to_exit_without_agent": percentiles(&mut natural),
        "median_exec_to_death_us": median(&killed.iter().map(|&u| u as f64).collect::<Vec<_>>()),
        "verification": {"exact": survived == 0 && reported == n && killed.len() == n},
    }))
}

/// `struct clone_args` (linux/sched.h), up to `cgroup`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// One process created in `cgroup` that execs `/bin/true`: how it ended,
/// and microseconds from just before its execve to waitpid's return.
fn first_exec(cgroup: &File) -> Result<(WaitStatus, u64)> {
    let (rx, tx) = pipe().context("pipe")?;
    let path = c"/bin/true";
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without a stack is fork(); the child only calls
    // async-signal-safe functions (clock_gettime, write, execve, _exit)
    // on memory prepared before the call.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
            let ns = (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64;
            libc::write(tx.as_raw_fd(), (&ns as *const u64).cast(), 8);
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        bail!("clone3: {}", std::io::Error::last_os_error());
    }
    drop(tx);
    let status = waitpid(Pid::from_raw(pid as i32), None).context("waitpid")?;
    let end = monotonic_ns();
    let mut buf = [0u8; 8];
    File::from(rx)
        .read_exact(&mut buf)
        .with_context(|| format!("the child died before taking its clock ({status:?})"))?;
    let start = u64::from_ne_bytes(buf);
    Ok((status, end.saturating_sub(start) / 1000))
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the current time into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
