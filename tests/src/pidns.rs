//! Running the pidns binary under test.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::sh;

/// The binary: `$PIDNS_BIN` (set by `cargo xtask test`), else the workspace's debug build.
pub fn bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PIDNS_BIN") {
        return Ok(PathBuf::from(p));
    }
    let fallback = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/pidns");
    if fallback.is_file() {
        return Ok(fallback);
    }
    bail!("pidns binary not found: set PIDNS_BIN or build it with `cargo build -p pidns-user`")
}

/// A `pidns scan --format json` run.
pub struct Scan {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

impl Scan {
    pub fn run(extra: &[&str]) -> Result<Scan> {
        let bin = bin()?;
        let mut args = vec!["scan", "--format", "json"];
        args.extend_from_slice(extra);
        let out = sh::output_with(&bin.display().to_string(), &args, sh::DEFAULT_TIMEOUT)?;
        let json = serde_json::from_str(&out.stdout).with_context(|| {
            format!(
                "pidns scan printed no JSON (exit {:?}): {}",
                out.status.code(),
                out.stderr
            )
        })?;
        Ok(Scan {
            code: out.status.code().unwrap_or(-1),
            json,
            stderr: out.stderr,
        })
    }

    pub fn containers(&self) -> &[Value] {
        self.json["containers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The container pidns reported with this id, if any.
    pub fn container(&self, id: &str) -> Option<&Value> {
        self.containers().iter().find(|c| c["id"] == id)
    }
}
