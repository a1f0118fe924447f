//! `--metrics-addr`: Prometheus metrics for the agent, served over HTTP.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `pidns_containers_sharing_host_pidns` | gauge (1 per container) | `runtime`, `container_id`, `name`, `allowed` |
//! | `pidns_findings_total` | counter | `event` (`host_pidns`, `setns`), `trigger` |
//! | `pidns_lost_events_total` | counter | |
//! | `pidns_probes_attached` | gauge | |
//! | `pidns_last_scan_timestamp_seconds` | gauge | |
//! | `pidns_last_scan_duration_seconds` | gauge | |
//!
//! The sharing gauge is set by every full scan (start-up, `--rescan`, each
//! poll) and by live findings; a scan drops containers that stopped.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{
    report::{ScanReport, Verdict},
    watch::events::{ContainerRef, WatchEvent},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerLabels {
    runtime: String,
    container_id: String,
    name: String,
    allowed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    event: String,
    trigger: String,
}

pub struct Metrics {
    registry: Registry,
    sharing: Family<ContainerLabels, Gauge>,
    findings: Family<FindingLabels, Counter>,
    lost: Counter,
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
            lost: Counter::default(),
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
            "lost_events",
            "Kernel events dropped because the ring buffer was full",
            m.lost.clone(),
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
        Metrics { registry, ..m }
    }

    fn labels(c: &ContainerRef, allowed: bool) -> ContainerLabels {
        ContainerLabels {
            runtime: c.runtime.to_string(),
            container_id: c.container_id.clone(),
            name: c.name.clone().unwrap_or_default(),
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
                self.sharing
                    .get_or_create(&Self::labels(&f.container, false))
                    .set(1);
            }
            WatchEvent::Setns(_) => {
                self.findings
                    .get_or_create(&FindingLabels {
                        event: "setns".into(),
                        trigger: "setns".into(),
                    })
                    .inc();
            }
            WatchEvent::Lost { count, .. } => {
                self.lost.inc_by(*count);
            }
            WatchEvent::NewPidns(_) | WatchEvent::Stats { .. } => {}
        }
    }

    /// Resets the sharing gauge to what a full scan found.
    pub fn scanned(&self, report: &ScanReport) {
        self.sharing.clear();
        for c in report
            .containers
            .iter()
            .filter(|c| c.shares_host_pidns == Some(true))
        {
            let r = ContainerRef {
                container_id: c.id.clone(),
                runtime: c.runtime,
                name: c.name.clone(),
                pod: c.pod.clone(),
                cgroup: c.cgroup.clone(),
            };
            self.sharing
                .get_or_create(&Self::labels(&r, c.verdict == Verdict::Allowed))
                .set(1);
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

/// `--metrics-addr`: a port alone, or `:PORT`, binds 127.0.0.1; give an
/// address (`0.0.0.0:9090`, `[::]:9090`) to listen elsewhere.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let with_host = match s.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None if s.parse::<u16>().is_ok() => format!("127.0.0.1:{s}"),
        None => s.to_owned(),
    };
    with_host
        .parse()
        .map_err(|_| format!("`{s}` is not PORT, :PORT or ADDRESS:PORT"))
}

/// Serves `GET /metrics` until the runtime stops.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "only GET /metrics is served\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("9090").unwrap().to_string(), "127.0.0.1:9090");
        assert_eq!(parse_addr(":9090").unwrap().to_string(), "127.0.0.1:9090");
        assert_eq!(
            parse_addr("0.0.0.0:9090").unwrap().to_string(),
            "0.0.0.0:9090"
        );
        assert_eq!(parse_addr("[::1]:0").unwrap().to_string(), "[::1]:0");
        assert!(parse_addr("nonsense").is_err());
        assert!(parse_addr("70000").is_err());
    }

    #[test]
    fn exposition_has_every_metric() {
        use crate::watch::events::{Finding, Trigger};
        let m = Metrics::new();
        m.record(&WatchEvent::Lost {
            count: 3,
            total: 3,
            ts: String::new(),
        });
        // Families without samples are not exposed; give them one.
        m.record(&WatchEvent::HostPidns(Finding {
            trigger: Trigger::Exec,
            pid: 42,
            comm: "sleep".into(),
            container: ContainerRef {
                container_id: "abc".into(),
                runtime: crate::parse::layout::Runtime::Docker,
                name: Some("web".into()),
                pod: None,
                cgroup: "/docker/abc".into(),
            },
            ts: String::new(),
            ppid: None,
            filename: None,
            clone_flags: None,
            latency_us: None,
        }));
        let text = m.encode();
        for name in [
            "pidns_containers_sharing_host_pidns{runtime=\"docker\",container_id=\"abc\",name=\"web\",allowed=\"false\"} 1",
            "pidns_findings_total{event=\"host_pidns\",trigger=\"exec\"} 1",
            "pidns_lost_events_total 3",
            "pidns_probes_attached",
            "pidns_last_scan_timestamp_seconds",
            "pidns_last_scan_duration_seconds",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
