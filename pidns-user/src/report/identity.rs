//! Which container: the one identity type scan and watch share, and the key
//! that tells containers apart before their names are known.

use serde::Serialize;

pub use crate::parse::layout::Runtime;

/// A container as its cgroup path places it: its runtime, its id, and the
/// cgroup that is the container's own, so that the same id at another path
/// (a sub-cgroup of some other container named after an allowed one) is
/// another container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerKey {
    pub runtime: Runtime,
    pub id: String,
    pub cgroup: String,
}

/// A container, named: its key and what runtimes' on-disk state calls it.
/// Serialized as a scan's `enclosed_by` entries; watch events carry the same
/// fields with the id as `container_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The full id as the runtime knows it (a name for LXC and systemd-nspawn).
    pub id: String,
    pub runtime: Runtime,
    pub name: Option<String>,
    pub pod: Option<Pod>,
    /// The container's own cgroup.
    pub cgroup: String,
}

impl Identity {
    pub fn key(&self) -> ContainerKey {
        ContainerKey {
            runtime: self.runtime,
            id: self.id.clone(),
            cgroup: self.cgroup.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pod {
    pub uid: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}
