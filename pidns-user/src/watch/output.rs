//! Where watch events go: stdout, one line each, flushed per batch.

use std::io::{BufWriter, Write as _};

use crate::{render::events, watch::events::WatchEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per event, for terminals.
    Human,
    /// One JSON object per line.
    Json,
}

pub struct Output {
    format: Format,
    out: BufWriter<anstream::AutoStream<std::io::Stdout>>,
    /// Lines written, by event type (for metrics and the final flush).
    pub written: u64,
}

impl Output {
    pub fn new(format: Format) -> Output {
        Output {
            format,
            out: BufWriter::new(anstream::stdout()),
            written: 0,
        }
    }

    pub fn emit(&mut self, e: &WatchEvent) {
        let line = match self.format {
            Format::Json => events::json(e),
            Format::Human => events::human(e),
        };
        // A closed stdout (the reader went away) must not kill the agent mid-batch;
        // the next flush reports it.
        let _ = writeln!(self.out, "{line}");
        self.written += 1;
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
