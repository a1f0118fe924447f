//! Loading and attaching the probes, and talking to their maps.

use std::path::Path;

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
};
use pidns_ebpf::{
    AccessCount, AccessKey, AggKey, AggValue, CgroupClass, Config, HostNs, TaskState, host_ns,
    maps, programs, stream,
};
use tokio::io::unix::AsyncFd;

use super::{
    attach::{attach, attach_proc_open},
    attribute::Suppressed,
};

/// The probes, built and embedded by build.rs.
static PROBES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pidns-probes"));

/// Sizes of what user space sizes before loading.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The findings ring, in bytes (a power of two multiple of the page size).
    pub findings_ring: u32,
    /// The other ring, in bytes.
    pub other_ring: u32,
    /// The `CGROUPS` map's entries.
    pub cgroups: u32,
}
pub struct Probes {
    // Dropping `Ebpf` detaches every program; keep it last to drop.
    pub attached: Vec<String>,
    pub skipped: Vec<(String, String)>,
    /// Findings, and what may be one.
    pub findings: AsyncFd<RingBuf<MapData>>,
    /// Everything else.
    pub other: AsyncFd<RingBuf<MapData>>,
    cgroups: BpfHashMap<MapData, u64, CgroupClass>,
    tasks: BpfHashMap<MapData, u32, TaskState>,
    host_ns: BpfHashMap<MapData, u32, HostNs>,
    filter_state: Array<MapData, u64>,
    agg: PerCpuHashMap<MapData, AggKey, AggValue>,
    suppressed: PerCpuArray<MapData, u64>,
    lost: PerCpuArray<MapData, u64>,
    /// `--enforce` kills in the kernel, by mode.
    enforced: PerCpuArray<MapData, u64>,
    access_seen: BpfHashMap<MapData, AccessKey, AccessCount>,
    access_repeats: PerCpuArray<MapData, u64>,
    /// `CGROUPS` inserts refused (the map full), in all.
    pub cgroups_refused: u64,
    _ebpf: Ebpf,
}

impl Probes {
    /// Loads and attaches the probes; `compat` adds [`attach::COMPAT_SETNS`].
    pub fn load(
        config: &Config,
        sizes: Sizes,
        tracefs: Result<std::path::PathBuf, String>,
        compat: bool,
        proc_access: bool,
    ) -> anyhow::Result<Probes> {
        Self::load_with(config, sizes, tracefs, compat, proc_access)
            .map_err(|e| anyhow::anyhow!(describe(&e)))
    }

