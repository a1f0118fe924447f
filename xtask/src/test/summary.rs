//! What `cargo xtask test` says at the end, whatever happened: every step,
//! every test binary's result line, why each red step is red, and the
//! privileged tests that skipped.

use std::{fs, path::PathBuf, time::Instant};

use pidns_tests::env;

/// How many lines of explanation one failed step may add to the summary.
pub(super) const MAX_REASONS: usize = 12;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Failed,
    Skipped,
}

#[derive(Default)]
pub(super) struct Summary {
    steps: Vec<(String, Status)>,
    /// Each test binary's `test result:` line.
    pub results: Vec<(String, String)>,
    /// Why a step failed or skipped: repeated under the summary so that the
    /// last lines of a red run tell what broke.
    reasons: Vec<(String, String)>,
    /// Where the privileged tests append their skips.
    pub skip_log: Option<PathBuf>,
}

impl Summary {
    pub fn step(&mut self, name: &str, ok: bool) -> bool {
        self.steps.push((
            name.to_owned(),
            if ok { Status::Ok } else { Status::Failed },
        ));
        ok
    }

    pub fn reason(&mut self, step: &str, why: impl Into<String>) {
        self.reasons.push((step.to_owned(), why.into()));
    }

    pub fn fail(&mut self, step: &str, why: impl Into<String>) {
        self.step(step, false);
        self.reason(step, why);
    }

    /// A step that cannot run here and is not privileged: skipped, always.
    pub fn skipped(&mut self, step: &str, why: impl Into<String>) {
        self.steps.push((step.to_owned(), Status::Skipped));
        self.reason(step, why);
    }

    /// A privileged step that cannot run here: skipped, or failed under
    /// `PIDNS_REQUIRE_PRIVILEGED=1`.
    pub fn skip(&mut self, step: &str, why: impl Into<String>) {
        let why = why.into();
        if env::required() {
            self.fail(
                step,
                format!(
                    "{why} ({}=1 turns this skip into a failure)",
                    env::REQUIRE_PRIVILEGED
                ),
            );
        } else {
            self.skipped(step, why);
        }
    }

    pub fn passed(&self) -> bool {
        self.steps.iter().all(|(_, s)| *s != Status::Failed)
    }

    pub fn print(&self, started: Instant) {
        println!("\n==================== cargo xtask test: summary ====================");
        for (step, status) in &self.steps {
            let tag = match status {
                Status::Ok => "ok",
                Status::Failed => "FAILED",
                Status::Skipped => "skip",
            };
            println!("{tag:<6} {step}");
        }
        for (label, line) in &self.results {
            // Binaries without tests (pidns, xtask, the harness) would only add noise.
            if !line.starts_with("test result: ok. 0 passed; 0 failed") {
                println!("{label}: {line}");
            }
        }
        for (step, line) in &self.reasons {
            println!("{step}: {line}");
        }
        let skipped = self
            .skip_log
            .as_ref()
            .and_then(|p| fs::read_to_string(p).ok())
            .unwrap_or_default();
        if skipped.trim().is_empty() {
            println!("privileged tests skipped: none");
        } else {
            for line in skipped.lines() {
                println!("privileged test skipped: {line}");
            }
        }
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        println!("cargo xtask test: {verdict} in {:.0?}", started.elapsed());
    }
}
