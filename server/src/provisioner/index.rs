//! The boot index: everything the boot listener serves, in memory, rebuilt whole when the
//! catalog changes and swapped in atomically. A boot request reads it and never the database.

use super::gotemplate::{Template, go_text};
use super::store::BootMachine;
use super::{butane, ignition};
use app::machines::mac::MacAddr;
use app::provisioning::{
    Candidate, Catalog, DefaultProfile, Group, MachineProfile, Profile, TemplateKind, inventory_group_id,
    is_raw_ignition,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A request's labels: its query, first value per key; `mac` (any case of the key) only when it
/// parses, in the lowercase colon form. The key keeps its case: `MAC=` never matches a `mac`
/// selector, as in Matchbox.
pub fn labels_from_query(raw_query: &str) -> BTreeMap<String, String> {
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        first.entry(key.into_owned()).or_insert_with(|| value.into_owned());
    }
    first
        .into_iter()
        .filter_map(|(key, value)| {
            if !key.eq_ignore_ascii_case("mac") {
                return Some((key, value));
            }
            match value.parse::<MacAddr>() {
                Ok(mac) => Some((key, mac.to_string())),
                Err(_) => {
                    tracing::debug!(value = %value, "a boot request's mac label does not parse; ignoring it");
                    None
                }
            }
        })
        .collect()
}

