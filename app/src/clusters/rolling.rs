//! Rolling operations: one change applied across a cluster's nodes one safe step at a time,
//! each step gated on the cluster's health.

use serde::{Deserialize, Serialize};

/// The change a rolling operation makes to each node, through the node's machine's BMC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum RollingChange {
    /// A graceful restart (the OS shuts down, then the machine starts again).
    Restart,
    /// Off, then on.
    PowerCycle,
    /// Installed again from the network (boot from network once, then a restart), with the
    /// cluster's template or a changed one (a new Kubernetes version, a new OS): for clusters
    /// Pangea created.
    Reprovision,
}

impl RollingChange {
    pub const ALL: [RollingChange; 3] = [RollingChange::Restart, RollingChange::PowerCycle, RollingChange::Reprovision];

    pub fn words(self) -> &'static str {
        match self {
            RollingChange::Restart => "restart",
            RollingChange::PowerCycle => "power cycle",
            RollingChange::Reprovision => "reprovision",
        }
    }

    /// Its name in the API (`restart`, `power_cycle`).
    pub fn as_str(self) -> &'static str {
        match self {
            RollingChange::Restart => "restart",
            RollingChange::PowerCycle => "power_cycle",
            RollingChange::Reprovision => "reprovision",
        }
    }

    pub fn parse(text: &str) -> Option<RollingChange> {
        RollingChange::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// What a person asks for: the change, the nodes, and how carefully it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RollingInput {
    pub change: RollingChange,
    /// Which nodes, as a label selector (`rack=r1`; `node-role.kubernetes.io/control-plane` for
    /// the control plane, `!node-role.kubernetes.io/control-plane` for the workers); every node
    /// when absent.
    #[serde(default)]
    pub nodes: Option<String>,
    /// How many workers may be out at once; 1 when absent. Control-plane nodes always go one at a
    /// time, and never together with workers.
    #[serde(default)]
    pub max_unavailable: Option<u32>,
    /// How long each step's nodes must stay healthy once back before the next step starts,
    /// in seconds; 60 when absent.
    #[serde(default)]
    pub soak_seconds: Option<u32>,
    /// The severities of alerts whose firing holds the operation; `critical` when absent.
    #[serde(default)]
    pub alert_severities: Option<Vec<String>>,
    /// Wait for a person (a resume) before each control-plane node.
    #[serde(default)]
    pub approve_control_plane: bool,
    /// For a reprovision: the cluster's template with what changes (`kubernetes`, `os`,
    /// `install_disk`, `ssh_keys`); the template the nodes have now when absent (installed again
    /// as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// One step of a plan: nodes changed together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PlannedStep {
    /// `control-plane` or `worker`.
    pub role: String,
    pub nodes: Vec<String>,
}

/// A check made before each step and throughout its soak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Gate {
    pub name: String,
    /// What it checks; or, when it cannot be checked for this cluster, why.
    pub detail: String,
    pub checked: bool,
}

/// What a rolling operation would do, before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RollingPlan {
    pub cluster: String,
    pub change: RollingChange,
    /// In order: the control-plane nodes one by one, then the workers.
    pub steps: Vec<PlannedStep>,
    pub max_unavailable: u32,
    pub soak_seconds: u32,
    pub gates: Vec<Gate>,
    /// How long it should take, in seconds, and what that assumes.
    pub estimate_seconds: u64,
    pub estimate_assumes: String,
    /// What stands in the way, in words: it does not start while there is any.
    pub problems: Vec<String>,
}

/// Where one node of an operation stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RollingNode {
    pub name: String,
    pub role: String,
    /// Its inventory machine.
    pub machine: i64,
    pub mac: String,
    /// `waiting`, `draining`, `changing`, `rejoining`, `soaking`, `done`.
    pub step: String,
}

/// A rolling operation as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RollingOperation {
    pub job: String,
    pub cluster: String,
    pub change: RollingChange,
    /// `running`, `paused`, `succeeded` or `failed`.
    pub state: String,
    /// What it does now, in words.
    pub step: String,
    /// Why it is paused: the gate that failed and why, a step that failed, or the approval it
    /// waits for. Resume to go on (the gates are checked again first).
    pub held: Option<String>,
    pub nodes: Vec<RollingNode>,
    pub plan: Vec<PlannedStep>,
    pub error: Option<String>,
    /// How many times another replica took it over.
    pub resumed: u32,
    /// For a reprovision that has ended: the nodes it installed again, which a roll back
    /// installs with the template they had before.
    #[serde(default)]
    pub rollback: Vec<String>,
}

/// What a person asks of a running operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Steer {
    Pause,
    Resume,
    Cancel,
}

impl Steer {
    pub fn parse(text: &str) -> Option<Steer> {
        match text {
            "pause" => Some(Steer::Pause),
            "resume" => Some(Steer::Resume),
            "cancel" => Some(Steer::Cancel),
            _ => None,
        }
    }
}
