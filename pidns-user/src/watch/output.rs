//! Where watch events go: stdout, one line each, flushed per batch.

use std::io::{BufWriter, Write};

use std::sync::Arc;

use crate::{
    render::events,
    watch::{attribute::monotonic_ns, events::WatchEvent, metrics::Metrics},
};

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
            Format::Human => self.out.write_all(events::human(e).as_bytes()),
        }
        .and_then(|()| self.out.write_all(b"\n"));
        self.written += 1;
    }

    /// Writes a finding from a kernel event that happened at `ktime_ns`
    /// (CLOCK_MONOTONIC), with its `latency_us` stamped now, just before its
    /// line is serialised: event to line, attribution included.
    pub fn emit_kernel_event(&mut self, mut e: WatchEvent, ktime_ns: u64) {
        let us = Some(monotonic_ns().saturating_sub(ktime_ns) / 1000);
        match &mut e {
            WatchEvent::HostPidns(f) => f.latency_us = us,
            WatchEvent::Setns(s) => s.latency_us = us,
            WatchEvent::NewPidns(n) => n.latency_us = us,
            WatchEvent::Ready { .. } | WatchEvent::Lost { .. } | WatchEvent::Stats { .. } => {}
        }
        self.emit(&e);
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
