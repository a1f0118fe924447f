use std::{io::Write as _, process::ExitCode};

use anyhow::Context as _;
use clap::Parser as _;
use pidns::{
    allow::AllowList,
    cli::{
        Cli, ColorWhen, Command, EnforceMode, ScanArgs, ScanFormat, Target, WatchArgs, WatchFormat,
        WatchMode,
    },
    engine::{self, ScanOptions},
    names::NameResolver,
    render, watch,
};

/// Exit codes, as documented in the README.
const EXIT_VIOLATION: u8 = 1;
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
    }
    let result = match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Watch(args) => run_watch(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(anstream::stderr(), "pidns: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The host filesystem root for runtime state, if names are wanted.
fn host_root(t: &Target) -> Option<std::path::PathBuf> {
    match (&t.host_root, t.no_names) {
        (_, true) => None,
        (Some(root), false) => Some(root.clone()),
        (None, false) if t.proc_root == std::path::Path::new("/proc") => Some("/".into()),
        (None, false) => None,
    }
}

/// Where runtimes keep their state, names or not: `--host-root`, else `/`
/// for the live /proc.
fn state_root(t: &Target) -> Option<std::path::PathBuf> {
    match &t.host_root {
        Some(root) => Some(root.clone()),
        None if t.proc_root == std::path::Path::new("/proc") => Some("/".into()),
        None => None,
    }
}

pub fn scan_options(t: &Target) -> ScanOptions {
    let host_root = host_root(t);
    ScanOptions {
        proc_root: t.proc_root.clone(),
        // PID 1 unless given; the engine tells the user about --host-pid only when it was not.
        host_pid: t.host_pid,
        allow: AllowList::new(t.allow.iter().cloned()),
        names: host_root.map(NameResolver::new),
        evidence_detail: Some(engine::EVIDENCE_DETAIL),
        state_root: state_root(t),
        configured: false,
        running_only: false,
        offline: false,
    }
}

fn run_scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let mut opts = scan_options(&args.target);
    if args.all_evidence {
        opts.evidence_detail = None;
    }
    opts.configured = true;
    opts.running_only = args.running_only;
    opts.offline = args.offline;
    let report = engine::scan(&opts).context("scan failed")?;
    let (text, styled) = match args.format {
        ScanFormat::Table => (render::table::render(&report), true),
        ScanFormat::Json => (render::json::render(&report), false),
        ScanFormat::Cis => (render::cis::render(&report), true),
        ScanFormat::Sarif => (render::sarif::render(&report), false),
    };
    // JSON escapes control characters: only the human formats go through
    // anstream, which strips their styles off a pipe.
    let written = if styled {
        let mut out = anstream::stdout();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
    match written {
        // The reader went away (`pidns scan | head`): nothing left to say.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.context("writing the report")?,
    }
    Ok(if report.violations().next().is_some() {
        ExitCode::from(EXIT_VIOLATION)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    if args.enforce_existing && !args.enforce.contains(&EnforceMode::HostPidns) {
        anyhow::bail!("--enforce-existing needs --enforce host-pidns");
    }
    let opts = watch::WatchOptions {
        // Each start-up finding names its process.
        scan: ScanOptions {
            evidence_detail: None,
            ..scan_options(&args.target)
        },
        host_root: host_root(&args.target),
        format: match args.format {
            WatchFormat::Human => watch::Format::Human,
            WatchFormat::Json => watch::Format::Json,
        },
        mode: match args.mode {
            WatchMode::Auto => watch::Mode::Auto,
            WatchMode::Ebpf => watch::Mode::Ebpf,
            WatchMode::Procfs => watch::Mode::Procfs,
        },
        interval: args.interval,
        duration: args.duration,
        cgroup_root: args.cgroup_root,
        ringbuf_bytes: args.ring_buffer_kib * 1024,
        metrics_addr: args.metrics_addr,
        rescan: args.rescan,
        // Enforcing setns closes the 32-bit way around its tracepoints too.
        compat_setns: args.compat_setns || args.enforce.contains(&EnforceMode::Setns),
        allow_setns: AllowList::new(args.allow_setns.iter().cloned()),
        max_cgroups: args.max_cgroups,
        enforce: watch::enforce::Enforce {
            modes: args.enforce.iter().fold(0, |m, e| m | e.bit()),
            existing: args.enforce_existing,
        },
        proc_access: args.proc_access,
    };
    watch::run(opts)?;
    Ok(ExitCode::SUCCESS)
}
