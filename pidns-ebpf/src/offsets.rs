//! The kernel structure offsets the probes walk at, found in the running
//! kernel's BTF by user space: the field list written once (the struct, its
//! zero value and the table user space fills it from).

/// Where user space finds the value of an [`Offsets`] field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSource {
    /// The byte offset of a member in a BTF struct: (struct, member), the
    /// member possibly a path through nested structs (`f_path.dentry`).
    Member(&'static str, &'static str),
    /// The size of a BTF type (an array's stride).
    Size(&'static str),
    /// Where the namespace type sits, which moved in 6.18: BTF, with a
    /// fallback; see [`Offsets::ns_type_via_ops`].
    NsType,
    /// Not BTF: the syscall exit tracepoint's record format, from tracefs.
    Tracefs,
    /// BTF members of the saved user registers that differ by architecture
    /// (`pt_regs.di` on x86_64, `orig_x0` on arm64).
    Registers,
    /// The 32-bit compat entry: x86_64 only, 0 elsewhere.
    /// `task_thread_info_status` may be missing even there (0 then: no
    /// compat probe).
    Compat,
    /// Padding: always 0.
    Padding,
}

/// One [`Offsets`] field: its name, where its value comes from, and a way
/// to set it.
#[derive(Clone, Copy)]
pub struct OffsetField {
    pub name: &'static str,
    pub source: OffsetSource,
    pub slot: fn(&mut Offsets) -> &mut u32,
}

