//! The prologue and the waiting every privileged watch test shares.

use std::time::Duration;

use serde_json::Value;

use crate::{pidns::Watch, runtimes::Rt, skip};

/// `pidns watch --mode ebpf` with `extra`, for `test`, once the machine is
/// ready for it (root, the runtimes in `needs`). `None` after a skip, which
/// is a failure under PIDNS_REQUIRE_PRIVILEGED=1.
pub fn ebpf(test: &str, needs: &[Rt], extra: &[&str]) -> Option<Watch> {
    skip::ready(test, needs)?;
    let mut args = vec!["--mode", "ebpf"];
    args.extend_from_slice(extra);
    match Watch::start(&args) {
        Ok(w) => Some(w),
        Err(e) => {
            skip::skip(test, &format!("eBPF watch cannot start here: {e:#}"));
            None
        }
    }
}

/// What watch wrote, for a failure message: the lines `shown` keeps (the
/// rest is noise for the test at hand), then its stderr.
pub fn dump(w: &Watch, shown: impl Fn(&Value) -> bool) -> String {
    let events: Vec<String> = w
        .events()
        .iter()
        .filter(|e| shown(e))
        .map(Value::to_string)
        .collect();
    format!("{}\nstderr:\n{}", events.join("\n"), w.stderr())
}

/// Not a finding of the start-up scan: what a live test is about.
pub fn live(e: &Value) -> bool {
    e["event"] != "host_pidns" || e["trigger"] != "scan"
}

/// The first event `pred` accepts within `wait`; else a panic that names
/// `what` and dumps the lines `shown` keeps.
#[track_caller]
pub fn expect(
    w: &Watch,
    wait: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
    shown: impl Fn(&Value) -> bool,
) -> Value {
    w.wait_for(wait, pred).unwrap_or_else(|| {
        panic!(
            "no event for {what} within {wait:?}; got:\n{}",
            dump(w, shown)
        )
    })
}
