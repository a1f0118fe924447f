//! `pidns scan` and what the runtimes recorded of their containers on disk,
//! running or not, against real Docker, Podman, containerd and runc: a
//! container created with `--pid=host` and never started, one that ran
//! `true` and exited, one created `--pid=container:<one that shares>`, and
//! isolated ones; the agreement with the CIS audit's own `docker ps --all |
//! xargs docker inspect`; and `--offline` on a copy of the runtimes' state.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use pidns_tests::{
    Container, Pid, Rt, Spec,
    pidns::{Scan, bin},
    ready,
    runtimes::{PODMAN_GLOBAL, bundle_config, rootfs},
    sh,
    state::{self, CTR_NAMESPACE, DOCKER_IMAGE, Record},
    test_name,
};
use serde_json::Value;

/// Scans see every container on the host: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A container created through its runtime's CLI and never started,
/// removed on drop.
struct Created {
    rt: Rt,
    name: String,
    id: String,
}

impl Created {
    /// `docker create` / `podman create`, with `--pid=<pid>` if given.
    fn engine(rt: Rt, pid: Option<&str>) -> Created {
        let name = state::unique_name();
        let (program, mut args): (&str, Vec<String>) = match rt {
            Rt::Docker => ("docker", Vec::new()),
            _ => (
                "podman",
                PODMAN_GLOBAL.iter().map(|s| s.to_string()).collect(),
            ),
        };
        args.extend(["create", "--name", &name, "--network=none"].map(String::from));
        args.extend(["--ulimit", "nofile=1024:1024"].map(String::from));
        if rt != Rt::Docker {
            args.extend(["--ulimit", "nproc=1024:1024"].map(String::from));
        }
        args.extend(pid.map(|p| format!("--pid={p}")));
        if rt == Rt::Docker {
            args.push(DOCKER_IMAGE.into());
        } else {
            args.extend(["--rootfs".into(), rootfs().display().to_string()]);
        }
        args.extend(["sleep", "3600"].map(String::from));
        let id = sh::run(program, &args)
            .unwrap_or_else(|e| panic!("{program} create: {e:#}"))
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        state::record(&Record::ContainerId(id.clone()));
        Created { rt, name, id }
    }

    /// `ctr container create`, in the test namespace, joining the host PID
    /// namespace by path (this test's process) or with one of its own.
    fn ctr(host: bool) -> Created {
        Created::ctr_with(host.then(|| format!("/proc/{}/ns/pid", std::process::id())))
    }

    /// `ctr container create`, joining the PID namespace at `path` if given.
    fn ctr_with(path: Option<String>) -> Created {
        let name = state::unique_name();
        let mut args: Vec<String> = ["-n", CTR_NAMESPACE, "containers", "create", "--rootfs"]
            .map(String::from)
            .to_vec();
        if let Some(path) = path {
            args.push("--with-ns".into());
            args.push(format!("pid:{path}"));
        }
        args.extend([
            rootfs().display().to_string(),
            name.clone(),
            "/bin/sleep".into(),
            "3600".into(),
        ]);
        sh::run("ctr", &args).unwrap_or_else(|e| panic!("ctr containers create: {e:#}"));
        Created {
            rt: Rt::Ctr,
            id: name.clone(),
            name,
        }
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        let _ = match self.rt {
            Rt::Docker => sh::run("docker", &["rm", "-f", &self.name]),
            Rt::Ctr => sh::run(
                "ctr",
                &["-n", CTR_NAMESPACE, "containers", "rm", &self.name],
            ),
            _ => {
                let mut args: Vec<&str> = PODMAN_GLOBAL.to_vec();
                args.extend(["rm", "-f", &self.name]);
                sh::run("podman", &args)
            }
        };
    }
}