/// Writes the [`Offsets`] field list once: the struct (every field a
/// `u32`, in the order given), its all-zero [`Offsets::ZERO`], and the
/// table [`Offsets::FIELDS`] that user space fills it from.
macro_rules! offsets {
    (
        $(#[$struct_attr:meta])*
        pub struct Offsets {
            $(
                $(#[$attr:meta])*
                $field:ident: $source:ident $(($($arg:literal),*))?,
            )*
        }
    ) => {
        $(#[$struct_attr])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Offsets {
            $(
                $(#[$attr])*
                pub $field: u32,
            )*
        }

        impl Offsets {
            pub const ZERO: Offsets = Offsets {
                $($field: 0,)*
            };

            /// Every field, in declaration (and memory) order.
            pub const FIELDS: &'static [OffsetField] = &[
                $(
                    OffsetField {
                        name: stringify!($field),
                        source: OffsetSource::$source $(($($arg),*))?,
                        slot: |o| &mut o.$field,
                    },
                )*
            ];
        }
    };
}

offsets! {
    /// Kernel struct offsets, read from the running kernel's BTF at load time so
    /// that no layout is hard-coded for one kernel. In bytes.
    pub struct Offsets {
        task_pid: Member("task_struct", "pid"),
        task_tgid: Member("task_struct", "tgid"),
        task_comm: Member("task_struct", "comm"),
        task_thread_pid: Member("task_struct", "thread_pid"),
        task_real_parent: Member("task_struct", "real_parent"),
        task_mm: Member("task_struct", "mm"),
        task_cgroups: Member("task_struct", "cgroups"),
        task_pid_links: Member("task_struct", "pid_links"),
        task_files: Member("task_struct", "files"),
        task_nsproxy: Member("task_struct", "nsproxy"),
        task_real_cred: Member("task_struct", "real_cred"),
        task_signal: Member("task_struct", "signal"),
        task_fs: Member("task_struct", "fs"),
        /// `fs_struct.root.dentry`: the directory a task sees as `/`.
        fs_struct_root_dentry: Member("fs_struct", "root.dentry"),
        signal_live: Member("signal_struct", "live"),
        cred_user_ns: Member("cred", "user_ns"),
        nsproxy_uts: Member("nsproxy", "uts_ns"),
        nsproxy_ipc: Member("nsproxy", "ipc_ns"),
        nsproxy_mnt: Member("nsproxy", "mnt_ns"),
        nsproxy_pid_for_children: Member("nsproxy", "pid_ns_for_children"),
        nsproxy_net: Member("nsproxy", "net_ns"),
        nsproxy_time: Member("nsproxy", "time_ns"),
        nsproxy_time_for_children: Member("nsproxy", "time_ns_for_children"),
        nsproxy_cgroup: Member("nsproxy", "cgroup_ns"),
        uts_namespace_ns: Member("uts_namespace", "ns"),
        ipc_namespace_ns: Member("ipc_namespace", "ns"),
        mnt_namespace_ns: Member("mnt_namespace", "ns"),
        net_ns: Member("net", "ns"),
        time_namespace_ns: Member("time_namespace", "ns"),
        cgroup_namespace_ns: Member("cgroup_namespace", "ns"),
        user_namespace_ns: Member("user_namespace", "ns"),
        pid_level: Member("pid", "level"),
        pid_numbers: Member("pid", "numbers"),
        pid_tasks: Member("pid", "tasks"),
        upid_size: Size("upid"),
        upid_nr: Member("upid", "nr"),
        upid_ns: Member("upid", "ns"),
        pid_namespace_ns: Member("pid_namespace", "ns"),
        ns_common_inum: Member("ns_common", "inum"),
        /// `ns_common.ns_type` (6.18+), or `ns_common.ops` when
        /// [`ns_type_via_ops`](Self::ns_type_via_ops) is set ...
        ns_common_type: NsType,
        /// ... in which case the type is `proc_ns_operations.type` (before 6.18).
        proc_ns_operations_type: NsType,
        /// A flag, kept a `u32` for the C layout: [`Offsets::NS_TYPE_IN_NS_COMMON`]
        /// (0) or [`Offsets::NS_TYPE_VIA_OPS`]. Not an offset.
        ns_type_via_ops: NsType,
        linux_binprm_file: Member("linux_binprm", "file"),
        linux_binprm_filename: Member("linux_binprm", "filename"),
        mm_exe_file: Member("mm_struct", "exe_file"),
        css_set_dfl_cgrp: Member("css_set", "dfl_cgrp"),
        cgroup_kn: Member("cgroup", "kn"),
        cgroup_root: Member("cgroup", "root"),
        kernfs_node_id: Member("kernfs_node", "id"),
        cgroup_root_hierarchy_id: Member("cgroup_root", "hierarchy_id"),
        files_struct_fdt: Member("files_struct", "fdt"),
        fdtable_max_fds: Member("fdtable", "max_fds"),
        fdtable_fd: Member("fdtable", "fd"),
        file_f_inode: Member("file", "f_inode"),
        file_private_data: Member("file", "private_data"),
        /// `file.f_path.dentry`.
        file_dentry: Member("file", "f_path.dentry"),
        /// `dentry.d_name.name`.
        dentry_name: Member("dentry", "d_name.name"),
        inode_i_ino: Member("inode", "i_ino"),
        inode_i_sb: Member("inode", "i_sb"),
        inode_i_private: Member("inode", "i_private"),
        super_block_s_magic: Member("super_block", "s_magic"),
        super_block_s_dev: Member("super_block", "s_dev"),
        /// Syscall exit tracepoints: offset of `ret` in the record.
        syscall_exit_ret: Tracefs,
        /// Where a syscall's first two arguments sit in the saved user registers
        /// at syscall exit: `pt_regs.di` and `.si` on x86_64; `orig_x0` (x0 then
        /// holds the return value) and `regs[1]` on arm64.
        pt_regs_arg0: Registers,
        pt_regs_arg1: Registers,
        /// 32-bit compat syscalls (x86_64 only; 0 elsewhere): `pt_regs.orig_ax`,
        /// `.bx` and `.cx` (the i386 ABI's syscall number, first and second
        /// argument) ...
        pt_regs_orig_ax: Compat,
        pt_regs_compat_arg0: Compat,
        pt_regs_compat_arg1: Compat,
        /// ... and `task_struct.thread_info.status`, whose `TS_COMPAT` bit says
        /// the current syscall came through the compat entry.
        task_thread_info_status: Compat,
        /// `proc_inode.pid` and `.vfs_inode`: the process a `/proc/<pid>/...`
        /// inode belongs to (`--proc-access`).
        proc_inode_pid: Member("proc_inode", "pid"),
        proc_inode_vfs_inode: Member("proc_inode", "vfs_inode"),
        /// Finding a `struct pid` by number, as `find_pid_ns` does:
        /// `pid_namespace.idr`, its radix tree (`idr.idr_rt`, an xarray)
        /// and base, the tree's head and nodes.
        pid_namespace_idr: Member("pid_namespace", "idr"),
        idr_idr_rt: Member("idr", "idr_rt"),
        idr_idr_base: Member("idr", "idr_base"),
        xarray_xa_head: Member("xarray", "xa_head"),
        xa_node_shift: Member("xa_node", "shift"),
        xa_node_slots: Member("xa_node", "slots"),
        _pad: Padding,
    }
}

impl Offsets {
    /// [`ns_type_via_ops`](Self::ns_type_via_ops): the namespace's type is
    /// `ns_common.ns_type` itself (6.18+).
    pub const NS_TYPE_IN_NS_COMMON: u32 = 0;
    /// [`ns_type_via_ops`](Self::ns_type_via_ops): `ns_common.ops` points at
    /// the `proc_ns_operations` whose `type` it is (before 6.18).
    pub const NS_TYPE_VIA_OPS: u32 = 1;
}
