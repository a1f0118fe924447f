//! LXC: `<lxcpath>/<name>/config` (lxcpath `/var/lib/lxc`).
//! `lxc.namespace.keep` listing `pid` keeps the host's PID namespace (the
//! one LXC was started in); `lxc.namespace.share.pid` joins another's: a
//! pid (that process's), a path, or another container's name. LXC keeps no
//! state on disk: a container the kernel does not show is `unknown`.
//! `lxc.include`d files are not followed.

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
        let Some(config) = read_text(&path) else {
            continue;
        };
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
    use crate::state::tests::put;

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
        let mut out = Configs::default();
        configured(dir.path(), &mut out);
        out.records.sort_by(|a, b| a.id.cmp(&b.id));
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
