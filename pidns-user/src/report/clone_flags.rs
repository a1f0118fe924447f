//! Clone flags, in hex and by name, as watch events carry them.

use serde::Serialize;

/// Clone flags as the kernel used them (`kernel_clone_args.flags`, without
/// the exit signal), in hex and by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloneFlags {
    #[serde(rename = "clone_flags")]
    pub hex: String,
    #[serde(rename = "clone_flag_names")]
    pub names: Vec<&'static str>,
    #[serde(skip)]
    pub value: u64,
}

/// `include/uapi/linux/sched.h`.
const CLONE_FLAG_NAMES: [(u64, &str); 26] = [
    (0x0000_0080, "CLONE_NEWTIME"),
    (0x0000_0100, "CLONE_VM"),
    (0x0000_0200, "CLONE_FS"),
    (0x0000_0400, "CLONE_FILES"),
    (0x0000_0800, "CLONE_SIGHAND"),
    (0x0000_1000, "CLONE_PIDFD"),
    (0x0000_2000, "CLONE_PTRACE"),
    (0x0000_4000, "CLONE_VFORK"),
    (0x0000_8000, "CLONE_PARENT"),
    (0x0001_0000, "CLONE_THREAD"),
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0004_0000, "CLONE_SYSVSEM"),
    (0x0008_0000, "CLONE_SETTLS"),
    (0x0010_0000, "CLONE_PARENT_SETTID"),
    (0x0020_0000, "CLONE_CHILD_CLEARTID"),
    (0x0040_0000, "CLONE_DETACHED"),
    (0x0080_0000, "CLONE_UNTRACED"),
    (0x0100_0000, "CLONE_CHILD_SETTID"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
    (0x8000_0000, "CLONE_IO"),
    (0x2_0000_0000, "CLONE_INTO_CGROUP"),
];

impl CloneFlags {
    pub fn new(value: u64) -> CloneFlags {
        CloneFlags {
            hex: format!("{value:#x}"),
            names: CLONE_FLAG_NAMES
                .iter()
                .filter(|(bit, _)| value & bit != 0)
                .map(|(_, name)| *name)
                .collect(),
            value,
        }
    }
}
