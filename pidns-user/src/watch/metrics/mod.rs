//! `--metrics-addr`: Prometheus metrics for the agent, served over HTTP.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `pidns_containers_sharing_host_pidns` | gauge (1 per container) | `runtime`, `container_id`, `name`, `pod_namespace`, `pod_name`, `allowed` |
//! | `pidns_findings_total` | counter | `event` (`host_pidns`, `setns`), `trigger` |
//! | `pidns_lost_events_total` | counter | |
//! | `pidns_unattributed_events_total` | counter | |
//! | `pidns_probes_attached` | gauge | |
//! | `pidns_last_scan_timestamp_seconds` | gauge | |
//! | `pidns_last_scan_duration_seconds` | gauge | |
//!
//! The sharing gauge is set by every full scan (start-up, `--rescan`, each
//! poll) and by live findings; a scan drops containers that stopped. Alert on
//! `pidns_containers_sharing_host_pidns{allowed="false"}`.
//!
//! The exposition is OpenMetrics text (prometheus-client has no other text
//! encoder), served as `application/openmetrics-text`, which Prometheus asks
//! for first. The server cannot be starved by its clients: request headers
//! must arrive within [`HEADER_READ_TIMEOUT`], at most [`MAX_CONNECTIONS`]
//! are kept (a new one closes the oldest), and a failing `accept` (out of
//! file descriptors) backs off instead of spinning.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
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

pub struct Metrics {
    registry: Registry,
    sharing: Family<ContainerLabels, Gauge>,
    findings: Family<FindingLabels, Counter>,
    lost: Counter,
    unattributed: Counter,
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
            unattributed: Counter::default(),
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
            "unattributed_events",
            "Kernel events whose process had exited and whose cgroup was never seen, so no container could be named",
            m.unattributed.clone(),
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

    /// The attributor's running count of events it could not place.
    pub fn set_unattributed(&self, total: u64) {
        let seen = self.unattributed.get();
        if total > seen {
            self.unattributed.inc_by(total - seen);
        }
    }

