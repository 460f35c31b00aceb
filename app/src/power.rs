//! Machines' BMCs and power, over Redfish: what a machine's BMC is, what state its power is in,
//! and what a person may ask of it.

#[cfg(feature = "ssr")]
pub mod drawn;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;

use serde::{Deserialize, Serialize};

/// A machine's BMC as a person gives it. The password is kept sealed and never shown again; an
/// update without one keeps the stored password while the BMC's origin, user and trust stay the
/// same. Its `Debug` leaves the password out.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BmcInput {
    /// The BMC's Redfish service, `https://host[:port]` (the path `/redfish/v1` is Redfish's).
    pub url: String,
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    /// A PEM CA bundle the BMC's certificate must chain to ('' for the system's roots).
    #[serde(default)]
    pub ca_pem: String,
    /// Accept any certificate (shown as a warning wherever the BMC is).
    #[serde(default)]
    pub verify_off: bool,
}

impl std::fmt::Debug for BmcInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcInput")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("verify_off", &self.verify_off)
            .finish_non_exhaustive()
    }
}

/// A machine's BMC as Pangea keeps it (never its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Bmc {
    pub url: String,
    pub username: String,
    /// Whether a CA bundle was given.
    pub has_ca: bool,
    pub verify_off: bool,
    /// The Redfish system of this machine, found when the BMC was checked.
    pub system: String,
    pub power: PowerStatus,
    /// What a person should know, in words ("its certificate is not checked").
    pub warnings: Vec<String>,
}

/// A machine's power as last read from its BMC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PowerStatus {
    pub state: PowerState,
    /// Why it is unknown, or what is under way, in words ('' for none).
    pub reason: String,
    /// When it was read (RFC 3339, UTC; '' before the first read).
    pub read_at: String,
}

/// Redfish's `PowerState`, and "unknown" when the BMC could not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    On,
    Off,
    PoweringOn,
    PoweringOff,
    #[default]
    Unknown,
}

impl PowerState {
    /// From Redfish's `PowerState` (`On`, `Off`, `PoweringOn`, `PoweringOff`, `Paused`).
    pub fn from_redfish(text: &str) -> PowerState {
        match text {
            "On" => PowerState::On,
            "Off" => PowerState::Off,
            "PoweringOn" => PowerState::PoweringOn,
            "PoweringOff" => PowerState::PoweringOff,
            _ => PowerState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::PoweringOn => "powering_on",
            PowerState::PoweringOff => "powering_off",
            PowerState::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> PowerState {
        [PowerState::On, PowerState::Off, PowerState::PoweringOn, PowerState::PoweringOff]
            .into_iter()
            .find(|s| s.as_str() == text)
            .unwrap_or(PowerState::Unknown)
    }

    /// In words, for a person.
    pub fn words(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::PoweringOn => "powering on",
            PowerState::PoweringOff => "powering off",
            PowerState::Unknown => "unknown",
        }
    }
}

/// What a person may ask of a machine's power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    On,
    GracefulShutdown,
    ForceOff,
    GracefulRestart,
    ForceRestart,
    /// Off, then on (Redfish's `PowerCycle`, or `ForceOff` then `On` where the BMC has none).
    PowerCycle,
    /// Boot from the network once (a boot source override to PXE for the next boot only), then
    /// restart (or power on, when off).
    NetworkBootOnce,
}

impl PowerAction {
    pub const ALL: [PowerAction; 7] = [
        PowerAction::On,
        PowerAction::GracefulShutdown,
        PowerAction::ForceOff,
        PowerAction::GracefulRestart,
        PowerAction::ForceRestart,
        PowerAction::PowerCycle,
        PowerAction::NetworkBootOnce,
    ];

    /// From [`Self::as_str`].
    pub fn parse(text: &str) -> Option<PowerAction> {
        PowerAction::ALL.into_iter().find(|a| a.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::GracefulShutdown => "graceful_shutdown",
            PowerAction::ForceOff => "force_off",
            PowerAction::GracefulRestart => "graceful_restart",
            PowerAction::ForceRestart => "force_restart",
            PowerAction::PowerCycle => "power_cycle",
            PowerAction::NetworkBootOnce => "network_boot_once",
        }
    }

