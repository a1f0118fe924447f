//! pidns: finds containers that share the host's PID namespace, by asking
//! the kernel rather than a container runtime.
//!
//! Layout: [`parse`] holds pure parsers, [`procfs`] the collector that reads a
//! proc root, [`engine`] the logic that scan and watch share, [`report`] the
//! data model, and [`render`] the formatters, which never touch /proc.

pub mod allow;
pub mod cli;
pub mod engine;
pub mod error;
pub mod names;
pub mod parse;
pub mod procfs;
pub mod render;
pub mod report;
pub mod watch;
