//! The environment `cargo xtask test` hands the privileged tests and the
//! harness: every variable either side reads or sets is named here, once.

/// `1` (or `true`): a privileged test that cannot run fails instead of
/// skipping, and so does a privileged step of `cargo xtask test`. `.ci/run`
/// sets it.
pub const REQUIRE_PRIVILEGED: &str = "PIDNS_REQUIRE_PRIVILEGED";

/// Why the runtimes could not be brought up, when `cargo xtask test` saw
/// `pidns-harness up` fail: the tests that need them say so when skipping.
pub const BRINGUP_ERROR: &str = "PIDNS_BRINGUP_ERROR";

/// The `pidns` binary under test; without it the tests look next to their
/// own binary.
pub const BIN: &str = "PIDNS_BIN";

/// A file every skip is appended to (`<test>: <reason>`), for the summary
/// of `cargo xtask test`.
pub const SKIP_LOG: &str = "PIDNS_SKIP_LOG";

/// The tag of the agent's image, built by `cargo xtask test` for the image
/// tests; unset when it was not built.
pub const TEST_IMAGE: &str = "PIDNS_TEST_IMAGE";

/// Moves the harness's state directory (rootfs, runc root, snapshot,
/// records) away from `/run/pidns-tests`, e.g. to try the harness itself
/// out without touching a live run's.
pub const STATE_DIR: &str = "PIDNS_TEST_STATE_DIR";

/// Whether [`REQUIRE_PRIVILEGED`] is set: skips become failures.
pub fn required() -> bool {
    std::env::var(REQUIRE_PRIVILEGED).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}
