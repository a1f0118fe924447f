//! Where watch events go: stdout, one line each, flushed per batch.

use std::io::{BufWriter, Write};

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
    /// JSON goes straight to stdout, serialised in place; human lines go
    /// through anstream, which drops their colour when stdout is no terminal.
    out: BufWriter<Box<dyn Write>>,
    /// Lines written.
    pub written: u64,
}

impl Output {
    pub fn new(format: Format) -> Output {
        let sink: Box<dyn Write> = match format {
            Format::Json => Box::new(std::io::stdout()),
            Format::Human => Box::new(anstream::stdout()),
        };
        Output {
            format,
            out: BufWriter::with_capacity(64 * 1024, sink),
            written: 0,
        }
    }

    pub fn emit(&mut self, e: &WatchEvent) {
        // A closed stdout (the reader went away) must not kill the agent
        // mid-batch; the next flush reports it.
        let _ = match self.format {
            Format::Json => serde_json::to_writer(&mut self.out, e).map_err(std::io::Error::from),
            Format::Human => self.out.write_all(events::human(e).as_bytes()),
        }
        .and_then(|()| self.out.write_all(b"\n"));
        self.written += 1;
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
