//! Whose process a host access aimed at: the host's, another container's,
//! or the actor's own container's (not reported).

use std::os::unix::fs::MetadataExt as _;

use pidns_ebpf::{COMM_LEN, Event, cstr, flags};

use super::{Action, Attributor, cgroups::Known, cgroups::Lookup};
use crate::{parse::cgroup, report::AccessTarget};

impl Attributor {
    /// Whose process the target is; `None` when it is the actor's own
    /// container's. The kernel names the target's cgroup when it read the
    /// task (a signal it generated, a pidfd); otherwise it is read from
    /// /proc now, and a target gone by then is `unknown`.
    pub(super) fn access_target(
        &mut self,
        ev: &Event,
        actor: &Known,
        actions: &mut Vec<Action>,
    ) -> Option<AccessTarget> {
        let pid = ev.target_pid;
        let (cgroup_id, comm) = if ev.flags & flags::TARGET_RESOLVED != 0 {
            let comm = cstr(&ev.data[..COMM_LEN]);
            (
                Some(ev.target_cgroup_id),
                Some(String::from_utf8_lossy(comm).into_owned()),
            )
        } else if pid == 0 {
            (None, None)
        } else {
            (self.cgroup_id_of(pid), self.proc.comm(pid).ok())
        };
        let mut target = AccessTarget {
            pid,
            comm,
            target: "unknown".into(),
            runtime: None,
            name: None,
        };
        let Some(cgroup_id) = cgroup_id else {
            return Some(target);
        };
        match self.cgroups.lookup(&self.proc, cgroup_id, pid, actions) {
            Lookup::Container(k) if k.identity.key() == actor.identity.key() => return None,
            Lookup::Container(k) => {
                target.target = k.identity.id;
                target.runtime = Some(k.identity.runtime);
                target.name = k.identity.name;
            }
            Lookup::Host => target.target = "host".into(),
            Lookup::Unplaced => {}
        }
        Some(target)
    }

    /// A live process's cgroup v2 id: the inode of its unified cgroup's
    /// directory.
    fn cgroup_id_of(&self, pid: u32) -> Option<u64> {
        let root = self.cgroup_root.as_ref()?;
        let mut buf = Vec::new();
        self.proc.read_into(pid, "cgroup", &mut buf).ok()?;
        let path = cgroup::unified_path(&buf)?;
        let rel = String::from_utf8_lossy(path).into_owned();
        let dir = root.join(rel.trim_start_matches('/'));
        std::fs::metadata(dir).ok().map(|m| m.ino())
    }
}
