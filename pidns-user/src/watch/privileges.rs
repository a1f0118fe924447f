//! Least privilege. Once the probes are attached (and tracefs mounted, the
//! metrics port bound), the agent needs only to read other processes' /proc
//! entries and runtime state for its rescans and for attribution: it keeps
//! CAP_SYS_PTRACE (namespace links of others' processes) and
//! CAP_DAC_READ_SEARCH (root-only directories), and drops every other
//! capability from all sets, the bounding set included, for good.

use caps::{CapSet, Capability, CapsHashSet};

pub const KEPT: [Capability; 2] = [Capability::CAP_SYS_PTRACE, Capability::CAP_DAC_READ_SEARCH];

/// Drops every capability but [`KEPT`]; returns what is left in effect.
pub fn drop_capabilities() -> Result<CapsHashSet, String> {
    drop_capabilities_keeping(&[])
}

/// Drops every capability but [`KEPT`] and `extra` (`--enforce`: CAP_KILL).
pub fn drop_capabilities_keeping(extra: &[Capability]) -> Result<CapsHashSet, String> {
    let keep: CapsHashSet = KEPT.into_iter().chain(extra.iter().copied()).collect();
    let permitted =
        caps::read(None, CapSet::Permitted).map_err(|e| format!("reading capabilities: {e}"))?;
    let keep_now: CapsHashSet = permitted.intersection(&keep).copied().collect();
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
    if permitted.contains(&Capability::CAP_SETPCAP) {
        for cap in caps::all().difference(&keep) {
            caps::drop(None, CapSet::Bounding, *cap)
                .map_err(|e| format!("dropping {cap} from the bounding set: {e}"))?;
        }
    }
    caps::clear(None, CapSet::Ambient)
        .map_err(|e| format!("clearing ambient capabilities: {e}"))?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())
        .map_err(|e| format!("clearing inheritable capabilities: {e}"))?;
    caps::set(None, CapSet::Effective, &keep_now)
        .map_err(|e| format!("setting effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &keep_now)
        .map_err(|e| format!("setting permitted capabilities: {e}"))?;
    // And nothing it might exec could gain privileges back.
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("setting no_new_privs: {e}"))?;
    Ok(keep_now)
}

/// After start-up: drop what is no longer needed, or say why not.
pub fn shed_privileges() {
    shed_privileges_keeping(&[]);
}

/// [`shed_privileges`], keeping `extra` too.
pub fn shed_privileges_keeping(extra: &[Capability]) {
    let privileged = nix::unistd::geteuid().is_root()
        || caps::read(None, caps::CapSet::Effective).is_ok_and(|c| !c.is_empty());
    if privileged && let Err(e) = drop_capabilities_keeping(extra) {
        eprintln!("pidns watch: keeping its capabilities: {e}");
    }
}
