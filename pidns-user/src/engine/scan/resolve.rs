//! What a container's recorded PID namespace configuration means for the
//! host's: `--pid=container:<ref>` followed along the chain (by id, name
//! or unique id prefix, within the same runtime), a namespace path asked
//! of the kernel (the live host) or taken as the host's when it is PID 1's
//! (`--offline`, where nothing else can be known).

use crate::state::configured::{Configured, PidConfig};

/// The longest `container:` chain followed (a loop ends it, unknown).
const MAX_CHAIN: usize = 16;

/// Whether the namespace at a path is the host's: `Some` where known.
pub(super) trait PathJudge {
    fn host_pidns_at(&self, path: &str) -> Option<bool>;
}

/// The pid of a `/proc/<pid>/ns/pid` path.
pub(super) fn proc_pid(path: &str) -> Option<u32> {
    let rest = path.strip_prefix("/proc/")?.strip_suffix("/ns/pid")?;
    rest.parse().ok()
}

/// `--offline`: only PID 1's namespace is known to be the host's.
pub(super) struct Offline;

impl PathJudge for Offline {
    fn host_pidns_at(&self, path: &str) -> Option<bool> {
        (proc_pid(path) == Some(1)).then_some(true)
    }
}

/// Whether record `i` is configured to share the host PID namespace, and
/// why not known when it is not.
pub(super) fn host_pidns(
    records: &[Configured],
    i: usize,
    paths: &dyn PathJudge,
) -> Result<bool, String> {
    let mut at = i;
    let mut seen = vec![i];
    loop {
        match &records[at].pid {
            PidConfig::Host => return Ok(true),
            PidConfig::Private => return Ok(false),
            PidConfig::Unreadable(why) => return Err(why.clone()),
            PidConfig::Path(p) => {
                return paths.host_pidns_at(p).ok_or_else(|| {
                    format!("joins the PID namespace at {p}, which could not be judged")
                });
            }
            PidConfig::Container(r) => {
                let Some(next) = find(records, &records[at], r) else {
                    return Err(format!(
                        "joins container {r}'s PID namespace, and no record of {r} was found"
                    ));
                };
                if seen.contains(&next) || seen.len() > MAX_CHAIN {
                    return Err(format!("its --pid=container: chain loops at {r}"));
                }
                seen.push(next);
                at = next;
            }
        }
    }
}

/// The record `reference` names, among `from`'s runtime's: by id, by name,
/// or by an id prefix only one id has.
fn find(records: &[Configured], from: &Configured, reference: &str) -> Option<usize> {
    let same = |r: &&Configured| r.runtime == from.runtime && r.namespace == from.namespace;
    let by = |test: &dyn Fn(&Configured) -> bool| {
        let hits: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| same(r) && test(r))
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    };
    by(&|r| r.id == reference)
        .or_else(|| by(&|r| r.name.as_deref() == Some(reference)))
        .or_else(|| by(&|r| reference.len() >= 4 && r.id.starts_with(reference)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse::layout::Runtime, report::RunState};

    fn rec(id: &str, name: &str, pid: PidConfig) -> Configured {
        Configured {
            runtime: Runtime::Docker,
            id: id.into(),
            name: Some(name.into()),
            namespace: None,
            state: RunState::Exited,
            pid,
            source: "/x".into(),
            init_pid: None,
            pod: None,
        }
    }

    #[test]
    fn chains_paths_and_loops() {
        let c = |r: &str| PidConfig::Container(r.into());
        let records = [
            rec("aaaa1111", "hostly", PidConfig::Host),
            rec("bbbb2222", "own", PidConfig::Private),
            rec("cccc3333", "c1", c("hostly")),
            rec("dddd4444", "c2", c("cccc3333")),
            rec("eeee5555", "c3", c("bbbb")),
            rec("ffff6666", "l1", c("l2")),
            rec("0000aaaa", "l2", c("l1")),
            rec("1111bbbb", "gone", c("nothere")),
            rec("2222cccc", "p1", PidConfig::Path("/proc/1/ns/pid".into())),
            rec("3333dddd", "p2", PidConfig::Path("/proc/77/ns/pid".into())),
        ];
        let got: Vec<Result<bool, String>> = (0..records.len())
            .map(|i| host_pidns(&records, i, &Offline))
            .collect();
        assert_eq!(
            got[..5],
            [Ok(true), Ok(false), Ok(true), Ok(true), Ok(false)]
        );
        assert!(got[5].as_ref().unwrap_err().contains("loops"));
        assert!(got[7].as_ref().unwrap_err().contains("nothere"));
        assert_eq!(got[8], Ok(true));
        assert!(got[9].is_err(), "offline, only PID 1 is known");
        assert_eq!(proc_pid("/proc/42/ns/pid"), Some(42));
        assert_eq!(proc_pid("/proc/self/ns/pid"), None);
    }
}