/// A container that ran `true` and exited (still there: not removed until dropped).
fn exited(rt: Rt, pid: Pid<'_>) -> Container {
    let c = Container::start(&Spec::new(rt).pid(pid).cmd(&["true"]))
        .unwrap_or_else(|e| panic!("{rt:?} run true: {e:#}"));
    let program = if rt == Rt::Docker { "docker" } else { "podman" };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut args: Vec<&str> = if rt == Rt::Docker {
            Vec::new()
        } else {
            PODMAN_GLOBAL.to_vec()
        };
        args.extend(["inspect", "--format", "{{.State.Running}}", &c.name]);
        if sh::run(program, &args).is_ok_and(|s| s.trim() == "false") {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{} still running after 30 s",
            c.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scan(extra: &[&str]) -> Scan {
    Scan::run(extra).unwrap_or_else(|e| panic!("pidns scan: {e:#}"))
}

fn reported<'a>(scan: &'a Scan, id: &str) -> &'a Value {
    scan.container(id).unwrap_or_else(|| {
        panic!(
            "pidns did not report {id}; it reported:\n{:#}",
            scan.json["containers"]
        )
    })
}

/// (verdict, state, configured_host_pidns) as reported.
fn seen(scan: &Scan, id: &str) -> (String, String, Value) {
    let c = reported(scan, id);
    (
        c["verdict"].as_str().unwrap_or_default().to_owned(),
        c["state"].as_str().unwrap_or_default().to_owned(),
        c["configured_host_pidns"].clone(),
    )
}

fn expect(verdict: &str, state: &str, configured: bool) -> (String, String, Value) {
    (verdict.into(), state.into(), Value::Bool(configured))
}

/// That `id` is reported with this (verdict, state, configured_host_pidns),
/// its whole entry shown otherwise.
#[track_caller]
fn assert_seen(scan: &Scan, id: &str, (verdict, state, configured): (&str, &str, bool)) {
    assert_eq!(
        seen(scan, id),
        expect(verdict, state, configured),
        "{id}: {:#}",
        reported(scan, id)
    );
}

fn engine_case(rt: Rt) {
    let host = Created::engine(rt, Some("host"));
    let own = Created::engine(rt, None);
    let chained = Created::engine(rt, Some(&format!("container:{}", host.name)));
    let host_exited = exited(rt, Pid::Host);
    let own_exited = exited(rt, Pid::Private);

    let s = scan(&[]);
    assert_seen(&s, &host.id, ("shares", "created", true));
    assert_seen(&s, &own.id, ("isolated", "created", false));
    assert_eq!(
        seen(&s, &chained.id),
        expect("shares", "created", true),
        "--pid=container:<one that shares>: {:#}",
        reported(&s, &chained.id)
    );
    assert_seen(&s, &host_exited.id, ("shares", "exited", true));
    assert_seen(&s, &own_exited.id, ("isolated", "exited", false));
    assert_eq!(reported(&s, &host.id)["found_by"], "state");
    assert_eq!(reported(&s, &host.id)["shares_host_pidns"], Value::Null);
    assert_eq!(
        s.code, 1,
        "a configured-to-share container fails the scan, running or not"
    );

    let running_only = scan(&["--running-only"]);
    for id in [&host.id, &own.id, &chained.id, &host_exited.id] {
        assert!(
            running_only.container(id).is_none(),
            "--running-only reported {id}"
        );
    }

    let bin = bin().expect("pidns binary");
    let cis = sh::output_with(
        &bin.display().to_string(),
        &["scan", "--format", "cis"],
        sh::DEFAULT_TIMEOUT,
    )
    .expect("pidns scan --format cis");
    assert!(
        cis.stdout.contains(&format!(
            "Configured to share the host PID namespace, not running (created): {}",
            host.name
        )),
        "{}",
        cis.stdout
    );
    assert!(cis.stdout.contains("[WARN] 5.16"), "{}", cis.stdout);
}

#[test]
fn docker_created_exited_chained_and_isolated() {
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _s = serial();
    engine_case(Rt::Docker);
}

#[test]
fn podman_created_exited_chained_and_isolated() {
    let Some(()) = ready(test_name!(), &[Rt::Podman]) else {
        return;
    };
    let _s = serial();
    engine_case(Rt::Podman);
}

