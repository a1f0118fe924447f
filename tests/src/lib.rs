//! Test harness for pidns's privileged tests: real kernel, real runtimes.
//!
//! - [`skip`]: every privileged test starts with [`ready`]; on a machine that
//!   cannot run it (not root, a runtime missing) it prints why and returns
//!   `None`, or fails when `PIDNS_REQUIRE_PRIVILEGED=1`.
//! - [`env`]: the environment variables `cargo xtask test` and the tests
//!   agree on.
//! - [`runtimes`]: Docker, Podman (runc and crun), containerd (`ctr`), runc,
//!   LXC and systemd-nspawn, brought up by
//!   the `pidns-harness up` binary that `cargo xtask test` runs, and one small
//!   API to create containers in every PID mode with RAII cleanup.
//! - [`homemade`]: what no runtime makes on cue: home-made containers,
//!   cgroups of any name or too long to print, plain host processes.
//! - [`pidns`]: running the pidns binary under test; [`inside`]: one of the
//!   host's programs (`pidns-synth`) run inside a busybox container.
//! - [`state`], [`cgroups`], [`mounts`]: where the harness keeps its files,
//!   what a run records so that a killed run can be cleaned up, and removing
//!   it without reaching into anything else.
//! - [`prometheus`]: a real Prometheus server for the alerting rules' tests.
//! - [`watching`]: the prologue and the waiting every watch test shares.

pub mod cgroups;
pub mod env;
pub mod homemade;
pub mod inside;
pub mod mounts;
pub mod pidns;
pub mod prometheus;
pub mod runtimes;
pub mod sh;
pub mod skip;
pub mod state;
pub mod watching;

/// This package: `cargo xtask test` runs its test binaries privileged,
/// between the runtimes' bring-up and teardown.
pub const PACKAGE: &str = env!("CARGO_PKG_NAME");
/// The runtime harness's binary (`up`, `down`, `status`).
pub const HARNESS_BIN: &str = "pidns-harness";

pub use runtimes::{Container, Layout, Pid, Rt, Spec};
pub use skip::{ready, require_root};
