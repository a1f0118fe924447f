//! `pidns-harness up|down|status`: brings the container runtimes up for the
//! privileged tests and takes down what the run created. `cargo xtask test`
//! runs `up` before the privileged suite and `down` after it, pass or fail.
//!
//! - `up` (root): first records which runtime cgroups and mounts exist (the
//!   snapshot), then installs missing runtimes from Debian packages, starts
//!   containerd and dockerd when they are not running (reusing them when
//!   they are), sweeps what a killed run left behind, builds a busybox rootfs
//!   and imports it into Docker.
//! - `down` (root): removes only what can be tied to the run: containers
//!   named `pidnst-…` in all four runtimes, the test images, the `pidnst`
//!   containerd namespace, the daemons `up` started (and the mounts they
//!   leave under their own state directories), mounts whose path names
//!   one of the run's containers, cgroups named after the run or recorded by
//!   the tests as created for their containers (processes are killed only in
//!   the run's own cgroups), and the harness's state directory, never
//!   reaching into a mount. The snapshot is then used only to report: a
//!   runtime cgroup or mount that appeared during the run and is still there
//!   fails `down`, listed, but is not touched. Without a snapshot (`up` did
//!   not run) nothing is compared.
//!
//! `PIDNS_TEST_STATE_DIR` moves the state directory (default
//! `/run/pidns-tests`) elsewhere.
//!
//! The modules are the harness's own, not API for the tests or xtask, so
//! they live with the binary: [`up`] and [`down`] are the verbs,
//! [`install`] the packages, rootfs and image, [`daemons`] the daemons `up`
//! starts, [`snapshot`] what existed before the run, [`tied`] what belongs
//! to the run and removing it.

mod daemons;
mod down;
mod install;
mod snapshot;
mod tied;
mod up;

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use pidns_tests::runtimes;

fn main() -> ExitCode {
    let verb = std::env::args().nth(1).unwrap_or_default();
    let result = match verb.as_str() {
        "up" => up::up(),
        "down" => down::down(),
        "status" => status(),
        _ => Err(anyhow!("usage: pidns-harness up|down|status")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pidns-harness {verb}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn status() -> Result<()> {
    for rt in runtimes::ALL {
        match runtimes::available(rt) {
            Ok(()) => println!("{rt:?}: ready"),
            Err(e) => println!("{rt:?}: {e:#}"),
        }
    }
    Ok(())
}