/// Why a request got no answer: logged and shown in the console, never sent to the machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Miss {
    #[error("no group matches the labels and there is no default group")]
    NoGroup,
    #[error("group {group} names profile {profile}, which does not exist")]
    NoProfile { group: String, profile: String },
    #[error("profile {profile} has no {kind} template")]
    NoTemplateId { profile: String, kind: &'static str },
    #[error("profile {profile} names {kind} template {template}, which does not exist")]
    NoTemplate { profile: String, kind: &'static str, template: String },
    #[error("template {template}: {message}")]
    Render { template: String, message: String },
}

/// An Ignition template ready to serve.
enum IgnitionEntry {
    /// Raw Ignition: served the same to everyone, upgraded and serialised once.
    Raw(Result<Arc<str>, String>),
    /// A Butane template: rendered per request, then translated (translations are cached).
    Butane(Result<Template, String>),
}

pub struct BootIndex {
    /// The catalog version this index was built from.
    pub version: i64,
    profiles: HashMap<String, Profile>,
    /// Groups in Matchbox's order of preference: most selectors first, then by selector text, then id.
    groups: Vec<Group>,
    /// Positions in `groups` of the groups that select a MAC, by that MAC.
    by_mac: HashMap<String, Vec<usize>>,
    /// Positions in `groups` of the groups that select no MAC (the default among them).
    without_mac: Vec<usize>,
    ignition: HashMap<String, IgnitionEntry>,
    generic: HashMap<String, Result<Template, String>>,
    /// Butane translations by rendered text: the same machine asks for the same config often.
    translations: Mutex<HashMap<u64, Arc<str>>>,
    /// The inventory's MACs, and the MAC of each inventory machine with a UUID (lowercase).
    inventory: HashMap<String, ()>,
    mac_by_uuid: HashMap<String, String>,
}

/// How many Butane translations are kept before the cache starts over.
const TRANSLATION_CACHE: usize = 4096;

impl BootIndex {
    /// The index of `catalog`, with each inventory machine that has a profile (its own, or its
    /// cluster and role's default) served as a group selecting its MAC.
    pub fn build(version: i64, catalog: Catalog, machines: Vec<BootMachine>) -> BootIndex {
        let inventory = machines.iter().map(|m| (m.mac.clone(), ())).collect();
        let mac_by_uuid =
            machines.iter().filter(|m| !m.uuid.is_empty()).map(|m| (m.uuid.to_lowercase(), m.mac.clone())).collect();
        let mut groups = catalog.groups;
        groups.extend(inventory_groups(&catalog.machine_profiles, &catalog.defaults, machines));
        groups.sort_by(|a, b| {
            b.selector
                .len()
                .cmp(&a.selector.len())
                .then_with(|| a.selector_string().cmp(&b.selector_string()))
                .then_with(|| a.id.cmp(&b.id))
        });
        let mut by_mac: HashMap<String, Vec<usize>> = HashMap::new();
        let mut without_mac = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            match group.selector.get("mac") {
                Some(mac) => by_mac.entry(mac.clone()).or_default().push(i),
                None => without_mac.push(i),
            }
        }
        let mut ignition = HashMap::new();
        let mut generic = HashMap::new();
        for t in catalog.templates {
            match t.kind {
                TemplateKind::Ignition if is_raw_ignition(&t.id) => {
                    let served =
                        ignition::upgrade_raw(&t.content).map(|v| Arc::from(v.to_string())).map_err(|e| e.to_string());
                    ignition.insert(t.id, IgnitionEntry::Raw(served));
                }
                TemplateKind::Ignition => {
                    ignition
                        .insert(t.id, IgnitionEntry::Butane(Template::parse(&t.content).map_err(|e| e.to_string())));
                }
                TemplateKind::Generic => {
                    generic.insert(t.id, Template::parse(&t.content).map_err(|e| e.to_string()));
                }
            }
        }
        BootIndex {
            version,
            profiles: catalog.profiles.into_iter().map(|p| (p.id.clone(), p)).collect(),
            groups,
            by_mac,
            without_mac,
            ignition,
            generic,
            translations: Mutex::new(HashMap::new()),
            inventory,
            mac_by_uuid,
        }
    }

    /// Whether a machine with this MAC is in the inventory.
    pub fn in_inventory(&self, mac: &str) -> bool {
        self.inventory.contains_key(mac)
    }

    /// The MAC of the inventory machine with this UUID.
    pub fn mac_of_uuid(&self, uuid: &str) -> Option<&str> {
        self.mac_by_uuid.get(&uuid.to_lowercase()).map(String::as_str)
    }

    /// Why no group serves `labels`, in words: the labels, and what the nearest group (the one
    /// with the fewest unmet selectors) still needs.
    pub fn why_unmatched(&self, labels: &BTreeMap<String, String>) -> String {
        let sent: Vec<String> = labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={v}")).collect();
        let sent = if sent.is_empty() { "no labels".to_string() } else { sent.join(" ") };
        let with_mac = labels.get("mac").and_then(|mac| self.by_mac.get(mac)).map_or(&[][..], Vec::as_slice);
        let nearest = with_mac
            .iter()
            .chain(&self.without_mac)
            .map(|&i| &self.groups[i])
            .map(|g| (g, g.selector.iter().filter(|(k, v)| labels.get(*k) != Some(v)).collect::<Vec<_>>()))
            .min_by_key(|(_, unmet)| unmet.len());
        match nearest {
            Some((group, unmet)) => {
                let needs: Vec<String> = unmet.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("no group selects {sent}; the nearest group {} needs {}", group.id, needs.join(" "))
            }
            None => format!("no group selects {sent}, and there is no default group"),
        }
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The group that serves `labels`: of those whose every selector equals a label, the first in
    /// preference order. Only groups selecting the request's MAC, and those selecting no MAC, can
    /// match, so this looks at a handful of groups however many there are.
    pub fn select(&self, labels: &BTreeMap<String, String>) -> Option<&Group> {
        let with_mac = labels.get("mac").and_then(|mac| self.by_mac.get(mac)).map_or(&[][..], Vec::as_slice);
        let mut best: Option<usize> = None;
        for &i in with_mac.iter().chain(&self.without_mac) {
            if best.is_some_and(|b| b < i) {
                continue;
            }
            if self.groups[i].matches(labels) {
                best = Some(i);
            }
        }
        best.map(|i| &self.groups[i])
    }

    /// Every group that could have served `labels`, best first, with why each lost.
    pub fn candidates(&self, labels: &BTreeMap<String, String>) -> Vec<Candidate> {
        let winner = self.select(labels).map(|g| g.id.clone());
        let with_mac = labels.get("mac").and_then(|mac| self.by_mac.get(mac)).map_or(&[][..], Vec::as_slice);
        let mut positions: Vec<usize> = with_mac.iter().chain(&self.without_mac).copied().collect();
        positions.sort_unstable();
        positions
            .into_iter()
            .map(|i| {
                let g = &self.groups[i];
                let unmet: Vec<String> = g
                    .selector
                    .iter()
                    .filter(|(k, v)| labels.get(*k) != Some(v))
                    .map(|(k, v)| match labels.get(k) {
                        Some(have) => format!("{k} is {have}, not {v}"),
                        None => format!("no {k} label (wants {v})"),
                    })
                    .collect();
                let reason = if winner.as_deref() == Some(g.id.as_str()) {
                    String::new()
                } else if !unmet.is_empty() {
                    format!("does not match: {}", unmet.join("; "))
                } else {
                    format!(
                        "matches, but {} wins by Matchbox's order (more selectors first)",
                        winner.clone().unwrap_or_default()
                    )
                };
                Candidate { group: g.id.clone(), selectors: g.selector.len(), reason }
            })
            .collect()
    }

    pub fn profile_of<'a>(&'a self, group: &Group) -> Result<&'a Profile, Miss> {
        self.profiles
            .get(&group.profile)
            .ok_or_else(|| Miss::NoProfile { group: group.id.clone(), profile: group.profile.clone() })
    }

    /// The Ignition config for a machine, as compact JSON (spec 3.4.0).
    pub fn ignition(&self, profile: &Profile, data: &Value) -> Result<Arc<str>, Miss> {
        let id = &profile.ignition_id;
        if id.is_empty() {
            return Err(Miss::NoTemplateId { profile: profile.id.clone(), kind: "Ignition" });
        }
        let render_failed = |message: String| Miss::Render { template: id.clone(), message };
        match self.ignition.get(id) {
            None => Err(Miss::NoTemplate { profile: profile.id.clone(), kind: "Ignition", template: id.clone() }),
            Some(IgnitionEntry::Raw(served)) => served.clone().map_err(render_failed),
            Some(IgnitionEntry::Butane(template)) => {
                let template = template.as_ref().map_err(|e| render_failed(e.clone()))?;
                let yaml = template.render(data).map_err(|e| render_failed(e.to_string()))?;
                let key = {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::hash::DefaultHasher::new();
                    (id, &yaml).hash(&mut h);
                    h.finish()
                };
                if let Some(hit) = self.translations.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
                    return Ok(hit.clone());
                }
                let config = butane::translate(&yaml).map_err(|e| render_failed(e.to_string()))?;
                let served: Arc<str> = Arc::from(config.to_string());
                let mut cache = self.translations.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= TRANSLATION_CACHE {
                    cache.clear();
                }
                cache.insert(key, served.clone());
                Ok(served)
            }
        }
    }

    /// The generic config for a machine.
    pub fn generic(&self, profile: &Profile, data: &Value) -> Result<String, Miss> {
        let id = &profile.generic_id;
        if id.is_empty() {
            return Err(Miss::NoTemplateId { profile: profile.id.clone(), kind: "generic" });
        }
        let template = self.generic.get(id).ok_or_else(|| Miss::NoTemplate {
            profile: profile.id.clone(),
            kind: "generic",
            template: id.clone(),
        })?;
        let render_failed = |message: String| Miss::Render { template: id.clone(), message };
        let template = template.as_ref().map_err(|e| render_failed(e.clone()))?;
        template.render(data).map_err(|e| render_failed(e.to_string()))
    }
}

