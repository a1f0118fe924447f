//! When watch stops: SIGINT, SIGTERM or the end of `--duration`.

use std::time::Duration;

use anyhow::Context as _;

/// SIGINT, SIGTERM or the end of `--duration`. The handlers are installed
/// when this is created, so a signal during start-up is not lost.
pub(crate) struct Stop {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    deadline: Option<tokio::time::Instant>,
}

impl Stop {
    pub(crate) fn new(duration: Option<Duration>) -> anyhow::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            deadline: duration.map(|d| tokio::time::Instant::now() + d),
        })
    }

    pub(crate) async fn wait(&mut self) {
        let deadline = self.deadline;
        let timer = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            () = timer => {}
        }
    }
}
