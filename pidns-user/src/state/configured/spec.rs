//! What an OCI runtime spec (`config.json`, containerd's and Podman's stored
//! spec) or runc's libcontainer config says of the PID namespace.

use serde_json::Value;

use super::PidConfig;

/// From an OCI spec: no `linux` section or no `pid` entry in
/// `linux.namespaces` is no PID namespace of its own (the runtime creates
/// none: the host's); a `pid` entry with a `path` joins that namespace.
/// Unknown fields are ignored.
pub fn oci(spec: &Value) -> PidConfig {
    let Some(linux) = spec.get("linux") else {
        return PidConfig::Host;
    };
    match linux.get("namespaces") {
        None | Some(Value::Null) => PidConfig::Host,
        Some(Value::Array(list)) => entries(list, "type", "pid"),
        Some(_) => PidConfig::Unreadable("linux.namespaces is not a list".into()),
    }
}

/// From runc's `state.json` `config.namespaces` (`{"type":"NEWPID","path":""}`).
pub fn libcontainer(config: &Value) -> PidConfig {
    match config.get("namespaces") {
        None | Some(Value::Null) => PidConfig::Host,
        Some(Value::Array(list)) => entries(list, "type", "NEWPID"),
        Some(_) => PidConfig::Unreadable("config.namespaces is not a list".into()),
    }
}

fn entries(list: &[Value], key: &str, pid: &str) -> PidConfig {
    let Some(ns) = list
        .iter()
        .find(|n| n.get(key).and_then(Value::as_str) == Some(pid))
    else {
        return PidConfig::Host;
    };
    match ns.get("path") {
        None | Some(Value::Null) => PidConfig::Private,
        Some(Value::String(p)) if p.is_empty() => PidConfig::Private,
        Some(Value::String(p)) => PidConfig::Path(p.clone()),
        Some(_) => PidConfig::Unreadable("the pid namespace's path is not a string".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn oci_specs() {
        let private = json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}});
        assert_eq!(oci(&private), PidConfig::Private);
        let host = json!({"linux": {"namespaces": [{"type": "mount"}]}});
        assert_eq!(oci(&host), PidConfig::Host);
        let joined = json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/42/ns/pid"}]}});
        assert_eq!(oci(&joined), PidConfig::Path("/proc/42/ns/pid".into()));
        assert_eq!(
            oci(&json!({"ociVersion": "1.0.2"})),
            PidConfig::Host,
            "no linux: no namespaces"
        );
        let unknown =
            json!({"linux": {"namespaces": [{"type": "pid", "x-new": 1}], "x": {}}, "y": []});
        assert_eq!(
            oci(&unknown),
            PidConfig::Private,
            "unknown fields are ignored"
        );
        assert!(matches!(
            oci(&json!({"linux": {"namespaces": "pid"}})),
            PidConfig::Unreadable(_)
        ));
    }

    #[test]
    fn libcontainer_configs() {
        let c =
            json!({"namespaces": [{"type": "NEWNS", "path": ""}, {"type": "NEWPID", "path": ""}]});
        assert_eq!(libcontainer(&c), PidConfig::Private);
        let c = json!({"namespaces": [{"type": "NEWNS", "path": ""}]});
        assert_eq!(libcontainer(&c), PidConfig::Host);
        let c = json!({"namespaces": [{"type": "NEWPID", "path": "/proc/7/ns/pid"}]});
        assert_eq!(libcontainer(&c), PidConfig::Path("/proc/7/ns/pid".into()));
    }
}
