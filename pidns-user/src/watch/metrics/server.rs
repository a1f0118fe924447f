//! Serving `/metrics` over HTTP, as `application/openmetrics-text`, which
//! Prometheus asks for first. The server cannot be starved by its clients:
//! request headers must arrive within [`HEADER_READ_TIMEOUT`], at most
//! [`MAX_CONNECTIONS`] are kept (a new one closes the oldest), and a failing
//! `accept` (out of file descriptors) backs off instead of spinning.

use std::{convert::Infallible, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::Metrics;

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