/// Groups for the inventory machines that have a profile: their own, else their cluster and
/// role's default. Their metadata is the machine's fields.
fn inventory_groups(own: &[MachineProfile], defaults: &[DefaultProfile], machines: Vec<BootMachine>) -> Vec<Group> {
    let own: HashMap<&str, &str> = own.iter().map(|m| (m.mac.as_str(), m.profile.as_str())).collect();
    let defaults: HashMap<(&str, &str), &str> =
        defaults.iter().map(|d| ((d.cluster.as_str(), d.role.as_str()), d.profile.as_str())).collect();
    machines
        .into_iter()
        .filter_map(|m| {
            let profile = own.get(m.mac.as_str()).or_else(|| defaults.get(&(m.cluster.as_str(), m.role.as_str())))?;
            let mut metadata = Map::new();
            for (key, value) in [
                ("hostname", &m.hostname),
                ("role", &m.role),
                ("cluster", &m.cluster),
                ("uuid", &m.uuid),
                ("serial", &m.serial),
            ] {
                if !value.is_empty() {
                    metadata.insert(key.into(), Value::from(value.clone()));
                }
            }
            metadata.insert(
                "labels".into(),
                Value::Object(m.labels.into_iter().map(|(k, v)| (k, Value::from(v))).collect()),
            );
            Some(Group {
                id: inventory_group_id(&m.mac),
                name: format!("inventory machine {}", if m.hostname.is_empty() { &m.mac } else { &m.hostname }),
                profile: profile.to_string(),
                selector: BTreeMap::from([("mac".to_string(), m.mac)]),
                metadata,
            })
        })
        .collect()
}