    fn load_with(
        config: &Config,
        sizes: Sizes,
        tracefs: Result<std::path::PathBuf, String>,
        compat: bool,
        proc_access: bool,
    ) -> anyhow::Result<Probes> {
        use anyhow::Context as _;
        raise_memlock();
        let btf = Btf::from_sys_fs().context("reading the kernel's BTF")?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global(maps::CONFIG, config, true)
            .map_max_entries(maps::FINDINGS, sizes.findings_ring)
            .map_max_entries(maps::EVENTS, sizes.other_ring)
            .map_max_entries(maps::CGROUPS, sizes.cgroups)
            .load(PROBES)
            .context("loading the eBPF probes")?;
        let (mut attached, skipped) = attach(&mut ebpf, &btf, config, &tracefs, compat)?;
        if proc_access {
            attach_proc_open(&mut ebpf, &tracefs)
                .context("--proc-access: attaching the open probes")?;
            attached.push(programs::SYS_EXIT_PROC_OPEN.to_owned());
        }
        drop(btf);
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .with_context(|| format!("map {name} missing"))
        };
        let ring = |ebpf: &mut Ebpf, name: &str| -> anyhow::Result<AsyncFd<RingBuf<MapData>>> {
            let ring = RingBuf::try_from(take(ebpf, name)?)?;
            // SAFETY: the RingBuf owns its map fd for as long as the AsyncFd owns it.
            unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("registering the ring buffer {name} with tokio: {e}"))
        };
        Ok(Probes {
            findings: ring(&mut ebpf, maps::FINDINGS)?,
            other: ring(&mut ebpf, maps::EVENTS)?,
            cgroups: BpfHashMap::try_from(take(&mut ebpf, maps::CGROUPS)?)?,
            tasks: BpfHashMap::try_from(take(&mut ebpf, maps::TASKS)?)?,
            host_ns: BpfHashMap::try_from(take(&mut ebpf, maps::HOST_NS)?)?,
            filter_state: Array::try_from(take(&mut ebpf, maps::FILTER_STATE)?)?,
            agg: PerCpuHashMap::try_from(take(&mut ebpf, maps::AGG)?)?,
            suppressed: PerCpuArray::try_from(take(&mut ebpf, maps::SUPPRESSED)?)?,
            lost: PerCpuArray::try_from(take(&mut ebpf, maps::LOST)?)?,
            enforced: PerCpuArray::try_from(take(&mut ebpf, maps::ENFORCED)?)?,
            access_seen: BpfHashMap::try_from(take(&mut ebpf, maps::ACCESS_SEEN)?)?,
            access_repeats: PerCpuArray::try_from(take(&mut ebpf, maps::ACCESS_REPEATS)?)?,
            cgroups_refused: 0,
            attached,
            skipped,
            _ebpf: ebpf,
        })
    }

    /// Tells the kernel how to treat a cgroup. A full map is counted (and
    /// said once by the caller): the cgroup stays unclassified in the
    /// kernel, whose events then come here to be judged from the table.
    pub fn classify(&mut self, cgroup_id: u64, class: u32, container: u64) -> bool {
        let value = CgroupClass {
            class,
            _pad: 0,
            container,
        };
        match self.cgroups.insert(cgroup_id, value, 0) {
            Ok(()) => true,
            Err(_) => {
                self.cgroups_refused += 1;
                false
            }
        }
    }

    /// Marks a container process, anchored to its container (see
    /// `TaskState::container`); `outside`: already outside its container's
    /// cgroup, so that moving again is no `cgroup_escape`.
    pub fn track(&mut self, pid: u32, anchor: u64, outside: bool) {
        let mut s = TaskState::anchored(anchor);
        s.escaped = u32::from(outside);
        let _ = self.tasks.insert(pid, s, 0);
    }

    /// Takes a process's entry out of the task map.
    pub fn untrack(&mut self, pid: u32) {
        let _ = self.tasks.remove(&pid);
    }

    /// Adds a host namespace; `false` when the map is full (and marks the
    /// filter open, as the kernel does).
    pub fn add_host_ns(&mut self, inum: u32, nstype: u32, provenance: u32) -> bool {
        if self
            .host_ns
            .insert(inum, HostNs { nstype, provenance }, 0)
            .is_ok()
        {
            return true;
        }
        let _ = self.filter_state.set(host_ns::OVERFLOW, 1, 0);
        false
    }

    pub fn remove_host_ns(&mut self, inum: u32) {
        let _ = self.host_ns.remove(&inum);
    }

    /// Every host namespace entry.
    pub fn host_namespaces(&self) -> Vec<(u32, HostNs)> {
        self.host_ns.iter().filter_map(Result::ok).collect()
    }

    /// Whether the setns filter is open because `HOST_NS` filled up.
    pub fn host_ns_overflowed(&self) -> bool {
        self.filter_state.get(&host_ns::OVERFLOW, 0).unwrap_or(0) != 0
    }

    /// Closes the filter again once pruning made room.
    pub fn reset_host_ns_overflow(&mut self) {
        let _ = self.filter_state.set(host_ns::OVERFLOW, 0, 0);
    }

    /// Events the kernel dropped so far, over all CPUs, by stream.
    pub fn lost(&self) -> [u64; stream::COUNT] {
        let mut out = [0; stream::COUNT];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self
                .lost
                .get(&(i as u32), 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or(0);
        }
        out
    }

    /// Processes the probes killed so far (`--enforce`), over all CPUs, by
    /// mode ([`pidns_ebpf::enforce::ALL`] order); their events may have
    /// been lost or aggregated.
    pub fn enforced(&self) -> [u64; pidns_ebpf::enforce::SLOTS] {
        let mut out = [0; pidns_ebpf::enforce::SLOTS];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self
                .enforced
                .get(&(i as u32), 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or(0);
        }
        out
    }

    /// Events the budgets held back so far, over all CPUs.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }

    /// Host access repeats the kernel counted so far, over all CPUs.
    pub fn access_repeats(&self) -> u64 {
        self.access_repeats
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }

    /// Every host access key with repeats, and their cumulative count.
    pub fn access_counts(&self) -> Vec<(AccessKey, u64)> {
        self.access_seen
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, c)| c.repeats > 0)
            .map(|(k, c)| (k, c.repeats))
            .collect()
    }

    /// Every budget's counts, summed over the CPUs.
    pub fn aggregates(&self) -> Vec<Suppressed> {
        self.agg
            .iter()
            .filter_map(Result::ok)
            .map(|(key, per_cpu)| {
                let mut s = Suppressed {
                    key,
                    total: 0,
                    last_ns: 0,
                    last_pid: 0,
                    last_cgroup_id: 0,
                    nstypes: 0,
                };
                for v in per_cpu.iter() {
                    s.total += v.suppressed;
                    s.nstypes |= v.nstypes;
                    if v.last_ns > s.last_ns {
                        (s.last_ns, s.last_pid, s.last_cgroup_id) =
                            (v.last_ns, v.last_pid, v.last_cgroup_id);
                    }
                }
                s
            })
            .collect()
    }
}

