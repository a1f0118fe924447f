use std::{io::Write as _, process::ExitCode};

use anyhow::Context as _;
use clap::Parser as _;
use pidns::{
    allow::AllowList,
    cli::{Cli, ColorWhen, Command, ScanArgs, ScanFormat, Target},
    engine::{self, ScanOptions},
    names::NameResolver,
    render,
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(anstream::stderr(), "pidns: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

pub fn scan_options(t: &Target) -> ScanOptions {
    let host_root = match (&t.host_root, t.no_names) {
        (_, true) => None,
        (Some(root), false) => Some(root.clone()),
        (None, false) if t.proc_root == std::path::Path::new("/proc") => Some("/".into()),
        (None, false) => None,
    };
    ScanOptions {
        proc_root: t.proc_root.clone(),
        host_pid: Some(t.host_pid),
        allow: AllowList::new(t.allow.iter().cloned()),
        names: host_root.map(NameResolver::new),
    }
}

fn run_scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let report = engine::scan(&scan_options(&args.target)).context("scan failed")?;
    let text = match args.format {
        ScanFormat::Table => render::table::render(&report),
        ScanFormat::Json => render::json::render(&report),
        ScanFormat::Cis => render::cis::render(&report),
    };
    let mut out = anstream::stdout();
    out.write_all(text.as_bytes())
        .context("writing the report")?;
    out.flush().context("writing the report")?;
    Ok(if report.violations().next().is_some() {
        ExitCode::from(EXIT_VIOLATION)
    } else {
        ExitCode::SUCCESS
    })
}