    /// In words: "power on", "boot from network once".
    pub fn words(self) -> &'static str {
        match self {
            PowerAction::On => "power on",
            PowerAction::GracefulShutdown => "graceful shutdown",
            PowerAction::ForceOff => "force off",
            PowerAction::GracefulRestart => "graceful restart",
            PowerAction::ForceRestart => "force restart",
            PowerAction::PowerCycle => "power cycle",
            PowerAction::NetworkBootOnce => "boot from network once",
        }
    }

    /// Whether it cuts power at once (the page asks before it sends it).
    pub fn abrupt(self) -> bool {
        matches!(self, PowerAction::ForceOff | PowerAction::PowerCycle | PowerAction::ForceRestart)
    }

    /// The state the machine is in once the action is done.
    pub fn reaches(self) -> PowerState {
        match self {
            PowerAction::GracefulShutdown | PowerAction::ForceOff => PowerState::Off,
            _ => PowerState::On,
        }
    }
}

/// A power action asked of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PowerRequest {
    pub action: PowerAction,
}

/// A machine's hardware as its BMC told it at the last read. A part the BMC does not tell of is
/// `None`, and is never compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Hardware {
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub bios_version: String,
    /// The BMC's own firmware version.
    pub bmc_firmware: String,
    /// Logical CPUs (hardware threads).
    pub cpus: Option<u32>,
    pub processors: Option<Vec<Processor>>,
    /// Memory installed, in GiB.
    pub memory_gib: Option<u32>,
    pub memory: Option<Vec<MemoryModule>>,
    pub disks: Option<Vec<Disk>>,
    pub nics: Option<Vec<Nic>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Processor {
    pub slot: String,
    pub model: String,
    pub cores: u32,
    pub threads: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MemoryModule {
    /// Where it sits: `DeviceLocator` ("A1"), else its Redfish id.
    pub slot: String,
    pub size_mib: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Disk {
    /// Its Redfish id, under its storage controller.
    pub id: String,
    pub name: String,
    pub model: String,
    pub serial: String,
    pub size_bytes: u64,
    /// `SSD` or `HDD` ('' when not told).
    pub media: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Nic {
    pub id: String,
    /// Lowercase, colon-separated.
    pub mac: String,
    /// `LinkUp`, `LinkDown`, `NoLink` ('' when not told).
    pub link: String,
}

/// One difference between two reads of a machine's hardware: "DIMM A2", "64 GiB" → "absent".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HardwareChange {
    pub part: String,
    pub before: String,
    pub after: String,
    /// When the read that saw it was made (RFC 3339, UTC).
    pub seen_at: String,
}

impl HardwareChange {
    /// "DIMM A2: 64 GiB → absent".
    pub fn words(&self) -> String {
        format!("{}: {} → {}", self.part, self.before, self.after)
    }
}

/// A machine's hardware as last read, and the changes seen since a person last acknowledged them
/// (the "changed" badge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HardwareRecord {
    pub hardware: Hardware,
    /// When it was last read whole (RFC 3339, UTC; '' before the first read).
    pub read_at: String,
    /// Why the last read failed, in words ('' when it did not).
    pub problem: String,
    pub changes: Vec<HardwareChange>,
}

/// A size in bytes for a person: "480 GB", "1.9 TB" (disks are sold in powers of ten).
pub fn disk_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000_000 => format!("{:.1} TB", b as f64 / 1e12),
        b if b >= 1_000_000_000 => format!("{} GB", b / 1_000_000_000),
        b => format!("{} MB", b / 1_000_000),
    }
}

/// A memory size in MiB for a person: "64 GiB", "512 MiB".
pub fn memory_size(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) { format!("{} GiB", mib / 1024) } else { format!("{mib} MiB") }
}

/// A power action for many machines at once, as a durable job: a power run. Power-ons are paced
/// by what limits a site (see [`Pacing`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PowerRunInput {
    pub action: PowerAction,
    /// The machines, by id, in this order; or, when empty, every machine `search` finds (as the
    /// machine list searches).
    #[serde(default)]
    pub machines: Vec<i64>,
    #[serde(default)]
    pub search: Option<String>,
    #[serde(default)]
    pub pacing: Pacing,
}

/// How a power run is paced. Each limit is off at 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Pacing {
    /// The label whose value groups machines for the power budget (a rack, a PDU: `rack`);
    /// '' for one group of every machine.
    #[serde(default)]
    pub group_by: String,
    /// The power budget: at most `per_group` actions per group in any `per_seconds`.
    #[serde(default)]
    pub per_group: u32,
    #[serde(default)]
    pub per_seconds: u32,
    /// The boot-network budget: at most this many machines between their power-on and their
    /// first boot request.
    #[serde(default)]
    pub booting_at_once: u32,
}

/// Where one machine of a power run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStep {
    /// Not asked yet (its budget, or a pause, holds it).
    Waiting,
    /// Asked; its power not there yet.
    Sent,
    /// On, and not yet at a boot step (it holds a place in the boot-network budget).
    Booting,
    Done,
    Failed,
    /// Not asked: the run was cancelled first.
    Skipped,
}

