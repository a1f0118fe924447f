//! LXC, through its CLI: a busybox-template container, isolated or sharing
//! the host PID namespace through its config (`lxc.namespace.share.pid`).
//!
//! Quirks of this machine kind: no network (`lxc.net.0.type = empty`), no
//! AppArmor (`lxc.apparmor.profile = unconfined`), and busybox's init
//! needs to be PID 1, so the container runs its command as init
//! (`lxc.init.cmd`). LXC leaves `lxc.pivot` in every hierarchy's root; a
//! container claims it (removed with the last one) when it was not there.

use std::{fs, path::PathBuf};

use anyhow::{Context as _, Result, bail};

use super::{Container, Pid, Spec};
use crate::{cgroups, sh};

pub const LXC_PATH: &str = "/var/lib/lxc";

pub(super) fn available() -> Result<()> {
    sh::run("lxc-create", &["--version"]).context("lxc is not installed")?;
    if !PathBuf::from("/usr/share/lxc/templates/lxc-busybox").is_file() {
        bail!("LXC's busybox template is missing");
    }
    Ok(())
}

pub(super) fn start(spec: &Spec<'_>, c: &mut Container) -> Result<()> {
    let name = c.name.clone();
    c.claim = cgroups::claim_all(&[
        (format!("lxc.payload.{name}"), cgroups::Leaf::Own),
        (format!("lxc.monitor.{name}"), cgroups::Leaf::Own),
        ("lxc.pivot".to_owned(), cgroups::Leaf::Parent),
    ]);
    sh::output_with(
        "lxc-create",
        &["-n", &name, "-t", "busybox"],
        std::time::Duration::from_secs(120),
    )
    .and_then(|o| {
        if o.status.success() {
            Ok(())
        } else {
            bail!("lxc-create failed: {}", o.stderr.trim())
        }
    })?;
    c.id = name.clone();
    c.runtime = "lxc";
    let config_path = PathBuf::from(LXC_PATH).join(&name).join("config");
    let config = fs::read_to_string(&config_path)?;
    fs::write(&config_path, config_for(&config, spec))?;
    sh::run("lxc-start", &["-n", &name, "-d"])?;
    let pid = sh::run("lxc-info", &["-n", &name, "-p", "-H"])?;
    c.init_pid = pid
        .trim()
        .parse()
        .with_context(|| format!("lxc-info -p said {pid:?}"))?;
    Ok(())
}

/// The template's config, without its network, unconfined, running the
/// spec's command as init, sharing the host PID namespace when asked.
fn config_for(template: &str, spec: &Spec<'_>) -> String {
    let mut out: String = template
        .lines()
        .filter(|l| !l.starts_with("lxc.net.") && !l.starts_with("lxc.apparmor.profile"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str("lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n");
    let cmd: Vec<String> = spec
        .cmd
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 && !a.starts_with('/') {
                format!("/bin/{a}")
            } else {
                a.clone()
            }
        })
        .collect();
    out.push_str(&format!("lxc.init.cmd = {}\n", cmd.join(" ")));
    match spec.pid {
        Pid::Host | Pid::HostPath => {
            // a host process other than PID 1 (whose links are unreadable here)
            out.push_str(&format!(
                "lxc.namespace.share.pid = {}\n",
                std::process::id()
            ));
        }
        Pid::Private => {}
        Pid::Container(other) => {
            out.push_str(&format!("lxc.namespace.share.pid = {}\n", other.init_pid));
        }
    }
    out
}

/// `host` when its config shares a PID namespace with a process of ours,
/// `private` otherwise.
pub(super) fn pid_mode(name: &str) -> Result<String> {
    let config = fs::read_to_string(PathBuf::from(LXC_PATH).join(name).join("config"))?;
    let shared = config
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "lxc.namespace.share.pid")
        .map(|(_, v)| v.trim().to_owned());
    Ok(match shared {
        Some(pid) if pid == std::process::id().to_string() => "host".into(),
        Some(pid) => format!("pid:{pid}"),
        None => "private".into(),
    })
}

pub(super) fn stopped(name: &str) -> Result<bool> {
    Ok(sh::run("lxc-info", &["-n", name, "-s", "-H"])?.trim() == "STOPPED")
}

pub(super) fn remove_named(name: &str) -> Result<()> {
    let _ = sh::output_with("lxc-stop", &["-n", name, "-k"], sh::DEFAULT_TIMEOUT);
    sh::run("lxc-destroy", &["-n", name]).map(drop)
}

pub(super) fn leftovers() -> Result<String> {
    if !sh::have("lxc-ls") {
        return Ok(String::new());
    }
    sh::run("lxc-ls", &["-1"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::Rt;

    #[test]
    fn config_drops_the_network_and_shares_by_pid() {
        let template = "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.apparmor.profile = generated\nlxc.rootfs.path = dir:/var/lib/lxc/x/rootfs\n";
        let spec = Spec::new(Rt::Lxc).pid(Pid::Host);
        let c = config_for(template, &spec);
        assert!(!c.contains("veth") && !c.contains("generated"), "{c}");
        assert!(c.contains("lxc.net.0.type = empty\n"), "{c}");
        assert!(c.contains("lxc.init.cmd = /bin/sleep 3600\n"), "{c}");
        assert!(
            c.contains(&format!(
                "lxc.namespace.share.pid = {}\n",
                std::process::id()
            )),
            "{c}"
        );
        assert!(c.contains("lxc.rootfs.path"), "kept: {c}");
        let private = config_for(template, &Spec::new(Rt::Lxc));
        assert!(!private.contains("share.pid"), "{private}");
    }
}
