//! Real container runtimes: Docker, Podman (with runc, and with crun),
//! containerd through `ctr`, runc on its own (which, given a `cgroupsPath`,
//! reproduces the cgroup layouts of Kubernetes, CRI-O, LXC and
//! systemd-nspawn), LXC and systemd-nspawn.
//!
//! [`Container::start`] creates one container in a given PID mode; dropping
//! the [`Container`] removes it, also when the test fails or panics.

use std::{
    fs,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

mod ctr;
mod engine;
mod layout;
pub mod lxc;
pub mod nspawn;
mod runc;

pub use layout::Layout;
pub use runc::bundle_config;

use crate::{
    cgroups::Claim,
    mounts, sh,
    state::{self, CTR_NAMESPACE, DOCKER_IMAGE},
};
use engine::{engine_cmd, inspect_args};
use runc::runc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rt {
    Docker,
    Podman,
    /// containerd, driven with `ctr`.
    Ctr,
    /// runc directly, with a chosen cgroup [`Layout`].
    Runc,
    /// Podman with crun as its OCI runtime.
    PodmanCrun,
    /// LXC, from its busybox template.
    Lxc,
    /// systemd-nspawn, isolated (it has no host-PID mode).
    Nspawn,
}

pub const ALL: [Rt; 7] = [
    Rt::Docker,
    Rt::Podman,
    Rt::Ctr,
    Rt::Runc,
    Rt::PodmanCrun,
    Rt::Lxc,
    Rt::Nspawn,
];

/// Podman needs the cgroupfs manager here, and runc unless crun is asked
/// for (crun refuses hybrid cgroups while the unified hierarchy holds a
/// controller: `pidns-harness up` mounts those as v1 hierarchies).
pub const PODMAN_GLOBAL: [&str; 3] = ["--cgroup-manager=cgroupfs", "--runtime", "runc"];
/// Podman with crun.
pub const PODMAN_CRUN_GLOBAL: [&str; 3] = ["--cgroup-manager=cgroupfs", "--runtime", "crun"];

pub fn rootfs() -> PathBuf {
    state::state_dir().join("rootfs")
}

/// Why a runtime cannot be used right now.
pub fn available(rt: Rt) -> Result<()> {
    if !rootfs().join("bin/busybox").is_file() {
        bail!("no test rootfs at {}", rootfs().display());
    }
    match rt {
        Rt::Docker => {
            sh::run("docker", &["version", "--format", "{{.Server.Version}}"])
                .context("dockerd does not answer")?;
            sh::run(
                "docker",
                &["image", "inspect", "--format", "{{.Id}}", DOCKER_IMAGE],
            )
            .context("test image missing")?;
        }
        Rt::Podman => {
            sh::run("podman", &["--version"])?;
            sh::run("runc", &["--version"])?;
        }
        Rt::Ctr => {
            sh::run("ctr", &["version"]).context("containerd does not answer")?;
        }
        Rt::Runc => {
            sh::run("runc", &["--version"])?;
        }
        Rt::PodmanCrun => {
            sh::run("podman", &["--version"])?;
            sh::run("crun", &["--version"])?;
        }
        Rt::Lxc => lxc::available()?,
        Rt::Nspawn => nspawn::available()?,
    }
    Ok(())
}

/// Which PID namespace the container gets.
#[derive(Debug, Clone, Copy)]
pub enum Pid<'a> {
    /// Its own (the default everywhere).
    Private,
    /// The host's: `--pid=host`, `hostPID: true`, or joining a host process's namespace.
    Host,
    /// The host's, joined by path (`/proc/<host pid>/ns/pid`) even where the
    /// runtime could share it outright: runc's and Podman's `ns:` path
    /// (runc then setns-es into it), ctr's `--with-ns`. Not for Docker.
    HostPath,
    /// Another container's: `--pid=container:<id>`.
    Container(&'a Container),
}

/// What to create.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub rt: Rt,
    pub pid: Pid<'a>,
    pub cmd: Vec<String>,
    /// Extra capabilities, e.g. `SYS_ADMIN` (`--privileged` fails here: no CAP_SYS_RESOURCE).
    pub caps: Vec<String>,
    /// runc only.
    pub layout: Layout,
    /// Extra arguments to the runtime's `run` (Docker, Podman, ctr), e.g.
    /// `--network=host` (which replaces the default `--network=none`).
    pub args: Vec<String>,
    /// runc only: a cgroupsPath of the test's own, with the runtime and id
    /// pidns should report for it (instead of [`Layout`]'s).
    pub cgroups_path: Option<(String, &'static str, String)>,
    /// Host directories bind-mounted read-write: (host path, path inside).
    /// Docker, Podman, ctr and runc.
    pub volumes: Vec<(String, String)>,
}

impl<'a> Spec<'a> {
    pub fn new(rt: Rt) -> Self {
        Spec {
            rt,
            pid: Pid::Private,
            cmd: vec!["sleep".into(), "3600".into()],
            caps: Vec::new(),
            layout: Layout::KubepodsCgroupfs,
            args: Vec::new(),
            cgroups_path: None,
            volumes: Vec::new(),
        }
    }

    /// Bind-mounts host directory `host` read-write at `inside`.
    pub fn volume(mut self, host: &str, inside: &str) -> Self {
        self.volumes.push((host.to_owned(), inside.to_owned()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    pub fn cgroups_path(mut self, path: &str, runtime: &'static str, id: &str) -> Self {
        self.cgroups_path = Some((path.to_owned(), runtime, id.to_owned()));
        self
    }

    pub fn pid(mut self, pid: Pid<'a>) -> Self {
        self.pid = pid;
        self
    }

    pub fn cmd(mut self, cmd: &[&str]) -> Self {
        self.cmd = cmd.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn cap(mut self, cap: &str) -> Self {
        self.caps.push(cap.to_owned());
        self
    }

    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
}

/// A running container, removed on drop.
#[derive(Debug)]
pub struct Container {
    pub rt: Rt,
    /// The runtime's name for it (always `pidnst-…`).
    pub name: String,
    /// The id pidns should report (full id, or the name for ctr, LXC, nspawn).
    pub id: String,
    /// The runtime pidns should report.
    pub runtime: &'static str,
    pub pod_uid: Option<String>,
    /// The PID mode that was asked for: `host`, `container:<id>` or `private`.
    pub asked_pid_mode: String,
    pub(super) init_pid: u32,
    pub(super) bundle: Option<PathBuf>,
    /// The cgroup directories the runtime creates for it and that did not
    /// exist before (a pod's `pod<uid>`, `/docker`, `kubepods*.slice`):
    /// removed with it unless another container of ours still needs them.
    pub(super) claim: Claim,
    /// systemd-nspawn's own process, which runs the machine.
    pub(super) supervisor: Option<u32>,
    removed: bool,
}

pub(super) fn pid_ns_path(pid: &Pid<'_>) -> Option<String> {
    match pid {
        Pid::Private => None,
        // Any process of ours is in the host PID namespace; /proc/1/ns may be unreadable.
        Pid::Host | Pid::HostPath => Some(format!("/proc/{}/ns/pid", std::process::id())),
        Pid::Container(c) => Some(format!("/proc/{}/ns/pid", c.init_pid)),
    }
}

impl Container {
    pub fn start(spec: &Spec<'_>) -> Result<Container> {
        let name = state::unique_name();
        let asked_pid_mode = match spec.pid {
            Pid::Private => "private".to_owned(),
            Pid::Host | Pid::HostPath => "host".to_owned(),
            Pid::Container(c) => format!("container:{}", c.name),
        };
        let mut c = Container {
            rt: spec.rt,
            name: name.clone(),
            id: String::new(),
            runtime: "",
            pod_uid: None,
            asked_pid_mode,
            init_pid: 0,
            bundle: None,
            claim: Claim::default(),
            supervisor: None,
            removed: false,
        };
        match spec.rt {
            Rt::Docker | Rt::Podman | Rt::PodmanCrun => engine::start(spec, &mut c)?,
            Rt::Ctr => ctr::start(spec, &mut c)?,
            Rt::Runc => runc::start(spec, &mut c)?,
            Rt::Lxc => lxc::start(spec, &mut c)?,
            Rt::Nspawn => nspawn::start(spec, &mut c)?,
        }
        Ok(c)
    }

    /// Runs a container to completion (e.g. `true`), then removes it.
    /// Returns the container as it was, for its id.
    pub fn run_to_completion(spec: &Spec<'_>) -> Result<Container> {
        match spec.rt {
            Rt::Docker | Rt::Podman | Rt::PodmanCrun => {
                let mut c = Container::start(spec)?;
                let (program, mut args) = engine_cmd(spec.rt);
                args.extend(["wait".to_owned(), c.name.clone()]);
                sh::run(program, &args)?;
                c.remove()?;
                Ok(c)
            }
            Rt::Ctr | Rt::Runc | Rt::Lxc | Rt::Nspawn => {
                let mut c = Container::start(spec)?;
                let deadline = Instant::now() + Duration::from_secs(30);
                while !c.stopped()? {
                    if Instant::now() > deadline {
                        bail!("{} still running after 30s", c.name);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                c.remove()?;
                Ok(c)
            }
        }
    }

    fn stopped(&self) -> Result<bool> {
        Ok(match self.rt {
            Rt::Ctr => sh::run("ctr", &["-n", CTR_NAMESPACE, "task", "ls"])?
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&self.name) && l.contains("STOPPED")),
            Rt::Runc => {
                serde_json::from_str::<Value>(&runc(&["state", &self.name])?)?["status"]
                    == "stopped"
            }
            Rt::Docker | Rt::Podman | Rt::PodmanCrun => {
                let (program, _) = engine_cmd(self.rt);
                sh::run(
                    program,
                    &inspect_args(self.rt, &self.name, "{{.State.Running}}"),
                )? == "false"
            }
            Rt::Lxc => lxc::stopped(&self.name)?,
            Rt::Nspawn => !std::path::Path::new(&format!("/proc/{}", self.init_pid)).exists(),
        })
    }

    /// The host PID of the container's init process.
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// The runtime's own view of the PID mode: `docker/podman inspect`
    /// `HostConfig.PidMode` (`host`, `container:<id>`, ``/`private`), or what
    /// the OCI spec handed to containerd or runc says.
    pub fn runtime_pid_mode(&self) -> Result<String> {
        match self.rt {
            Rt::Docker | Rt::Podman | Rt::PodmanCrun => {
                let (program, _) = engine_cmd(self.rt);
                sh::run(
                    program,
                    &inspect_args(self.rt, &self.name, "{{.HostConfig.PidMode}}"),
                )
            }
            Rt::Lxc => lxc::pid_mode(&self.name),
            Rt::Nspawn => Ok("private".into()),
            Rt::Ctr => {
                let info: Value = serde_json::from_str(&sh::run(
                    "ctr",
                    &["-n", CTR_NAMESPACE, "containers", "info", &self.name],
                )?)?;
                Ok(oci_pid_mode(&info["Spec"]))
            }
            Rt::Runc => {
                let bundle = self.bundle.as_ref().ok_or_else(|| anyhow!("no bundle"))?;
                let spec: Value = serde_json::from_slice(&fs::read(bundle.join("config.json"))?)?;
                Ok(oci_pid_mode(&spec))
            }
        }
    }

    /// Runs a command inside the container and waits for it.
    pub fn exec(&self, cmd: &[&str]) -> Result<sh::Out> {
        let args = self.exec_args(cmd, false);
        sh::output_with(args.0, &args.1, sh::DEFAULT_TIMEOUT)
    }

    /// Starts a command inside the container without waiting.
    pub fn exec_detached(&self, cmd: &[&str]) -> Result<()> {
        let (program, args) = self.exec_args(cmd, true);
        sh::run_detaching(program, &args).map(drop)
    }

    fn exec_args(&self, cmd: &[&str], detach: bool) -> (&'static str, Vec<String>) {
        let cmd = cmd.iter().map(|s| s.to_string());
        match self.rt {
            Rt::Lxc | Rt::Nspawn => {
                // into every namespace of the machine's init
                let mut args = vec!["-t".to_owned(), self.init_pid.to_string(), "-a".into()];
                args.extend(cmd);
                if detach {
                    args.splice(0..0, ["-f".to_owned(), "nsenter".into()]);
                    return ("setsid", args);
                }
                ("nsenter", args)
            }
            Rt::Docker | Rt::Podman | Rt::PodmanCrun => {
                let (program, mut args) = engine_cmd(self.rt);
                args.push("exec".into());
                if detach {
                    args.push("-d".into());
                }
                args.push(self.name.clone());
                args.extend(cmd);
                (program, args)
            }
            Rt::Ctr => {
                let mut args = vec![
                    "-n".to_owned(),
                    CTR_NAMESPACE.into(),
                    "task".into(),
                    "exec".into(),
                    "--exec-id".into(),
                    state::unique_name(),
                ];
                if detach {
                    args.push("-d".into());
                }
                args.push(self.name.clone());
                args.extend(cmd.enumerate().map(|(i, a)| {
                    if i == 0 && !a.starts_with('/') {
                        format!("/bin/{a}")
                    } else {
                        a
                    }
                }));
                ("ctr", args)
            }
            Rt::Runc => {
                let mut args = vec![
                    "--root".to_owned(),
                    state::runc_root().display().to_string(),
                    "exec".into(),
                ];
                if detach {
                    args.push("-d".into());
                }
                args.push(self.name.clone());
                args.extend(cmd);
                ("runc", args)
            }
        }
    }

    /// Removes the container (idempotent).
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let result = match self.rt {
            Rt::Nspawn => nspawn::remove_named(&self.name, self.supervisor),
            _ => remove_named(self.rt, &self.name),
        };
        if let Some(bundle) = &self.bundle {
            let _ = mounts::remove_tree(bundle);
        }
        self.claim.release();
        result
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("cleanup of {:?} {} failed: {e:#}", self.rt, self.name);
        }
    }
}

/// `host` when the spec has no pid namespace, `path:<p>` when it joins one, else `private`.
fn oci_pid_mode(spec: &Value) -> String {
    let pid = spec["linux"]["namespaces"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["type"] == "pid"));
    match pid {
        None => "host".into(),
        Some(n) => match n["path"].as_str() {
            Some(p) if !p.is_empty() => format!("path:{p}"),
            _ => "private".into(),
        },
    }
}

/// Removes a container by name, whatever state it is in.
pub fn remove_named(rt: Rt, name: &str) -> Result<()> {
    match rt {
        Rt::Lxc => lxc::remove_named(name),
        Rt::Nspawn => nspawn::remove_named(name, None),
        Rt::Docker | Rt::Podman | Rt::PodmanCrun => {
            let (program, mut args) = engine_cmd(rt);
            args.extend(["rm".to_owned(), "-f".into(), name.into()]);
            sh::run(program, &args).map(drop)
        }
        Rt::Ctr => {
            let _ = sh::output_with(
                "ctr",
                &["-n", CTR_NAMESPACE, "task", "kill", "-s", "SIGKILL", name],
                sh::DEFAULT_TIMEOUT,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while sh::ok("ctr", &["-n", CTR_NAMESPACE, "task", "rm", "-f", name])
                .then_some(())
                .is_none()
                && sh::run("ctr", &["-n", CTR_NAMESPACE, "task", "ls", "-q"])
                    .is_ok_and(|l| l.lines().any(|t| t == name))
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            sh::run("ctr", &["-n", CTR_NAMESPACE, "containers", "rm", name]).map(drop)
        }
        Rt::Runc => {
            let _ = runc(&["kill", name, "KILL"]);
            runc(&["delete", "-f", name]).map(drop)
        }
    }
}

/// Names of every container of ours that a runtime still knows about.
pub fn leftovers(rt: Rt) -> Result<Vec<String>> {
    let names = match rt {
        // Podman's containers, whichever OCI runtime runs them
        Rt::PodmanCrun => String::new(),
        Rt::Lxc => lxc::leftovers()?,
        Rt::Nspawn => nspawn::leftovers(),
        Rt::Docker | Rt::Podman => {
            let (program, mut args) = engine_cmd(rt);
            args.extend(["ps", "-a", "--format", "{{.Names}}"].map(String::from));
            sh::run(program, &args)?
        }
        Rt::Ctr => sh::run("ctr", &["-n", CTR_NAMESPACE, "containers", "ls", "-q"])?,
        Rt::Runc => {
            let root = state::runc_root();
            if !root.exists() {
                return Ok(Vec::new());
            }
            runc(&["list", "-q"])?
        }
    };
    Ok(names
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with(state::PREFIX))
        .map(str::to_owned)
        .collect())
}
