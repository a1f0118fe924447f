//! LXC: `<lxcpath>/<name>/config` (lxcpath `/var/lib/lxc`).
//! `lxc.namespace.keep` listing `pid` keeps the host's PID namespace (the
//! one LXC was started in); `lxc.namespace.share.pid` joins another's: a
//! pid (that process's), a path, or another container's name. LXC keeps no
//! state on disk: a container the kernel does not show is `unknown`.
//! `lxc.include`d files and directories are read where they stand, as LXC
//! reads them.

use std::path::Path;

use super::{Configs, Configured, PidConfig, host_path};
use crate::{
    parse::layout::Runtime,
    report::RunState,
    state::{entries, lxc::LXC_PATH, read_text},
};

pub fn configured(root: &Path, out: &mut Configs) {
    let lxcpath = root.join(LXC_PATH);
    for name in entries(&lxcpath) {
        let path = lxcpath.join(&name).join("config");
        let Some(text) = read_text(&path) else {
            continue;
        };
        let mut config = String::new();
        inline_includes(root, &text, 0, &mut config);
        out.push(Configured {
            runtime: Runtime::Lxc,
            id: name.clone(),
            name: Some(name),
            namespace: None,
            state: RunState::Unknown,
            pid: pid_config(&config),
            source: host_path(root, &path),
            init_pid: None,
            pod: None,
        });
    }
}

/// How deep `lxc.include`s are followed. LXC itself has no bound, and
/// a file that includes itself would never end.
const INCLUDE_DEPTH: usize = 8;
/// The most config text read for one container, includes and all.
const MAX_CONFIG: usize = 1 << 20;

/// `text` with its `lxc.include`s put where they stand, as LXC reads them:
/// a file, or every `*.conf` file of a directory in name order. Include
/// paths are the host's, read under `root`. A relative path (relative to
/// wherever LXC ran) and what lies deeper than [`INCLUDE_DEPTH`] are not
/// followed.
fn inline_includes(root: &Path, text: &str, depth: usize, out: &mut String) {
    for line in text.lines() {
        if out.len() > MAX_CONFIG {
            return;
        }
        let include = line
            .split_once('=')
            .filter(|(k, _)| k.trim() == "lxc.include")
            .map(|(_, v)| v.trim());
        match include {
            Some(path) if depth < INCLUDE_DEPTH => {
                for text in included(root, path) {
                    inline_includes(root, &text, depth + 1, out);
                }
            }
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
}

/// The text of what one `lxc.include` names.
fn included(root: &Path, path: &str) -> Vec<String> {
    let Some(rel) = path.strip_prefix('/') else {
        return Vec::new();
    };
    let at = root.join(rel);
    let is_dir = std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return read_text(&at).into_iter().collect();
    }
    let mut names: Vec<String> = entries(&at)
        .into_iter()
        .filter(|n| n.ends_with(".conf"))
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|n| read_text(&at.join(n)))
        .collect()
}

/// What a config's keys say; the last setting of a key wins, as in LXC.
pub fn pid_config(config: &str) -> PidConfig {
    let mut keep_pid = false;
    let mut share: Option<String> = None;
    for (key, value) in config
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
    {
        match key {
            "lxc.namespace.keep" => keep_pid = value.split_whitespace().any(|n| n == "pid"),
            "lxc.namespace.share.pid" => share = Some(value.to_owned()).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
    match share {
        Some(v) if v.starts_with('/') => PidConfig::Path(v),
        Some(v) if v.parse::<u32>().is_ok() => PidConfig::Path(format!("/proc/{v}/ns/pid")),
        Some(v) => PidConfig::Container(v),
        None if keep_pid => PidConfig::Host,
        None => PidConfig::Private,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{
        configured::testing::{pids, read},
        tests::put,
    };

    #[test]
    fn keep_and_share() {
        assert_eq!(pid_config("lxc.uts.name = a\n"), PidConfig::Private);
        assert_eq!(
            pid_config("lxc.namespace.keep = net pid\n"),
            PidConfig::Host
        );
        assert_eq!(pid_config("lxc.namespace.keep = net\n"), PidConfig::Private);
        assert_eq!(
            pid_config("lxc.namespace.share.pid = 4242\n"),
            PidConfig::Path("/proc/4242/ns/pid".into())
        );
        assert_eq!(
            pid_config("lxc.namespace.share.pid=/proc/1/ns/pid"),
            PidConfig::Path("/proc/1/ns/pid".into())
        );
        assert_eq!(
            pid_config("lxc.namespace.share.pid = web\nlxc.new.key = 1\n"),
            PidConfig::Container("web".into())
        );
        assert_eq!(
            pid_config(
                "# lxc.namespace.keep = pid\nlxc.namespace.keep = pid\nlxc.namespace.keep = net\n"
            ),
            PidConfig::Private,
            "the last setting wins, comments are not settings"
        );
    }

    #[test]
    fn included_files_and_directories_are_read_where_they_stand() {
        let dir = tempfile::tempdir().unwrap();
        // the host-PID setting in an included file
        put(
            dir.path(),
            &format!("{LXC_PATH}/inc/config"),
            "lxc.uts.name = inc\nlxc.include = /etc/lxc/hostpid.conf\n",
        );
        put(
            dir.path(),
            "etc/lxc/hostpid.conf",
            "lxc.namespace.keep = pid\n",
        );
        // a directory's *.conf files, in name order; a later line still wins
        put(
            dir.path(),
            &format!("{LXC_PATH}/incdir/config"),
            "lxc.include = /etc/lxc/conf.d\nlxc.namespace.share.pid = 77\n",
        );
        put(
            dir.path(),
            "etc/lxc/conf.d/20-share.conf",
            "lxc.namespace.share.pid = web\n",
        );
        put(
            dir.path(),
            "etc/lxc/conf.d/10-keep.conf",
            "lxc.namespace.share.pid = 1\n",
        );
        put(
            dir.path(),
            "etc/lxc/conf.d/30-not-conf.txt",
            "lxc.namespace.keep = pid\n",
        );
        put(
            dir.path(),
            &format!("{LXC_PATH}/dirlast/config"),
            "lxc.include = /etc/lxc/conf.d\n",
        );
        // an include of itself ends
        put(
            dir.path(),
            &format!("{LXC_PATH}/loop/config"),
            &format!("lxc.include = {LXC_PATH}/loop/config\nlxc.namespace.keep = pid\n"),
        );
        let out = read(configured, dir.path());
        assert_eq!(
            pids(&out),
            [
                ("dirlast", PidConfig::Container("web".into())),
                ("inc", PidConfig::Host),
                ("incdir", PidConfig::Path("/proc/77/ns/pid".into())),
                ("loop", PidConfig::Host),
            ]
        );
    }

    #[test]
    fn containers_by_name() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            &format!("{LXC_PATH}/web/config"),
            "lxc.namespace.keep = pid\n",
        );
        put(
            dir.path(),
            &format!("{LXC_PATH}/db/config"),
            "lxc.namespace.share.pid = web\n",
        );
        std::fs::create_dir_all(dir.path().join(LXC_PATH).join("noconfig")).unwrap();
        let out = read(configured, dir.path());
        let got: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.pid.clone(), r.state))
            .collect();
        assert_eq!(
            got,
            [
                ("db", PidConfig::Container("web".into()), RunState::Unknown),
                ("web", PidConfig::Host, RunState::Unknown),
            ]
        );
    }
}
