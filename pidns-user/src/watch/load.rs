//! Loading the probes: on a thread of their own, which alone mounts tracefs
//! when the host has none mounted.

use super::WatchOptions;
#[cfg(pidns_ebpf)]
use super::{btf, ebpf, hostns, tracefs};
use crate::procfs::ProcRoot;

#[cfg(not(pidns_ebpf))]
pub(crate) fn start_ebpf(
    _: &WatchOptions,
    _: &ProcRoot,
    _: &crate::report::HostPidns,
) -> Result<super::live::Probes, String> {
    Err("this pidns was built without its eBPF probes; install the eBPF toolchain with `cargo xtask setup`, then rebuild with `cargo xtask build` (or `cargo build --release -p pidns-user`)".into())
}

#[cfg(pidns_ebpf)]
pub(crate) fn start_ebpf(
    opts: &WatchOptions,
    proc: &ProcRoot,
    host: &crate::report::HostPidns,
) -> Result<ebpf::Probes, String> {
    ebpf::precheck()?;
    // The host's mount namespace, as `scan` tells container-like processes
    // by it; unknown, no exec outside container cgroups is sent for it.
    let host_mntns_ino = crate::engine::HostIdentity::find(proc, host)
        .mnt_ns
        .and_then(|ino| u32::try_from(ino).ok())
        .unwrap_or(0);
    let ino = host
        .inode
        .ok_or("the host PID namespace's inode is unreadable")?;
    let mut offsets =
        btf::offsets(std::path::Path::new(btf::VMLINUX)).map_err(|e| e.to_string())?;
    let host_pidns_dev = hostns::nsfs_dev().map_err(|e| format!("stat /proc/self/ns/pid: {e}"))?;
    let memfd_dev = hostns::memfd_dev().unwrap_or_else(|e| {
        eprintln!(
            "pidns watch: cannot learn where memfds live ({e}); a runtime's memfd copy of itself (runc 1.1) will be reported as a payload"
        );
        0
    });
    // The probes are loaded on a thread of their own, which ends once they
    // are attached: where pidns has to mount tracefs, that thread mounts it
    // in a mount namespace of its own, which goes with it. The rest of
    // pidns never leaves the host's mount namespace, and nothing else on
    // the host sees the mount.
    let runtime = tokio::runtime::Handle::current();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // The ring buffer registers with the runtime.
                let _runtime = runtime.enter();
                // The setns tracepoint is optional: without tracefs, its
                // probe is skipped and said so. What pidns mounts, it
                // unmounts again when `mount` drops: once attached, the
                // tracepoint no longer needs it, and on failure (the procfs
                // fallback) nothing does.
                let mount = tracefs::ensure_mounted();
                let tracefs = mount.as_ref().map_err(Clone::clone).and_then(|t| {
                    let (_, ret) = tracefs::syscall_layout(t.path())?;
                    offsets.syscall_exit_ret = ret;
                    Ok(t.path().to_path_buf())
                });
                let config = pidns_ebpf::Config {
                    host_pidns_dev,
                    host_pidns_ino: ino,
                    memfd_dev,
                    _pad: 0,
                    offsets,
                    host_mntns_ino,
                    _pad4: 0,
                    enforce: opts.enforce.modes,
                    self_tgid: std::process::id(),
                };
                let sizes = ebpf::Sizes {
                    findings_ring: opts.ringbuf_bytes,
                    // The other ring carries no finding: a quarter is plenty.
                    other_ring: (opts.ringbuf_bytes / 4).max(OTHER_RING_MIN),
                    cgroups: opts.max_cgroups,
                };
                let probes = ebpf::Probes::load(
                    &config,
                    sizes,
                    tracefs,
                    opts.compat_setns,
                    opts.proc_access,
                )
                .map_err(|e| format!("{e:#}"))
                .and_then(|p| match opts.enforce.unmet(&p.attached) {
                    Some(why) => Err(why),
                    None => Ok(p),
                });
                drop(mount);
                probes
            })
            .join()
            .unwrap_or_else(|_| Err("loading the probes panicked".to_owned()))
    })
    .inspect(|_| release_loading_memory())
}

/// The other ring's smallest size.
#[cfg(pidns_ebpf)]
const OTHER_RING_MIN: u32 = 64 << 10;

/// Parsing the kernel's BTF (aya's and the offsets') left tens of MB of
/// freed heap that glibc keeps: give it back, so that the agent idles small.
#[cfg(pidns_ebpf)]
fn release_loading_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