/// The benchmark's own audit: for every Docker container, running or not,
/// `PidMode=host` from `docker ps --quiet --all | xargs docker inspect` is
/// what pidns reports as `configured_host_pidns` (and `container:<x>` is
/// what it reports for x).
#[test]
fn agrees_with_the_benchmark_s_docker_ps_all_audit() {
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _s = serial();
    let host = Created::engine(Rt::Docker, Some("host"));
    let _own = Created::engine(Rt::Docker, None);
    let _chained = Created::engine(Rt::Docker, Some(&format!("container:{}", host.name)));
    let _exited = exited(Rt::Docker, Pid::Host);
    let _running = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("docker run");
    let audit = sh::run(
        "sh",
        &["-c", "docker ps --quiet --all | xargs docker inspect --format '{{ .Id }}: PidMode={{ .HostConfig.PidMode }}'"],
    )
    .expect("the CIS audit command");
    let s = scan(&[]);
    let modes: Vec<(&str, &str)> = audit
        .lines()
        .filter_map(|l| l.split_once(": PidMode="))
        .collect();
    assert!(modes.len() >= 5, "{audit}");
    let configured = |id: &str| reported(&s, id)["configured_host_pidns"].clone();
    for (id, mode) in &modes {
        let want = match *mode {
            "host" => Value::Bool(true),
            "" => Value::Bool(false),
            m => {
                let other = m
                    .strip_prefix("container:")
                    .unwrap_or_else(|| panic!("PidMode {m}"));
                let target = s
                    .containers()
                    .iter()
                    .find(|c| c["id"] == other || c["name"] == other)
                    .unwrap_or_else(|| panic!("{other} not reported"));
                target["configured_host_pidns"].clone()
            }
        };
        assert_eq!(
            configured(id),
            want,
            "{id} PidMode={mode}: {:#}",
            reported(&s, id)
        );
    }
}

#[test]
fn containerd_created_with_and_without_the_host_s_pid_namespace() {
    let Some(()) = ready(test_name!(), &[Rt::Ctr]) else {
        return;
    };
    let _s = serial();
    let host = Created::ctr(true);
    let own = Created::ctr(false);
    let s = scan(&[]);
    assert_seen(&s, &host.id, ("shares", "created", true));
    assert_eq!(
        reported(&s, &host.id)["containerd_namespace"],
        CTR_NAMESPACE
    );
    assert_eq!(
        reported(&s, &host.id)["configured_pid_mode"],
        format!("path:/proc/{}/ns/pid", std::process::id())
    );
    assert_seen(&s, &own.id, ("isolated", "created", false));
    assert_eq!(s.code, 1);
}

#[test]
fn runc_bundles_configured_as_the_kernel_shows_them() {
    let Some(()) = ready(test_name!(), &[Rt::Runc]) else {
        return;
    };
    let _s = serial();
    let host = Container::start(&Spec::new(Rt::Runc).pid(Pid::Host)).expect("runc host");
    let path = Container::start(&Spec::new(Rt::Runc).pid(Pid::HostPath)).expect("runc path");
    let own = Container::start(&Spec::new(Rt::Runc)).expect("runc private");
    let s = scan(&[]);
    for (c, host_pidns) in [(&host, true), (&path, true), (&own, false)] {
        let r = reported(&s, &c.id);
        assert_eq!(
            (
                &r["state"],
                &r["configured_host_pidns"],
                &r["shares_host_pidns"]
            ),
            (
                &Value::from("running"),
                &Value::Bool(host_pidns),
                &Value::Bool(host_pidns)
            ),
            "{r:#}"
        );
        assert!(
            r["configured_in"]
                .as_str()
                .is_some_and(|f| f.ends_with("/state.json")),
            "{r:#}"
        );
        let warnings = s.json["warnings"].to_string();
        assert!(
            !warnings.contains(&format!("container {}:", c.id)),
            "{warnings}"
        );
    }
}

/// A crun container of a bundle of ours, under crun's default root
/// (`/run/crun`), deleted on drop.
struct Crun {
    name: String,
    bundle: PathBuf,
}

