//! A process's ancestry: whether a containerd shim is among its ancestors.

use std::collections::HashMap;

use crate::procfs::ProcRoot;

/// Whether a containerd shim is among `pid`'s ancestors: the second signal
/// that confirms the `/<namespace>/<id>` layout.
pub struct Ancestry<'a> {
    proc: &'a ProcRoot,
    memo: HashMap<u32, bool>,
}

impl<'a> Ancestry<'a> {
    pub fn new(proc: &'a ProcRoot) -> Self {
        Ancestry {
            proc,
            memo: HashMap::new(),
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

    /// Whether `start` or one of its ancestors is a containerd shim. The
    /// memo holds this (inclusive) answer for every process a finished walk
    /// passed.
    fn shim_at_or_above(&mut self, start: u32) -> Option<bool> {
        let mut chain = Vec::new();
        let mut cur = start;
        let mut found = Some(false);
        for _ in 0..64 {
            if let Some(&known) = self.memo.get(&cur) {
                found = Some(known);
                break;
            }
            chain.push(cur);
            let Ok(status) = self.proc.status(cur) else {
                found = None;
                break;
            };
            if status
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("containerd-shim"))
            {
                found = Some(true);
                break;
            }
            match status.ppid {
                Some(ppid) if ppid > 0 && ppid != cur => cur = ppid,
                _ => break,
            }
        }
        if let Some(answer) = found {
            for p in chain {
                self.memo.insert(p, answer);
            }
        }
        found
    }
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
    }
}
