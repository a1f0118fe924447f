//! Privileged tests skip with a printed reason, or fail under
//! `PIDNS_REQUIRE_PRIVILEGED=1` (which `.ci/run` sets).

use std::{fs::OpenOptions, io::Write as _};

use crate::runtimes::{self, Rt};

pub const REQUIRE_ENV: &str = "PIDNS_REQUIRE_PRIVILEGED";
pub const SKIP_LOG_ENV: &str = "PIDNS_SKIP_LOG";

pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Records a skip (or fails the test when privileged tests are required).
#[track_caller]
pub fn skip(test: &str, reason: &str) {
    if required() {
        panic!("{test} cannot run: {reason} ({REQUIRE_ENV}=1 turns this skip into a failure)");
    }
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV)
        && let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log)
    {
        let _ = writeln!(f, "{test}: {reason}");
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For tests that need root but no runtime.
#[track_caller]
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(test, "needs root");
    false
}

/// Whether the machine can run a test that needs these runtimes: root, and
/// each runtime brought up (by `pidns-harness up`, which `cargo xtask test` runs).
#[track_caller]
pub fn ready(test: &str, needs: &[Rt]) -> Option<()> {
    if !is_root() {
        skip(test, "needs root");
        return None;
    }
    for rt in needs {
        if let Err(why) = runtimes::available(*rt) {
            skip(
                test,
                &format!(
                    "{rt:?} is not available: {why:#}; `cargo xtask test` brings the runtimes up"
                ),
            );
            return None;
        }
    }
    Some(())
}