/// What templates see: the group's metadata, then its selectors over it, then `request` with the
/// labels (`query`) and the query as sent (`raw_query`).
pub fn template_data(group: &Group, labels: &BTreeMap<String, String>, raw_query: &str) -> Value {
    let mut data: Map<String, Value> = group.metadata.clone();
    for (k, v) in &group.selector {
        data.insert(k.to_ascii_lowercase(), Value::from(v.clone()));
    }
    let query: Map<String, Value> = labels.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
    data.insert("request".into(), serde_json::json!({ "query": query, "raw_query": raw_query }));
    Value::Object(data)
}

/// What Ignition and generic templates see: [`template_data`] and the machine's
/// `report_token` (empty for a request that names no MAC). `/metadata` lists [`template_data`]
/// only, as Matchbox does.
pub fn rendering_data(group: &Group, labels: &BTreeMap<String, String>, raw_query: &str, report_token: &str) -> Value {
    let mut data = template_data(group, labels, raw_query);
    if let Some(fields) = data.as_object_mut() {
        fields.insert(super::report_tokens::LABEL.into(), Value::from(report_token));
    }
    data
}

/// The data a sample inventory machine's templates get: a template is rendered with it when it
/// is saved, so that what no data could fix is refused then, not at boot.
pub fn sample_data() -> Value {
    let mac = "52:54:00:00:00:01";
    let metadata = serde_json::json!({
        "hostname": "node1.example.com", "role": "worker", "cluster": "sample",
        "uuid": "00000000-0000-4000-8000-000000000001", "serial": "SAMPLE1", "labels": {},
    });
    let group = Group {
        id: inventory_group_id(mac),
        name: "a sample machine".into(),
        profile: String::new(),
        selector: BTreeMap::from([("mac".to_string(), mac.to_string())]),
        metadata: metadata.as_object().cloned().unwrap_or_default(),
    };
    rendering_data(&group, &group.selector, &format!("mac={mac}"), super::report_tokens::SHOWN)
}

/// How many of the groups that use a template it is rendered for when it is saved.
const GROUPS_CHECKED: usize = 20;

impl BootIndex {
    /// Renders a template (and translates it, for Ignition) as the groups that use it would get
    /// it now, up to [`GROUPS_CHECKED`] of them; the first failure names its group.
    pub fn check_for_groups(&self, kind: TemplateKind, id: &str, template: &Template) -> Result<(), String> {
        let uses = |p: &Profile| match kind {
            TemplateKind::Ignition => p.ignition_id == id,
            TemplateKind::Generic => p.generic_id == id,
        };
        let groups = self.groups.iter().filter(|g| self.profiles.get(&g.profile).is_some_and(uses));
        for group in groups.take(GROUPS_CHECKED) {
            let query: String =
                url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&group.selector).finish();
            let data = rendering_data(group, &group.selector, &query, super::report_tokens::SHOWN);
            let text = template.render(&data).map_err(|e| format!("for group {}: {e}", group.id))?;
            if kind == TemplateKind::Ignition {
                butane::translate(&text).map_err(|e| format!("for group {}, Butane: {e}", group.id))?;
            }
        }
        Ok(())
    }
}

/// `/metadata`: `KEY=value` lines, nested objects flattened with `_`, keys upper-cased; arrays
/// and nulls left out, as Matchbox does. Matchbox writes the lines in Go's random map order;
/// these are sorted.
pub fn metadata_lines(data: &Value) -> String {
    fn walk(prefix: &str, map: &Map<String, Value>, out: &mut Vec<String>) {
        for (k, v) in map {
            let key = if prefix.is_empty() { k.to_uppercase() } else { format!("{prefix}_{}", k.to_uppercase()) };
            match v {
                Value::Object(inner) => walk(&key, inner, out),
                Value::Array(_) | Value::Null => {}
                other => out.push(format!("{key}={}\n", go_text(other))),
            }
        }
    }
    let mut lines = Vec::new();
    if let Value::Object(map) = data {
        walk("", map, &mut lines);
    }
    lines.sort();
    lines.concat()
}

