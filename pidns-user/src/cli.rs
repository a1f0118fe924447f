//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "pidns",
    version,
    about = "Find containers that share the host's PID namespace (CIS Docker Benchmark 5.15/5.16), from the kernel's view",
    after_help = "Exit codes: 0 no container shares the host PID namespace, 1 at least one does (and is not allowed), 2 pidns could not run."
)]
pub struct Cli {
    /// When to colour human output (`auto` honours NO_COLOR and TTYs).
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One-shot audit: every container on the host and whether it shares the host PID namespace.
    Scan(ScanArgs),
    /// Host agent: report container processes that land in the host PID namespace, live.
    Watch(WatchArgs),
}

/// Where to look: shared by scan and watch.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The procfs to walk: the live /proc, a host's /proc mounted in a pod
    /// (/host/proc), or an evidence tree whose ns/* entries are symlinks.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/proc",
        env = "PIDNS_PROC_ROOT"
    )]
    pub proc_root: PathBuf,
    /// The process whose PID namespace counts as the host's [default: 1].
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub host_pid: Option<u32>,
    /// A container that may share the host PID namespace: id, hex id prefix
    /// (12+ characters), name, pod name, namespace/pod or pod UID, matched
    /// exactly otherwise; qualify it by runtime (`docker:web`, `podman:web`)
    /// or name a pod (`k8s:namespace/pod`): a bare name matches that name in
    /// every runtime. A nested container is allowed only if the containers
    /// enclosing it are allowed too. Allowed to share is not allowed to join
    /// host namespaces (see `watch --allow-setns`). Repeatable.
    #[arg(long = "allow", value_name = "ID_OR_NAME")]
    pub allow: Vec<String>,
    /// Host filesystem root, where runtimes keep the state pidns reads names
    /// from (and tells Docker's --cgroup-parent containers from containerd's
    /// by). Defaults to / when --proc-root is /proc; otherwise names are off.
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// Do not look up container names.
    #[arg(long)]
    pub no_names: bool,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub target: Target,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// Read the name and `pid_for_children` of every host-PID process as
    /// evidence, not only of the first one in each container (which is all
    /// the verdict needs).
    #[arg(long)]
    pub all_evidence: bool,
    /// Judge running containers only. By default a container that is
    /// created, exited or paused and configured to share the host PID
    /// namespace (its runtime's record on disk) fails too, as in the CIS
    /// audit's `docker ps --all`.
    #[arg(long)]
    pub running_only: bool,
    /// Read no procfs at all, only the runtimes' records under --host-root
    /// (a mounted disk image): what each container is configured with.
    #[arg(long, requires = "host_root")]
    pub offline: bool,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub target: Target,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = WatchFormat::Human)]
    pub format: WatchFormat,
    /// `auto`: eBPF where it works, else procfs polling. `ebpf`: fail without
    /// eBPF. `procfs`: poll /proc with the scan engine.
    #[arg(long, value_enum, default_value_t = WatchMode::Auto)]
    pub mode: WatchMode,
    /// Seconds between scans in procfs mode.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_secs)]
    pub interval: std::time::Duration,
    /// Stop after this many seconds (default: run until SIGINT or SIGTERM).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<std::time::Duration>,
    /// The unified (v2) cgroup hierarchy, e.g. /host/sys/fs/cgroup in a pod;
    /// found in /proc/self/mountinfo by default.
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics. A port alone (or
    /// :PORT) binds 127.0.0.1; give 0.0.0.0:PORT to expose it.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Reconcile with a full scan every SECS: stopped containers leave the
    /// metrics, and host-PID processes the probes missed are reported
    /// (trigger scan). Procfs mode already scans every --interval.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub rescan: Option<std::time::Duration>,
    /// Size of the kernel-to-user ring buffer in KiB (a power of two).
    #[arg(long, value_name = "KIB", default_value = "4096", value_parser = parse_ring_kib)]
    pub ring_buffer_kib: u32,
    /// A container whose setns into host namespaces is not reported (an
    /// agent that must `nsenter` the host, such as kured), named as with
    /// --allow. Repeatable.
    #[arg(long = "allow-setns", value_name = "ID_OR_NAME")]
    pub allow_setns: Vec<String>,
    /// How many cgroups the kernel's map holds. Beyond it, cgroups stay
    /// unclassified in the kernel: their events come to user space, which
    /// judges them (said once on stderr).
    #[arg(long, value_name = "N", default_value = "262144", value_parser = clap::value_parser!(u32).range(64..))]
    pub max_cgroups: u32,
    /// Also watch setns made through the 32-bit compat entry (`int 0x80`,
    /// x86_64 with IA32 emulation), which the setns tracepoint does not see.
    /// Costs every syscall on the host a few tens of nanoseconds.
    #[arg(long, env = "PIDNS_WATCH_COMPAT_SETNS", value_parser = clap::builder::BoolishValueParser::new())]
    pub compat_setns: bool,
    /// Also report a host-PID container's opens of `/proc/<pid>/...` of
    /// processes outside it (`environ`, `mem`, `maps`, `fd`, ...): a
    /// `host_access` event with op `proc_open`. Hooks the exit of every
    /// open on the host (one cgroup lookup each; docs/benchmarks.md).
    #[arg(long, env = "PIDNS_WATCH_PROC_ACCESS", value_parser = clap::builder::BoolishValueParser::new())]
    pub proc_access: bool,
    /// Kill, from the eBPF probe and before it returns to user space, a
    /// non-allowed container's process that completes a setns into a
    /// verified host namespace (`setns`), or that is seen in the host PID
    /// namespace at exec, fork/clone or cgroup attach (`host-pidns`).
    /// Comma-separated. Needs eBPF: refused (exit 2) rather than downgraded.
    #[arg(long, value_name = "MODES", value_enum, value_delimiter = ',')]
    pub enforce: Vec<EnforceMode>,
    /// With `--enforce host-pidns`: also kill the host-PID processes of
    /// non-allowed containers already running when watch starts (by
    /// default they are reported only).
    #[arg(long)]
    pub enforce_existing: bool,
}

