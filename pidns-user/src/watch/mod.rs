//! `pidns watch`: the host agent.
//!
//! With eBPF (the default where it works), probes report container processes
//! that land in the host PID namespace and container processes that setns
//! into host namespaces, as it happens. Without it, pidns says why in one line
//! and polls /proc with the scan engine instead (findings carry trigger `poll`).
//!
//! Start-up is the same in both modes: a full scan (the engine `pidns scan`
//! uses) reports the containers already sharing the host PID namespace with
//! trigger `scan`; then a `ready` event says that everything is watched.

pub mod attribute;
pub mod btf;
pub mod cgroupfs;
pub mod clock;
#[cfg(pidns_ebpf)]
pub mod ebpf;
pub mod hostns;
pub mod metrics;
pub mod output;
mod poll;
pub mod privileges;
pub mod tracefs;

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;

use crate::{
    engine::{self, ScanOptions},
    error::ScanError,
    procfs::ProcRoot,
};
pub use output::{Format, Output};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// eBPF where it works, else procfs polling.
    Auto,
    Ebpf,
    Procfs,
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub scan: ScanOptions,
    pub host_root: Option<PathBuf>,
    pub format: Format,
    pub mode: Mode,
    /// Polling period in procfs mode.
    pub interval: Duration,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// The unified cgroup hierarchy; found in mountinfo by default.
    pub cgroup_root: Option<PathBuf>,
    /// Ring buffer size, a power of two multiple of the page size.
    pub ringbuf_bytes: u32,
    /// Serve Prometheus metrics here.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Reconcile with a full scan this often (procfs mode scans every `interval` anyway).
    pub rescan: Option<Duration>,
    /// Also probe setns through the 32-bit compat entry (every syscall's exit).
    pub compat_setns: bool,
}

/// Why watch could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("eBPF mode unavailable: {0}")]
    Ebpf(String),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs until SIGINT, SIGTERM or `--duration`.
pub fn run(opts: WatchOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let proc = ProcRoot::open(&opts.scan.proc_root).map_err(WatchError::from)?;
        proc.pids().map_err(WatchError::from)?;
        let host = engine::host_pidns(&proc, opts.scan.host_pid, None).map_err(WatchError::from)?;
        // pidns's own container shares the host PID namespace by design:
        // allowed, as `scan` allows it.
        let own = engine::own_container(&proc);
        let metrics = std::sync::Arc::new(metrics::Metrics::new());
        let metrics_addr = match opts.metrics_addr {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| WatchError::Metrics { addr, source })?;
                let bound = listener.local_addr().map_err(|source| WatchError::Metrics { addr, source })?;
                tokio::spawn(metrics::serve(listener, metrics.clone()));
                Some(bound)
            }
            None => None,
        };
        let mut out = Output::new(opts.format, metrics.clone(), metrics_addr);
        match opts.mode {
            Mode::Procfs => poll::run(&opts, &mut out).await,
            Mode::Ebpf => match start_ebpf(&opts, &proc, &host) {
                Ok(probes) => live::run(&opts, proc, host, own, probes, &mut out).await,
                Err(reason) => Err(WatchError::Ebpf(reason).into()),
            },
            Mode::Auto => match start_ebpf(&opts, &proc, &host) {
                Ok(probes) => live::run(&opts, proc, host, own, probes, &mut out).await,
                Err(reason) => {
                    eprintln!(
                        "pidns watch: eBPF unavailable ({reason}); polling /proc every {:?} instead",
                        opts.interval
                    );
                    poll::run(&opts, &mut out).await
                }
            },
        }
    })
}

#[cfg(not(pidns_ebpf))]
mod live {
    pub struct Probes;
    pub async fn run(
        _: &super::WatchOptions,
        _: crate::procfs::ProcRoot,
        _: crate::report::HostPidns,
        _: Option<crate::report::ContainerKey>,
        _: Probes,
        _: &mut super::Output,
    ) -> anyhow::Result<()> {
        unreachable!("start_ebpf never succeeds without probes")
    }
}

#[cfg(not(pidns_ebpf))]
fn start_ebpf(
    _: &WatchOptions,
    _: &ProcRoot,
    _: &crate::report::HostPidns,
) -> Result<live::Probes, String> {
    Err("this pidns was built without its eBPF probes; install the eBPF toolchain with `cargo xtask setup`, then rebuild with `cargo xtask build` (or `cargo build --release -p pidns-user`)".into())
}

#[cfg(pidns_ebpf)]
fn start_ebpf(
    opts: &WatchOptions,
    _proc: &ProcRoot,
    host: &crate::report::HostPidns,
) -> Result<ebpf::Probes, String> {
    ebpf::precheck()?;
    let ino = host
        .inode
        .ok_or("the host PID namespace's inode is unreadable")?;
    let mut offsets =
        btf::offsets(std::path::Path::new(btf::VMLINUX)).map_err(|e| e.to_string())?;
    let host_pidns_dev = hostns::nsfs_dev().map_err(|e| format!("stat /proc/self/ns/pid: {e}"))?;
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
                    offsets,
                };
                let probes =
                    ebpf::Probes::load(&config, opts.ringbuf_bytes, tracefs, opts.compat_setns)
                        .map_err(|e| format!("{e:#}"));
                drop(mount);
                probes
            })
            .join()
            .unwrap_or_else(|_| Err("loading the probes panicked".to_owned()))
    })
}

#[cfg(pidns_ebpf)]
mod live;

/// SIGINT, SIGTERM or the end of `--duration`. The handlers are installed
/// when this is created, so a signal during start-up is not lost.
pub(crate) struct Stop {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    deadline: Option<tokio::time::Instant>,
}

impl Stop {
    pub(crate) fn new(duration: Option<Duration>) -> anyhow::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            deadline: duration.map(|d| tokio::time::Instant::now() + d),
        })
    }

    pub(crate) async fn wait(&mut self) {
        let deadline = self.deadline;
        let timer = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            () = timer => {}
        }
    }
}

/// After start-up: drop what is no longer needed, or say why not.
pub(crate) fn shed_privileges() {
    let privileged = nix::unistd::geteuid().is_root()
        || caps::read(None, caps::CapSet::Effective).is_ok_and(|c| !c.is_empty());
    if privileged && let Err(e) = privileges::drop_capabilities() {
        eprintln!("pidns watch: keeping its capabilities: {e}");
    }
}
