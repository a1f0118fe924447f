//! `pidns-synth`: the syscalls runtimes do not make on cue, for pidns's
//! synthetic watch tests. Each verb does one thing and then execs or exits:
//!
//! - `join-cgroup DIR -- CMD...`: move into cgroup DIR, then exec CMD.
//! - `clone FLAGS -- CMD...`: clone(2) a child with namespace FLAGS
//!   (comma-separated: newns, newpid, newuts, none) that execs CMD; wait for it.
//! - `setns TYPE PATH`: setns(2) into the namespace file PATH; exit 0 on success, 1 on failure.

use std::{ffi::CString, os::fd::AsFd as _, process::ExitCode};

use nix::{
    sched::{CloneFlags, clone, setns},
    sys::wait::waitpid,
    unistd::execvp,
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
        [verb, kind, path] if verb == "setns" => join_ns(kind, path),
        _ => Err(
            "usage: pidns-synth join-cgroup DIR -- CMD | clone FLAGS -- CMD | setns TYPE PATH"
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

fn exec(cmd: &[String]) -> Result<ExitCode, String> {
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let first = argv.first().ok_or("no command")?;
    Err(format!(
        "exec {cmd:?}: {}",
        execvp(first, &argv).unwrap_err()
    ))
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
    waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn join_ns(kind: &str, path: &str) -> Result<ExitCode, String> {
    let flag = match kind {
        "mnt" => CloneFlags::CLONE_NEWNS,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "net" => CloneFlags::CLONE_NEWNET,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        other => return Err(format!("unknown namespace type {other}")),
    };
    let file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    Ok(match setns(file.as_fd(), flag) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pidns-synth: setns {path}: {e}");
            ExitCode::from(1)
        }
    })
}
