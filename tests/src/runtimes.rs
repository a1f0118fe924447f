//! Real container runtimes: Docker, Podman, containerd through `ctr`, and
//! runc on its own (which, given a `cgroupsPath`, reproduces the cgroup
//! layouts of Kubernetes, CRI-O, LXC and systemd-nspawn).
//!
//! [`Container::start`] creates one container in a given PID mode; dropping
//! the [`Container`] removes it, also when the test fails or panics.

use std::{
    fs,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::{
    cgroups::{self, Claim},
    mounts, sh,
    state::{self, CTR_NAMESPACE, DOCKER_IMAGE, Record},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rt {
    Docker,
    Podman,
    /// containerd, driven with `ctr`.
    Ctr,
    /// runc directly, with a chosen cgroup [`Layout`].
    Runc,
}

pub const ALL: [Rt; 4] = [Rt::Docker, Rt::Podman, Rt::Ctr, Rt::Runc];

/// Podman needs the cgroupfs manager and runc here: crun refuses hybrid cgroups.
pub const PODMAN_GLOBAL: [&str; 3] = ["--cgroup-manager=cgroupfs", "--runtime", "runc"];

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

/// Where runc puts the container's cgroup: the layouts of real orchestrators,
/// reproduced through `cgroupsPath` with runc's cgroupfs driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// kubelet cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>`.
    KubepodsCgroupfs,
    /// kubelet systemd driver with containerd: `…/kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`.
    KubepodsSystemdContainerd,
    /// A systemd-style cgroupsPath given to the cgroupfs driver: `/kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`.
    KubepodsColonContainerd,
    /// CRI-O under the systemd driver: `…/kubepods-burstable-pod<uid>.slice/crio-<id>.scope`.
    CrioSystemd,
    /// systemd-nspawn: `/machine.slice/systemd-nspawn@<name>.service/payload`.
    Nspawn,
    /// LXC 4+: `/lxc.payload.<name>`.
    Lxc,
    /// CRI-O under the cgroupfs driver: `/kubepods/besteffort/pod<uid>/crio-<id>`.
    /// Not in [`Layout::ALL`]: the scan tests cover it on its own.
    CrioCgroupfs,
}

impl Layout {
    pub const ALL: [Layout; 6] = [
        Layout::KubepodsCgroupfs,
        Layout::KubepodsSystemdContainerd,
        Layout::KubepodsColonContainerd,
        Layout::CrioSystemd,
        Layout::Nspawn,
        Layout::Lxc,
    ];

    /// (cgroupsPath, runtime as pidns names it, id as pidns reports it, pod uid)
    fn place(self, name: &str) -> (String, &'static str, String, Option<String>) {
        let id = state::random_hex(32);
        let uid = format!(
            "{}-{}-{}-{}-{}",
            state::random_hex(4),
            state::random_hex(2),
            state::random_hex(2),
            state::random_hex(2),
            state::random_hex(6)
        );
        let us = uid.replace('-', "_");
        match self {
            Layout::KubepodsCgroupfs => (
                format!("/kubepods/burstable/pod{uid}/{id}"),
                "kubernetes",
                id,
                Some(uid),
            ),
            Layout::KubepodsSystemdContainerd => (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{us}.slice/cri-containerd-{id}.scope"
                ),
                "containerd",
                id,
                Some(uid),
            ),
            Layout::KubepodsColonContainerd => (
                format!("/kubepods-besteffort-pod{us}.slice:cri-containerd:{id}"),
                "containerd",
                id,
                Some(uid),
            ),
            Layout::CrioSystemd => (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{us}.slice/crio-{id}.scope"
                ),
                "cri-o",
                id,
                Some(uid),
            ),
            Layout::Nspawn => (
                format!("/machine.slice/systemd-nspawn@{name}.service/payload"),
                "systemd-nspawn",
                name.to_owned(),
                None,
            ),
            Layout::Lxc => (format!("/lxc.payload.{name}"), "lxc", name.to_owned(), None),
            Layout::CrioCgroupfs => (
                format!("/kubepods/besteffort/pod{uid}/crio-{id}"),
                "cri-o",
                id,
                Some(uid),
            ),
        }
    }
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
        }
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
    init_pid: u32,
    bundle: Option<PathBuf>,
    /// The cgroup directories the runtime creates for it and that did not
    /// exist before (a pod's `pod<uid>`, `/docker`, `kubepods*.slice`):
    /// removed with it unless another container of ours still needs them.
    claim: Claim,
    removed: bool,
}

