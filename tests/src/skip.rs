//! Privileged tests skip with a printed reason, or fail under
//! `PIDNS_REQUIRE_PRIVILEGED=1` (which `.ci/run` sets).

use std::{fs::OpenOptions, io::Write as _};

use crate::{
    env::{self, required},
    runtimes::{self, Rt},
};

/// The name libtest runs the test it is written in under: the function's
/// path below the crate's root (`mounts::tests::x` in the library, `x` in
/// an integration test), from the function itself rather than a string that
/// can drift from it. Write it in the test's own body (not in a closure or
/// a helper the test calls); helpers take it as an argument.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn here() {}
        $crate::skip::name_of(::std::any::type_name_of_val(&here))
    }};
}

/// `<crate>::<path>::here` (the item [`test_name!`] defines) to `<path>`.
#[doc(hidden)]
pub fn name_of(here: &'static str) -> &'static str {
    let path = here.strip_suffix("::here").unwrap_or(here);
    path.split_once("::").map_or(path, |(_krate, rest)| rest)
}

/// Records a skip (or fails the test when privileged tests are required).
///
/// The reason goes to stderr through `std::io::stderr()` itself, not
/// `eprintln!`: libtest captures only the print macros, so it shows under
/// plain `cargo test` too. It is written, like the skip log's line, in one
/// `write_all`, so that tests skipping at the same time do not interleave.
#[track_caller]
pub fn skip(test: &str, reason: &str) {
    if required() {
        panic!(
            "{test} cannot run: {reason} ({}=1 turns this skip into a failure)",
            env::REQUIRE_PRIVILEGED
        );
    }
    let _ = std::io::stderr().write_all(format!("SKIPPED {test}: {reason}\n").as_bytes());
    if let Some(log) = std::env::var_os(env::SKIP_LOG)
        && let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log)
    {
        let _ = f.write_all(format!("{test}: {reason}\n").as_bytes());
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
            let how = match std::env::var(env::BRINGUP_ERROR) {
                Ok(e) if !e.is_empty() => format!("bringing the runtimes up failed: {e}"),
                _ => "`cargo xtask test` brings the runtimes up".into(),
            };
            skip(test, &format!("{rt:?} is not available: {why:#}; {how}"));
            return None;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    /// Also as libtest names the test's thread, when it runs on one of its own.
    #[test]
    fn test_name_is_the_name_libtest_runs_the_test_under() {
        let name = crate::test_name!();
        assert_eq!(
            name,
            "skip::tests::test_name_is_the_name_libtest_runs_the_test_under"
        );
        if let Some(thread) = std::thread::current().name()
            && thread != "main"
        {
            assert_eq!(name, thread);
        }
    }
}
