//! The loop: wait on the rings, the clocks and the stop signal.

use std::time::Duration;

use anyhow::Context as _;

use super::Loop;
use crate::watch::{Stop, WatchOptions, attribute::Attributor};

impl Loop<'_> {
    /// Until stopped: drain the ring buffer as it fills, report lost
    /// events each second, and rescan if asked to.
    pub(super) async fn watch(
        &mut self,
        opts: &WatchOptions,
        attr: &mut Attributor,
        stop: &mut Stop,
    ) -> anyhow::Result<()> {
        let mut lost_tick = tokio::time::interval(Duration::from_secs(1));
        let mut rescan = opts
            .rescan
            .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        // The kernel wakes us at most once a millisecond per CPU; after a drain
        // that found events, drain again shortly for those that did not wake us.
        let drain_after = Duration::from_nanos(pidns_ebpf::DRAIN_AFTER_NS);
        let mut backstop: Option<tokio::time::Instant> = None;
        loop {
            let backstop_due = async {
                match backstop {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let rescan_due = async {
                match rescan.as_mut() {
                    Some(every) => {
                        every.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            // Biased, the rare and cheap first: a stop, the once-a-second
            // work and a rescan are never starved by a ring that keeps
            // filling; each drain takes a bounded share of a ring.
            tokio::select! {
                biased;
                () = stop.wait() => return Ok(()),
                _ = lost_tick.tick() => self.tick(attr),
                () = rescan_due => self.rescan(opts, attr),
                guard = self.probes.findings.readable_mut() => {
                    // Readiness is cleared before draining: a record that arrives
                    // during the drain wakes us again instead of waiting.
                    guard.context("waiting on the findings ring")?.clear_ready();
                    self.drain(attr)?;
                    backstop = Some(tokio::time::Instant::now() + drain_after);
                }
                guard = self.probes.other.readable_mut() => {
                    guard.context("waiting on the other ring")?.clear_ready();
                    self.drain(attr)?;
                    backstop = Some(tokio::time::Instant::now() + drain_after);
                }
                () = backstop_due => {
                    let n = self.drain(attr)?;
                    backstop = (n > 0).then(|| tokio::time::Instant::now() + drain_after);
                }
            }
            self.out.flush().context("writing to stdout")?;
        }
    }
}
