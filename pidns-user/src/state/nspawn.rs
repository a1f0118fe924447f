//! systemd-nspawn: the machine directories in `/var/lib/machines`, where
//! `machinectl` and `systemd-nspawn -M <name>` look for a machine's tree.
//! A container started from elsewhere (`-D <dir>`) is not recorded there.

use std::path::{Path, PathBuf};

use super::{CgroupRecord, Recorded, entries};
use crate::parse::layout::Runtime;

pub const MACHINES: &str = "var/lib/machines";

pub fn recorded(root: &Path, out: &mut Vec<Recorded>) {
    let machines = root.join(MACHINES);
    for name in entries(&machines) {
        if !machines.join(&name).is_dir() {
            continue; // a `.raw` image: mounted elsewhere when it runs
        }
        out.push(Recorded {
            runtime: Runtime::SystemdNspawn,
            rootfs: PathBuf::from("/").join(MACHINES).join(&name),
            id: name,
            namespace: None,
            init_pid: None,
            // `--keep-unit` keeps its caller's cgroup
            cgroup: CgroupRecord::Unknown,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(MACHINES).join("web/usr")).unwrap();
        std::fs::write(dir.path().join(MACHINES).join("img.raw"), "").unwrap();
        let mut out = Vec::new();
        recorded(dir.path(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].runtime, out[0].id.as_str()),
            (Runtime::SystemdNspawn, "web")
        );
        assert_eq!(out[0].rootfs, PathBuf::from("/var/lib/machines/web"));
    }
}
