//! Where watch events go: stdout, one line each, flushed per batch.

use std::{
    io::{BufWriter, Write},
    sync::Arc,
};

use super::{clock::monotonic_ns, metrics::Metrics};
use crate::{render, report::WatchEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per event, for terminals.
    Human,
    /// One JSON object per line.
    Json,
}

pub struct Output {
    format: Format,
    /// JSON goes straight to stdout, serialised in place; human lines go
    /// through anstream, which drops their colour when stdout is no terminal.
    out: BufWriter<Box<dyn Write>>,
    /// Lines written.
    pub written: u64,
    pub metrics: Arc<Metrics>,
    /// Where metrics are served (after binding, so port 0 shows the real port).
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Output {
    pub fn new(
        format: Format,
        metrics: Arc<Metrics>,
        metrics_addr: Option<std::net::SocketAddr>,
    ) -> Output {
        let sink: Box<dyn Write> = match format {
            Format::Json => Box::new(std::io::stdout()),
            Format::Human => Box::new(anstream::stdout()),
        };
        Output::to(sink, format, metrics, metrics_addr)
    }

    /// Lines to `sink` instead of stdout.
    pub fn to(
        sink: Box<dyn Write>,
        format: Format,
        metrics: Arc<Metrics>,
        metrics_addr: Option<std::net::SocketAddr>,
    ) -> Output {
        Output {
            format,
            out: BufWriter::with_capacity(64 * 1024, sink),
            written: 0,
            metrics,
            metrics_addr,
        }
    }

    pub fn emit(&mut self, e: &WatchEvent) {
        self.metrics.record(e);
        // A closed stdout (the reader went away) must not kill the agent
        // mid-batch; the next flush reports it.
        let _ = match self.format {
            Format::Json => serde_json::to_writer(&mut self.out, e).map_err(std::io::Error::from),
            Format::Human => self.out.write_all(render::watch::human(e).as_bytes()),
        }
        .and_then(|()| self.out.write_all(b"\n"));
        self.written += 1;
    }

    /// Writes an event from the kernel that happened at `ktime_ns`
    /// (CLOCK_MONOTONIC), with its `latency_us` stamped now, just before its
    /// line is serialised: event to line, attribution included.
    pub fn emit_kernel_event(&mut self, mut e: WatchEvent, ktime_ns: u64) {
        e.stamp_latency(monotonic_ns().saturating_sub(ktime_ns) / 1000);
        self.emit(&e);
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::report::{Envelope, Finding, Trigger};

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn finding() -> WatchEvent {
        WatchEvent::HostPidns(Finding::new(
            Trigger::Exec,
            Envelope::docker_abc(42, "sleep"),
        ))
    }

    #[test]
    fn latency_is_stamped_as_the_line_is_written() {
        let sink = Shared::default();
        let mut out = Output::to(
            Box::new(sink.clone()),
            Format::Json,
            Arc::new(Metrics::new()),
            None,
        );
        // an event 5 ms old: its line says at least that, once
        out.emit_kernel_event(finding(), monotonic_ns().saturating_sub(5_000_000));
        // not from the kernel: no latency at all
        out.emit(&finding());
        out.flush().expect("flush");
        let text = String::from_utf8(sink.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let us = lines[0]["latency_us"].as_u64().expect("stamped");
        assert!((5000..5_000_000).contains(&us), "{us}");
        assert_eq!(
            text.lines().next().map(|l| l.matches("latency_us").count()),
            Some(1)
        );
        assert!(lines[1].get("latency_us").is_none(), "{}", lines[1]);
        assert_eq!(out.written, 2);
    }
}
