//! `--format sarif`: SARIF 2.1.0, for CI systems that ingest static-analysis
//! results (GitHub code scanning, Defect Dojo, ...), as Trivy and kubescape
//! users expect.
//!
//! Two rules: the CIS control, and a container process outside its
//! container's cgroup. A sharing container is an `error` result of the
//! first; an allowed one is the same result with an external suppression,
//! an unknown one a `warning`, an unverified claim (a cgroup named like a
//! container's, nothing else) a `note`. A container with processes outside
//! its cgroup is an `error` result of the second, allowed or not. The
//! container is the result's logical location; the physical location is the
//! evidence file, the first host-PID process's `ns/pid` link under the proc
//! root.
//!
//! Pids change from run to run, so results carry a partial fingerprint made
//! of what does not: the rule, the runtime and the container id. SARIF
//! consumers (GitHub code scanning, Defect Dojo) match results across runs
//! by it, so one container stays one alert.

use std::collections::BTreeMap;

use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, LogicalLocation, Message, MultiformatMessageString,
    Notification, PhysicalLocation, PropertyBag, ReportingConfiguration, ReportingDescriptor,
    Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool, ToolComponent,
};

use super::{CONTROL_TITLE, REMEDIATION, label, short_id};
use crate::report::{Container, FoundBy, ScanReport, Verdict};

pub const RULE_ID: &str = "CIS-DOCKER-5.16";
/// The rule of a container process outside its container's cgroup.
pub const OUTSIDE_RULE_ID: &str = "PIDNS-OUTSIDE-CGROUP";
/// The `partialFingerprints` key: `<rule>:<runtime>:<container id>`.
pub const FINGERPRINT: &str = "pidnsContainer/v1";
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn render(r: &ScanReport) -> String {
    let driver = ToolComponent::builder()
        .name("pidns")
        .version(r.pidns_version)
        .semantic_version(r.pidns_version)
        .rules(rules())
        .build();
    let results: Vec<SarifResult> = r
        .containers
        .iter()
        .flat_map(|c| result(r, c).into_iter().chain(outside_result(r, c)))
        .collect();
    // What the scan could not settle or was told in vain (an `--allow`
    // that matched nothing, a container seen only mid-setup).
    let notifications: Vec<Notification> = r
        .warnings
        .iter()
        .map(|w| {
            Notification::builder()
                .level(json!("warning"))
                .message(Message::builder().text(w.clone()).build())
                .build()
        })
        .collect();
    let invocation = Invocation::builder()
        .execution_successful(true)
        .tool_execution_notifications(notifications)
        .start_time_utc(r.scanned_at.clone())
        .properties(
            PropertyBag::builder()
                .additional_properties(summary(r))
                .build(),
        )
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .invocations(vec![invocation])
        .build();
    let sarif = Sarif::builder()
        .schema(SCHEMA)
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build();
    let mut out =
        serde_json::to_string_pretty(&sarif).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    out.push('\n');
    out
}

/// The two rules: the CIS control, and a process outside its container's cgroup.
fn rules() -> Vec<ReportingDescriptor> {
    let rule = ReportingDescriptor::builder()
        .id(RULE_ID)
        .name("HostPidNamespaceShared")
        .short_description(MultiformatMessageString::builder().text(CONTROL_TITLE).build())
        .full_description(
            MultiformatMessageString::builder()
                .text(
                    "A container in the host's PID namespace sees every host process, can signal them, and with \
                     CAP_SYS_ADMIN can nsenter into the host. CIS Docker Benchmark 5.16 (v1.6.0+), numbered 5.15 \
                     in v1.1.0-v1.5.0.",
                )
                .build(),
        )
        .help(MultiformatMessageString::builder().text(REMEDIATION).build())
        .default_configuration(ReportingConfiguration::builder().level(json!("error")).build())
        .properties(
            PropertyBag::builder()
                .tags(vec!["security".to_owned(), "CIS-Docker-5.16".to_owned(), "CIS-Docker-5.15".to_owned()])
                .build(),
        )
        .build();
    let outside_rule = ReportingDescriptor::builder()
        .id(OUTSIDE_RULE_ID)
        .name("ContainerProcessOutsideItsCgroup")
        .short_description(
            MultiformatMessageString::builder()
                .text("A container process is outside its container's cgroup")
                .build(),
        )
        .full_description(
            MultiformatMessageString::builder()
                .text(
                    "Runtimes never move their containers' processes out of the container's cgroup; a process \
                     found by its root (its container's mount namespace and root filesystem) in another cgroup \
                     left it, which escapes the container's resource limits and any monitoring keyed on cgroups.",
                )
                .build(),
        )
        .default_configuration(ReportingConfiguration::builder().level(json!("error")).build())
        .properties(PropertyBag::builder().tags(vec!["security".to_owned()]).build())
        .build();
    vec![rule, outside_rule]
}

