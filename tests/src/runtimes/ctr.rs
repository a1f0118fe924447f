//! containerd, through `ctr`.

use anyhow::{Result, anyhow};

use super::{Container, Spec, pid_ns_path, rootfs};
use crate::{cgroups, sh, state::CTR_NAMESPACE};

/// `ctr run -d`, in the test namespace, as the spec says.
pub(super) fn start(spec: &Spec<'_>, c: &mut Container) -> Result<()> {
    let name = c.name.clone();
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
    for (host, inside) in &spec.volumes {
        args.push("--mount".into());
        args.push(format!(
            "type=bind,src={host},dst={inside},options=rbind:rw"
        ));
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
    c.init_pid = task_pid(&name)?;
    Ok(())
}

fn task_pid(name: &str) -> Result<u32> {
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
