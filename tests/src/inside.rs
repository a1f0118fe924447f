//! Running one of the host's own programs (`pidns-synth`) inside a busybox
//! container, as an attacker brings a tool along: the program, the dynamic
//! loader and the libraries `ldd` names are copied into a directory of the
//! state directory and bind-mounted read-only where the loader looks.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

use crate::{sh, state};

/// Where the program appears inside the container.
pub const BIN_DIR: &str = "/pidnst-tools";

/// A program and its libraries, ready to be mounted; removed on drop.
#[derive(Debug)]
pub struct Tool {
    dir: PathBuf,
    name: String,
}

impl Tool {
    /// Copies `program` and what it links against.
    pub fn new(program: &Path) -> Result<Tool> {
        let name = program
            .file_name()
            .and_then(|n| n.to_str())
            .context("program name")?
            .to_owned();
        let dir = state::state_dir().join(format!("tools-{}", state::random_hex(4)));
        let tool = Tool { dir, name };
        fs::create_dir_all(tool.dir.join("bin"))?;
        fs::copy(program, tool.dir.join("bin").join(&tool.name))
            .with_context(|| format!("copying {}", program.display()))?;
        let ldd = sh::run("ldd", &[&program.display().to_string()])?;
        for lib in libraries(&ldd) {
            let at = tool
                .dir
                .join("root")
                .join(lib.strip_prefix("/").unwrap_or(&lib));
            fs::create_dir_all(at.parent().context("library dir")?)?;
            fs::copy(&lib, &at).with_context(|| format!("copying {}", lib.display()))?;
        }
        Ok(tool)
    }

    /// The program's path inside the container.
    pub fn path(&self) -> String {
        format!("{BIN_DIR}/{}", self.name)
    }

    /// `-v` arguments for `docker run` / `podman run`.
    pub fn mounts(&self) -> Result<Vec<String>> {
        let mut args = vec![format!(
            "--volume={}:{BIN_DIR}:ro",
            self.dir.join("bin").display()
        )];
        let root = self.dir.join("root");
        for top in fs::read_dir(&root)? {
            let top = top?.path();
            let Some(name) = top.file_name().and_then(|n| n.to_str()) else {
                bail!("odd library directory {}", top.display());
            };
            // /lib64 and /lib (or /usr/lib): the loader's and the libraries' own directories.
            for dir in leaf_dirs(&top)? {
                let inside = Path::new("/").join(name).join(dir.strip_prefix(&top)?);
                args.push(format!(
                    "--volume={}:{}:ro",
                    dir.display(),
                    inside.display()
                ));
            }
        }
        Ok(args)
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Directories holding files (not only directories) below `dir`.
fn leaf_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut has_files = false;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            out.extend(leaf_dirs(&e.path())?);
        } else {
            has_files = true;
        }
    }
    if has_files {
        out.push(dir.to_path_buf());
    }
    Ok(out)
}

/// The absolute paths `ldd` prints (`libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (...)`
/// and the loader's own line).
fn libraries(ldd: &str) -> Vec<PathBuf> {
    ldd.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_name_the_libraries() {
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            libraries(ldd),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }
}
