//! A cgroup's name is a claim, live as in `scan` ([`crate::engine::claim`]):
//! a container found by its cgroup's name is judged once, by the first
//! process an event names, before any of its events is a finding. With no
//! container evidence it is an unverified claim: said once on stderr with
//! its owner, and its cgroups are handed to the kernel as the host's, so
//! that its events stop there. A container-like process exec'ing in it
//! later (the kernel still sends those, see `outside`) has it judged again.

use pidns_ebpf::{Event, flags};

use super::{Action, Attributor, cgroups::Known};
use crate::{
    engine::{
        Ancestry,
        claim::{Claims, Evidence},
    },
    report::{ContainerKey, ScanReport, Verdict},
};

impl Attributor {
    /// Whether the container an event's cgroup names holds as one.
    pub(super) fn claim_holds(
        &mut self,
        known: &Known,
        ev: &Event,
        actions: &mut Vec<Action>,
    ) -> bool {
        if self.verified.contains(&known.key) {
            return true;
        }
        let was_unverified = self.unverified.contains(&known.key);
        if was_unverified && ev.flags & flags::FOREIGN_MNT == 0 {
            return false;
        }
        let claims = Claims {
            proc: &self.proc,
            host: &self.identity,
            state_root: self.state_root.as_deref(),
        };
        let mut ancestry = Ancestry::new(&self.proc);
        match claims.judge(
            &known.key,
            known.namespace.as_deref(),
            &[ev.pid],
            &mut ancestry,
        ) {
            Evidence::Container => {
                self.verified.insert(known.key.clone());
                if was_unverified {
                    self.unverified.remove(&known.key);
                    actions.extend(self.cgroups.set_claim(&known.key, true));
                }
                true
            }
            Evidence::None { reason, owner_uid } => {
                if !was_unverified {
                    self.unverified.insert(known.key.clone());
                    eprintln!(
                        "pidns watch: cgroup {} is named like {} container {}, but it is an unverified claim (owner uid {}), not reported: {reason}",
                        known.key.cgroup,
                        known.key.runtime,
                        known.key.id,
                        owner_uid.map_or_else(|| "unknown".to_owned(), |u| u.to_string()),
                    );
                    actions.extend(self.cgroups.set_claim(&known.key, false));
                }
                false
            }
        }
    }

    /// The start-up scan's verdicts on claims: the containers it judged
    /// sharing (or allowed) hold; the unverified ones do not, and their
    /// cgroups go to the kernel as the host's.
    pub fn judged_by_scan(&mut self, report: &ScanReport) -> Vec<Action> {
        let mut actions = Vec::new();
        for c in &report.containers {
            if c.found_by != crate::report::FoundBy::Cgroup {
                continue;
            }
            let key = ContainerKey {
                runtime: c.runtime,
                id: c.id.clone(),
                cgroup: c.cgroup.clone(),
            };
            match c.verdict {
                Verdict::Shares | Verdict::Allowed => {
                    self.verified.insert(key);
                }
                Verdict::Unverified => {
                    if self.unverified.insert(key.clone()) {
                        actions.extend(self.cgroups.set_claim(&key, false));
                    }
                }
                Verdict::Unknown | Verdict::Isolated => {}
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use pidns_ebpf::{class, flags, kind};

    use super::super::testing::*;
    use crate::watch::attribute::Action;

    #[test]
    fn a_claimed_cgroup_is_judged_before_its_events_are_findings() {
        let dir = tempfile::tempdir().expect("tmp");
        let state = tempfile::tempdir().expect("state");
        for d in ["hostroot", "ctr"] {
            std::fs::create_dir(dir.path().join(d)).expect("dir");
        }
        let hostroot = dir.path().join("hostroot");
        crate::testutil::process(dir.path(), 1, "init", 0, "/", &host_ns(), 1).root(&hostroot);
        let scope = format!("/user.slice/user-1000.slice/user@1000.service/docker-{ID}.scope");
        crate::testutil::process(dir.path(), 70, "sleep", 1, &scope, &host_ns(), 9).root(&hostroot);
        let mut a = attributor(dir.path(), &[]);
        a.set_state_root(Some(state.path().to_owned()));
        assert!(a.learn(40, scope.as_bytes()).is_some());
        let out = a.handle(&event(kind::EXEC, 40, 70, "sleep", "/bin/sleep"));
        assert!(findings(&out).is_empty(), "a claim: {out:?}");
        assert!(
            out.contains(&Action::Classify {
                cgroup_id: 40,
                class: class::HOST,
                container: 0
            }),
            "its events stop in the kernel: {out:?}"
        );
        // judged once
        assert!(a.handle(&event(kind::EXEC, 40, 70, "sleep", "")).is_empty());
        // a container-like process exec'ing there: judged again, a container
        crate::testutil::process(dir.path(), 71, "sh", 1, &scope, &[("mnt", 4026532700)], 9)
            .root(&dir.path().join("ctr"));
        let mut exec = event(kind::EXEC, 40, 71, "sh", "/bin/sh");
        exec.flags = flags::FOREIGN_MNT;
        let out = a.handle(&exec);
        assert_eq!(findings(&out).len(), 1, "{out:?}");
        assert!(out.contains(&Action::Classify {
            cgroup_id: 40,
            class: class::CONTAINER,
            container: 40
        }));
    }
}
