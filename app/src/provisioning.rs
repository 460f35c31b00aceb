//! Provisioning: profiles, groups and templates in Matchbox's JSON shapes, parsed and checked,
//! and what a machine would get; shared by the server and the pages.

pub mod boots;
#[cfg(feature = "ssr")]
pub mod drawn;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;

use crate::machines::mac::MacAddr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An id of a profile, group or template: Matchbox keeps each in a file of that name, so it is a
/// file name: letters, digits, `.`, `_` and `-`, not starting with a dot, at most 128 characters.
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a valid {what} id: use up to 128 letters, digits, '.', '_' or '-', not starting with '.'",
            id.chars().take(140).collect::<String>()
        ))
    }
}

/// What a machine boots: kernel, initrds and kernel arguments, and the templates it is given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub boot: NetBoot,
    /// The Ignition (or Butane) template served on `/ignition`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ignition_id: String,
    /// The generic template served on `/generic`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generic_id: String,
    /// Matchbox's deprecated cloud-config; kept so data round-trips, never served.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cloud_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NetBoot {
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub initrd: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
}

/// Which machines get which profile: every selector must equal a label of the request; the group
/// with the most selectors wins, and a group without selectors is the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Group {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub profile: String,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Template data, a JSON object.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Profile {
    pub fn check(&self) -> Result<(), String> {
        check_id("profile", &self.id)?;
        if !self.ignition_id.is_empty() {
            check_id("Ignition template", &self.ignition_id)?;
        }
        if !self.generic_id.is_empty() {
            check_id("generic template", &self.generic_id)?;
        }
        for text in std::iter::once(&self.boot.kernel).chain(&self.boot.initrd).chain(&self.boot.args) {
            if text.contains(['\n', '\r']) {
                return Err(format!("profile {}: kernel, initrd and args may not contain line breaks", self.id));
            }
        }
        Ok(())
    }
}

impl Group {
    /// Checks the ids and writes a `mac` selector in the form requests are matched in
    /// (`52:54:00:00:00:01`), as Matchbox does when it loads a group.
    pub fn normalize(mut self) -> Result<Group, String> {
        check_id("group", &self.id)?;
        check_id("profile", &self.profile).map_err(|e| format!("group {}: {e}", self.id))?;
        if let Some(mac) = self.selector.get_mut("mac") {
            let parsed: MacAddr = mac.parse().map_err(|e| format!("group {}: selector mac: {e}", self.id))?;
            *mac = parsed.to_string();
        }
        Ok(self)
    }

    /// The selectors as Matchbox orders groups of equal size: `k=v` pairs by key, joined by `,`.
    pub fn selector_string(&self) -> String {
        self.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }

    /// Whether every selector equals a label.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Which kind of template: Matchbox keeps them in two folders, so one id may name one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TemplateKind {
    /// Raw Ignition (`.ign`, `.ignition`), or a Butane template (anything else) that renders to one.
    Ignition,
    /// Any text, rendered and served on `/generic`.
    Generic,
}

impl TemplateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Ignition => "ignition",
            TemplateKind::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<TemplateKind> {
        match s {
            "ignition" => Some(TemplateKind::Ignition),
            "generic" => Some(TemplateKind::Generic),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TemplateFile {
    pub kind: TemplateKind,
    pub id: String,
    pub content: String,
}

/// Raw Ignition is served as it is (upgraded), never templated; Matchbox decides by the name.
pub fn is_raw_ignition(id: &str) -> bool {
    id.ends_with(".ign") || id.ends_with(".ignition")
}

/// A group's candidacy for a request, for "what will this machine get?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Candidate {
    pub group: String,
    pub selectors: usize,
    /// Why it lost or did not match; empty for the group that serves the request.
    pub reason: String,
}

/// One endpoint's answer to a machine: what it would be sent, or why it gets 404.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Served {
    pub body: Option<String>,
    pub missing: Option<String>,
}

/// What a machine with these labels gets from the boot listener, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Explanation {
    /// The labels as the boot listener reads them (the MAC normalised).
    pub labels: BTreeMap<String, String>,
    pub group: Option<String>,
    /// Every group that could have matched, best first.
    pub candidates: Vec<Candidate>,
    pub profile: Option<Profile>,
    pub ipxe: Served,
    pub ignition: Served,
    pub generic: Served,
    pub metadata: Served,
}

/// A problem with one file of an import (`groups/node-0001.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Finding {
    pub file: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// What an import of a Matchbox data directory found and, unless it was a dry run or had
/// errors, wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportOutcome {
    pub profiles: usize,
    pub groups: usize,
    pub templates: usize,
    /// Files that stop the import; nothing is written while there is one.
    pub errors: Vec<Finding>,
    /// What Matchbox would serve as 404 (a group naming a missing profile, ...): imported anyway.
    pub warnings: Vec<Finding>,
    pub committed: bool,
}

