//! Pure parsers for what procfs and the kernel hand us. They take bytes or
//! `&str` and never touch the filesystem, so each is unit-tested on strings.

pub mod cgroup;
pub mod layout;
pub mod mountinfo;
pub mod nslink;
pub mod stat;
pub mod status;
