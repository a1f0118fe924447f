//! `--metrics-addr`: Prometheus metrics for the agent, served over HTTP.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `pidns_containers_sharing_host_pidns` | gauge (1 per container) | `runtime`, `container_id`, `name`, `pod_namespace`, `pod_name`, `allowed` |
//! | `pidns_findings_total` | counter | `event` (`host_pidns`, `setns`), `trigger` |
//! | `pidns_lost_events_total` | counter | `stream` (`findings`, `other`) |
//! | `pidns_enforced_total` | counter | `mode` (`setns`, `host-pidns`), `runtime` |
//! | `pidns_enforced_in_kernel_total` | counter | `mode` |
//! | `pidns_aggregated_events_total` | counter | `event`, `trigger` |
//! | `pidns_unattributed_events_total` | counter | |
//! | `pidns_host_access_total` | counter | `op` (signal 0 as `signal_probe`), `runtime`, `allowed` |
//! | `pidns_probes_attached` | gauge | |
//! | `pidns_last_scan_timestamp_seconds` | gauge | |
//! | `pidns_last_scan_duration_seconds` | gauge | |
//!
//! The sharing gauge is set by every full scan (start-up, `--rescan`, each
//! poll) and by live findings; a scan drops containers that stopped, and so
//! does the removal of the cgroup that set it (not another cgroup with the
//! same labels, such as a sub-cgroup named after the container). Alert on
//! `pidns_containers_sharing_host_pidns{allowed="false"}`.
//!
//! The exposition is OpenMetrics text (prometheus-client has no other text
//! encoder); `server` serves it.

mod server;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Mutex, atomic::AtomicU64},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

pub use server::{Accept, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, serve};