    /// A container stopped (its cgroup was removed): it no longer shares.
    pub fn gone(&self, c: &ContainerRef) {
        for allowed in [false, true] {
            self.sharing.remove(&Self::labels(c, allowed));
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

/// Connections kept at once; a new one beyond this closes the oldest.
pub const MAX_CONNECTIONS: usize = 32;
/// A client must send its request headers within this, also on an idle
/// keep-alive connection (Prometheus then reconnects for its next scrape).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection is kept, whatever it does.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// Pauses after a failed accept (EMFILE, ENFILE, ENOBUFS ...): the first, doubling up to the last.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// Where connections come from: a TCP listener, or a stand-in in tests.
pub trait Accept {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn accept_one(&mut self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept_one(&mut self) -> std::io::Result<Self::Io> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

/// Serves `GET /metrics` until the runtime stops.
///
/// Connections are accepted as they come, so the listen backlog never fills
/// and a scrape is read at once; at [`MAX_CONNECTIONS`] the oldest is closed
/// to make room. Idle connections (which a client can open faster than
/// [`HEADER_READ_TIMEOUT`] closes them) thus cannot keep a scrape waiting,
/// nor use up the agent's file descriptors.
pub async fn serve<A: Accept>(mut listener: A, metrics: Arc<Metrics>) {
    let mut live: std::collections::VecDeque<tokio::task::JoinHandle<()>> =
        std::collections::VecDeque::new();
    let mut backoff = ACCEPT_BACKOFF.0;
    loop {
        let stream = match listener.accept_one().await {
            Ok(s) => {
                backoff = ACCEPT_BACKOFF.0;
                s
            }
            Err(e) => {
                if backoff == ACCEPT_BACKOFF.0 {
                    eprintln!("pidns watch: metrics: accept failed: {e}; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        live.retain(|c| !c.is_finished());
        while live.len() >= MAX_CONNECTIONS {
            if let Some(oldest) = live.pop_front() {
                oldest.abort();
                // Until it is dropped, its socket stays open: wait for that,
                // or a burst of accepts would run out of descriptors first.
                let _ = oldest.await;
            }
        }
        let metrics = metrics.clone();
        let conn = tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
        live.push_back(conn);
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
        m.set_unattributed(1);
        m.set_unattributed(2);
        m.set_unattributed(2);
        let text = m.encode();
        for name in [
            "pidns_containers_sharing_host_pidns{runtime=\"docker\",container_id=\"abc\",name=\"web\",pod_namespace=\"\",pod_name=\"\",allowed=\"false\"} 1",
            "pidns_findings_total{event=\"host_pidns\",trigger=\"exec\"} 1",
            "pidns_lost_events_total 3",
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
    fn pod_labels_for_kubernetes_containers() {
        let m = Metrics::new();
        let mut f = crate::watch::events::Finding {
            trigger: crate::watch::events::Trigger::Fork,
            pid: 7,
            comm: "sh".into(),
            container: ContainerRef {
                container_id: "def".into(),
                runtime: crate::parse::layout::Runtime::Containerd,
                name: Some("app".into()),
                pod: Some(crate::report::Pod {
                    uid: Some("u-1".into()),
                    name: Some("web-0".into()),
                    namespace: Some("shop".into()),
                }),
                cgroup: "/kubepods/podu-1/def".into(),
            },
            ts: String::new(),
            ppid: None,
            filename: None,
            clone_flags: None,
            latency_us: None,
        };
        m.record(&WatchEvent::HostPidns(f.clone()));
        // A pod whose name is unknown still gets both labels, empty.
        f.container.container_id = "ghi".into();
        f.container.pod = Some(crate::report::Pod {
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
    fn a_stopped_container_leaves_the_sharing_gauge() {
        let m = Metrics::new();
        let container = |id: &str| ContainerRef {
            container_id: id.into(),
            runtime: crate::parse::layout::Runtime::Docker,
            name: None,
            pod: None,
            cgroup: format!("/docker/{id}"),
        };
        let finding = |id: &str| {
            WatchEvent::HostPidns(crate::watch::events::Finding {
                trigger: crate::watch::events::Trigger::Exec,
                pid: 7,
                comm: "sleep".into(),
                container: container(id),
                ts: String::new(),
                ppid: None,
                filename: None,
                clone_flags: None,
                latency_us: None,
            })
        };
        m.record(&finding("stays"));
        m.record(&finding("stops"));
        m.gone(&container("stops"));
        let text = m.encode();
        assert!(text.contains("container_id=\"stays\""), "{text}");
        assert!(!text.contains("container_id=\"stops\""), "{text}");
    }

    /// An acceptor that always fails, as `accept` does out of file descriptors.
    struct Failing(Arc<std::sync::atomic::AtomicUsize>);

    impl Accept for Failing {
        type Io = tokio::io::DuplexStream;
        async fn accept_one(&mut self) -> std::io::Result<Self::Io> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(std::io::Error::from_raw_os_error(libc::EMFILE))
        }
    }

    #[test]
    fn failing_accepts_back_off_instead_of_spinning() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let served = serve(Failing(calls.clone()), Arc::new(Metrics::new()));
            let _ = tokio::time::timeout(Duration::from_millis(600), served).await;
        });
        // 50 + 100 + 200 ms of pauses fit in 600 ms, then one of 400: 4 or 5
        // attempts. Without the backoff it would be millions.
        let n = calls.load(std::sync::atomic::Ordering::Relaxed);
        assert!((2..=6).contains(&n), "{n} accept attempts in 600 ms");
    }

    /// An acceptor handing out `n` in-memory connections whose client ends
    /// stay open and silent, then nothing.
    struct Idle {
        n: usize,
        clients: Arc<std::sync::Mutex<Vec<tokio::io::DuplexStream>>>,
    }

    impl Accept for Idle {
        type Io = tokio::io::DuplexStream;
        async fn accept_one(&mut self) -> std::io::Result<Self::Io> {
            if self.n == 0 {
                return std::future::pending().await;
            }
            self.n -= 1;
            let (client, server) = tokio::io::duplex(1024);
            self.clients.lock().expect("lock").push(client);
            Ok(server)
        }
    }

    /// How many clients the server has closed (their read sees EOF).
    async fn closed(clients: &std::sync::Mutex<Vec<tokio::io::DuplexStream>>) -> usize {
        use tokio::io::AsyncReadExt as _;
        // Taken out for the awaits, and put back.
        let mut taken = std::mem::take(&mut *clients.lock().expect("lock"));
        let mut n = 0;
        for c in &mut taken {
            let mut buf = [0u8; 16];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), c.read(&mut buf)).await
            {
                n += 1;
            }
        }
        *clients.lock().expect("lock") = taken;
        n
    }

    #[test]
    fn connections_are_capped_and_silent_ones_time_out() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        rt.block_on(async {
            let clients = Arc::default();
            let idle = Idle {
                n: 100,
                clients: Arc::clone(&clients),
            };
            tokio::spawn(serve(idle, Arc::new(Metrics::new())));
            // Every connection is accepted; only the newest are kept ...
            tokio::time::sleep(HEADER_READ_TIMEOUT / 2).await;
            assert_eq!(clients.lock().expect("lock").len(), 100);
            assert_eq!(closed(&clients).await, 100 - MAX_CONNECTIONS);
            // ... and those the header timeout closes.
            tokio::time::sleep(HEADER_READ_TIMEOUT).await;
            assert_eq!(closed(&clients).await, 100);
        });
    }
}