/// An error and its causes on one line, each said once. aya's errors repeat
/// their source in their own message (`map error: failed to create map
/// `LOST``, whose source is `failed to create map `LOST``), which `{:#}`
/// would print twice.
pub fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        match parts.last_mut() {
            Some(prev) if prev.contains(&text) => {}
            Some(prev) if text.starts_with(prev.as_str()) => *prev = text,
            _ => parts.push(text),
        }
    }
    parts.join(": ")
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. Raising it needs
/// CAP_SYS_RESOURCE, which hardened hosts (and this project's CI) lack; newer
/// kernels do not need it, so a refusal is not an error.
fn raise_memlock() {
    use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};
    let _ = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
}

/// Why the probes cannot be used here, checked before trying.
pub fn precheck() -> Result<(), String> {
    if !Path::new(super::btf::VMLINUX).exists() {
        return Err(format!(
            "the kernel has no BTF ({} is missing)",
            super::btf::VMLINUX
        ));
    }
    if !nix::unistd::geteuid().is_root() && !has_bpf_caps() {
        return Err("not root and without CAP_BPF + CAP_PERFMON".into());
    }
    Ok(())
}

/// CAP_BPF and CAP_PERFMON in effect; false when they cannot be read.
fn has_bpf_caps() -> bool {
    use caps::{CapSet, Capability};
    [Capability::CAP_BPF, Capability::CAP_PERFMON]
        .into_iter()
        .all(|cap| caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As aya 0.14 nests them: `EbpfError::MapError(MapError::CreateError { io_error })`.
    #[derive(Debug, thiserror::Error)]
    #[error("map error: {source}")]
    struct Wrapper {
        #[source]
        source: Outer,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("failed to create map `LOST`")]
    struct Outer {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn error_chains_name_each_cause_once() {
        let e = anyhow::Error::new(Wrapper {
            source: Outer {
                source: std::io::Error::from_raw_os_error(libc::EPERM),
            },
        })
        .context("loading the eBPF probes");
        assert_eq!(
            format!("{e:#}").matches("failed to create map").count(),
            2,
            "the repetition this removes"
        );
        assert_eq!(
            describe(&e),
            "loading the eBPF probes: map error: failed to create map `LOST`: Operation not permitted (os error 1)"
        );
        // a cause that starts with its parent's message replaces it
        let e = anyhow::anyhow!("no BTF: gone").context("no BTF");
        assert_eq!(describe(&e), "no BTF: gone");
        let plain = anyhow::anyhow!("no BTF").context("reading");
        assert_eq!(describe(&plain), "reading: no BTF");
    }
}