/// An `--enforce` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnforceMode {
    /// A container process's completed setns into a host namespace.
    Setns,
    /// A non-allowed container's process in the host PID namespace.
    HostPidns,
}

impl EnforceMode {
    /// Its `pidns_ebpf::enforce` bit.
    pub fn bit(self) -> u32 {
        match self {
            EnforceMode::Setns => pidns_ebpf::enforce::SETNS,
            EnforceMode::HostPidns => pidns_ebpf::enforce::HOST_PIDNS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line (docs/watch-events.md).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchMode {
    Auto,
    Ebpf,
    Procfs,
}

fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}` must be a positive number of seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `--metrics-addr`: a port alone, or `:PORT`, binds 127.0.0.1; give an
/// address (`0.0.0.0:9090`, `[::]:9090`) to listen elsewhere.
pub fn parse_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let s = s.trim();
    let with_host = match s.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None if s.parse::<u16>().is_ok() => format!("127.0.0.1:{s}"),
        None => s.to_owned(),
    };
    with_host
        .parse()
        .map_err(|_| format!("`{s}` is not PORT, :PORT or ADDRESS:PORT"))
}

fn parse_ring_kib(s: &str) -> Result<u32, String> {
    let kib: u32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(4..=1 << 20).contains(&kib) || !kib.is_power_of_two() {
        return Err(format!(
            "`{s}` must be a power of two between 4 and 1048576"
        ));
    }
    Ok(kib)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// Aligned columns with evidence, for people.
    Table,
    /// One JSON document, schema pidns.scan/v1 (docs/json-schema.md).
    Json,
    /// CIS benchmark-style [PASS]/[WARN] lines.
    Cis,
    /// SARIF 2.1.0, for CI systems that ingest static-analysis results.
    Sarif,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("9090").unwrap().to_string(), "127.0.0.1:9090");
        assert_eq!(parse_addr(":9090").unwrap().to_string(), "127.0.0.1:9090");
        assert_eq!(
            parse_addr("0.0.0.0:9090").unwrap().to_string(),
            "0.0.0.0:9090"
        );
        assert_eq!(parse_addr("[::1]:0").unwrap().to_string(), "[::1]:0");
        assert!(parse_addr("nonsense").is_err());
        assert!(parse_addr("70000").is_err());
    }
}
