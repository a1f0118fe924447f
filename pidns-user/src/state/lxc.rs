//! LXC: `<lxcpath>/<name>/rootfs` (lxcpath `/var/lib/lxc`), or the
//! directory its `config` names in `lxc.rootfs.path = dir:<path>`.

use std::path::{Path, PathBuf};

use super::{CgroupRecord, Recorded, entries, read_text};
use crate::parse::layout::Runtime;

pub const LXC_PATH: &str = "var/lib/lxc";

pub fn recorded(root: &Path, out: &mut Vec<Recorded>) {
    let lxcpath = root.join(LXC_PATH);
    for name in entries(&lxcpath) {
        let config = read_text(&lxcpath.join(&name).join("config")).unwrap_or_default();
        let rootfs = config
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.trim() == "lxc.rootfs.path")
            .map(|(_, v)| v.trim())
            .map(|v| v.strip_prefix("dir:").unwrap_or(v))
            .rfind(|v| v.starts_with('/'))
            .map_or_else(
                || PathBuf::from("/").join(LXC_PATH).join(&name).join("rootfs"),
                PathBuf::from,
            );
        out.push(Recorded {
            runtime: Runtime::Lxc,
            id: name,
            namespace: None,
            rootfs,
            init_pid: None,
            cgroup: CgroupRecord::Layout,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::put;

    #[test]
    fn rootfs_from_the_config_or_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            &format!("{LXC_PATH}/web/config"),
            "lxc.uts.name = web\nlxc.rootfs.path = dir:/srv/web\n",
        );
        put(dir.path(), &format!("{LXC_PATH}/db/config"), "# none\n");
        let mut out = Vec::new();
        recorded(dir.path(), &mut out);
        out.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(out[0].rootfs, PathBuf::from("/var/lib/lxc/db/rootfs"));
        assert_eq!(out[1].rootfs, PathBuf::from("/srv/web"));
    }
}
