//! Which container, if any, a cgroup path belongs to.
//!
//! Runtimes name a container's cgroup after the container, in a handful of
//! layouts that differ by runtime, cgroup driver (cgroupfs or systemd) and
//! cgroup version. [`classify`] recognises them from the path alone:
//!
//! | runtime | cgroupfs driver | systemd driver |
//! |---|---|---|
//! | Docker | `/docker/<id>` | `docker-<id>.scope` |
//! | containerd (CRI) | `/kubepods/<qos>/pod<uid>/<id>` | `cri-containerd-<id>.scope`, `…slice:cri-containerd:<id>` |
//! | containerd (`ctr`) | `/<namespace>/<id>` (confirmed by ancestry) | |
//! | Docker `--cgroup-parent`, containerd | `/<any path>/<64-hex id>` (confirmed by ancestry) | |
//! | CRI-O | `crio-<id>` | `crio-<id>.scope`; `crio-conmon-<id>` is its monitor |
//! | Podman | `/libpod_parent/libpod-<id>` | `libpod-<id>.scope[/container]`; `libpod-conmon-<id>.scope` is its monitor |
//! | LXC | `/lxc/<name>`, `/lxc.payload/<name>` (`/lxc.monitor/<name>` is its monitor) | `lxc.payload.<name>`; `lxc.monitor.<name>` is its monitor |
//! | systemd-nspawn | | `systemd-nspawn@<name>.service[/payload]`, `machine-<name>.scope` |
//!
//! The deepest segment that names a container wins, so a container nested in
//! another (Docker in Docker, kind) is attributed to the inner one, and the
//! outer ones are recorded as [`Match::enclosing`]. Segments below it
//! (`container`, `payload`, `init.scope`) are the container's own
//! sub-cgroups. A monitor's cgroup (`lxc.monitor.<name>`, `crio-conmon-<id>`,
//! `…/supervisor`) is a monitor only where no container's cgroup encloses it:
//! inside a container, it is just one of that container's sub-cgroups, so a
//! container cannot hide a process by naming a sub-cgroup like a monitor.
//!
//! A full 64-hex id as the last segment under a path no layout names (Docker's
//! `--cgroup-parent=/any/path`, `ctr`'s `/<namespace>/<id>`) is a candidate
//! that needs a second signal ([`Match::needs_confirmation`]).
//! Leading `..` segments, which appear when the reader sits in a cgroup
//! namespace, are ignored.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Runtime {
    #[serde(rename = "docker")]
    Docker,
    #[serde(rename = "containerd")]
    Containerd,
    #[serde(rename = "cri-o")]
    CriO,
    #[serde(rename = "podman")]
    Podman,
    /// A Kubernetes pod container whose cgroup path does not name the engine
    /// (kubelet's cgroupfs driver: `/kubepods/<qos>/pod<uid>/<id>`).
    #[serde(rename = "kubernetes")]
    Kubernetes,
    #[serde(rename = "lxc")]
    Lxc,
    #[serde(rename = "systemd-nspawn")]
    SystemdNspawn,
    /// runc on its own, known by its state (`/run/runc/<id>/state.json`),
    /// never by a cgroup path.
    #[serde(rename = "runc")]
    Runc,
    /// crun on its own, known by its state (`/run/crun/<id>/status`).
    #[serde(rename = "crun")]
    Crun,
    /// A container-like process (its own mount namespace and root) that no
    /// runtime's state accounts for: a home-made container, a runtime
    /// pidns does not know. Its id is its root mount's source.
    #[serde(rename = "unknown")]
    Unknown,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Kubernetes => "kubernetes",
            Runtime::Lxc => "lxc",
            Runtime::SystemdNspawn => "systemd-nspawn",
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
            Runtime::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the processes in a container's cgroup are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The container's own processes.
    Container,
    /// The runtime's monitor for the container (conmon, LXC monitor, nspawn
    /// supervisor): a host process, not a container process.
    Monitor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub runtime: Runtime,
    /// The container's id as its runtime knows it (a name for LXC and nspawn).
    pub id: String,
    /// Kubernetes pod UID, when the path carries one.
    pub pod_uid: Option<String>,
    /// containerd namespace for the `/<namespace>/<id>` layout.
    pub namespace: Option<String>,
    pub role: Role,
    /// Length of the path prefix that is the container's own cgroup.
    pub cgroup_len: usize,
    /// The shape alone (`/<namespace>/<id>`) is not proof: the caller must
    /// confirm with a second signal, such as a containerd shim among the
    /// process's ancestors.
    pub needs_confirmation: bool,
    /// The id is a full 64-hex last segment under a path that names no
    /// runtime (`docker run --cgroup-parent=/a/b` gives `/a/b/<id>`): Docker or
    /// containerd, which the caller tells apart from the runtimes' on-disk
    /// state. Always comes with `needs_confirmation`.
    pub hex_leaf: bool,
    /// Containers whose cgroups enclose this one, outermost first (Docker in
    /// Docker, a kind node around its pods). Empty when not nested.
    pub enclosing: Vec<Enclosing>,
}

