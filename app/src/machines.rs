//! The machines inventory: the bare-metal machines Pangea knows by MAC address.
//!
//! Types here are shared by the browser and the server; `ssr` holds the service interface the
//! server implements, and `server_fns` the thin endpoints the GUI calls.

#[cfg(feature = "ssr")]
pub mod drawn;
pub mod fields;
pub mod mac;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;

use crate::error::{AppError, FieldError};
use fields::{ClusterName, Hostname, Labels, Role, Serial, SystemUuid};
use mac::MacAddr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A stored machine, as the GUI and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Machine {
    pub id: i64,
    /// Lowercase colon form, e.g. `52:54:00:12:34:56`.
    pub mac: String,
    pub hostname: Option<String>,
    pub uuid: Option<String>,
    pub serial: Option<String>,
    pub role: Role,
    pub labels: BTreeMap<String, String>,
    pub cluster: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl Machine {
    pub fn labels_text(&self) -> String {
        self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }
}

/// What a person or a script submits to create or replace a machine. Every field is text, so
/// that a bad value reaches [`MachineInput::validate`] and gets a message, not a decode error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MachineInput {
    pub mac: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    /// `controller` or `worker` (the default).
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub cluster: Option<String>,
}

/// A machine whose every field has been parsed: the only thing the store accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSpec {
    pub mac: MacAddr,
    pub hostname: Option<Hostname>,
    pub uuid: Option<SystemUuid>,
    pub serial: Option<Serial>,
    pub role: Role,
    pub labels: Labels,
    pub cluster: Option<ClusterName>,
}

fn optional<T: std::str::FromStr<Err = String>>(
    value: &Option<String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let text = value.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    text.parse().map_err(|message| errors.push(FieldError { field: field.into(), message })).ok()
}

impl MachineInput {
    /// Parses every field, reporting all bad ones at once.
    pub fn validate(&self) -> Result<MachineSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mac = self
            .mac
            .trim()
            .parse::<MacAddr>()
            .map_err(|e| {
                let message = if self.mac.trim().is_empty() {
                    "A MAC address is required, such as 52:54:00:12:34:56.".to_string()
                } else {
                    e.to_string()
                };
                errors.push(FieldError { field: "mac".into(), message })
            })
            .ok();
        let hostname = optional(&self.hostname, "hostname", &mut errors);
        let uuid = optional(&self.uuid, "uuid", &mut errors);
        let serial = optional(&self.serial, "serial", &mut errors);
        let cluster = optional(&self.cluster, "cluster", &mut errors);
        let role = self
            .role
            .as_deref()
            .unwrap_or_default()
            .parse::<Role>()
            .map_err(|message| errors.push(FieldError { field: "role".into(), message }))
            .unwrap_or_default();
        let labels = Labels::from_pairs(&self.labels)
            .map_err(|message| errors.push(FieldError { field: "labels".into(), message }))
            .unwrap_or_default();
        match mac {
            Some(mac) if errors.is_empty() => Ok(MachineSpec { mac, hostname, uuid, serial, role, labels, cluster }),
            _ => Err(errors),
        }
    }
}

impl From<Vec<FieldError>> for AppError {
    fn from(fields: Vec<FieldError>) -> Self {
        let message = fields.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join(" ");
        AppError::Invalid { message, fields }
    }
}

/// The column a machine list is ordered by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    Mac,
    Hostname,
    Role,
    Cluster,
    CreatedAt,
    UpdatedAt,
}

impl SortKey {
    pub const ALL: [SortKey; 6] =
        [SortKey::Mac, SortKey::Hostname, SortKey::Role, SortKey::Cluster, SortKey::CreatedAt, SortKey::UpdatedAt];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Mac => "mac",
            SortKey::Hostname => "hostname",
            SortKey::Role => "role",
            SortKey::Cluster => "cluster",
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One page request of the machine list. `search` matches MAC, host name and labels as
/// substrings, or exactly one label when written `key=value`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
pub struct MachineQuery {
    #[serde(default)]
    pub search: Option<String>,
    #[serde(default)]
    pub sort: SortKey,
    #[serde(default)]
    pub descending: bool,
    /// The `next` cursor of the previous page.
    #[serde(default)]
    pub after: Option<String>,
    /// 1 to 500; 50 when absent.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only machines in this boot state.
    #[serde(default)]
    pub state: Option<crate::provisioning::boots::BootState>,
    /// Only machines of this class (its search and `search` must both match).
    #[serde(default)]
    pub class: Option<String>,
}

impl MachineQuery {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(Self::DEFAULT_LIMIT).clamp(1, Self::MAX_LIMIT)
    }
}

/// A machine class: a saved search over labels and hardware (`cpus>=32 and memory_gib>=256 and
/// disks.ssd>=2`) that names a kind of machine, to pick machines by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MachineClass {
    pub name: String,
    /// The search, as the machine list takes it.
    pub query: String,
    pub description: String,
    /// How many machines it matches now.
    pub members: u64,
    pub updated_at: String,
}

/// A machine class as a person writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MachineClassInput {
    pub query: String,
    #[serde(default)]
    pub description: String,
}

impl MachineClassInput {
    pub const MAX_DESCRIPTION: usize = 500;
}

/// One page of machines and the cursor of the next page, if there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MachinePage {
    pub items: Vec<Machine>,
    pub next: Option<String>,
    /// The boot state of each listed machine that has been seen, by MAC.
    #[serde(default)]
    pub states: BTreeMap<String, crate::provisioning::boots::BootStatus>,
    /// The power of each listed machine that has a BMC, by MAC.
    #[serde(default)]
    pub power: BTreeMap<String, crate::power::PowerStatus>,
}

/// The bulk-import formats Pangea reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    /// Decide from the content: tfvars when it holds the Tectonic or Typhoon variables, else CSV.
    #[default]
    Auto,
    Csv,
    Tectonic,
    Typhoon,
}

impl ImportFormat {
    pub const ALL: [ImportFormat; 4] =
        [ImportFormat::Auto, ImportFormat::Csv, ImportFormat::Tectonic, ImportFormat::Typhoon];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::Auto => "auto",
            ImportFormat::Csv => "csv",
            ImportFormat::Tectonic => "tectonic",
            ImportFormat::Typhoon => "typhoon",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ImportFormat::Auto => "Detect from content",
            ImportFormat::Csv => "CSV (mac,hostname,role,labels,cluster,uuid,serial)",
            ImportFormat::Tectonic => "Tectonic terraform.tfvars",
            ImportFormat::Typhoon => "Typhoon terraform.tfvars",
        }
    }

    pub fn parse(s: &str) -> Option<ImportFormat> {
        ImportFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// The outcome of one line of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportLine {
    /// 1-based line number in the submitted text.
    pub line: u32,
    pub mac: Option<String>,
    pub hostname: Option<String>,
    pub role: Option<Role>,
    /// Empty when the line will create a machine.
    pub errors: Vec<String>,
}

/// What an import would do (or did): every line, and whether any has an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub format: ImportFormat,
    pub lines: Vec<ImportLine>,
    pub creatable: u32,
    pub errors: u32,
    /// True when the machines were written; an import with any error writes nothing.
    pub committed: bool,
}

/// How far an import started from the GUI has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportProgress {
    Checking { done: u32, total: u32 },
    Previewed { report: ImportReport },
    Committing { done: u32, total: u32 },
    Committed { report: ImportReport },
    Failed { error: AppError },
}
