//! Docker and Podman (with runc or crun), through their CLIs.

use anyhow::Result;

use super::{Container, PODMAN_CRUN_GLOBAL, PODMAN_GLOBAL, Pid, Rt, Spec, pid_ns_path, rootfs};
use crate::{
    cgroups, sh,
    state::{self, DOCKER_IMAGE, Record},
};

/// `docker run -d` / `podman run -d`, as the spec says.
pub(super) fn start(spec: &Spec<'_>, c: &mut Container) -> Result<()> {
    let name = c.name.clone();
    let (program, mut args) = engine_cmd(spec.rt);
    args.extend(["run", "-d", "--name", &name, "--ulimit", "nofile=1024:1024"].map(String::from));
    if !spec.args.iter().any(|a| a.starts_with("--net")) {
        args.push("--network=none".into());
    }
    let podman = spec.rt != Rt::Docker;
    if podman {
        args.extend(["--ulimit", "nproc=1024:1024"].map(String::from));
    }
    match spec.pid {
        Pid::Private => {}
        Pid::Host => args.push("--pid=host".into()),
        Pid::HostPath if podman => args.push(format!(
            "--pid=ns:{}",
            pid_ns_path(&spec.pid).unwrap_or_default()
        )),
        Pid::HostPath => anyhow::bail!("Docker cannot join a PID namespace by path"),
        Pid::Container(other) => args.push(format!("--pid=container:{}", other.name)),
    }
    args.extend(spec.args.iter().cloned());
    for cap in &spec.caps {
        args.push(format!("--cap-add={cap}"));
    }
    for (host, inside) in &spec.volumes {
        args.push(format!("--volume={host}:{inside}"));
    }
    if podman {
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
    c.init_pid = sh::run(program, &inspect_args(spec.rt, &name, "{{.State.Pid}}"))?.parse()?;
    Ok(())
}

pub(super) fn engine_cmd(rt: Rt) -> (&'static str, Vec<String>) {
    match rt {
        Rt::Podman => (
            "podman",
            PODMAN_GLOBAL.iter().map(|s| s.to_string()).collect(),
        ),
        Rt::PodmanCrun => (
            "podman",
            PODMAN_CRUN_GLOBAL.iter().map(|s| s.to_string()).collect(),
        ),
        _ => ("docker", Vec::new()),
    }
}

pub(super) fn inspect_args(rt: Rt, name: &str, format: &str) -> Vec<String> {
    let mut args = engine_cmd(rt).1;
    args.extend([
        "inspect".to_owned(),
        "--format".into(),
        format.into(),
        name.into(),
    ]);
    args
}
