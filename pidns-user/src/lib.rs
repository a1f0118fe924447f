//! pidns: finds containers that share the host's PID namespace, by asking
//! the kernel rather than a container runtime.
pub mod parse;
