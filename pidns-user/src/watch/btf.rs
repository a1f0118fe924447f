//! Kernel struct offsets from the running kernel's BTF, so the probes carry
//! no layout hard-coded for one kernel.

use std::path::{Path, PathBuf};

use btfparse::{Offset, TypeInformation};
use pidns_ebpf::Offsets;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse the BTF in {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path} has no `{ty}.{field}`: {reason}")]
    Missing {
        path: PathBuf,
        ty: &'static str,
        field: &'static str,
        reason: String,
    },
}

/// The BTF blob, as btfparse reads it.
struct Bytes<'a>(&'a [u8]);

impl btfparse::Readable for Bytes<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buffer.len())?));
        match range.and_then(|r| self.0.get(r)) {
            Some(src) => {
                buffer.copy_from_slice(src);
                Ok(())
            }
            None => Err(btfparse::Error::new(
                btfparse::ErrorKind::InvalidOffset,
                "read past the end of the BTF data",
            )),
        }
    }
}

/// Resolves every offset the probes use.
pub fn offsets(path: &Path) -> Result<Offsets, BtfError> {
    let bytes = std::fs::read(path).map_err(|source| BtfError::Read {
        path: path.into(),
        source,
    })?;
    let info = TypeInformation::new(&Bytes(&bytes)).map_err(|e| BtfError::Parse {
        path: path.into(),
        reason: format!("{e:?}"),
    })?;
    let off = |ty: &'static str, field: &'static str| -> Result<u32, BtfError> {
        let missing = |reason: String| BtfError::Missing {
            path: path.into(),
            ty,
            field,
            reason,
        };
        let id = info
            .id_of(ty)
            .ok_or_else(|| missing("no such type".into()))?;
        match info
            .offset_of(id, field)
            .map_err(|e| missing(format!("{e:?}")))?
        {
            (_, Offset::ByteOffset(o)) => Ok(o),
            (_, Offset::BitOffsetAndSize(..)) => Err(missing("a bitfield".into())),
        }
    };
    let size = |ty: &'static str| -> Result<u32, BtfError> {
        let missing = |reason: String| BtfError::Missing {
            path: path.into(),
            ty,
            field: "(size)",
            reason,
        };
        let id = info
            .id_of(ty)
            .ok_or_else(|| missing("no such type".into()))?;
        let s = info.size_of(id).map_err(|e| missing(format!("{e:?}")))?;
        u32::try_from(s).map_err(|_| missing("too large".into()))
    };
    // Before 6.18 a namespace's type sat in its operations, not in ns_common.
    let (ns_common_type, proc_ns_operations_type, ns_type_via_ops) =
        match off("ns_common", "ns_type") {
            Ok(o) => (o, 0, 0),
            Err(_) => (
                off("ns_common", "ops")?,
                off("proc_ns_operations", "type")?,
                1,
            ),
        };
    let arch = std::env::consts::ARCH;
    let (pt_regs_arg0, pt_regs_arg1) = match arch {
        "x86_64" => (off("pt_regs", "di")?, off("pt_regs", "si")?),
        // At syscall exit x0 holds the return value; the first argument is
        // saved in orig_x0. regs[] sits at the start of pt_regs.
        "aarch64" => (off("pt_regs", "orig_x0")?, off("user_pt_regs", "regs")? + 8),
        other => {
            return Err(BtfError::Missing {
                path: path.into(),
                ty: "pt_regs",
                field: "(first argument)",
                reason: format!("no register map for {other}"),
            });
        }
    };
    // The i386 ABI (IA32 emulation) exists on x86_64 only.
    let compat = if arch == "x86_64" {
        (
            off("pt_regs", "orig_ax")?,
            off("pt_regs", "bx")?,
            off("pt_regs", "cx")?,
            off("task_struct", "thread_info.status").unwrap_or(0),
        )
    } else {
        (0, 0, 0, 0)
    };
    Ok(Offsets {
        task_pid: off("task_struct", "pid")?,
        task_tgid: off("task_struct", "tgid")?,
        task_comm: off("task_struct", "comm")?,
        task_thread_pid: off("task_struct", "thread_pid")?,
        task_real_parent: off("task_struct", "real_parent")?,
        task_mm: off("task_struct", "mm")?,
        task_cgroups: off("task_struct", "cgroups")?,
        task_pid_links: off("task_struct", "pid_links")?,
        task_files: off("task_struct", "files")?,
        pid_level: off("pid", "level")?,
        pid_numbers: off("pid", "numbers")?,
        pid_tasks: off("pid", "tasks")?,
        upid_size: size("upid")?,
        upid_nr: off("upid", "nr")?,
        upid_ns: off("upid", "ns")?,
        pid_namespace_ns: off("pid_namespace", "ns")?,
        ns_common_inum: off("ns_common", "inum")?,
        ns_common_type,
        proc_ns_operations_type,
        ns_type_via_ops,
        linux_binprm_file: off("linux_binprm", "file")?,
        linux_binprm_filename: off("linux_binprm", "filename")?,
        mm_exe_file: off("mm_struct", "exe_file")?,
        css_set_dfl_cgrp: off("css_set", "dfl_cgrp")?,
        cgroup_kn: off("cgroup", "kn")?,
        cgroup_root: off("cgroup", "root")?,
        kernfs_node_id: off("kernfs_node", "id")?,
        cgroup_root_hierarchy_id: off("cgroup_root", "hierarchy_id")?,
        files_struct_fdt: off("files_struct", "fdt")?,
        fdtable_max_fds: off("fdtable", "max_fds")?,
        fdtable_fd: off("fdtable", "fd")?,
        file_f_inode: off("file", "f_inode")?,
        file_private_data: off("file", "private_data")?,
        file_dentry: off("file", "f_path.dentry")?,
        dentry_name: off("dentry", "d_name.name")?,
        inode_i_ino: off("inode", "i_ino")?,
        inode_i_sb: off("inode", "i_sb")?,
        inode_i_private: off("inode", "i_private")?,
        super_block_s_magic: off("super_block", "s_magic")?,
        super_block_s_dev: off("super_block", "s_dev")?,
        // Filled from tracefs, not BTF.
        syscall_exit_ret: 0,
        pt_regs_arg0,
        pt_regs_arg1,
        pt_regs_orig_ax: compat.0,
        pt_regs_compat_arg0: compat.1,
        pt_regs_compat_arg1: compat.2,
        task_thread_info_status: compat.3,
        _pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the running kernel, where it has BTF: offsets must be sane.
    #[test]
    fn running_kernel() {
        let path = Path::new(VMLINUX);
        if !path.exists() {
            return;
        }
        let o = offsets(path).expect("offsets");
        assert_eq!(
            o.upid_size, 16,
            "struct upid is {{int nr; struct pid_namespace *ns;}}"
        );
        assert_eq!((o.upid_nr, o.upid_ns), (0, 8));
        assert!(o.task_tgid == o.task_pid + 4, "{o:?}");
        assert!(o.task_comm > o.task_pid);
        // struct path is {vfsmount *mnt; dentry *dentry;}; qstr ends with its name
        assert!(o.file_dentry > 0 && o.dentry_name > 0, "{o:?}");
        if std::env::consts::ARCH == "x86_64" {
            // pt_regs: ... bx at 40, ... cx 88, ... si 104, di 112, orig_ax 120
            assert_eq!(
                (
                    o.pt_regs_compat_arg0,
                    o.pt_regs_compat_arg1,
                    o.pt_regs_arg1,
                    o.pt_regs_arg0,
                    o.pt_regs_orig_ax
                ),
                (40, 88, 104, 112, 120)
            );
        }
    }

    #[test]
    fn errors_name_the_path() {
        let e = offsets(Path::new("/nonexistent/vmlinux")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/vmlinux"));
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("junk");
        std::fs::write(&f, b"not btf").expect("write");
        assert!(matches!(offsets(&f), Err(BtfError::Parse { .. })));
    }
}
