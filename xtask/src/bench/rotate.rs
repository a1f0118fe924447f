//! Runs a workload under several agent set-ups, the order rotated each
//! round, so that a machine that slows down or warms up over the run
//! weighs on every set-up alike.

use std::path::Path;

use anyhow::Result;
use nix::sys::signal::Signal;
use pidns_tests::pidns::Watch;

use super::interrupted;

/// `work` once to warm up, then `rounds` times under each of `setups`
/// (`None`: without the agent; `Some(args)`: with `pidns watch` started
/// with `args`, ready before and stopped after): the samples of each
/// set-up, in the order given.
pub(super) fn rotated(
    pidns: &Path,
    setups: &[Option<&[&str]>],
    rounds: usize,
    mut work: impl FnMut() -> Result<f64>,
) -> Result<Vec<Vec<f64>>> {
    let mut samples = vec![Vec::with_capacity(rounds); setups.len()];
    work()?;
    for r in 0..rounds {
        for k in 0..setups.len() {
            interrupted()?;
            let which = (r + k) % setups.len();
            match setups[which] {
                None => samples[which].push(work()?),
                Some(args) => {
                    let agent = Watch::start_with(pidns, args)?;
                    samples[which].push(work()?);
                    agent.finish(Signal::SIGTERM)?;
                }
            }
        }
    }
    Ok(samples)
}