impl Crun {
    /// `crun create` (never started), or `crun run -d` when `run`.
    fn new(pid: Pid<'_>, run: bool) -> Crun {
        let name = state::unique_name();
        let bundle = state::state_dir().join("bundles").join(&name);
        std::fs::create_dir_all(&bundle).expect("bundle dir");
        let spec = Spec::new(Rt::PodmanCrun).pid(pid);
        let config = serde_json::to_vec_pretty(&bundle_config(&spec, &format!("/{name}")))
            .expect("config.json");
        std::fs::write(bundle.join("config.json"), config).expect("config.json");
        let c = Crun { name, bundle };
        let b = c.bundle.display().to_string();
        let args: &[&str] = if run {
            &["run", "-d", "--bundle", &b, &c.name]
        } else {
            &["create", "--bundle", &b, &c.name]
        };
        sh::run_detaching("crun", args).expect("crun");
        c
    }
}

impl Drop for Crun {
    fn drop(&mut self) {
        let _ = sh::run("crun", &["delete", "-f", &self.name]);
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

/// crun on its own: bundles created (never started) with and without a PID
/// namespace of their own, and one run with the host's, judged from what
/// crun keeps in `/run/crun/<id>` (its `config.json`), as the kernel shows
/// the running one.
#[test]
fn crun_bundles_created_and_run() {
    let Some(()) = ready(test_name!(), &[Rt::PodmanCrun]) else {
        return;
    };
    let _s = serial();
    let host = Crun::new(Pid::Host, false);
    let own = Crun::new(Pid::Private, false);
    let running = Crun::new(Pid::Host, true);
    let s = scan(&[]);
    assert_seen(&s, &host.name, ("shares", "created", true));
    assert_seen(&s, &own.name, ("isolated", "created", false));
    let r = reported(&s, &running.name);
    assert_eq!(
        (
            &r["state"],
            &r["configured_host_pidns"],
            &r["shares_host_pidns"]
        ),
        (
            &Value::from("running"),
            &Value::Bool(true),
            &Value::Bool(true)
        ),
        "{r:#}"
    );
    assert!(
        r["configured_in"]
            .as_str()
            .is_some_and(|f| f == format!("/run/crun/{}/config.json", running.name)),
        "{r:#}"
    );
    assert_eq!(s.code, 1);
}

/// Copies what the collectors read of the live host's state into `dir`.
fn copy_state(dir: &Path) {
    let copy = |rel: &str| {
        let from = Path::new("/").join(rel);
        if from.is_file() {
            let to = dir.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
    };
    let each = |parent: &str, files: &[&str]| {
        for e in std::fs::read_dir(Path::new("/").join(parent))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            for f in files {
                copy(&format!("{parent}/{name}/{f}"));
            }
            if Path::new("/")
                .join(parent)
                .join(&name)
                .join("exec.fifo")
                .exists()
            {
                let to = dir.join(parent).join(&name).join("exec.fifo");
                std::fs::write(to, "").unwrap();
            }
        }
    };
    each(
        "var/lib/docker/containers",
        &["hostconfig.json", "config.v2.json"],
    );
    for db in ["libpod/bolt_state.db", "db.sql", "db.sql-wal"] {
        copy(&format!("var/lib/containers/storage/{db}"));
    }
    copy("var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db");
    each("run/runc", &["state.json"]);
}

#[test]
fn offline_on_a_copy_of_the_runtimes_state_finds_the_same() {
    let Some(()) = ready(test_name!(), &[Rt::Docker, Rt::Podman, Rt::Ctr]) else {
        return;
    };
    let _s = serial();
    let keep = (
        Created::engine(Rt::Docker, Some("host")),
        Created::engine(Rt::Docker, None),
        exited(Rt::Docker, Pid::Host),
        Created::engine(Rt::Podman, Some("host")),
        exited(Rt::Podman, Pid::Private),
        Created::ctr_with(Some("/proc/1/ns/pid".into())),
        Created::ctr(false),
    );
    // Joined by the path of a process that is not PID 1: offline, there is
    // no process to ask, so it is unknown (live, this test's process is in
    // the host's namespace).
    let joined = Created::ctr(true);
    let ids = [
        &keep.0.id, &keep.1.id, &keep.2.id, &keep.3.id, &keep.4.id, &keep.5.id, &keep.6.id,
    ];
    let live = scan(&[]);
    let image = tempfile_dir();
    copy_state(&image);
    let off = scan(&["--offline", "--host-root", &image.display().to_string()]);
    assert_eq!(off.json["offline"], true);
    for id in ids {
        assert_eq!(
            seen(&off, id),
            seen(&live, id),
            "{id}: offline {:#}",
            reported(&off, id)
        );
    }
    assert_eq!(off.code, 1);
    assert_seen(&live, &joined.id, ("shares", "created", true));
    let j = reported(&off, &joined.id);
    assert_eq!(
        (&j["verdict"], &j["configured_host_pidns"]),
        (&Value::from("unknown"), &Value::Null)
    );
    assert!(
        j["unknown_reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("/proc/{}/ns/pid", std::process::id()))),
        "{j:#}"
    );
    let _ = std::fs::remove_dir_all(&image);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{}-image", state::unique_name()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn lxc_configs_running_and_stopped() {
    let Some(()) = ready(test_name!(), &[Rt::Lxc]) else {
        return;
    };
    let _s = serial();
    let host = Container::start(&Spec::new(Rt::Lxc).pid(Pid::Host)).expect("lxc host");
    let own = Container::start(&Spec::new(Rt::Lxc)).expect("lxc private");
    // stopped after it ran (its init cannot just exit: LXC then reports no pid)
    let stopped = Container::start(&Spec::new(Rt::Lxc).pid(Pid::Host)).expect("lxc to stop");
    lxc_stop(&stopped.name);
    let s = scan(&[]);
    assert_seen(&s, &host.id, ("shares", "running", true));
    assert_seen(&s, &own.id, ("isolated", "running", false));
    assert_eq!(
        seen(&s, &stopped.id),
        expect("shares", "unknown", true),
        "LXC keeps no state on disk; its config shares: {:#}",
        reported(&s, &stopped.id)
    );
    assert_eq!(reported(&s, &stopped.id)["found_by"], "state");
}

/// `lxc-stop -k`, and until LXC says STOPPED.
fn lxc_stop(name: &str) {
    sh::run("lxc-stop", &["-n", name, "-k"]).expect("lxc-stop");
    let deadline = Instant::now() + Duration::from_secs(30);
    while sh::run("lxc-info", &["-n", name, "-s", "-H"]).map_or(true, |s| s.trim() != "STOPPED") {
        assert!(Instant::now() < deadline, "{name} still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A container whose config shares the host PID namespace only through an
/// `lxc.include`d file: LXC honours it (the kernel shows the container
/// sharing), and pidns reads the config as LXC does, running and stopped.
#[test]
fn lxc_host_pid_set_in_an_included_file() {
    let Some(()) = ready(test_name!(), &[Rt::Lxc]) else {
        return;
    };
    let _s = serial();
    let c = Container::start(&Spec::new(Rt::Lxc)).expect("lxc private");
    lxc_stop(&c.name);
    let dir = tempfile_dir();
    let included = dir.join("hostpid.conf");
    std::fs::write(
        &included,
        format!("lxc.namespace.share.pid = {}\n", std::process::id()),
    )
    .expect("the included file");
    let config = PathBuf::from("/var/lib/lxc").join(&c.name).join("config");
    let mut text = std::fs::read_to_string(&config).expect("the container's config");
    assert!(!text.contains("share.pid"), "{text}");
    text.push_str(&format!("lxc.include = {}\n", included.display()));
    std::fs::write(&config, text).expect("the container's config");
    sh::run("lxc-start", &["-n", &c.name, "-d"]).expect("lxc-start");
    let running = scan(&[]);
    assert_seen(&running, &c.id, ("shares", "running", true));
    lxc_stop(&c.name);
    let stopped = scan(&[]);
    assert_seen(&stopped, &c.id, ("shares", "unknown", true));
    let _ = std::fs::remove_dir_all(&dir);
}
