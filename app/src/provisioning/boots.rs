//! Boots as machines live them: every request to the boot listener is a [`BootEvent`], each
//! machine has a [`BootState`] derived from its events, and MACs that ask to boot without being
//! in the inventory are [`Discovered`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a machine is on its way from power-on to a Ready node. Each event that marks a step
/// moves its machine to that step, so a new boot (`Pxe`) starts the way again; `Joined` and
/// `Ready` are reached through events the clusters area will record when the machine's node
/// registers and turns Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BootState {
    NeverSeen,
    /// Asked for `/boot.ipxe`.
    Pxe,
    /// Was served its iPXE script (or GRUB menu).
    Script,
    /// Fetched its kernel or initrd from `/assets`.
    Assets,
    /// Was served its Ignition config.
    Ignition,
    /// Fetched a config with `os=installed`, or reported `stage=installed` (or `done`) to `/metadata`.
    Installed,
    Joined,
    Ready,
    /// A request got 404 or a template failed; the reason is kept.
    Failed,
}

impl BootState {
    pub const ALL: [BootState; 9] = [
        BootState::NeverSeen,
        BootState::Pxe,
        BootState::Script,
        BootState::Assets,
        BootState::Ignition,
        BootState::Installed,
        BootState::Joined,
        BootState::Ready,
        BootState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BootState::NeverSeen => "never_seen",
            BootState::Pxe => "pxe",
            BootState::Script => "script",
            BootState::Assets => "assets",
            BootState::Ignition => "ignition",
            BootState::Installed => "installed",
            BootState::Joined => "joined",
            BootState::Ready => "ready",
            BootState::Failed => "failed",
        }
    }

    /// As people read it.
    pub fn label(self) -> &'static str {
        match self {
            BootState::NeverSeen => "never seen",
            BootState::Pxe => "PXE",
            BootState::Script => "iPXE script served",
            BootState::Assets => "kernel/initrd fetched",
            BootState::Ignition => "Ignition served",
            BootState::Installed => "installed",
            BootState::Joined => "joined",
            BootState::Ready => "Ready",
            BootState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<BootState> {
        BootState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One request to the boot listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BootEvent {
    pub id: i64,
    /// RFC 3339, UTC, microseconds.
    pub at: String,
    /// The machine it is attributed to, when known.
    pub mac: Option<String>,
    pub uuid: Option<String>,
    /// The path asked for: `/boot.ipxe`, `/ipxe`, `/ignition`, `/assets/vmlinuz`, …
    pub endpoint: String,
    pub labels: BTreeMap<String, String>,
    pub group: Option<String>,
    pub profile: Option<String>,
    pub status: u16,
    pub bytes: u64,
    pub duration_us: u64,
    pub client: String,
    /// SHA-256 of the config served; `GET /api/v1/provisioning/served/{sha256}` returns it.
    pub sha256: Option<String>,
    /// Why nothing was served, in words.
    pub reason: Option<String>,
    /// The state this event moved its machine to.
    pub step: Option<BootState>,
}

/// A machine's state, since when, and the reason when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BootStatus {
    pub state: BootState,
    pub reason: Option<String>,
    pub since: String,
    pub last_seen: String,
}

/// A machine's boot timeline: its state and its recent events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Timeline {
    pub mac: String,
    /// `None`: never seen.
    pub status: Option<BootStatus>,
    pub events: Vec<BootEvent>,
}

/// A MAC that asked to boot and is not in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Discovered {
    pub mac: String,
    pub uuid: Option<String>,
    pub serial: Option<String>,
    pub hostname: Option<String>,
    pub arch: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub requests: i64,
}

/// Adds discovered machines to the inventory, all or none, each with the same role, cluster
/// and (optionally) a profile of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AdoptDiscovered {
    pub macs: Vec<String>,
    /// `controller` or `worker` (the default).
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    /// A profile for each of them; none: their cluster and role's default applies.
    #[serde(default)]
    pub profile: Option<String>,
}

/// Boots per minute over the last hour, for the machines list's chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BootActivity {
    /// Sixty buckets, oldest first.
    pub minutes: Vec<ActivityMinute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActivityMinute {
    /// The minute's start, RFC 3339.
    pub start: String,
    /// Boots started: `/boot.ipxe` requests.
    pub started: u32,
    /// Machines that reached `installed`.
    pub finished: u32,
    /// Requests that failed a machine.
    pub failed: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_from_their_names() {
        for s in BootState::ALL {
            assert_eq!(BootState::parse(s.as_str()), Some(s));
        }
        assert_eq!(BootState::parse("booting"), None);
        assert_eq!(serde_json::to_string(&BootState::NeverSeen).unwrap(), "\"never_seen\"");
    }

    #[test]
    fn states_are_ordered_along_the_way() {
        assert!(BootState::Pxe < BootState::Script && BootState::Ignition < BootState::Installed);
        assert!(BootState::Installed < BootState::Joined && BootState::Joined < BootState::Ready);
    }
}
