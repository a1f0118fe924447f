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

    pub fn has_shim_ancestor(&mut self, pid: u32) -> bool {
        let mut chain = Vec::new();
        let mut cur = pid;
        let mut found = false;
        for _ in 0..64 {
            if let Some(&known) = self.memo.get(&cur) {
                found = known;
                break;
            }
            chain.push(cur);
            let Ok(status) = self.proc.status(cur) else {
                break;
            };
            if cur != pid
                && status
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("containerd-shim"))
            {
                found = true;
                break;
            }
            match status.ppid {
                Some(ppid) if ppid > 0 && ppid != cur => cur = ppid,
                _ => break,
            }
        }
        // Only the queried process may not count itself; its ancestors' answers are shared.
        for p in chain.into_iter().skip(1) {
            self.memo.insert(p, found);
        }
        found
    }
}