/// `/ipxe`: the profile's kernel with its arguments, one `initrd` line per initrd, then `boot`.
pub fn ipxe_script(profile: &Profile) -> String {
    let mut out = format!("#!ipxe\nkernel {}", profile.boot.kernel);
    for arg in &profile.boot.args {
        out.push(' ');
        out.push_str(arg);
    }
    for initrd in &profile.boot.initrd {
        out.push_str("\ninitrd ");
        out.push_str(initrd);
    }
    out.push_str("\nboot\n");
    out
}

/// `/grub`: Matchbox's GRUB menu, EFI entry first, then BIOS.
pub fn grub_config(profile: &Profile) -> String {
    let args = profile.boot.args.join(" ");
    let initrds: String = profile.boot.initrd.iter().map(|i| format!(" \"{i}\"")).collect();
    let entry = |title: &str, linux: &str, initrd: &str| {
        format!(
            "menuentry \"{title}\" {{\necho \"Loading kernel\"\n{linux} \"{}\" {args}\necho \"Loading initrd\"\n{initrd} {initrds}\n}}\n",
            profile.boot.kernel
        )
    };
    format!(
        "default=0\nfallback=1\ntimeout=1\n{}{}",
        entry("CoreOS (EFI)", "linuxefi", "initrdefi"),
        entry("CoreOS (BIOS)", "linux", "initrd")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(id: &str, profile: &str, selector: &[(&str, &str)]) -> Group {
        Group {
            id: id.into(),
            name: id.into(),
            profile: profile.into(),
            selector: selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            metadata: Map::new(),
        }
    }

    #[test]
    fn labels_normalise_the_mac_and_keep_other_keys_as_sent() {
        let labels = labels_from_query("mac=52-54-00-00-03-E8&os=installed&domain=&os=other");
        assert_eq!(labels["mac"], "52:54:00:00:03:e8");
        assert_eq!(labels["os"], "installed");
        assert_eq!(labels["domain"], "");
        assert!(!labels_from_query("mac=zz").contains_key("mac"));
        assert!(!labels_from_query("mac=").contains_key("mac"));
        assert!(!labels_from_query("mac=zz&mac=52:54:00:00:00:01").contains_key("mac"), "only the first value counts");
        assert_eq!(labels_from_query("mac=52%3A54%3A00%3A00%3A00%3A01")["mac"], "52:54:00:00:00:01");
        assert_eq!(labels_from_query("MAC=5254.0000.0001")["MAC"], "52:54:00:00:00:01");
    }

    #[test]
    fn the_group_with_most_selectors_wins_and_no_selectors_is_the_default() {
        let catalog = Catalog {
            groups: vec![
                group("default", "d", &[]),
                group("n1", "w", &[("mac", "52:54:00:00:00:01")]),
                group("n1-installed", "w", &[("mac", "52:54:00:00:00:01"), ("os", "installed")]),
                group("rack", "w", &[("rack", "r1")]),
            ],
            ..Default::default()
        };
        let index = BootIndex::build(1, catalog, Vec::new());
        let pick = |q: &str| index.select(&labels_from_query(q)).map(|g| g.id.clone());
        assert_eq!(pick("mac=52:54:00:00:00:01").as_deref(), Some("n1"));
        assert_eq!(pick("mac=52:54:00:00:00:01&os=installed").as_deref(), Some("n1-installed"));
        assert_eq!(pick("mac=52:54:00:00:00:02&rack=r1").as_deref(), Some("rack"));
        assert_eq!(pick("mac=52:54:00:00:00:02").as_deref(), Some("default"));
        let why = index.candidates(&labels_from_query("mac=52:54:00:00:00:01&rack=r2"));
        assert_eq!(why[0].group, "n1-installed");
        assert!(why[0].reason.contains("no os label"), "{:?}", why[0]);
        assert!(why.iter().any(|c| c.group == "rack" && c.reason.contains("rack is r2, not r1")));
        assert!(why.iter().any(|c| c.group == "n1" && c.reason.is_empty()));
    }

    #[test]
    fn inventory_machines_boot_by_their_own_profile_or_their_clusters_default_and_hand_written_groups_win_ties() {
        let machine = |mac: &str, cluster: &str, role: &str| BootMachine {
            mac: mac.into(),
            hostname: format!("host-{}", &mac[15..]),
            role: role.into(),
            cluster: cluster.into(),
            labels: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
            ..Default::default()
        };
        let catalog = Catalog {
            groups: vec![group("pinned", "special", &[("mac", "52:54:00:00:00:03")])],
            machine_profiles: vec![MachineProfile { mac: "52:54:00:00:00:01".into(), profile: "own".into() }],
            defaults: vec![DefaultProfile {
                cluster: "prod".into(),
                role: "worker".into(),
                profile: "prod-worker".into(),
            }],
            ..Default::default()
        };
        let machines = vec![
            machine("52:54:00:00:00:01", "prod", "worker"),
            machine("52:54:00:00:00:02", "prod", "worker"),
            machine("52:54:00:00:00:03", "prod", "worker"),
            machine("52:54:00:00:00:04", "dev", "worker"),
        ];
        let index = BootIndex::build(1, catalog, machines);
        let pick = |q: &str| index.select(&labels_from_query(q)).map(|g| (g.id.clone(), g.profile.clone()));
        assert_eq!(pick("mac=52:54:00:00:00:01"), Some(("~inventory:52:54:00:00:00:01".into(), "own".into())));
        assert_eq!(pick("mac=52:54:00:00:00:02").map(|g| g.1), Some("prod-worker".into()));
        assert_eq!(
            pick("mac=52:54:00:00:00:03"),
            Some(("pinned".into(), "special".into())),
            "the hand-written group wins"
        );
        assert_eq!(pick("mac=52:54:00:00:00:04"), None, "no profile of its own and no default for dev workers");
        let g = index.select(&labels_from_query("mac=52:54:00:00:00:02")).unwrap();
        let data = template_data(g, &labels_from_query("mac=52:54:00:00:00:02"), "mac=52:54:00:00:00:02");
        assert_eq!(
            (data["hostname"].as_str(), data["cluster"].as_str(), data["labels"]["rack"].as_str()),
            (Some("host-02"), Some("prod"), Some("r1"))
        );
    }

    #[test]
    fn templates_see_metadata_selectors_and_the_request() {
        let mut g = group("n1", "w", &[("mac", "52:54:00:00:00:01")]);
        g.metadata = json!({"hostname": "node-0001", "index": 1, "mac": "overridden"}).as_object().unwrap().clone();
        let data =
            template_data(&g, &labels_from_query("mac=52-54-00-00-00-01&count=3"), "mac=52-54-00-00-00-01&count=3");
        assert_eq!(data["mac"], "52:54:00:00:00:01");
        assert_eq!(
            metadata_lines(&data),
            "HOSTNAME=node-0001\nINDEX=1\nMAC=52:54:00:00:00:01\nREQUEST_QUERY_COUNT=3\nREQUEST_QUERY_MAC=52:54:00:00:00:01\nREQUEST_RAW_QUERY=mac=52-54-00-00-00-01&count=3\n"
        );
    }

    #[test]
    fn ipxe_and_grub_follow_matchboxs_layout() {
        let profile = Profile {
            id: "p".into(),
            boot: super::super::model::NetBoot {
                kernel: "/assets/vmlinuz".into(),
                initrd: vec!["/assets/initrd.img".into()],
                args: vec!["console=ttyS0".into(), "a=${mac:hexhyp}".into()],
            },
            ..Default::default()
        };
        assert_eq!(
            ipxe_script(&profile),
            "#!ipxe\nkernel /assets/vmlinuz console=ttyS0 a=${mac:hexhyp}\ninitrd /assets/initrd.img\nboot\n"
        );
        let grub = grub_config(&profile);
        assert!(grub.contains("linuxefi \"/assets/vmlinuz\" console=ttyS0 a=${mac:hexhyp}\n"));
        assert!(grub.contains("initrd  \"/assets/initrd.img\"\n}\n"));
    }
}
