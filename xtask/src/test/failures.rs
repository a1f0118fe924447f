//! Why a step failed, in a line or a few: failed tests with their first
//! panic line (from libtest's output), the files `cargo fmt` would change,
//! and the compiler's errors with their location.

use super::summary::MAX_REASONS;

/// Files `cargo fmt --check` would change (its `Diff in <file>:<line>:` lines).
pub(super) fn fmt_files(stdout: &[String]) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for line in stdout {
        if let Some(rest) = line.strip_prefix("Diff in ") {
            let file = rest
                .trim_end_matches(':')
                .rsplit_once(':')
                .map_or(rest, |(f, _line)| f)
                .to_owned();
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    files.truncate(MAX_REASONS);
    files
}

/// Compiler errors as `message (file:line:col)`, from rustc's rendered
/// diagnostics; the closing "could not compile" lines add nothing.
pub(super) fn compiler_errors(stderr: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in stderr.iter().enumerate() {
        if !line.starts_with("error") || line.starts_with("error: could not compile") {
            continue;
        }
        if line.starts_with("error: aborting") {
            continue;
        }
        let at = stderr[i + 1..]
            .iter()
            .take(3)
            .find_map(|l| l.trim_start().strip_prefix("--> "));
        out.push(match at {
            Some(at) => format!("{line} ({at})"),
            None => line.clone(),
        });
        if out.len() == MAX_REASONS {
            break;
        }
    }
    out
}

/// What libtest prints about failed tests: a first `failures:` heading
/// over `---- <name> stdout ----` sections of captured output (the panic
/// among it), then a second `failures:` heading over the names.
#[derive(Default)]
pub(super) struct Failures {
    headings: usize,
    /// The test whose captured output is being read.
    section: Option<String>,
    /// A panic's location, whose message is on the next line.
    location: Option<String>,
    /// The first panic per test: (test, "message (at location)").
    panics: Vec<(String, String)>,
    names: Vec<String>,
}

impl Failures {
    pub fn feed(&mut self, line: &str) {
        if line == "failures:" {
            self.headings += 1;
            self.section = None;
            self.location = None;
            return;
        }
        match self.headings {
            1 => self.feed_output(line),
            2 => {
                if let Some(name) = line.strip_prefix("    ")
                    && !name.trim().is_empty()
                {
                    self.names.push(name.trim().to_owned());
                }
            }
            _ => {}
        }
    }

    fn feed_output(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            self.section = Some(name.to_owned());
            self.location = None;
            return;
        }
        let Some(test) = self.section.clone() else {
            return;
        };
        if self.panics.iter().any(|(t, _)| *t == test) {
            return;
        }
        if let Some(location) = self.location.take() {
            self.panics
                .push((test, format!("{} (at {location})", line.trim())));
        } else if let Some(error) = line.strip_prefix("Error: ") {
            // A test returning Err prints it like this.
            self.panics.push((test, format!("returned Err: {error}")));
        } else if let Some((_, after)) = line
            .strip_prefix("thread '")
            .and_then(|l| l.split_once(" panicked at "))
        {
            // The thread's name may be followed by its id: `thread 'x' (123) panicked at`.
            match after.strip_suffix(':') {
                // Rust 1.73+: `thread 'x' panicked at file:line:col:`, message next.
                Some(location) => self.location = Some(location.to_owned()),
                // Before: `thread 'x' panicked at 'message', file:line:col`.
                None => self.panics.push((test, after.to_owned())),
            }
        }
    }

    /// `test: first panic line (at location)` for every failed test.
    pub fn lines(&self) -> Vec<String> {
        let panic_of = |name: &str| {
            self.panics
                .iter()
                .find(|(t, _)| t == name)
                .map(|(_, p)| p.clone())
        };
        if self.names.is_empty() {
            return self
                .panics
                .iter()
                .map(|(t, p)| format!("{t}: {p}"))
                .collect();
        }
        self.names
            .iter()
            .map(|n| match panic_of(n) {
                Some(p) => format!("{n}: {p}"),
                None => format!("{n}: failed (no panic message captured)"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(text: &str) -> Failures {
        let mut f = Failures::default();
        for line in text.lines() {
            f.feed(line);
        }
        f
    }

    #[test]
    fn failing_tests_are_named_with_their_first_panic_line() {
        let out = "\
running 3 tests
test ok_one ... ok
test scan_one ... FAILED
test watch_two ... FAILED

failures:

---- scan_one stdout ----
SKIPPED nothing

thread 'scan_one' (15584) panicked at tests/tests/scan.rs:93:5:
assertion `left == right` failed: a host-pid container must fail the scan
  left: 0
 right: 1
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- watch_two stdout ----
thread '<unnamed>' panicked at 'old style message', src/x.rs:1:2

---- returns_err stdout ----
Error: \"bad\"


failures:
    scan_one
    watch_two
    returns_err

test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
";
        assert_eq!(
            feed(out).lines(),
            [
                "scan_one: assertion `left == right` failed: a host-pid container must fail the scan (at tests/tests/scan.rs:93:5)",
                "watch_two: 'old style message', src/x.rs:1:2",
                "returns_err: returned Err: \"bad\"",
            ]
        );
    }

    #[test]
    fn a_failure_without_output_is_still_named() {
        let out = "\
test quiet ... FAILED

failures:

failures:
    quiet

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        assert_eq!(
            feed(out).lines(),
            ["quiet: failed (no panic message captured)"]
        );
    }

    #[test]
    fn passing_runs_name_nothing() {
        let out = "running 1 test\ntest a ... ok\n\ntest result: ok. 1 passed; 0 failed\n";
        assert!(feed(out).lines().is_empty());
    }

    #[test]
    fn fmt_and_clippy_failures_say_where() {
        let fmt = [
            "Diff in /w/xtask/src/test.rs:12:".to_owned(),
            " fn x() {".to_owned(),
            "Diff in /w/xtask/src/test.rs:40:".to_owned(),
            "Diff in /w/tests/src/skip.rs:3:".to_owned(),
        ];
        assert_eq!(
            fmt_files(&fmt),
            ["/w/xtask/src/test.rs", "/w/tests/src/skip.rs"]
        );
        let clippy: Vec<String> = "\
    Checking xtask v0.1.0 (/w/xtask)
error: unused variable: `x`
  --> xtask/src/test.rs:12:9
   |
error[E0308]: mismatched types
   --> tests/src/skip.rs:3:1
error: could not compile `xtask` (bin \"xtask\") due to 2 previous errors"
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(
            compiler_errors(&clippy),
            [
                "error: unused variable: `x` (xtask/src/test.rs:12:9)",
                "error[E0308]: mismatched types (tests/src/skip.rs:3:1)",
            ]
        );
    }
}