/// A template checked as the boot listener would serve it to one machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TemplatePreview {
    /// What is wrong: a parse error, or a render error for the sample machine, with line and column.
    pub problem: Option<String>,
    /// What the sample machine would be sent.
    pub output: Option<String>,
    /// The group whose data the sample machine renders with.
    pub group: Option<String>,
}

/// A machine of the inventory given a profile of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MachineProfile {
    /// Lowercase colon form.
    pub mac: String,
    pub profile: String,
}

/// The profile inventory machines of a cluster and role get when they have none of their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DefaultProfile {
    /// `""` for machines in no cluster.
    #[serde(default)]
    pub cluster: String,
    /// `controller` or `worker`.
    pub role: String,
    pub profile: String,
}

/// What a machine's page shows of its boot profile, and the profiles it may be given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootProfileChoice {
    /// The machine's own profile, if it has one.
    pub own: Option<String>,
    /// The default profile of the machine's cluster and role, if one is set.
    pub default: Option<String>,
    /// Every profile's id, in catalog order.
    pub profiles: Vec<String>,
}

impl BootProfileChoice {
    /// The choice for the machine `mac` in `cluster` (`""` for none) with `role`.
    pub fn of(catalog: &Catalog, mac: &str, cluster: &str, role: &str) -> Self {
        Self {
            own: catalog.machine_profiles.iter().find(|m| m.mac == mac).map(|m| m.profile.clone()),
            default: catalog
                .defaults
                .iter()
                .find(|d| d.cluster == cluster && d.role == role)
                .map(|d| d.profile.clone()),
            profiles: catalog.profiles.iter().map(|p| p.id.clone()).collect(),
        }
    }
}

/// The id under which an inventory machine is served as a group of its own: it sorts after every
/// group id a person can give, so a hand-written group with the same selectors wins.
pub fn inventory_group_id(mac: &str) -> String {
    format!("~inventory:{mac}")
}

/// Everything the provisioner serves, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub profiles: Vec<Profile>,
    pub groups: Vec<Group>,
    pub templates: Vec<TemplateFile>,
    /// Inventory machines with a profile of their own.
    #[serde(default)]
    pub machine_profiles: Vec<MachineProfile>,
    /// Default profiles per cluster and role.
    #[serde(default)]
    pub defaults: Vec<DefaultProfile>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machines_boot_profile_choice_names_its_own_profile_its_default_and_every_profile() {
        let profile = |id: &str| Profile { id: id.into(), ..Profile::default() };
        let catalog = Catalog {
            profiles: vec![profile("worker"), profile("controller"), profile("rescue")],
            machine_profiles: vec![MachineProfile { mac: "52:54:00:00:00:01".into(), profile: "rescue".into() }],
            defaults: vec![
                DefaultProfile { cluster: "prod".into(), role: "worker".into(), profile: "worker".into() },
                DefaultProfile { cluster: "".into(), role: "worker".into(), profile: "controller".into() },
            ],
            ..Catalog::default()
        };
        let own = BootProfileChoice::of(&catalog, "52:54:00:00:00:01", "prod", "worker");
        assert_eq!(own.own.as_deref(), Some("rescue"));
        assert_eq!(own.default.as_deref(), Some("worker"));
        assert_eq!(own.profiles, ["worker", "controller", "rescue"]);
        let unclustered = BootProfileChoice::of(&catalog, "52:54:00:00:00:02", "", "worker");
        assert_eq!((unclustered.own, unclustered.default.as_deref()), (None, Some("controller")));
        let controller = BootProfileChoice::of(&catalog, "52:54:00:00:00:02", "prod", "controller");
        assert_eq!(controller.default, None);
    }

    #[test]
    fn ids_are_file_names() {
        for good in ["worker.yaml.tmpl", "default.ign", "node-0001", "a_b"] {
            assert!(check_id("template", good).is_ok(), "{good}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(129)] {
            let err = check_id("template", bad).unwrap_err();
            assert!(err.contains("not a valid template id"), "{err}");
        }
    }

    #[test]
    fn a_group_mac_selector_is_stored_in_matching_form() {
        let group: Group = serde_json::from_str(
            r#"{"id":"n1","profile":"worker","selector":{"mac":"52-54-00-00-03-E8","os":"installed"}}"#,
        )
        .unwrap();
        let group = group.normalize().unwrap();
        assert_eq!(group.selector["mac"], "52:54:00:00:03:e8");
        assert_eq!(group.selector_string(), "mac=52:54:00:00:03:e8,os=installed");
        let bad: Group = serde_json::from_str(r#"{"id":"n1","profile":"w","selector":{"mac":"zz"}}"#).unwrap();
        assert!(bad.normalize().unwrap_err().contains("\"zz\" is not a MAC address"));
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = serde_json::from_str::<Profile>(r#"{"id":"p","kernal":"/x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `kernal`"), "{err}");
    }
}