fn summary(r: &ScanReport) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    m.insert("procRoot".to_owned(), json!(r.proc_root));
    m.insert("hostPidns".to_owned(), json!(r.host_pidns));
    m.insert("summary".to_owned(), json!(r.summary));
    m
}

fn result(r: &ScanReport, c: &Container) -> Option<SarifResult> {
    let (level, text) = match c.verdict {
        Verdict::Isolated => return None,
        Verdict::Shares | Verdict::Allowed if c.found_by == FoundBy::State => (
            ResultLevel::Error,
            format!(
                "{} container {} ({}) is configured to share the host PID namespace: {}.",
                c.runtime,
                label(c),
                short_id(&c.id),
                super::configured::clause(c).unwrap_or_default()
            ),
        ),
        Verdict::Shares | Verdict::Allowed => (
            ResultLevel::Error,
            format!(
                "{} container {} ({}) shares the host PID namespace: {} of its processes live in it (first pid {}).",
                c.runtime,
                label(c),
                short_id(&c.id),
                c.host_pidns_processes.len(),
                c.host_pidns_processes.first().map_or(0, |p| p.pid)
            ),
        ),
        Verdict::Unknown => (
            ResultLevel::Warning,
            format!(
                "{} container {} ({}) could not be checked: {}",
                c.runtime,
                label(c),
                short_id(&c.id),
                c.unknown_reason.as_deref().unwrap_or("unreadable")
            ),
        ),
        Verdict::Unverified => (
            ResultLevel::Note,
            format!(
                "cgroup {} is named like {} container {}, but its processes (owner uid {}) show no container evidence: unverified, not counted. {}",
                c.cgroup,
                c.runtime,
                short_id(&c.id),
                c.owner_uid
                    .map_or_else(|| "?".to_owned(), |u| u.to_string()),
                c.unverified_reason.as_deref().unwrap_or_default()
            ),
        ),
    };
    let mut res = base(r, c, RULE_ID, level, text);
    if c.verdict == Verdict::Allowed {
        res.suppressions = Some(vec![
            Suppression::builder()
                .kind(json!("external"))
                .justification("listed with --allow")
                .build(),
        ]);
    }
    Some(res)
}

/// A container with processes outside its cgroup: an error whatever its
/// verdict (`--allow` covers sharing the host PID namespace, not this).
fn outside_result(r: &ScanReport, c: &Container) -> Option<SarifResult> {
    if c.outside_cgroup_pids.is_empty() {
        return None;
    }
    let text = format!(
        "{} container {} ({}) has {} processes outside its cgroup {} (pids {}), found by the root they run on.",
        c.runtime,
        label(c),
        short_id(&c.id),
        c.outside_cgroup_pids.len(),
        c.cgroup,
        c.outside_cgroup_pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Some(base(r, c, OUTSIDE_RULE_ID, ResultLevel::Error, text))
}

/// A result of `rule` about container `c`, located and fingerprinted.
fn base(
    r: &ScanReport,
    c: &Container,
    rule: &str,
    level: ResultLevel,
    text: String,
) -> SarifResult {
    let logical = LogicalLocation::builder()
        .name(c.id.clone())
        .fully_qualified_name(format!("{}://{}", c.runtime, c.id))
        .kind("object")
        .build();
    let mut location = Location::builder().logical_locations(vec![logical]).build();
    if let Some(p) = c.host_pidns_processes.first() {
        let artifact = ArtifactLocation::builder()
            .uri(format!(
                "{}/{}/ns/pid",
                r.proc_root.trim_end_matches('/'),
                p.pid
            ))
            .build();
        location.physical_location = Some(
            PhysicalLocation::builder()
                .artifact_location(artifact)
                .build(),
        );
    } else if let Some(file) = &c.configured_in {
        // Not running: the record that configures it.
        let artifact = ArtifactLocation::builder().uri(file.clone()).build();
        location.physical_location = Some(
            PhysicalLocation::builder()
                .artifact_location(artifact)
                .build(),
        );
    }
    let mut props = BTreeMap::new();
    props.insert("container".to_owned(), json!(c));
    let fingerprint = BTreeMap::from([(
        FINGERPRINT.to_owned(),
        format!("{rule}:{}:{}", c.runtime, c.id),
    )]);
    SarifResult::builder()
        .rule_id(rule)
        .partial_fingerprints(fingerprint)
        .level(level)
        .message(Message::builder().text(text).build())
        .locations(vec![location])
        .properties(PropertyBag::builder().additional_properties(props).build())
        .build()
}
