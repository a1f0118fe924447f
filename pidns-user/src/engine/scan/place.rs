//! Place: which processes sit in a container's cgroup (one read each), and
//! which of the others are container-like by their root (one `stat` each;
//! a readlink of `ns/mnt` only for those not on the host's root).

use super::{Candidate, Rooted, Scan, count_error};
use crate::{
    engine::{
        Ancestry, placement,
        rootfs::{RootFact, root_fact},
    },
    error::ReadErrorKind,
    parse::{cgroup, layout::Role},
};

/// Where one process's cgroup file puts it.
enum Cgroup {
    /// Read and well-formed: its shown path, for one in no container.
    Read,
    /// The kernel would not print it (a path over PATH_MAX), or what it
    /// printed is not a cgroup file.
    Unreadable,
}

impl Scan<'_> {
    pub(super) fn place(&mut self, pids: &[u32]) -> (Vec<Candidate>, Vec<Rooted>) {
        let mut candidates = Vec::new();
        let mut rooted = Vec::new();
        let mut buf = Vec::with_capacity(4096);
        let proc = self.proc.clone();
        let mut ancestry = Ancestry::new(&proc);
        let judge_roots = self.identity.usable();
        for &pid in pids {
            let state = match self.proc.read_into(pid, "cgroup", &mut buf) {
                Ok(()) if cgroup::malformed(&buf).is_some() => {
                    self.summary.cgroup_unreadable += 1;
                    Cgroup::Unreadable
                }
                Ok(()) => match placement(&buf) {
                    // A monitor's own cgroup (never one inside a container's:
                    // the layout attributes those to the container).
                    Some(p) if p.role == Role::Monitor => continue,
                    Some(mut p) if p.needs_confirmation => {
                        if ancestry.has_shim_ancestor(pid) {
                            crate::engine::refine_runtime(&mut p, self.opts.state_root.as_deref());
                            candidates.push(Candidate { pid, placement: p });
                            continue;
                        }
                        Cgroup::Read
                    }
                    Some(p) => {
                        candidates.push(Candidate { pid, placement: p });
                        continue;
                    }
                    None => Cgroup::Read,
                },
                Err(e) => {
                    count_error(&mut self.summary, &e);
                    match e.kind {
                        ReadErrorKind::TooLong | ReadErrorKind::PermissionDenied => {
                            Cgroup::Unreadable
                        }
                        // gone, or not laid out like a process at all
                        _ => continue,
                    }
                }
            };
            if judge_roots {
                self.by_root(pid, &state, &buf, &mut rooted);
            }
        }
        if !judge_roots {
            self.warnings.push(
                "the host's root directory or mount namespace could not be read (an evidence tree without `root` entries or `ns/mnt` links?): processes in no container's cgroup are judged by their cgroup alone".into(),
            );
        } else if self.summary.roots_unreadable > 0 {
            self.warnings.push(format!(
                "{} processes in no container's cgroup had an unreadable root (not root, or a protected process): they are judged by their cgroup alone",
                self.summary.roots_unreadable
            ));
        }
        (candidates, rooted)
    }

    /// A process in no container's cgroup: container-like by its root?
    fn by_root(&mut self, pid: u32, state: &Cgroup, buf: &[u8], rooted: &mut Vec<Rooted>) {
        // The host PID is the host by definition (its root may be
        // unreadable even to root, as PID 1's is on some sandboxes).
        if pid == self.host.host_pid {
            return;
        }
        match root_fact(&self.proc, pid, &self.identity) {
            RootFact::HostRoot | RootFact::Chroot | RootFact::KernelThread => {}
            RootFact::Vanished => self.summary.processes_vanished += 1,
            RootFact::Unreadable(_) => self.summary.roots_unreadable += 1,
            RootFact::ContainerLike { root, mnt_ns } => rooted.push(Rooted {
                pid,
                root,
                mnt_ns,
                cgroup: match state {
                    Cgroup::Read => {
                        cgroup::shown_path(buf).map(|p| String::from_utf8_lossy(p).into_owned())
                    }
                    Cgroup::Unreadable => None,
                },
            }),
        }
    }
}
