//! The home page: the fleet at a glance. Machines by boot state and by power state, clusters
//! with their health and firing alerts, the jobs that run, and the last failures, each with its
//! reason and a link to where it happened.

#[cfg(feature = "ssr")]
pub mod drawn;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;

use serde::{Deserialize, Serialize};

/// How many machines are in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StateCount {
    pub state: String,
    pub machines: u64,
}

/// A cluster at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ClusterGlance {
    pub name: String,
    /// Its health in words ("connected, 3 of 3 nodes Ready").
    pub health: String,
    /// Whether anything in it needs a look (not connected, a node not Ready).
    pub healthy: bool,
    /// Firing alerts, when its Alertmanager answered.
    pub firing: Option<u32>,
}

/// A job that runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RunningJob {
    pub kind: String,
    pub done: u32,
    pub total: u32,
    pub started_at: String,
    /// Where to follow it.
    pub link: String,
}

/// Something that failed lately, with why and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Failure {
    pub at: String,
    /// What failed ("machine 52:54:…", "power run").
    pub what: String,
    pub reason: String,
    pub link: String,
}

/// The fleet at a glance, as the signed-in person may see it (a section they may not see is
/// empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Fleet {
    pub by_boot_state: Vec<StateCount>,
    /// `no_bmc` for machines without one.
    pub by_power_state: Vec<StateCount>,
    pub clusters: Vec<ClusterGlance>,
    pub jobs: Vec<RunningJob>,
    pub failures: Vec<Failure>,
}
