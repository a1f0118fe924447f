//! A cgroup name is a claim, not proof: any local user can put a process in
//! a cgroup named like a container's (`systemd-run --user --scope
//! --unit=docker-<id>` does it on any systemd host). Before a container
//! found by its cgroup fails the scan, something beyond the name must say
//! it is a container:
//!
//! - one of its host-PID processes runs on another root, or in another
//!   mount namespace, than the host's;
//! - its runtime keeps a record of its id on disk (a real container whose
//!   process escaped into the host's mount namespace still has one);
//! - a runtime process (a shim, conmon, runc, ...) is among its processes'
//!   ancestors.
//!
//! With none of these it is an unverified claim. Anything that cannot be
//! read counts as evidence: without a host root to look for records in (an
//! evidence tree), or a host identity to compare roots with, every claim
//! stands, as before.

use std::path::Path;

use super::{Ancestry, host::HostIdentity};
use crate::{
    error::ReadErrorKind, procfs::ProcRoot, report::ContainerKey, state::records::has_record,
};

/// What was found of a container beyond its cgroup's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Something says it is a container (or nothing could be checked).
    Container,
    /// Nothing but its cgroup's name: why, and whose processes they are.
    None {
        reason: String,
        owner_uid: Option<u32>,
    },
}

/// What judging a claim needs.
pub struct Claims<'a> {
    pub proc: &'a ProcRoot,
    pub host: &'a HostIdentity,
    /// Where runtimes keep their state; `None` (an evidence tree without
    /// `--host-root`): every claim stands.
    pub state_root: Option<&'a Path>,
}

impl Claims<'_> {
    /// Judges the container `key` (containerd `namespace`) from its host-PID
    /// processes `pids` (not runtime processes), cheapest evidence first:
    /// one `stat` of the first process's root settles a real container.
    pub fn judge(
        &self,
        key: &ContainerKey,
        namespace: Option<&str>,
        pids: &[u32],
        ancestry: &mut Ancestry<'_>,
    ) -> Evidence {
        let Some(state_root) = self.state_root else {
            return Evidence::Container;
        };
        if !self.host.usable() || pids.is_empty() {
            return Evidence::Container;
        }
        for &pid in pids {
            match self.proc.root_id(pid) {
                // the host's root: is it in the host's mount namespace too?
                Ok(root) if Some(root) == self.host.root => match self.proc.ns_inode(pid, "mnt") {
                    Ok(mnt) if Some(mnt) == self.host.mnt_ns => {}
                    Err(e) if e.kind == ReadErrorKind::Vanished && !self.proc.exists(pid) => {}
                    _ => return Evidence::Container,
                },
                // gone since it was seen: no evidence either way
                Err(e) if e.kind == ReadErrorKind::Vanished && !self.proc.exists(pid) => {}
                // another root (or one that cannot be read)
                _ => return Evidence::Container,
            }
        }
        if has_record(state_root, key.runtime, &key.id, namespace) {
            return Evidence::Container;
        }
        for &pid in pids {
            if ancestry.runtime_ancestor(pid) != Some(false) {
                return Evidence::Container;
            }
        }
        let owner_uid = pids.iter().find_map(|&pid| self.proc.status(pid).ok()?.uid);
        Evidence::None {
            reason: format!(
                "nothing but its cgroup's name says it is a container: its processes run on the host's root in the host's mount namespace, {} keeps no record of {} under {}, and no runtime process is among their ancestors",
                key.runtime,
                key.id,
                state_root.display()
            ),
            owner_uid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse::layout::Runtime, testutil::Tree};

    const HOST_MNT: u64 = 4026531832;
    const ID: &str = "40e9cfb459ea932ec1f41ca728c2afb10676bb793b3ad87f4b67f7873eccbae4";

    fn key() -> ContainerKey {
        ContainerKey {
            runtime: Runtime::Docker,
            id: ID.into(),
            cgroup: format!("/user.slice/docker-{ID}.scope"),
        }
    }

    #[test]
    fn a_claim_needs_more_than_a_name() {
        let t = Tree::new();
        let host_root = t.path().join("hostroot");
        let ctr = t.path().join("ctr");
        std::fs::create_dir(&host_root).unwrap();
        std::fs::create_dir(&ctr).unwrap();
        t.pid(1).status("systemd", 0);
        t.pid(20).status("bash", 1);
        let host_process = |pid: u32, parent: u32| {
            t.pid(pid)
                .file(
                    "status",
                    &format!("Name:\tsleep\nPPid:\t{parent}\nUid:\t1000\t1000\t1000\t1000\n"),
                )
                .ns("mnt", HOST_MNT)
                .root(&host_root);
        };
        host_process(21, 20);
        let proc = t.proc();
        let host = HostIdentity {
            mnt_ns: Some(HOST_MNT),
            root: proc.root_id(21).ok(),
        };
        let state = tempfile::tempdir().unwrap();
        let claims = Claims {
            proc: &proc,
            host: &host,
            state_root: Some(state.path()),
        };
        let mut ancestry = Ancestry::new(&proc);
        let Evidence::None { reason, owner_uid } = claims.judge(&key(), None, &[21], &mut ancestry)
        else {
            panic!("a host process under a claimed name");
        };
        assert_eq!(owner_uid, Some(1000));
        assert!(reason.contains("keeps no record"), "{reason}");

        // its own mount namespace is evidence (unshare -m)
        t.pid(21).ns("mnt", 4026532001);
        assert_eq!(
            claims.judge(&key(), None, &[21], &mut ancestry),
            Evidence::Container
        );
        t.pid(21).ns("mnt", HOST_MNT);
        // so is another root
        t.pid(21).root(&ctr);
        assert_eq!(
            claims.judge(&key(), None, &[21], &mut ancestry),
            Evidence::Container
        );
        t.pid(21).root(&host_root);
        // and a runtime process among its ancestors
        t.pid(30).status("containerd-shim", 1);
        host_process(31, 30);
        assert_eq!(
            claims.judge(&key(), None, &[21, 31], &mut ancestry),
            Evidence::Container
        );
        // and Docker's record of the id (an escaped process of a real container)
        std::fs::create_dir_all(state.path().join("var/lib/docker/containers").join(ID)).unwrap();
        assert_eq!(
            claims.judge(&key(), None, &[21], &mut ancestry),
            Evidence::Container
        );

        // without a host root to look for records in, every claim stands
        let tree_only = Claims {
            state_root: None,
            ..claims
        };
        assert_eq!(
            tree_only.judge(&key(), None, &[21], &mut ancestry),
            Evidence::Container
        );
    }
}