/// A container whose cgroup encloses the matched one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enclosing {
    pub runtime: Runtime,
    pub id: String,
    /// Length of the path prefix that is this container's cgroup.
    pub cgroup_len: usize,
}

struct Segment<'a> {
    name: &'a [u8],
    end: usize,
}

fn segments(path: &[u8]) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in path
        .iter()
        .enumerate()
        .chain(std::iter::once((path.len(), &b'/')))
    {
        if b == b'/' {
            if i > start && &path[start..i] != b".." && &path[start..i] != b"." {
                out.push(Segment {
                    name: &path[start..i],
                    end: i,
                });
            }
            start = i + 1;
        }
    }
    out
}

/// Classifies a cgroup path (as shown in `/proc/<pid>/cgroup`).
pub fn classify(path: &[u8]) -> Option<Match> {
    let segs = segments(path);
    // Every segment that names a container, outermost first, and the deepest
    // monitor segment.
    let mut containers: Vec<(usize, Runtime, String)> = Vec::new();
    let mut monitor: Option<(usize, Runtime, String)> = None;
    for i in 0..segs.len() {
        let parent = i.checked_sub(1).map(|p| segs[p].name);
        let child = segs.get(i + 1).map(|s| s.name);
        match classify_segment(segs[i].name, parent, child) {
            // A VM registered with machined is not a container.
            Some((_, id, _)) if id.is_empty() => {}
            Some((runtime, id, Role::Container)) => containers.push((i, runtime, id)),
            Some((runtime, id, Role::Monitor)) => monitor = Some((i, runtime, id)),
            None => {}
        }
    }
    // The innermost container wins, whatever lies below it: a monitor-like
    // sub-cgroup inside a container is the container's.
    if let Some((i, runtime, id)) = containers.pop() {
        let lo = containers.last().map_or(0, |(j, _, _)| j + 1);
        return Some(Match {
            runtime,
            pod_uid: pod_uid(&segs[lo..=i]),
            namespace: None,
            id,
            role: Role::Container,
            cgroup_len: segs[i].end,
            needs_confirmation: false,
            hex_leaf: false,
            enclosing: containers
                .into_iter()
                .map(|(j, runtime, id)| Enclosing {
                    runtime,
                    id,
                    cgroup_len: segs[j].end,
                })
                .collect(),
        });
    }
    if let Some((i, runtime, id)) = monitor {
        return Some(Match {
            runtime,
            pod_uid: pod_uid(&segs[..=i]),
            namespace: None,
            id,
            role: Role::Monitor,
            cgroup_len: segs[i].end,
            needs_confirmation: false,
            hex_leaf: false,
            enclosing: Vec::new(),
        });
    }
    hex_leaf(&segs).or_else(|| containerd_namespace_layout(&segs))
}

