//! Place: which processes sit in a container's cgroup (one read each), and
//! which of the others are container-like by their root (one `stat` each;
//! a readlink of `ns/mnt` only for those not on the host's root).
//!
//! The walk is split into contiguous halves of the pid list, one per core
//! (see [`walkers`]): the reads are the kernel's work, which it does on
//! both at once, and the halves join in pid order.

use super::{Candidate, Rooted, Scan, count_error};
use crate::{
    engine::{
        Ancestry,
        placement::place,
        rootfs::{RootFact, root_fact},
    },
    error::ReadErrorKind,
    parse::{cgroup, layout::Role},
    report::Summary,
};

/// Where one process's cgroup file puts it.
enum Cgroup {
    /// Read and well-formed, in no container's cgroup.
    Read,
    /// The kernel could not print it whole (a path over PATH_MAX), or what
    /// it printed is not a cgroup file.
    Unreadable,
}

/// What one walker found in its share of the pids.
#[derive(Default)]
struct Placed {
    candidates: Vec<Candidate>,
    rooted: Vec<Rooted>,
    summary: Summary,
}

/// How many threads walk `n` processes: both cores for a host worth it,
/// one for a small one (a thread costs more than a few hundred reads).
pub(super) fn walkers(n: usize) -> usize {
    const PER_WALKER: usize = 512;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.min(2).min(n / PER_WALKER).max(1)
}

impl Scan<'_> {
    pub(super) fn place(&mut self, pids: &[u32]) -> (Vec<Candidate>, Vec<Rooted>) {
        let judge_roots = self.identity.usable();
        let this = &*self;
        let parts = on_cores(pids, |share| this.place_share(share, judge_roots));
        let (mut candidates, mut rooted) = (Vec::new(), Vec::new());
        for p in parts {
            candidates.extend(p.candidates);
            rooted.extend(p.rooted);
            add(&mut self.summary, &p.summary);
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

    /// One walker's share of the pids, in order.
    fn place_share(&self, pids: &[u32], judge_roots: bool) -> Placed {
        let mut out = Placed::default();
        let mut buf = Vec::with_capacity(4096);
        let mut ancestry = Ancestry::new(&self.proc);
        for &pid in pids {
            let state = match self
                .proc
                .read_into(pid, "cgroup", &mut buf)
                .map(|()| place(&buf))
            {
                Ok(Err(_malformed)) => {
                    out.summary.cgroup_unreadable += 1;
                    Cgroup::Unreadable
                }
                Ok(Ok(placed)) => match placed {
                    // A monitor's own cgroup (never one inside a container's:
                    // the layout attributes those to the container).
                    Some(p) if p.role == Role::Monitor => continue,
                    Some(mut p) if p.needs_confirmation => {
                        if ancestry.has_shim_ancestor(pid) {
                            crate::engine::refine_runtime(&mut p, self.opts.state_root.as_deref());
                            out.candidates.push(Candidate { pid, placement: p });
                            continue;
                        }
                        Cgroup::Read
                    }
                    Some(p) => {
                        out.candidates.push(Candidate { pid, placement: p });
                        continue;
                    }
                    None => Cgroup::Read,
                },
                Err(e) => {
                    count_error(&mut out.summary, &e);
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
                self.by_root(pid, &state, &buf, &mut out);
            }
        }
        out
    }

    /// A process in no container's cgroup: container-like by its root?
    fn by_root(&self, pid: u32, state: &Cgroup, buf: &[u8], out: &mut Placed) {
        // The host PID is the host by definition (its root may be
        // unreadable even to root, as PID 1's is on some sandboxes).
        if pid == self.host.host_pid {
            return;
        }
        match root_fact(&self.proc, pid, &self.identity) {
            RootFact::HostRoot | RootFact::Chroot | RootFact::KernelThread => {}
            RootFact::Vanished => out.summary.processes_vanished += 1,
            RootFact::Unreadable(_) => out.summary.roots_unreadable += 1,
            RootFact::ContainerLike { root, mnt_ns } => out.rooted.push(Rooted {
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

/// `walk` over contiguous shares of `items`, one per [`walkers`], each on a
/// thread of its own when there are several; the results in order.
pub(super) fn on_cores<T: Sync, R: Send>(items: &[T], walk: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let n = walkers(items.len());
    if n == 1 {
        return vec![walk(items)];
    }
    let chunk = items.len().div_ceil(n).max(1);
    let walk = &walk;
    std::thread::scope(|s| {
        let threads: Vec<_> = items
            .chunks(chunk)
            .map(|share| s.spawn(move || walk(share)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Adds a walker's counts of what it could not read.
fn add(total: &mut Summary, part: &Summary) {
    total.processes_vanished += part.processes_vanished;
    total.permission_errors += part.permission_errors;
    total.malformed_entries += part.malformed_entries;
    total.cgroup_unreadable += part.cgroup_unreadable;
    total.roots_unreadable += part.roots_unreadable;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_hosts_walk_on_one_thread() {
        assert_eq!(walkers(0), 1);
        assert_eq!(walkers(100), 1);
        assert!(walkers(20_000) <= 2);
    }
}
