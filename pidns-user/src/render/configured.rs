//! How every format words a container's recorded configuration and state.

use super::escape;
use crate::report::{Container, FoundBy, RunState};

/// `configured host (in /var/lib/docker/containers/<id>/hostconfig.json)`.
pub(crate) fn configuration(c: &Container) -> Option<String> {
    let mode = c.configured_pid_mode.as_deref()?;
    Some(match &c.configured_in {
        Some(file) => format!("configured {} (in {})", escape(mode), escape(file)),
        None => format!("configured {}", escape(mode)),
    })
}

/// For a container known only from its record: `not running (exited)`,
/// or, read `--offline`, `recorded as running`.
pub(crate) fn not_running(c: &Container) -> Option<String> {
    if c.found_by != FoundBy::State {
        return None;
    }
    Some(match c.state {
        RunState::Running | RunState::Paused => format!("recorded as {}", c.state),
        s => format!("not running ({s})"),
    })
}

/// Both, as one clause: `not running (created), configured host (in …)`.
pub(crate) fn clause(c: &Container) -> Option<String> {
    match (not_running(c), configuration(c)) {
        (Some(a), Some(b)) => Some(format!("{a}, {b}")),
        (a, b) => a.or(b),
    }
}