impl RunStep {
    pub fn words(self) -> &'static str {
        match self {
            RunStep::Waiting => "waiting",
            RunStep::Sent => "asked",
            RunStep::Booting => "booting",
            RunStep::Done => "done",
            RunStep::Failed => "failed",
            RunStep::Skipped => "skipped",
        }
    }
}

/// One machine of a power run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RunMachine {
    pub id: i64,
    pub mac: String,
    /// Its power-budget group: its `group_by` label's value ('' when it has none).
    pub group: String,
    pub step: RunStep,
    /// What happened, or why it waits or failed, in words.
    pub reason: String,
    /// When it was asked (RFC 3339, UTC; '' before).
    pub sent_at: String,
}

/// A power run's plan: the order, when each machine is expected to start, and how long the
/// whole run is expected to take, with what that estimate assumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PowerRunPlan {
    pub action: PowerAction,
    pub machines: Vec<PlannedMachine>,
    pub estimated_seconds: u64,
    /// Which limit sets the pace, and what the estimate assumes, in words.
    pub notes: Vec<String>,
    /// The boot listener's own load, measured, beside the budgets.
    #[serde(default)]
    pub boot_listener: ListenerLoad,
}

/// The boot listener's load over the last hour, as it measured it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ListenerLoad {
    /// Boot requests answered in the last hour.
    pub requests: u64,
    /// Their mean answer time, in microseconds (an asset's transfer not included).
    pub mean_answer_us: u64,
    /// The most answered in a second, averaged over the busiest 10 s.
    pub peak_per_second: u64,
    /// What it can answer in a second at that answer time on its cores; none before a request.
    pub capacity_per_second: Option<u64>,
    pub cores: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PlannedMachine {
    pub id: i64,
    pub mac: String,
    pub group: String,
    /// Seconds after the start at which it is expected to be asked.
    pub starts_at: u64,
}

/// A power run as it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PowerRun {
    pub job: String,
    /// `running`, `paused`, `succeeded` (every machine done), `failed` (some failed, or the run
    /// could not go on: see `error`), or `cancelled`.
    pub state: String,
    pub action: Option<PowerAction>,
    pub pacing: Pacing,
    pub machines: Vec<RunMachine>,
    /// The most actions seen in one group within any `per_seconds` (0 without a power budget).
    pub largest_burst: u32,
    pub error: Option<String>,
    /// How many times another replica took it over.
    pub resumed: u32,
}

/// A discovery by BMC: the BMCs to ask for their systems, and how to sign in to them (the same
/// user on each, as racks are usually set up). The password is kept sealed while it runs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DiscoveryInput {
    /// Addresses, ranges and URLs, separated by spaces, commas or lines: `10.0.0.10`,
    /// `10.0.0.10-10.0.0.40` or `10.0.0.10-40`, `10.0.0.0/26`, `https://bmc-7.example.com:8443`
    /// (`https://` when no scheme is given). At most 1024 BMCs.
    pub addresses: String,
    pub username: String,
    pub password: String,
    /// Accept any certificate.
    #[serde(default)]
    pub verify_off: bool,
    /// A PEM CA bundle the BMCs' certificates chain to ('' for the system's roots).
    #[serde(default)]
    pub ca_pem: String,
}

impl std::fmt::Debug for DiscoveryInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryInput")
            .field("addresses", &self.addresses)
            .field("username", &self.username)
            .field("verify_off", &self.verify_off)
            .finish_non_exhaustive()
    }
}

/// A discovery as it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Discovery {
    pub job: String,
    /// `running`, `succeeded` or `failed` (see `error`).
    pub state: String,
    /// BMCs asked so far, of `total`.
    pub done: u32,
    pub total: u32,
    /// The systems found, by BMC address.
    pub found: Vec<FoundSystem>,
    /// The addresses that gave no system, and why.
    pub missed: Vec<DiscoveryMiss>,
    pub error: Option<String>,
}

/// A system a BMC told of, offered as a machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FoundSystem {
    /// The system's URL: the BMC's origin and the system's path.
    pub bmc_url: String,
    /// The MAC offered as the machine's: its first NIC with a link up, else its first NIC.
    pub mac: String,
    /// Every NIC's MAC.
    pub macs: Vec<String>,
    pub uuid: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub cpus: Option<u32>,
    pub memory_gib: Option<u32>,
    pub power: PowerState,
    /// The id of the machine that already has this MAC, if one does (not offered again).
    pub machine: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DiscoveryMiss {
    pub address: String,
    pub reason: String,
}