fn pid_ns_path(pid: &Pid<'_>) -> Option<String> {
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
            removed: false,
        };
        match spec.rt {
            Rt::Docker | Rt::Podman => {
                let (program, mut args) = engine_cmd(spec.rt);
                args.extend(
                    ["run", "-d", "--name", &name, "--ulimit", "nofile=1024:1024"]
                        .map(String::from),
                );
                if !spec.args.iter().any(|a| a.starts_with("--net")) {
                    args.push("--network=none".into());
                }
                if spec.rt == Rt::Podman {
                    args.extend(["--ulimit", "nproc=1024:1024"].map(String::from));
                }
                match spec.pid {
                    Pid::Private => {}
                    Pid::Host => args.push("--pid=host".into()),
                    Pid::HostPath if spec.rt == Rt::Podman => args.push(format!(
                        "--pid=ns:{}",
                        pid_ns_path(&spec.pid).unwrap_or_default()
                    )),
                    Pid::HostPath => bail!("Docker cannot join a PID namespace by path"),
                    Pid::Container(other) => args.push(format!("--pid=container:{}", other.name)),
                }
                args.extend(spec.args.iter().cloned());
                for cap in &spec.caps {
                    args.push(format!("--cap-add={cap}"));
                }
                if spec.rt == Rt::Podman {
                    args.push("--rootfs".into());
                    args.push(rootfs().display().to_string());
                } else {
                    args.push(DOCKER_IMAGE.into());
                }
                args.extend(spec.cmd.iter().cloned());
                // The cgroupfs drivers' parents (Podman's conmon goes below its own).
                c.claim = cgroups::claim(
                    if spec.rt == Rt::Docker {
                        "docker"
                    } else {
                        "libpod_parent/conmon"
                    },
                    cgroups::Leaf::Parent,
                );
                c.id = sh::run(program, &args)?
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .to_owned();
                state::record(&Record::ContainerId(c.id.clone()));
                c.runtime = if spec.rt == Rt::Docker {
                    "docker"
                } else {
                    "podman"
                };
                c.init_pid =
                    sh::run(program, &inspect_args(spec.rt, &name, "{{.State.Pid}}"))?.parse()?;
            }
            Rt::Ctr => {
                let mut args = vec![
                    "-n".to_owned(),
                    CTR_NAMESPACE.into(),
                    "run".into(),
                    "-d".into(),
                ];
                args.extend(spec.args.iter().cloned());
                args.push("--rootfs".into());
                if let Some(path) = pid_ns_path(&spec.pid) {
                    args.push("--with-ns".into());
                    args.push(format!("pid:{path}"));
                }
                for cap in &spec.caps {
                    args.push("--cap-add".into());
                    args.push(format!("CAP_{cap}"));
                }
                args.push(rootfs().display().to_string());
                args.push(name.clone());
                args.extend(
                    spec.cmd
                        .iter()
                        .map(|a| {
                            if a.starts_with('/') {
                                a.clone()
                            } else {
                                format!("/bin/{a}")
                            }
                        })
                        .take(1),
                );
                args.extend(spec.cmd.iter().skip(1).cloned());
                c.claim = cgroups::claim(&format!("{CTR_NAMESPACE}/{name}"), cgroups::Leaf::Own);
                sh::run("ctr", &args)?;
                c.id = name.clone();
                c.runtime = "containerd";
                c.init_pid = ctr_task_pid(&name)?;
            }
            Rt::Runc => {
                let (cgroups_path, runtime, id, pod_uid) = match &spec.cgroups_path {
                    Some((path, runtime, id)) => (path.clone(), *runtime, id.clone(), None),
                    None => spec.layout.place(&name),
                };
                let bundle = state::state_dir().join("bundles").join(&name);
                fs::create_dir_all(&bundle)?;
                fs::write(
                    bundle.join("config.json"),
                    serde_json::to_vec_pretty(&runc_config(spec, &cgroups_path))?,
                )?;
                c.bundle = Some(bundle.clone());
                c.id = id;
                c.runtime = runtime;
                c.pod_uid = pod_uid;
                c.claim = cgroups::claim(&cgroups_path, cgroups::Leaf::Own);
                runc_detaching(&[
                    "run",
                    "-d",
                    "--bundle",
                    &bundle.display().to_string(),
                    &name,
                ])?;
                let st: Value = serde_json::from_str(&runc(&["state", &name])?)?;
                c.init_pid = st["pid"]
                    .as_u64()
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(0);
            }
        }
        Ok(c)
    }

    /// Runs a container to completion (e.g. `true`), then removes it.
    /// Returns the container as it was, for its id.
    pub fn run_to_completion(spec: &Spec<'_>) -> Result<Container> {
        match spec.rt {
            Rt::Docker | Rt::Podman => {
                let mut c = Container::start(spec)?;
                let (program, mut args) = engine_cmd(spec.rt);
                args.extend(["wait".to_owned(), c.name.clone()]);
                sh::run(program, &args)?;
                c.remove()?;
                Ok(c)
            }
            Rt::Ctr | Rt::Runc => {
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
            Rt::Docker | Rt::Podman => {
                let (program, _) = engine_cmd(self.rt);
                sh::run(
                    program,
                    &inspect_args(self.rt, &self.name, "{{.State.Running}}"),
                )? == "false"
            }
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
            Rt::Docker | Rt::Podman => {
                let (program, _) = engine_cmd(self.rt);
                sh::run(
                    program,
                    &inspect_args(self.rt, &self.name, "{{.HostConfig.PidMode}}"),
                )
            }
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
            Rt::Docker | Rt::Podman => {
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
        let result = remove_named(self.rt, &self.name);
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

fn engine_cmd(rt: Rt) -> (&'static str, Vec<String>) {
    match rt {
        Rt::Podman => (
            "podman",
            PODMAN_GLOBAL.iter().map(|s| s.to_string()).collect(),
        ),
        _ => ("docker", Vec::new()),
    }
}

fn inspect_args(rt: Rt, name: &str, format: &str) -> Vec<String> {
    let mut args = engine_cmd(rt).1;
    args.extend([
        "inspect".to_owned(),
        "--format".into(),
        format.into(),
        name.into(),
    ]);
    args
}

fn runc(args: &[&str]) -> Result<String> {
    let mut all = vec![
        "--root".to_owned(),
        state::runc_root().display().to_string(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    sh::run("runc", &all)
}

fn runc_detaching(args: &[&str]) -> Result<String> {
    let mut all = vec![
        "--root".to_owned(),
        state::runc_root().display().to_string(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    sh::run_detaching("runc", &all)
}

fn ctr_task_pid(name: &str) -> Result<u32> {
    let list = sh::run("ctr", &["-n", CTR_NAMESPACE, "task", "ls"])?;
    list.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name))
                .then(|| f.next().and_then(|p| p.parse().ok()))
                .flatten()
        })
        .ok_or_else(|| anyhow!("ctr task ls has no {name}:\n{list}"))
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

fn runc_config(spec: &Spec<'_>, cgroups_path: &str) -> Value {
    let mut caps: Vec<String> = ["CAP_KILL", "CAP_AUDIT_WRITE", "CAP_NET_BIND_SERVICE"]
        .map(String::from)
        .to_vec();
    caps.extend(spec.caps.iter().map(|c| format!("CAP_{c}")));
    let mut namespaces = vec![
        json!({"type": "mount"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "network"}),
    ];
    match spec.pid {
        Pid::Private => namespaces.push(json!({"type": "pid"})),
        Pid::Host => {}
        Pid::HostPath | Pid::Container(_) => {
            namespaces.push(json!({"type": "pid", "path": pid_ns_path(&spec.pid)}))
        }
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": spec.cmd,
            "env": ["PATH=/bin"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        },
        "root": {"path": rootfs(), "readonly": true},
        "hostname": "pidnst",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=1m"]}
        ],
        "linux": {"namespaces": namespaces, "cgroupsPath": cgroups_path}
    })
}

/// Removes a container by name, whatever state it is in.
pub fn remove_named(rt: Rt, name: &str) -> Result<()> {
    match rt {
        Rt::Docker | Rt::Podman => {
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
