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
