//! The data model: what a scan found and what watch reports. Collectors and
//! the engine fill it, renderers format it; it reads nothing itself.

pub mod access;
pub mod clone_flags;
pub mod event;
pub mod identity;
pub mod scan;

pub use access::{AccessTarget, HostAccessAggregate, HostAccessEvent};
pub use clone_flags::CloneFlags;
pub use event::{
    AggregateEvent, Enforced, Envelope, EscapeEvent, Finding, MissingProbe, NewPidnsEvent,
    NewPidnsVia, SetnsEvent, SetnsVia, Trigger, WatchEvent,
};
pub use identity::{ContainerKey, Identity, Pod, Runtime};
pub use scan::{
    Container, FoundBy, HostMethod, HostPidns, Method, ProcessEvidence, RootMountReport, RunState,
    SCHEMA, ScanReport, Summary, Verdict,
};