fn classify_segment(
    seg: &[u8],
    parent: Option<&[u8]>,
    child: Option<&[u8]>,
) -> Option<(Runtime, String, Role)> {
    use Role::*;
    use Runtime::*;
    let text = std::str::from_utf8(seg).ok()?;

    // systemd-style names used literally as a cgroupfs path: `<slice>:<prefix>:<id>`.
    if let Some((_, rest)) = text.split_once(':') {
        let (prefix, id) = rest.split_once(':')?;
        let runtime = match prefix {
            "cri-containerd" => Containerd,
            "crio" => CriO,
            "docker" => Docker,
            _ => return None,
        };
        return is_hex_id(id).then(|| (runtime, id.to_owned(), Container));
    }

    if let Some(scope) = text.strip_suffix(".scope") {
        return classify_scope(scope, parent);
    }

    if let Some(name) = text
        .strip_prefix("systemd-nspawn@")
        .and_then(|s| s.strip_suffix(".service"))
    {
        let role = if child == Some(b"supervisor") {
            Monitor
        } else {
            Container
        };
        return Some((SystemdNspawn, unescape_systemd(name), role));
    }
    if let Some(name) = text.strip_prefix("lxc.payload.") {
        return is_name(name).then(|| (Lxc, name.to_owned(), Container));
    }
    if let Some(name) = text.strip_prefix("lxc.monitor.") {
        return is_name(name).then(|| (Lxc, name.to_owned(), Monitor));
    }
    // cgroupfs-driver forms, which name the runtime in the parent segment or a prefix.
    if let Some(id) = text.strip_prefix("crio-conmon-") {
        return is_hex_id(id).then(|| (CriO, id.to_owned(), Monitor));
    }
    if let Some(id) = text.strip_prefix("crio-") {
        return is_hex_id(id).then(|| (CriO, id.to_owned(), Container));
    }
    if let Some(id) = text.strip_prefix("libpod-") {
        return (is_hex_id(id) && !id.starts_with("conmon"))
            .then(|| (Podman, id.to_owned(), Container));
    }
    match parent {
        Some(b"docker") if is_full_hex_id(text) => Some((Docker, text.to_owned(), Container)),
        Some(b"lxc") | Some(b"lxc.payload") if is_name(text) => {
            Some((Lxc, text.to_owned(), Container))
        }
        // LXC 3's `lxc.monitor/<name>`, next to `lxc.payload/<name>`.
        Some(b"lxc.monitor") if is_name(text) => Some((Lxc, text.to_owned(), Monitor)),
        Some(p) if p.starts_with(b"pod") && is_full_hex_id(text) => {
            Some((Kubernetes, text.to_owned(), Container))
        }
        _ => None,
    }
}

/// A systemd scope unit (`<prefix>-<id>.scope`, without `.scope`): Docker,
/// containerd, CRI-O and Podman containers and monitors, and nspawn machines
/// under `machine.slice`.
fn classify_scope(scope: &str, parent: Option<&[u8]>) -> Option<(Runtime, String, Role)> {
    use Role::*;
    use Runtime::*;
    let prefixed = [
        ("docker-", Docker, Container),
        ("cri-containerd-", Containerd, Container),
        ("crio-conmon-", CriO, Monitor),
        ("crio-", CriO, Container),
        ("libpod-conmon-", Podman, Monitor),
        ("libpod-", Podman, Container),
    ];
    for (prefix, runtime, role) in prefixed {
        if let Some(id) = scope.strip_prefix(prefix) {
            return is_hex_id(id).then(|| (runtime, id.to_owned(), role));
        }
    }
    if let Some(name) = scope.strip_prefix("machine-")
        && parent == Some(b"machine.slice")
    {
        let name = unescape_systemd(name);
        // libvirt registers its VMs here too; qemu is not a container.
        let id = if name.starts_with("qemu-") {
            String::new()
        } else {
            name
        };
        return Some((SystemdNspawn, id, Container));
    }
    None
}

