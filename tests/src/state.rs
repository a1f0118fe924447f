//! Where the harness keeps its files, and the names it gives things.

use std::{
    path::PathBuf,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

/// Everything a run creates is named with this prefix, so the next
/// bring-up or teardown can sweep what a killed run left behind.
pub const PREFIX: &str = "pidnst-";
/// containerd namespace for `ctr` containers (their cgroups are `/<ns>/<id>`).
pub const CTR_NAMESPACE: &str = "pidnst";
/// Image imported into Docker for the tests.
pub const DOCKER_IMAGE: &str = "pidnst/busybox:latest";
/// The agent's own image, built by `cargo xtask test` for the image test.
pub const AGENT_IMAGE: &str = "pidnst/pidns:test";

pub fn state_dir() -> PathBuf {
    PathBuf::from("/run/pidns-tests")
}

pub fn runc_root() -> PathBuf {
    state_dir().join("runc")
}

/// Random hex from the kernel.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!(
            "{:0width$x}",
            nanos ^ u128::from(std::process::id()),
            width = bytes * 2
        )
        .chars()
        .take(bytes * 2)
        .collect();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh name: `pidnst-<run>-<n>`.
pub fn unique_name() -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let run = RUN.get_or_init(|| random_hex(3));
    format!("{PREFIX}{run}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}
