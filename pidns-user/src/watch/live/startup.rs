//! Before the loop: the cgroups that exist already, classified in the
//! kernel's map, and the optional probes that could not be attached.

use super::Loop;
use crate::{
    report::MissingProbe,
    watch::{
        WatchOptions,
        attribute::{Action, Attributor},
        cgroupfs,
        ebpf::Probes,
    },
};

impl Loop<'_> {
    /// Classifies every cgroup that exists now (as many as the kernel's map
    /// holds); new ones arrive as mkdir events.
    pub(super) fn classify_existing(&mut self, opts: &WatchOptions, attr: &mut Attributor) {
        let Some(root) = opts
            .cgroup_root
            .as_deref()
            .map(cgroupfs::resolve_root)
            .or_else(cgroupfs::unified_mount)
        else {
            eprintln!(
                "pidns watch: no cgroup v2 hierarchy mounted here (--cgroup-root); existing cgroups are classified as their processes show up"
            );
            return;
        };
        attr.set_cgroup_root(root.clone());
        let limit = opts.max_cgroups as usize;
        let walked = cgroupfs::walk(&root, limit);
        if walked.len() >= limit {
            eprintln!(
                "pidns watch: more than {limit} cgroups (--max-cgroups): those beyond are classified as their processes show up"
            );
        }
        for (id, path) in walked {
            if let Some(Action::Classify {
                cgroup_id,
                class,
                container,
            }) = attr.learn(id, &path)
                && !self.probes.classify(cgroup_id, class, container)
            {
                self.say_cgroups_full();
            }
        }
    }
}

/// The optional probes that could not be attached, each said on stderr
/// with what goes unseen without it.
pub(super) fn missing_probes(probes: &Probes) -> Vec<MissingProbe> {
    let missing: Vec<MissingProbe> = probes
        .skipped
        .iter()
        .map(|(name, why)| MissingProbe::new(name, why))
        .collect();
    for m in &missing {
        eprintln!(
            "pidns watch: optional probe {} not attached, so {} will not be reported: {}{}",
            m.probe,
            m.unseen,
            m.reason,
            if m.probe.starts_with("sys_") {
                " (syscall tracepoints need tracefs: mount it on the host with `mount -t tracefs nodev /sys/kernel/tracing`, or let pidns mount it with CAP_SYS_ADMIN)"
            } else {
                ""
            }
        );
    }
    missing
}
