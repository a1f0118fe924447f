//! A process's ancestry: whether a containerd shim, or any runtime process,
//! is among its ancestors.

use std::collections::HashMap;

use super::runtime_process::is_runtime_process;
use crate::procfs::ProcRoot;

/// Whether a containerd shim is among `pid`'s ancestors: the second signal
/// that confirms the `/<namespace>/<id>` layout.
pub struct Ancestry<'a> {
    proc: &'a ProcRoot,
    memo: HashMap<u32, bool>,
    /// The same for any runtime process (by name).
    runtime_memo: HashMap<u32, bool>,
}

impl<'a> Ancestry<'a> {
    pub fn new(proc: &'a ProcRoot) -> Self {
        Ancestry {
            proc,
            memo: HashMap::new(),
            runtime_memo: HashMap::new(),
        }
    }

    /// Whether a containerd shim is among `pid`'s ancestors; `false` also
    /// when that cannot be told (see [`Ancestry::shim_ancestor`]).
    pub fn has_shim_ancestor(&mut self, pid: u32) -> bool {
        self.shim_ancestor(pid) == Some(true)
    }

    /// Whether a containerd shim is among `pid`'s ancestors: `None` when the
    /// walk could not finish (the process or an ancestor exited, its status
    /// is unreadable), which is no answer and is not remembered.
    pub fn shim_ancestor(&mut self, pid: u32) -> Option<bool> {
        let status = self.proc.status(pid).ok()?;
        match status.ppid {
            Some(ppid) if ppid > 0 && ppid != pid => self.shim_at_or_above(ppid),
            _ => Some(false),
        }
    }

    /// Whether a runtime process (a shim, conmon, an OCI runtime, LXC's
    /// monitor, systemd-nspawn; by name) is among `pid`'s ancestors: `None`
    /// when the walk could not finish. A name proves nothing, so this only
    /// ever adds to the evidence that a process is a container's.
    pub fn runtime_ancestor(&mut self, pid: u32) -> Option<bool> {
        let status = self.proc.status(pid).ok()?;
        match status.ppid {
            Some(ppid) if ppid > 0 && ppid != pid => {
                let proc = self.proc;
                walk(proc, &mut self.runtime_memo, ppid, is_runtime_process)
            }
            _ => Some(false),
        }
    }

    /// Whether `start` or one of its ancestors is a containerd shim.
    fn shim_at_or_above(&mut self, start: u32) -> Option<bool> {
        walk(self.proc, &mut self.memo, start, |n| {
            n.starts_with("containerd-shim")
        })
    }
}

/// How many processes a walk reads at most.
const MAX_DEPTH: usize = 64;

/// Whether `start` or one of its ancestors has a name `wanted` accepts. The
/// memo holds this (inclusive) answer for every process a finished walk
/// passed.
fn walk(
    proc: &ProcRoot,
    memo: &mut HashMap<u32, bool>,
    start: u32,
    wanted: impl Fn(&str) -> bool,
) -> Option<bool> {
    let mut chain = Vec::new();
    let mut cur = start;
    // A chain deeper than the walk goes (a container forking deep below
    // its shim) is no answer, as a broken one is: never "none above".
    let mut found = None;
    for _ in 0..MAX_DEPTH {
        if let Some(&known) = memo.get(&cur) {
            found = Some(known);
            break;
        }
        chain.push(cur);
        let Ok(status) = proc.status(cur) else {
            break;
        };
        if status.name.as_deref().is_some_and(&wanted) {
            found = Some(true);
            break;
        }
        match status.ppid {
            Some(ppid) if ppid > 0 && ppid != cur => cur = ppid,
            _ => {
                found = Some(false);
                break;
            }
        }
    }
    if let Some(answer) = found {
        for p in chain {
            memo.insert(p, answer);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Tree;

    #[test]
    fn a_shim_among_the_ancestors_and_no_answer_when_the_walk_breaks() {
        let t = Tree::new();
        t.pid(1).status("init", 0);
        t.pid(70).status("containerd-shim", 1);
        t.pid(71).status("sleep", 70);
        t.pid(72).status("sh", 71);
        t.pid(80).status("cron", 1);
        // 90's parent 91 is gone
        t.pid(90).status("job", 91);
        let proc = t.proc();
        let mut a = Ancestry::new(&proc);
        assert_eq!(a.shim_ancestor(72), Some(true));
        assert_eq!(a.shim_ancestor(70), Some(false), "not its own ancestor");
        assert_eq!(a.shim_ancestor(80), Some(false));
        assert_eq!(a.shim_ancestor(90), None);
        assert_eq!(a.shim_ancestor(4242), None, "gone");
        assert!(!a.has_shim_ancestor(4242));
        // any runtime: conmon, runc, lxc-start, ...
        t.pid(60).status("conmon", 1);
        t.pid(61).status("sleep", 60);
        assert_eq!(a.runtime_ancestor(61), Some(true));
        assert_eq!(a.runtime_ancestor(72), Some(true), "a shim is one");
        assert_eq!(a.runtime_ancestor(80), Some(false));
        assert_eq!(a.runtime_ancestor(90), None);
    }

    #[test]
    fn a_chain_deeper_than_the_walk_is_no_answer() {
        let t = Tree::new();
        t.pid(1).status("init", 0);
        t.pid(100).status("containerd-shim", 1);
        // a container process 80 forks deep below its shim
        for pid in 101..=180 {
            t.pid(pid).status("sh", pid - 1);
        }
        let proc = t.proc();
        let mut a = Ancestry::new(&proc);
        assert_eq!(a.shim_ancestor(180), None, "not 'no shim'");
        assert_eq!(a.shim_ancestor(130), Some(true));
    }
}
