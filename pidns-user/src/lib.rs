//! pidns: finds containers that share the host's PID namespace, by asking
//! the kernel rather than a container runtime.
//!
//! Layout, from the bottom up: [`parse`] holds pure parsers, [`procfs`] the
//! collector that reads a proc root, [`report`] the data model of scan and
//! watch, [`names`] and [`allow`] what names a container and which may share,
//! [`state`] runtimes' on-disk records of containers and their roots,
//! [`engine`] the logic that scan and watch share, [`render`] the formatters
//! (which never touch /proc), and [`watch`] the agent.

pub mod allow;
pub mod cli;
pub mod engine;
pub mod error;
pub mod names;
pub mod parse;
pub mod procfs;
pub mod render;
pub mod report;
pub mod state;
#[cfg(test)]
mod testutil;
pub mod watch;
