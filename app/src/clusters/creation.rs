//! Creating a cluster from machines: what a cluster template would take, and how its creation
//! goes, machine by machine.

use serde::{Deserialize, Serialize};

/// A cluster template (YAML, `version: pangea.dev/v1`), to check or to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TemplateInput {
    pub template: String,
}

/// A machine a template takes, as it will be named in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PlannedNode {
    pub machine: i64,
    pub mac: String,
    /// The node's name: the machine's host name.
    pub name: String,
    pub role: String,
    /// Whether Pangea powers it on (it has a BMC); otherwise a person does.
    pub powered_by_pangea: bool,
}

/// One field an applied template would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TemplateChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// What applying a template would do, asking nothing of any machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreationPreview {
    /// The template as Pangea reads it, every default written out.
    pub template: String,
    pub nodes: Vec<PlannedNode>,
    /// What stands in the way, in words; creation waits until there is nothing.
    pub problems: Vec<String>,
    /// Whether a cluster of this name was created from a template already.
    pub exists: bool,
    /// Against that template: what would change (empty: the same cluster).
    pub changes: Vec<TemplateChange>,
}

/// Where one machine of a creation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreationMachine {
    pub machine: i64,
    pub mac: String,
    pub name: String,
    pub role: String,
    /// Its boot state (`never_seen` … `ready`, or `failed`).
    pub state: String,
    /// Since when (RFC 3339), '' before its first request.
    pub since: String,
    /// What it waits for or why it failed, in words; '' when it moves along.
    pub waiting: String,
}

/// A cluster Pangea creates (or created), and how its creation goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ClusterCreation {
    pub name: String,
    /// `creating`, `created` or `failed`.
    pub state: String,
    /// The creation job (see `/api/v1/jobs/{id}` in the jobs list).
    pub job: String,
    /// What the job does now, in words.
    pub step: String,
    /// Why it failed, in words.
    pub error: Option<String>,
    pub template: String,
    pub machines: Vec<CreationMachine>,
    /// The power run that powered the machines on, if Pangea powered any.
    pub power_run: Option<String>,
    /// Whether the cluster is registered (its control plane answered).
    pub registered: bool,
    /// Kubelet certificate requests Pangea left pending, each with who asked and why (each is
    /// audited too).
    pub refused: Vec<String>,
    pub created_by: String,
    pub created_at: String,
}

/// Destroying a cluster Pangea created: its name, typed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DestroyInput {
    pub confirm: String,
}
