//! runc on its own, with a bundle of ours and a chosen cgroup layout, its
//! state in runc's default root (`/run/runc`), where pidns looks for it.

use std::fs;

use anyhow::Result;
use serde_json::{Value, json};

use super::{Container, Pid, Spec, pid_ns_path, rootfs};
use crate::{cgroups, sh, state};

/// `runc run -d` of a bundle written for the spec.
pub(super) fn start(spec: &Spec<'_>, c: &mut Container) -> Result<()> {
    let name = c.name.clone();
    let (cgroups_path, runtime, id, pod_uid) = match &spec.cgroups_path {
        Some((path, runtime, id)) => (path.clone(), *runtime, id.clone(), None),
        None => spec.layout.place(&name),
    };
    let bundle = state::state_dir().join("bundles").join(&name);
    fs::create_dir_all(&bundle)?;
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&bundle_config(spec, &cgroups_path))?,
    )?;
    c.bundle = Some(bundle.clone());
    c.id = id;
    c.runtime = runtime;
    c.pod_uid = pod_uid;
    // without a cgroupsPath, runc makes `<its own cgroup>/<id>`
    let own = if cgroups_path.is_empty() {
        name.clone()
    } else {
        cgroups_path.clone()
    };
    c.claim = cgroups::claim(&own, cgroups::Leaf::Own);
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
    Ok(())
}

pub(super) fn runc(args: &[&str]) -> Result<String> {
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

/// An OCI bundle's `config.json` for the spec, as runc and crun take it.
pub fn bundle_config(spec: &Spec<'_>, cgroups_path: &str) -> Value {
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
    let mut config = json!({
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
        "linux": {"namespaces": namespaces}
    });
    if !cgroups_path.is_empty() {
        config["linux"]["cgroupsPath"] = json!(cgroups_path);
    }
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for (host, inside) in &spec.volumes {
            mounts.push(json!({"destination": inside, "type": "bind", "source": host, "options": ["rbind", "rw"]}));
        }
    }
    config
}
