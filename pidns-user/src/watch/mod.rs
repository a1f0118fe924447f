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

mod attach;
pub mod attribute;
pub mod btf;
pub mod cgroupfs;
pub mod clock;
#[cfg(pidns_ebpf)]
pub mod ebpf;
pub mod enforce;
#[cfg(pidns_ebpf)]
pub mod filter;
pub mod hostns;
mod load;
pub mod metrics;
pub mod output;
mod poll;
pub mod privileges;
mod stop;
pub mod tracefs;

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;

use crate::{
    engine::{self, ScanOptions},
    error::ScanError,
    procfs::ProcRoot,
};
use load::start_ebpf;
pub use output::{Format, Output};
pub(crate) use stop::Stop;

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
    /// Containers whose setns into host namespaces is not reported.
    pub allow_setns: crate::allow::AllowList,
    /// Entries of the kernel's cgroup map.
    pub max_cgroups: u32,
    /// `--enforce` modes and `--enforce-existing`.
    pub enforce: enforce::Enforce,
    /// Also report opens of `/proc/<pid>/...` of processes outside the
    /// opener's host-PID container (probes every open's exit).
    pub proc_access: bool,
}

/// Why watch could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("eBPF mode unavailable: {0}")]
    Ebpf(String),
    #[error("--enforce {modes} needs the eBPF probes, which cannot be used: {why}")]
    Enforce { modes: String, why: String },
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
        if opts.enforce.any() {
            // Never a silent downgrade: enforcing needs the probes.
            let refuse = |why: String| WatchError::Enforce {
                modes: opts.enforce.names().join(","),
                why,
            };
            if opts.mode == Mode::Procfs {
                return Err(refuse("--mode procfs polls /proc and cannot stop anything".into()).into());
            }
            return match start_ebpf(&opts, &proc, &host) {
                Ok(probes) => live::run(&opts, proc, host, own, probes, &mut out).await,
                Err(reason) => Err(refuse(reason).into()),
            };
        }
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

#[cfg(pidns_ebpf)]
mod live;
