//! Kernel struct offsets from the running kernel's BTF, so the probes carry
//! no layout hard-coded for one kernel.

use std::path::{Path, PathBuf};

use btfparse::{Offset, TypeInformation};
use pidns_ebpf::{OffsetSource, Offsets};

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
    let btf = Lookup { path, info: &info };
    let mut o = Offsets::ZERO;
    // The fields that are not a plain BTF member or size, first (their
    // errors come first, as they always did); the rest from the table.
    btf.ns_type(&mut o)?;
    btf.registers(&mut o)?;
    for field in Offsets::FIELDS {
        let value = match field.source {
            OffsetSource::Member(ty, member) => btf.off(ty, member)?,
            OffsetSource::Size(ty) => btf.size(ty)?,
            // Set above; `syscall_exit_ret` by the caller, from tracefs.
            OffsetSource::NsType
            | OffsetSource::Registers
            | OffsetSource::Compat
            | OffsetSource::Tracefs
            | OffsetSource::Padding => continue,
        };
        *(field.slot)(&mut o) = value;
    }
    Ok(o)
}

/// Offsets and sizes looked up in one BTF file.
struct Lookup<'a> {
    path: &'a Path,
    info: &'a TypeInformation,
}

impl Lookup<'_> {
    fn missing(&self, ty: &'static str, field: &'static str, reason: String) -> BtfError {
        BtfError::Missing {
            path: self.path.into(),
            ty,
            field,
            reason,
        }
    }

    /// The byte offset of `ty.field` (a dotted path reaches into members).
    fn off(&self, ty: &'static str, field: &'static str) -> Result<u32, BtfError> {
        let id = self
            .info
            .id_of(ty)
            .ok_or_else(|| self.missing(ty, field, "no such type".into()))?;
        match self
            .info
            .offset_of(id, field)
            .map_err(|e| self.missing(ty, field, format!("{e:?}")))?
        {
            (_, Offset::ByteOffset(o)) => Ok(o),
            (_, Offset::BitOffsetAndSize(..)) => Err(self.missing(ty, field, "a bitfield".into())),
        }
    }

    fn size(&self, ty: &'static str) -> Result<u32, BtfError> {
        let id = self
            .info
            .id_of(ty)
            .ok_or_else(|| self.missing(ty, "(size)", "no such type".into()))?;
        let s = self
            .info
            .size_of(id)
            .map_err(|e| self.missing(ty, "(size)", format!("{e:?}")))?;
        u32::try_from(s).map_err(|_| self.missing(ty, "(size)", "too large".into()))
    }

    /// Where a namespace's type sits: in `ns_common` (6.18+), or before
    /// that in its operations.
    fn ns_type(&self, o: &mut Offsets) -> Result<(), BtfError> {
        (
            o.ns_common_type,
            o.proc_ns_operations_type,
            o.ns_type_via_ops,
        ) = match self.off("ns_common", "ns_type") {
            Ok(at) => (at, 0, Offsets::NS_TYPE_IN_NS_COMMON),
            Err(_) => (
                self.off("ns_common", "ops")?,
                self.off("proc_ns_operations", "type")?,
                Offsets::NS_TYPE_VIA_OPS,
            ),
        };
        Ok(())
    }

    /// Where a syscall's arguments sit in the saved user registers, native
    /// and (x86_64 only) 32-bit compat.
    fn registers(&self, o: &mut Offsets) -> Result<(), BtfError> {
        let arch = std::env::consts::ARCH;
        (o.pt_regs_arg0, o.pt_regs_arg1) = match arch {
            "x86_64" => (self.off("pt_regs", "di")?, self.off("pt_regs", "si")?),
            // At syscall exit x0 holds the return value; the first argument is
            // saved in orig_x0. regs[] sits at the start of pt_regs.
            "aarch64" => (
                self.off("pt_regs", "orig_x0")?,
                self.off("user_pt_regs", "regs")? + 8,
            ),
            other => {
                return Err(self.missing(
                    "pt_regs",
                    "(first argument)",
                    format!("no register map for {other}"),
                ));
            }
        };
        // The i386 ABI (IA32 emulation) exists on x86_64 only: 0 elsewhere.
        if arch == "x86_64" {
            o.pt_regs_orig_ax = self.off("pt_regs", "orig_ax")?;
            o.pt_regs_compat_arg0 = self.off("pt_regs", "bx")?;
            o.pt_regs_compat_arg1 = self.off("pt_regs", "cx")?;
            o.task_thread_info_status = self.off("task_struct", "thread_info.status").unwrap_or(0);
        }
        Ok(())
    }
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