/// Kubernetes pod UID from the `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid>.slice`
/// (systemd) segment nearest to the container. `segs` runs from below the
/// nearest enclosing container down to the container, so a pod is never
/// borrowed from an outer container. A kubelet nested in a container names
/// its slices `kubelet-kubepods-…`, hence `kubepods` anywhere in a segment.
fn pod_uid(segs: &[Segment<'_>]) -> Option<String> {
    let in_kubepods = segs
        .iter()
        .any(|s| s.name.windows(8).any(|w| w == b"kubepods"));
    if !in_kubepods {
        return None;
    }
    segs.iter().rev().find_map(|s| {
        let text = std::str::from_utf8(s.name).ok()?;
        // `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>` keeps the slice before the colon.
        let text = text.split(':').next().unwrap_or(text);
        if let Some(slice) = text.strip_suffix(".slice") {
            let uid = slice.rsplit_once("-pod")?.1;
            return is_uid(uid).then(|| uid.replace('_', "-"));
        }
        let uid = text.strip_prefix("pod")?;
        is_uid(uid).then(|| uid.to_owned())
    })
}

const SYSTEMD_UNITS: [&str; 6] = [".slice", ".service", ".scope", ".socket", ".mount", ".swap"];
const RUNTIME_PARENTS: [&str; 6] = [
    "docker",
    "kubepods",
    "libpod_parent",
    "lxc",
    "lxc.payload",
    "lxc.monitor",
];

/// Whether a segment can be a containerd namespace in `/<namespace>/<id>`.
fn is_containerd_namespace(ns: &str) -> bool {
    !SYSTEMD_UNITS.iter().any(|u| ns.ends_with(u))
        && !RUNTIME_PARENTS.contains(&ns)
        && is_containerd_identifier(ns)
}

/// A full 64-hex id as the last segment of a path no layout names: Docker
/// with `--cgroup-parent` (`/<parent path>/<id>`), or containerd. Where the
/// path is `/<namespace>/<id>`, the namespace is kept for containerd.
fn hex_leaf(segs: &[Segment<'_>]) -> Option<Match> {
    let leaf = segs.last()?;
    let id = std::str::from_utf8(leaf.name).ok()?;
    if !is_full_hex_id(id) {
        return None;
    }
    let namespace = match segs {
        [ns, _] => std::str::from_utf8(ns.name)
            .ok()
            .filter(|ns| is_containerd_namespace(ns))
            .map(str::to_owned),
        _ => None,
    };
    Some(Match {
        runtime: Runtime::Containerd,
        id: id.to_owned(),
        pod_uid: None,
        namespace,
        role: Role::Container,
        cgroup_len: leaf.end,
        needs_confirmation: true,
        hex_leaf: true,
        enclosing: Vec::new(),
    })
}

/// `ctr` and other direct containerd clients default to `/<namespace>/<id>`.
fn containerd_namespace_layout(segs: &[Segment<'_>]) -> Option<Match> {
    let [ns, id] = segs else {
        return None;
    };
    let (ns_text, id_text) = (
        std::str::from_utf8(ns.name).ok()?,
        std::str::from_utf8(id.name).ok()?,
    );
    if SYSTEMD_UNITS.iter().any(|u| id_text.ends_with(u))
        || !is_containerd_namespace(ns_text)
        || !is_containerd_identifier(id_text)
    {
        return None;
    }
    Some(Match {
        runtime: Runtime::Containerd,
        id: id_text.to_owned(),
        pod_uid: None,
        namespace: Some(ns_text.to_owned()),
        role: Role::Container,
        cgroup_len: id.end,
        needs_confirmation: true,
        hex_leaf: false,
        enclosing: Vec::new(),
    })
}

fn is_hex_id(id: &str) -> bool {
    (12..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn is_full_hex_id(id: &str) -> bool {
    id.len() == 64 && is_hex_id(id)
}

fn is_uid(uid: &str) -> bool {
    uid.len() >= 8
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.bytes().any(|b| b.is_ascii_control())
}

/// containerd's identifier rule: `^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`, at most 76 bytes.
fn is_containerd_identifier(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > 76 {
        return false;
    }
    let sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
    bytes.iter().all(|&b| b.is_ascii_alphanumeric() || sep(b))
        && !sep(bytes[0])
        && !sep(bytes[bytes.len() - 1])
        && !bytes.windows(2).any(|w| sep(w[0]) && sep(w[1]))
}

/// Undoes systemd's unit-name escaping (`\x2d` for `-`).
fn unescape_systemd(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && let Some(v) = name
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "40e9cfb459ea932ec1f41ca728c2afb10676bb793b3ad87f4b67f7873eccbae4";
    const UID: &str = "1c0ffee0-1234-4abc-9def-0123456789ab";

    fn check(path: &str, runtime: Runtime, id: &str, role: Role, cgroup: &str) -> Match {
        let m = classify(path.as_bytes()).unwrap_or_else(|| panic!("no match for {path}"));
        assert_eq!(
            (m.runtime, m.id.as_str(), m.role),
            (runtime, id, role),
            "{path}"
        );
        assert_eq!(&path[..m.cgroup_len], cgroup, "{path}");
        m
    }

    fn none(path: &str) {
        assert_eq!(classify(path.as_bytes()), None, "{path}");
    }

    #[test]
    fn docker() {
        let p = format!("/docker/{ID}");
        check(&p, Runtime::Docker, ID, Role::Container, &p);
        let p = format!("/system.slice/docker-{ID}.scope");
        check(&p, Runtime::Docker, ID, Role::Container, &p);
        // Docker's own bookkeeping directories are not containers.
        none("/docker");
        none("/docker/buildkit");
    }

    #[test]
    fn docker_in_docker_attributes_to_the_inner_container() {
        let inner = "1111111111111111111111111111111111111111111111111111111111111111";
        let p = format!("/docker/{ID}/docker/{inner}");
        check(&p, Runtime::Docker, inner, Role::Container, &p);
    }

    #[test]
    fn containerd_cri() {
        let p = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{ID}.scope",
            UID.replace('-', "_")
        );
        let m = check(&p, Runtime::Containerd, ID, Role::Container, &p);
        assert_eq!(m.pod_uid.as_deref(), Some(UID));
        // systemd-style cgroupsPath handed to the cgroupfs driver
        let p = format!(
            "/kubepods-burstable-pod{}.slice:cri-containerd:{ID}",
            UID.replace('-', "_")
        );
        let m = check(&p, Runtime::Containerd, ID, Role::Container, &p);
        assert_eq!(m.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn kubernetes_cgroupfs_driver() {
        let p = format!("/kubepods/burstable/pod{UID}/{ID}");
        let m = check(&p, Runtime::Kubernetes, ID, Role::Container, &p);
        assert_eq!(m.pod_uid.as_deref(), Some(UID));
        let p = format!("/kubepods/pod{UID}/{ID}");
        assert_eq!(
            check(&p, Runtime::Kubernetes, ID, Role::Container, &p)
                .pod_uid
                .as_deref(),
            Some(UID)
        );
        // The pod's own cgroup holds no container.
        none(&format!("/kubepods/burstable/pod{UID}"));
        let p = format!("/kubepods/besteffort/pod{UID}/crio-{ID}");
        check(&p, Runtime::CriO, ID, Role::Container, &p);
    }

    #[test]
    fn kubernetes_systemd_guaranteed_pod() {
        let p = format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope",
            UID.replace('-', "_")
        );
        let m = check(&p, Runtime::CriO, ID, Role::Container, &p);
        assert_eq!(m.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn crio() {
        let p = format!("/machine.slice/crio-{ID}.scope");
        check(&p, Runtime::CriO, ID, Role::Container, &p);
        let p = format!("/kubepods.slice/crio-conmon-{ID}.scope");
        check(&p, Runtime::CriO, ID, Role::Monitor, &p);
        let p = format!("/crio-conmon-{ID}");
        check(&p, Runtime::CriO, ID, Role::Monitor, &p);
    }

    #[test]
    fn podman() {
        let c = format!("/libpod_parent/libpod-{ID}");
        check(&c, Runtime::Podman, ID, Role::Container, &c);
        none("/libpod_parent/conmon");
        let c = format!("/machine.slice/libpod-{ID}.scope");
        check(
            &format!("{c}/container"),
            Runtime::Podman,
            ID,
            Role::Container,
            &c,
        );
        let p = format!("/machine.slice/libpod-conmon-{ID}.scope");
        check(&p, Runtime::Podman, ID, Role::Monitor, &p);
        let c =
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope");
        check(
            &format!("{c}/container"),
            Runtime::Podman,
            ID,
            Role::Container,
            &c,
        );
    }

    #[test]
    fn lxc() {
        check(
            "/lxc.payload.web",
            Runtime::Lxc,
            "web",
            Role::Container,
            "/lxc.payload.web",
        );
        check(
            "/lxc.payload.web/init.scope",
            Runtime::Lxc,
            "web",
            Role::Container,
            "/lxc.payload.web",
        );
        check(
            "/lxc.monitor.web",
            Runtime::Lxc,
            "web",
            Role::Monitor,
            "/lxc.monitor.web",
        );
        check("/lxc/web", Runtime::Lxc, "web", Role::Container, "/lxc/web");
        check(
            "/lxc/web/system.slice",
            Runtime::Lxc,
            "web",
            Role::Container,
            "/lxc/web",
        );
        none("/lxc");
    }

    #[test]
    fn systemd_nspawn() {
        let svc = "/machine.slice/systemd-nspawn@deb\\x2dbox.service";
        check(
            &format!("{svc}/payload"),
            Runtime::SystemdNspawn,
            "deb-box",
            Role::Container,
            svc,
        );
        check(
            &format!("{svc}/supervisor"),
            Runtime::SystemdNspawn,
            "deb-box",
            Role::Monitor,
            svc,
        );
        check(
            "/machine.slice/machine-web.scope",
            Runtime::SystemdNspawn,
            "web",
            Role::Container,
            "/machine.slice/machine-web.scope",
        );
        // libvirt VMs also live in machine.slice
        none("/machine.slice/machine-qemu\\x2d1\\x2dguest.scope");
        none("/machine.slice");
    }

    #[test]
    fn containerd_namespace_layout_needs_confirmation() {
        let m = check(
            "/default/ctrhp",
            Runtime::Containerd,
            "ctrhp",
            Role::Container,
            "/default/ctrhp",
        );
        assert!(m.needs_confirmation);
        assert_eq!(m.namespace.as_deref(), Some("default"));
        let m = check(
            "/moby/web-1.a",
            Runtime::Containerd,
            "web-1.a",
            Role::Container,
            "/moby/web-1.a",
        );
        assert!(m.needs_confirmation);
        // under a cgroup namespace the path starts with `..`
        assert!(classify(b"/../../default/ctrhp").is_some());
        none("/system.slice/cron.service");
        none("/user.slice/user-1000.slice");
        none("/a/b/c");
        none("/a");
        none("/default/bad..id");
    }

    #[test]
    fn host_cgroups_are_not_containers() {
        for p in [
            "/",
            "",
            "/init.scope",
            "/system.slice/docker.service",
            "/system.slice/containerd.service",
            "/user.slice/user-0.slice/session-1.scope",
            "/kubepods.slice",
            "/kubepods/burstable",
            "/system.slice/docker-notanid.scope",
            "/libpod_parent",
            "/machine.slice/libpod-xyz.scope",
        ] {
            none(p);
        }
    }

    #[test]
    fn colon_forms_for_every_runtime() {
        let us = UID.replace('-', "_");
        for (prefix, runtime) in [
            ("cri-containerd", Runtime::Containerd),
            ("crio", Runtime::CriO),
            ("docker", Runtime::Docker),
        ] {
            let p = format!("/kubepods-besteffort-pod{us}.slice:{prefix}:{ID}");
            let m = check(&p, runtime, ID, Role::Container, &p);
            assert_eq!(m.pod_uid.as_deref(), Some(UID), "{p}");
            // outside Kubernetes: no pod
            let p = format!("/system.slice:{prefix}:{ID}");
            assert_eq!(check(&p, runtime, ID, Role::Container, &p).pod_uid, None);
        }
        none(&format!("/system.slice:podman:{ID}"));
        none("/system.slice:crio:notanid");
    }

    #[test]
    fn kubernetes_every_qos_class_and_driver() {
        let us = UID.replace('-', "_");
        // cgroupfs driver: guaranteed pods sit directly under /kubepods
        for qos in ["", "burstable/", "besteffort/"] {
            let p = format!("/kubepods/{qos}pod{UID}/{ID}");
            let m = check(&p, Runtime::Kubernetes, ID, Role::Container, &p);
            assert_eq!(m.pod_uid.as_deref(), Some(UID), "{p}");
        }
        // systemd driver, with each engine's scope
        for (qos_slice, pod_slice) in [
            ("", format!("kubepods-pod{us}.slice")),
            (
                "kubepods-burstable.slice/",
                format!("kubepods-burstable-pod{us}.slice"),
            ),
            (
                "kubepods-besteffort.slice/",
                format!("kubepods-besteffort-pod{us}.slice"),
            ),
        ] {
            for (scope, runtime) in [
                (format!("cri-containerd-{ID}.scope"), Runtime::Containerd),
                (format!("crio-{ID}.scope"), Runtime::CriO),
                (format!("docker-{ID}.scope"), Runtime::Docker),
            ] {
                let p = format!("/kubepods.slice/{qos_slice}{pod_slice}/{scope}");
                let m = check(&p, runtime, ID, Role::Container, &p);
                assert_eq!(m.pod_uid.as_deref(), Some(UID), "underscores undone: {p}");
            }
        }
        // dockershim with the cgroupfs driver
        let p = format!("/kubepods/burstable/pod{UID}/docker-{ID}.scope");
        assert_eq!(
            check(&p, Runtime::Docker, ID, Role::Container, &p)
                .pod_uid
                .as_deref(),
            Some(UID)
        );
    }

    #[test]
    fn kubelet_nested_in_a_container_keeps_the_pod() {
        let us = UID.replace('-', "_");
        let node = "/system.slice/docker-1111111111111111111111111111111111111111111111111111111111111111.scope";
        let p = format!(
            "{node}/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{us}.slice/cri-containerd-{ID}.scope"
        );
        let m = check(&p, Runtime::Containerd, ID, Role::Container, &p);
        assert_eq!(m.pod_uid.as_deref(), Some(UID));
        assert_eq!(m.enclosing.len(), 1);
        let e = &m.enclosing[0];
        assert_eq!(
            (e.runtime, e.id.as_str(), &p[..e.cgroup_len]),
            (Runtime::Docker, &node[21..85], node)
        );
        // the node itself is not in a pod, and its sub-cgroups are its own
        let p = format!("{node}/kubelet.slice/kubelet.service");
        let m = check(&p, Runtime::Docker, &node[21..85], Role::Container, node);
        assert_eq!((m.pod_uid, m.enclosing.len()), (None, 0));
    }

    #[test]
    fn a_pod_uid_is_never_borrowed_from_an_enclosing_container() {
        let inner = "1111111111111111111111111111111111111111111111111111111111111111";
        let p = format!("/kubepods/besteffort/pod{UID}/{ID}/docker/{inner}");
        let m = check(&p, Runtime::Docker, inner, Role::Container, &p);
        assert_eq!(m.pod_uid, None);
        assert_eq!(m.enclosing[0].id, ID);
    }

    #[test]
    fn monitors_count_only_outside_containers() {
        let outer = format!("/docker/{ID}");
        for sub in [
            "lxc.monitor.web".to_owned(),
            format!("crio-conmon-{ID}"),
            format!("machine.slice/libpod-conmon-{ID}.scope"),
            "systemd-nspawn@box.service/supervisor".to_owned(),
            "machine.slice/machine-qemu\\x2d1.scope".to_owned(),
        ] {
            let p = format!("{outer}/{sub}");
            let m = check(&p, Runtime::Docker, ID, Role::Container, &outer);
            assert!(m.enclosing.is_empty(), "{p}");
        }
        // a container below a monitor cgroup is still that container
        let p = format!("/lxc.monitor.web/docker/{ID}");
        check(&p, Runtime::Docker, ID, Role::Container, &p);
    }

    #[test]
    fn nested_containers_record_their_enclosers() {
        let a = "1111111111111111111111111111111111111111111111111111111111111111";
        let b = "2222222222222222222222222222222222222222222222222222222222222222";
        let p = format!("/docker/{a}/docker/{b}/lxc.payload.web/init.scope");
        let m = check(
            &p,
            Runtime::Lxc,
            "web",
            Role::Container,
            &format!("/docker/{a}/docker/{b}/lxc.payload.web"),
        );
        let enclosing: Vec<(Runtime, &str, &str)> = m
            .enclosing
            .iter()
            .map(|e| (e.runtime, e.id.as_str(), &p[..e.cgroup_len]))
            .collect();
        assert_eq!(
            enclosing,
            vec![
                (Runtime::Docker, a, &*format!("/docker/{a}")),
                (Runtime::Docker, b, &*format!("/docker/{a}/docker/{b}")),
            ]
        );
    }

    #[test]
    fn bare_hex_leaves_need_confirmation() {
        // docker run --cgroup-parent=/scan-cpa/sub
        let p = format!("/scan-cpa/sub/{ID}");
        let m = check(&p, Runtime::Containerd, ID, Role::Container, &p);
        assert!(m.needs_confirmation && m.hex_leaf);
        assert_eq!(m.namespace, None);
        // --cgroup-parent=/scan-cp: the `/<namespace>/<id>` shape
        let p = format!("/scan-cp/{ID}");
        let m = check(&p, Runtime::Containerd, ID, Role::Container, &p);
        assert!(m.needs_confirmation && m.hex_leaf);
        assert_eq!(m.namespace.as_deref(), Some("scan-cp"));
        let p = format!("/system.slice/{ID}");
        assert_eq!(classify(p.as_bytes()).unwrap().namespace, None);
        // a short hex leaf deep down is nobody's
        none("/a/b/40e9cfb459ea");
        // ctr names keep the old rule
        let m = classify(b"/default/web").unwrap();
        assert!(m.needs_confirmation && !m.hex_leaf);
        // a bare id below a known container is that container's sub-cgroup
        let outer = "1111111111111111111111111111111111111111111111111111111111111111";
        let p = format!("/docker/{outer}/x/{ID}");
        let m = check(
            &p,
            Runtime::Docker,
            outer,
            Role::Container,
            &format!("/docker/{outer}"),
        );
        assert!(!m.needs_confirmation);
    }

    #[test]
    fn lxc_payload_directory_form() {
        check(
            "/lxc.payload/web",
            Runtime::Lxc,
            "web",
            Role::Container,
            "/lxc.payload/web",
        );
        check(
            "/lxc.payload/web/init.scope",
            Runtime::Lxc,
            "web",
            Role::Container,
            "/lxc.payload/web",
        );
        check(
            "/lxc.monitor/web",
            Runtime::Lxc,
            "web",
            Role::Monitor,
            "/lxc.monitor/web",
        );
    }

    #[test]
    fn junk_never_panics() {
        for p in [
            &b"/\xff\xfe/\x00"[..],
            b"////",
            b"/docker/",
            b":::",
            b"/a:b:c",
            b"/x.slice:crio:",
            b"/../..",
        ] {
            let _ = classify(p);
        }
        let long = vec![b'a'; 1 << 16];
        assert_eq!(classify(&long), None);
    }
}