use crate::report::{Identity, ScanReport, Verdict, WatchEvent};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerLabels {
    runtime: String,
    container_id: String,
    name: String,
    /// Kubernetes containers: the pod's namespace and name (empty otherwise, or when unknown).
    pod_namespace: String,
    pod_name: String,
    allowed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    event: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostAccessLabels {
    op: String,
    runtime: String,
    allowed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnforcedLabels {
    mode: String,
    runtime: String,
}

pub struct Metrics {
    registry: Registry,
    sharing: Family<ContainerLabels, Gauge>,
    findings: Family<FindingLabels, Counter>,
    aggregated: Family<FindingLabels, Counter>,
    lost: Family<StreamLabels, Counter>,
    host_access: Family<HostAccessLabels, Counter>,
    /// Which cgroups hold each series of the sharing gauge: a series goes
    /// when the last of them is gone.
    owners: Mutex<HashMap<ContainerLabels, BTreeSet<String>>>,
    unattributed: Counter,
    /// `--enforce` kills, and the process of the last setns kill counted
    /// (a pidfd setns is one event per namespace type, one kill).
    enforced: Family<EnforcedLabels, Counter>,
    last_setns_kill: Mutex<Option<u32>>,
    /// The probes' own count of their kills, by mode (events lost or
    /// aggregated included).
    kernel_enforced: Family<ModeLabels, Counter>,
    probes: Gauge,
    last_scan: Gauge<f64, AtomicU64>,
    last_scan_duration: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("pidns"),
            sharing: Family::default(),
            findings: Family::default(),
            aggregated: Family::default(),
            lost: Family::default(),
            host_access: Family::default(),
            owners: Mutex::new(HashMap::new()),
            unattributed: Counter::default(),
            enforced: Family::default(),
            last_setns_kill: Mutex::new(None),
            kernel_enforced: Family::default(),
            probes: Gauge::default(),
            last_scan: Gauge::default(),
            last_scan_duration: Gauge::default(),
        };
        let mut registry = m.registry;
        registry.register(
            "containers_sharing_host_pidns",
            "Containers with a process in the host PID namespace, as of the last scan and findings since (1 each)",
            m.sharing.clone(),
        );
        registry.register(
            "findings",
            "Findings reported, by event and trigger",
            m.findings.clone(),
        );
        registry.register(
            "aggregated_events",
            "Events a container made beyond its budget, counted in the kernel and reported in aggregate lines",
            m.aggregated.clone(),
        );
        registry.register(
            "lost_events",
            "Kernel events dropped because their ring buffer was full, by stream (findings, other)",
            m.lost.clone(),
        );
        registry.register(
            "unattributed_events",
            "Kernel events whose process had exited and whose cgroup was never seen, so no container could be named",
            m.unattributed.clone(),
        );
        registry.register(
            "enforced",
            "Processes --enforce killed (in the kernel, or by the agent after verifying), by mode and runtime",
            m.enforced.clone(),
        );
        registry.register(
            "enforced_in_kernel",
            "Processes the probes killed under --enforce, by mode, as the kernel counts them (also those whose event was lost or aggregated)",
            m.kernel_enforced.clone(),
        );
        registry.register(
            "probes_attached",
            "eBPF probes attached (0 in procfs mode)",
            m.probes.clone(),
        );
        registry.register(
            "last_scan_timestamp_seconds",
            "When the last full scan ran (Unix time)",
            m.last_scan.clone(),
        );
        registry.register(
            "last_scan_duration_seconds",
            "How long the last full scan took",
            m.last_scan_duration.clone(),
        );
        registry.register(
            "host_access",
            "Accesses of a host-PID container's processes to processes outside their container (signals, ptrace, process memory, fds, /proc files), by op",
            m.host_access.clone(),
        );
        // Both streams are exposed from the start, at 0.
        for stream in pidns_ebpf::stream::NAMES {
            m.lost
                .get_or_create(&StreamLabels {
                    stream: stream.into(),
                })
                .inc_by(0);
        }
        Metrics { registry, ..m }
    }

    fn labels(c: &Identity, allowed: bool) -> ContainerLabels {
        ContainerLabels {
            runtime: c.runtime.to_string(),
            container_id: c.id.clone(),
            name: c.name.clone().unwrap_or_default(),
            pod_namespace: c
                .pod
                .as_ref()
                .and_then(|p| p.namespace.clone())
                .unwrap_or_default(),
            pod_name: c
                .pod
                .as_ref()
                .and_then(|p| p.name.clone())
                .unwrap_or_default(),
            allowed: allowed.to_string(),
        }
    }

    /// Counts an event on its way out.
    pub fn record(&self, e: &WatchEvent) {
        match e {
            WatchEvent::Ready { probes, .. } => {
                self.probes
                    .set(i64::try_from(probes.len()).unwrap_or(i64::MAX));
            }
            WatchEvent::HostPidns(f) => {
                self.findings
                    .get_or_create(&FindingLabels {
                        event: "host_pidns".into(),
                        trigger: f.trigger.as_str().into(),
                    })
                    .inc();
                self.share(&f.at.container, false);
                // A setns into the host PID namespace is counted as the setns.
                if f.enforced.is_some() && f.trigger != crate::report::Trigger::Setns {
                    self.count_enforced("host-pidns", &f.at.container);
                }
            }
            WatchEvent::Setns(s) => {
                if s.enforced.is_some() {
                    let call = Some(s.at.pid);
                    let mut last = self
                        .last_setns_kill
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if *last != call {
                        *last = call;
                        self.count_enforced("setns", &s.at.container);
                    }
                }
                self.findings
                    .get_or_create(&FindingLabels {
                        event: "setns".into(),
                        trigger: "setns".into(),
                    })
                    .inc();
            }
            WatchEvent::Aggregate(a) => {
                self.aggregated
                    .get_or_create(&FindingLabels {
                        event: a.of.into(),
                        trigger: a.trigger.map_or("", |t| t.as_str()).into(),
                    })
                    .inc_by(a.count);
                if a.of == "host_pidns" {
                    self.share(&a.at.container, false);
                }
            }
            WatchEvent::Lost { stream, count, .. } => {
                self.lost
                    .get_or_create(&StreamLabels {
                        stream: (*stream).into(),
                    })
                    .inc_by(*count);
            }
            WatchEvent::CgroupEscape(x) => {
                self.findings
                    .get_or_create(&FindingLabels {
                        event: "cgroup_escape".into(),
                        trigger: "cgroup_escape".into(),
                    })
                    .inc();
                self.share(&x.at.container, false);
            }
            WatchEvent::HostAccess(a) => {
                self.count_access(a.metric_op(), &a.at.container, a.allowed_container, 1);
            }
            WatchEvent::HostAccessAggregate(a) => {
                if a.probes > 0 {
                    let c = &a.at.container;
                    self.count_access("signal_probe", c, a.allowed_container, a.probes);
                }
                let rest = a.count - a.probes.min(a.count);
                self.count_access(a.op, &a.at.container, a.allowed_container, rest);
            }
            WatchEvent::NewPidns(_) | WatchEvent::Stats { .. } => {}
        }
    }

    /// The probes' running totals of kills, by mode (`enforce::ALL` order).
    pub fn set_kernel_enforced(&self, totals: [u64; pidns_ebpf::enforce::SLOTS]) {
        for ((_, mode), total) in pidns_ebpf::enforce::ALL.iter().zip(totals) {
            let c = self.kernel_enforced.get_or_create(&ModeLabels {
                mode: (*mode).into(),
            });
            let seen = c.get();
            if total > seen {
                c.inc_by(total - seen);
            }
        }
    }

    fn count_enforced(&self, mode: &str, c: &Identity) {
        self.enforced
            .get_or_create(&EnforcedLabels {
                mode: mode.into(),
                runtime: c.runtime.to_string(),
            })
            .inc();
    }

    fn count_access(&self, op: &str, c: &Identity, allowed: bool, n: u64) {
        if n == 0 {
            return;
        }
        self.host_access
            .get_or_create(&HostAccessLabels {
                op: op.into(),
                runtime: c.runtime.to_string(),
                allowed: allowed.to_string(),
            })
            .inc_by(n);
    }

    /// The attributor's running count of events it could not place.
    pub fn set_unattributed(&self, total: u64) {
        let seen = self.unattributed.get();
        if total > seen {
            self.unattributed.inc_by(total - seen);
        }
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<ContainerLabels, BTreeSet<String>>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A container shares the host PID namespace: its series, held by its
    /// own cgroup.
    fn share(&self, c: &Identity, allowed: bool) {
        let labels = Self::labels(c, allowed);
        self.sharing.get_or_create(&labels).set(1);
        self.owners()
            .entry(labels)
            .or_default()
            .insert(c.cgroup.clone());
    }

    /// A container's own cgroup was removed: it no longer shares. A series
    /// another cgroup holds too (the same labels) stays.
    pub fn gone(&self, c: &Identity) {
        let mut owners = self.owners();
        for allowed in [false, true] {
            let labels = Self::labels(c, allowed);
            let Some(cgroups) = owners.get_mut(&labels) else {
                continue;
            };
            cgroups.remove(&c.cgroup);
            if cgroups.is_empty() {
                owners.remove(&labels);
                self.sharing.remove(&labels);
            }
        }
    }

    /// Resets the sharing gauge to what a full scan found.
    pub fn scanned(&self, report: &ScanReport) {
        self.sharing.clear();
        self.owners().clear();
        for c in report
            .containers
            .iter()
            .filter(|c| c.shares_host_pidns == Some(true))
        {
            self.share(&c.identity(), c.verdict == Verdict::Allowed);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_scan.set(now);
        self.last_scan_duration.set(report.duration_ms / 1000.0);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Envelope, Finding, Pod, Runtime, Trigger};

    fn container(id: &str, runtime: Runtime, name: Option<&str>, pod: Option<Pod>) -> Identity {
        Identity {
            id: id.into(),
            runtime,
            name: name.map(Into::into),
            pod,
            cgroup: format!("/{runtime}/{id}"),
        }
    }

    fn finding(trigger: Trigger, container: Identity) -> Finding {
        Finding::new(
            trigger,
            Envelope {
                pid: 7,
                comm: "sh".into(),
                container,
                ts: String::new(),
            },
        )
    }

    #[test]
    fn exposition_has_every_metric() {
        let m = Metrics::new();
        m.record(&WatchEvent::Lost {
            stream: "findings",
            count: 3,
            total: 3,
            ts: String::new(),
        });
        // Families without samples are not exposed; give them one.
        m.record(&WatchEvent::HostPidns(finding(
            Trigger::Exec,
            container("abc", Runtime::Docker, Some("web"), None),
        )));
        m.set_unattributed(1);
        m.set_unattributed(2);
        m.set_unattributed(2);
        let text = m.encode();
        for name in [
            "pidns_containers_sharing_host_pidns{runtime=\"docker\",container_id=\"abc\",name=\"web\",pod_namespace=\"\",pod_name=\"\",allowed=\"false\"} 1",
            "pidns_findings_total{event=\"host_pidns\",trigger=\"exec\"} 1",
            "pidns_lost_events_total{stream=\"findings\"} 3",
            "pidns_unattributed_events_total 2",
            "pidns_probes_attached",
            "pidns_last_scan_timestamp_seconds",
            "pidns_last_scan_duration_seconds",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_gauge_follows_the_containers_own_cgroup() {
        let m = Metrics::new();
        let own = container("abc", Runtime::Docker, Some("web"), None);
        m.record(&WatchEvent::HostPidns(finding(Trigger::Exec, own.clone())));
        // A sub-cgroup named after it (a nested container's shape) is gone:
        // same labels, another cgroup.
        let nested = Identity {
            cgroup: format!("{}/docker/abc", own.cgroup),
            ..own.clone()
        };
        m.gone(&nested);
        assert!(
            m.encode().contains("container_id=\"abc\""),
            "taken off by a sub-cgroup"
        );
        m.gone(&own);
        assert!(
            !m.encode().contains("container_id=\"abc\""),
            "its own cgroup went"
        );
    }

    #[test]
    fn pod_labels_for_kubernetes_containers() {
        let m = Metrics::new();
        let pod = Pod {
            uid: Some("u-1".into()),
            name: Some("web-0".into()),
            namespace: Some("shop".into()),
        };
        let mut f = finding(
            Trigger::Fork,
            container("def", Runtime::Containerd, Some("app"), Some(pod)),
        );
        m.record(&WatchEvent::HostPidns(f.clone()));
        // A pod whose name is unknown still gets both labels, empty.
        f.at.container.id = "ghi".into();
        f.at.container.pod = Some(Pod {
            uid: Some("u-2".into()),
            name: None,
            namespace: None,
        });
        m.record(&WatchEvent::HostPidns(f));
        let text = m.encode();
        assert!(
            text.contains("container_id=\"def\",name=\"app\",pod_namespace=\"shop\",pod_name=\"web-0\",allowed=\"false\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("container_id=\"ghi\",name=\"app\",pod_namespace=\"\",pod_name=\"\",allowed=\"false\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn kills_are_counted_by_mode_and_runtime_once_per_process() {
        let m = Metrics::new();
        let docker = container("abc", Runtime::Docker, None, None);
        let mut f = finding(Trigger::Exec, docker.clone());
        m.record(&WatchEvent::HostPidns(f.clone()));
        f.enforced = Some(crate::report::Enforced::Killed);
        m.record(&WatchEvent::HostPidns(f.clone()));
        f.enforced = Some(crate::report::Enforced::KilledByAgent);
        m.record(&WatchEvent::HostPidns(f.clone()));
        // the finding a setns into the host PID namespace makes is the setns's
        f.trigger = Trigger::Setns;
        m.record(&WatchEvent::HostPidns(f.clone()));
        let setns = |nstype: &'static str, pid: u32| {
            WatchEvent::Setns(crate::report::SetnsEvent {
                nstype,
                target: "host",
                ok: true,
                via: crate::report::SetnsVia::Pidfd,
                target_pid: Some(1),
                compat: false,
                allowed_container: false,
                error: None,
                at: crate::report::Envelope {
                    pid,
                    comm: "nsenter".into(),
                    container: docker.clone(),
                    ts: String::new(),
                },
                ns_inode: None,
                latency_us: None,
                enforced: Some(crate::report::Enforced::Killed),
            })
        };
        // one pidfd call, two namespaces: one kill
        m.record(&setns("mnt", 7));
        m.record(&setns("net", 7));
        m.record(&setns("mnt", 8));
        m.set_kernel_enforced([2, 5]);
        m.set_kernel_enforced([2, 4]);
        let text = m.encode();
        assert!(
            text.contains("pidns_enforced_total{mode=\"host-pidns\",runtime=\"docker\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("pidns_enforced_total{mode=\"setns\",runtime=\"docker\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("pidns_enforced_in_kernel_total{mode=\"host-pidns\"} 5"),
            "{text}"
        );
    }

    #[test]
    fn a_stopped_container_leaves_the_sharing_gauge() {
        let m = Metrics::new();
        let docker = |id: &str| container(id, Runtime::Docker, None, None);
        m.record(&WatchEvent::HostPidns(finding(
            Trigger::Exec,
            docker("stays"),
        )));
        m.record(&WatchEvent::HostPidns(finding(
            Trigger::Exec,
            docker("stops"),
        )));
        m.gone(&docker("stops"));
        let text = m.encode();
        assert!(text.contains("container_id=\"stays\""), "{text}");
        assert!(!text.contains("container_id=\"stops\""), "{text}");
    }

    #[test]
    fn host_access_is_counted_by_op_with_probes_apart() {
        use crate::report::{AccessTarget, HostAccessAggregate, HostAccessEvent};
        let m = Metrics::new();
        let c = container("abc", Runtime::Docker, Some("web"), None);
        let at = finding(Trigger::Exec, c.clone()).at;
        let target = AccessTarget {
            pid: 9,
            comm: None,
            target: "host".into(),
            runtime: None,
            name: None,
        };
        let one = HostAccessEvent {
            op: "signal",
            signal: Some(19),
            ptrace_request: None,
            file: None,
            path: false,
            target: target.clone(),
            group: false,
            ok: true,
            error: None,
            allowed_container: true,
            at: at.clone(),
            latency_us: None,
        };
        m.record(&WatchEvent::HostAccess(one.clone()));
        m.record(&WatchEvent::HostAccess(HostAccessEvent {
            signal: Some(0),
            ..one
        }));
        m.record(&WatchEvent::HostAccessAggregate(HostAccessAggregate {
            op: "signal",
            count: 10,
            probes: 4,
            failed: 0,
            targets: vec![target],
            targets_total: 1,
            interval_s: 1,
            allowed_container: false,
            at,
        }));
        let text = m.encode();
        for line in [
            "pidns_host_access_total{op=\"signal\",runtime=\"docker\",allowed=\"true\"} 1",
            "pidns_host_access_total{op=\"signal_probe\",runtime=\"docker\",allowed=\"true\"} 1",
            "pidns_host_access_total{op=\"signal\",runtime=\"docker\",allowed=\"false\"} 6",
            "pidns_host_access_total{op=\"signal_probe\",runtime=\"docker\",allowed=\"false\"} 4",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
