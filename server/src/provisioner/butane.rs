//! Butane (`variant: fcos`, versions 1.0.0–1.6.0) to Ignition, as Matchbox's Butane does it:
//! snake_case fields become Ignition's camelCase ones, `inline` contents become data URLs
//! (escaped or base64, whichever is shorter, gzipped when that is shorter still), and
//! `with_mount_unit` adds the mount unit. YAML is read as Go's yaml.v3 reads it (`0644` is
//! octal). Unlike Butane, a field it does not know is an error that names it and its line.

use super::ignition::{self, Config, Field, Kind};
use base64::Engine as _;
use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", at.map(|(l, c)| format!("line {l}, column {c}: ")).unwrap_or_default())]
pub struct ButaneError {
    /// Line and column (1-based) in the rendered Butane text.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

fn fail<T>(at: Pos, message: impl Into<String>) -> Result<T, ButaneError> {
    Err(ButaneError { at: Some(at), message: message.into() })
}

/// Line and column, from 1.
pub(crate) type Pos = (usize, usize);

/// A YAML node with where it starts; scalars keep their text and whether they were plain.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Scalar { text: String, plain: bool, at: Pos },
    Seq { items: Vec<Node>, at: Pos },
    Map { entries: Vec<(String, Pos, Node)>, at: Pos },
}

impl Node {
    pub(crate) fn at(&self) -> Pos {
        match self {
            Node::Scalar { at, .. } | Node::Seq { at, .. } | Node::Map { at, .. } => *at,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { text, plain: true, .. } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// The most nodes a config may have once its aliases are expanded: a YAML "billion laughs"
/// (aliases of aliases) stops here, long before it takes the memory.
const MAX_NODES: usize = 200_000;

/// How deep mappings and sequences may nest.
const MAX_DEPTH: usize = 64;

/// A collection being built: the node, the key waiting for its value (in a mapping), the anchor,
/// the keys seen (in a mapping), and how many nodes it holds.
struct Open {
    node: Node,
    pending_key: Option<(String, Pos)>,
    anchor: usize,
    keys: std::collections::HashSet<String>,
    size: usize,
}

/// Builds [`Node`]s from the parser's events.
#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    /// Each anchored node with how many nodes it holds.
    anchors: std::collections::HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    error: Option<ButaneError>,
    documents: usize,
    /// Nodes made so far, counting every copy an alias makes.
    nodes: usize,
}

impl Builder {
    fn open(&mut self, node: Node, anchor: usize, at: Pos) {
        if self.stack.len() >= MAX_DEPTH {
            self.error = Some(ButaneError { at: Some(at), message: format!("nests more than {MAX_DEPTH} deep") });
            return;
        }
        self.stack.push(Open { node, pending_key: None, anchor, keys: Default::default(), size: 1 });
    }

    /// Adds a finished node that holds `size` nodes to the collection being built.
    fn push_value(&mut self, node: Node, anchor: usize, size: usize) {
        self.nodes += size;
        if self.nodes > MAX_NODES {
            self.error = Some(ButaneError {
                at: Some(node.at()),
                message: format!("has more than {MAX_NODES} values once its aliases are expanded"),
            });
            return;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let Some(Open { node: parent, pending_key, keys, size: parent_size, .. }) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        *parent_size += size;
        match parent {
            Node::Seq { items, .. } => items.push(node),
            Node::Map { entries, .. } => match pending_key.take() {
                None => match node {
                    Node::Scalar { text, at, .. } => {
                        if !keys.insert(text.clone()) {
                            self.error.get_or_insert(ButaneError {
                                at: Some(at),
                                message: format!("key \"{text}\" appears twice in one mapping"),
                            });
                        }
                        *pending_key = Some((text, at));
                    }
                    other => {
                        self.error.get_or_insert(ButaneError {
                            at: Some(other.at()),
                            message: "a mapping key must be a plain value".into(),
                        });
                    }
                },
                Some((key, at)) => entries.push((key, at, node)),
            },
            Node::Scalar { .. } => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let at = (mark.line(), mark.col() + 1);
        match event {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(text, style, anchor, _) => {
                self.push_value(Node::Scalar { text, plain: style == TScalarStyle::Plain, at }, anchor, 1)
            }
            Event::SequenceStart(anchor, _) => self.open(Node::Seq { items: Vec::new(), at }, anchor, at),
            Event::MappingStart(anchor, _) => self.open(Node::Map { entries: Vec::new(), at }, anchor, at),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Open { node, anchor, size, .. }) = self.stack.pop() {
                    // Its children were counted as they came.
                    self.nodes -= size - 1;
                    self.push_value(node, anchor, size);
                }
            }
            // The copy is counted before it is made.
            Event::Alias(id) => match self.anchors.get(&id).map(|(_, size)| *size) {
                Some(size) if self.nodes + size > MAX_NODES => {
                    self.error = Some(ButaneError {
                        at: Some(at),
                        message: format!("has more than {MAX_NODES} values once its aliases are expanded"),
                    });
                }
                Some(size) => {
                    let node = self.anchors[&id].0.clone();
                    self.push_value(node, 0, size);
                }
                None => {
                    self.error.get_or_insert(ButaneError {
                        at: Some(at),
                        message: "an alias names an unknown anchor".into(),
                    });
                }
            },
            _ => {}
        }
    }
}

/// One bounded YAML document (`what` names it in messages, as "a Butane config").
pub(crate) fn parse_yaml_document(text: &str, what: &str) -> Result<Node, ButaneError> {
    let mut builder = Builder::default();
    Parser::new_from_str(text).load(&mut builder, true).map_err(|e| ButaneError {
        at: Some((e.marker().line(), e.marker().col() + 1)),
        message: format!("not valid YAML: {}", e.info()),
    })?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    if builder.documents > 1 {
        return Err(ButaneError { at: None, message: format!("holds more than one YAML document; {what} is one") });
    }
    builder.root.ok_or(ButaneError { at: None, message: format!("is empty; {what} is a YAML mapping") })
}

/// Ignition's camelCase field name as Butane spells it (`sizeMiB` → `size_mib`).
fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.replace("MiB", "Mib").chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Fields that arrived in a later fcos version than 1.0: `(Butane key, minor version)`.
const SINCE: &[(&str, u32)] = &[
    ("local", 1),
    ("http_headers", 1),
    ("proxy", 1),
    ("with_mount_unit", 1),
    ("mount_options", 1),
    ("trees", 1),
    ("luks", 2),
    ("should_exist", 2),
    ("resize", 2),
    ("boot_device", 3),
    ("kernel_arguments", 4),
    ("advertisement", 5),
    ("discard", 5),
    ("open_options", 5),
    ("contents_local", 5),
    ("ssh_authorized_keys_local", 5),
    ("grub", 5),
];

/// Butane fields Pangea does not translate: each is refused by name.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "local",
        "local files need a files directory, which a served template does not have (as in Matchbox); use inline or source",
    ),
    ("trees", "trees need a files directory, which a served template does not have (as in Matchbox)"),
    ("contents_local", "local files need a files directory, which a served template does not have; use contents"),
    (
        "ssh_authorized_keys_local",
        "local files need a files directory, which a served template does not have; use ssh_authorized_keys",
    ),
    (
        "boot_device",
        "boot_device (mirroring and LUKS sugar) is not translated by Pangea yet; write the disks, raid and luks out",
    ),
    ("grub", "grub users are not translated by Pangea yet; write /boot/grub2/user.cfg as a file"),
    ("cex", "cex needs Ignition spec 3.5.0; Pangea serves 3.4.0 as Matchbox does"),
];

struct Translator {
    minor: u32,
}

impl Translator {
    fn scalar<'a>(&self, node: &'a Node, place: &str, want: &str) -> Result<(&'a str, bool), ButaneError> {
        match node {
            Node::Scalar { text, plain, .. } => Ok((text, *plain)),
            other => fail(other.at(), format!("{place}: expected {want}")),
        }
    }

    fn value(&self, node: &Node, kind: Kind, place: &str) -> Result<Value, ButaneError> {
        if node.is_null() {
            return Ok(Value::Null);
        }
        Ok(match kind {
            Kind::Str | Kind::StrOmitEmpty | Kind::OptStr => Value::from(self.scalar(node, place, "a string")?.0),
            Kind::IntOmitZero | Kind::OptInt => {
                let (text, plain) = self.scalar(node, place, "an integer")?;
                match plain.then(|| go_int(text)).flatten() {
                    Some(n) => Value::from(n),
                    None => return fail(node.at(), format!("{place}: \"{text}\" is not an integer")),
                }
            }
            Kind::OptBool => {
                let (text, plain) = self.scalar(node, place, "true or false")?;
                match (plain, text) {
                    (true, "true" | "True" | "TRUE") => Value::Bool(true),
                    (true, "false" | "False" | "FALSE") => Value::Bool(false),
                    _ => return fail(node.at(), format!("{place}: \"{text}\" is not true or false")),
                }
            }
            Kind::Strings => {
                let Node::Seq { items, .. } = node else { return fail(node.at(), format!("{place}: expected a list")) };
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(Value::from(self.scalar(item, &format!("{place}[{i}]"), "a string")?.0));
                }
                Value::Array(out)
            }
            Kind::List(fields) => {
                let Node::Seq { items, .. } = node else { return fail(node.at(), format!("{place}: expected a list")) };
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.object(item, fields, &format!("{place}[{i}]"))?);
                }
                Value::Array(out)
            }
            Kind::Struct(fields) => self.object(node, fields, place)?,
        })
    }

    /// A Butane mapping as the Ignition struct `fields`.
    fn object(&self, node: &Node, fields: &[Field], place: &str) -> Result<Value, ButaneError> {
        let Node::Map { entries, .. } = node else { return fail(node.at(), format!("{place}: expected a mapping")) };
        let has = |field: &str| fields.iter().any(|(name, _)| *name == field);
        // Butane's extra fields: `inline` on every resource, `with_mount_unit` on filesystems.
        let (is_resource, is_filesystem) = (has("verification") && has("source"), has("wipeFilesystem"));
        let mut out = Map::new();
        let mut inline: Option<(String, Pos)> = None;
        for (key, at, value) in entries {
            let here = if place.is_empty() { key.clone() } else { format!("{place}.{key}") };
            if let Some((_, minor)) = SINCE.iter().find(|(k, _)| k == key)
                && self.minor < *minor
            {
                return fail(
                    *at,
                    format!("{here}: not in fcos 1.{}.0 (it arrived in 1.{minor}.0); raise version", self.minor),
                );
            }
            if let Some((_, why)) = UNSUPPORTED.iter().find(|(k, _)| k == key) {
                return fail(*at, format!("{here}: {why}"));
            }
            if is_resource && key == "inline" {
                let (text, _) = self.scalar(value, &here, "a string")?;
                inline = Some((text.to_string(), *at));
                continue;
            }
            if is_filesystem && key == "with_mount_unit" {
                out.insert(key.clone(), self.value(value, Kind::OptBool, &here)?);
                continue;
            }
            let Some((name, kind)) = fields.iter().find(|(name, _)| snake(name) == *key) else {
                return fail(
                    *at,
                    format!("{here}: unknown field (not in Butane fcos 1.{}.0 as Pangea translates it)", self.minor),
                );
            };
            if *name == "version" && place == "ignition" {
                return fail(*at, format!("{here}: Butane sets the Ignition version itself; remove it"));
            }
            out.insert(name.to_string(), self.value(value, *kind, &here)?);
        }
        if let Some((text, at)) = inline {
            if out.get("source").is_some_and(|s| !s.is_null()) {
                return fail(at, format!("{place}: give only one of inline and source"));
            }
            self.inline(&mut out, text.as_bytes());
        }
        Ok(Value::Object(out))
    }

    /// `inline` contents as Butane encodes them.
    fn inline(&self, resource: &mut Map<String, Value>, contents: &[u8]) {
        let escaped = format!(",{}", ignition::escape_data(contents));
        if self.minor == 0 {
            resource.insert("source".into(), Value::from(format!("data:{escaped}")));
            return;
        }
        let user_compression = resource.get("compression").and_then(Value::as_str).is_some_and(|c| !c.is_empty());
        let b64 = format!(";base64,{}", base64::engine::general_purpose::STANDARD.encode(contents));
        let mut opaque = if b64.len() < escaped.len() { b64 } else { escaped };
        if !user_compression {
            let mut compression = "";
            if let Some(gz) = gzip(contents) {
                let gz = format!(";base64,{}", base64::engine::general_purpose::STANDARD.encode(gz));
                if gz.len() + "gzip".len() < opaque.len() {
                    opaque = gz;
                    compression = "gzip";
                }
            }
            resource.insert("compression".into(), Value::from(compression));
        }
        resource.insert("source".into(), Value::from(format!("data:{opaque}")));
    }
}

/// Go's gzip at the best level: header with no name and no time, as Butane writes it.
fn gzip(contents: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::GzBuilder::new().operating_system(255).write(Vec::new(), flate2::Compression::best());
    encoder.write_all(contents).ok()?;
    encoder.finish().ok()
}

/// An integer as yaml.v3 reads a plain scalar: decimal, `0o`/leading-`0` octal, `0x` hex, `0b` binary.
fn go_int(text: &str) -> Option<i64> {
    let t = text.replace('_', "");
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let n = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -n } else { n })
}

/// systemd's path escaping for unit names (`/var/lib/my-data` → `var-lib-my\x2ddata`).
fn unit_name_path_escape(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return "-".into();
    }
    let mut out = String::new();
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Units Butane generates for filesystems with `with_mount_unit: true`.
fn mount_units(storage: &mut Value) -> Result<Vec<Value>, ButaneError> {
    let mut units = Vec::new();
    for (i, fs) in storage.get_mut("filesystems").and_then(Value::as_array_mut).into_iter().flatten().enumerate() {
        let Some(obj) = fs.as_object_mut() else { continue };
        let wanted = obj.remove("with_mount_unit").and_then(|v| v.as_bool()).unwrap_or(false);
        if !wanted {
            continue;
        }
        let device = obj.get("device").and_then(Value::as_str).unwrap_or("").to_string();
        let Some(format) = obj.get("format").and_then(Value::as_str).map(str::to_string) else {
            return Err(ButaneError {
                at: None,
                message: format!("storage.filesystems[{i}]: with_mount_unit needs a format"),
            });
        };
        let options: Vec<String> = obj
            .get("mountOptions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let options_line = if options.is_empty() { String::new() } else { format!("\nOptions={}", options.join(",")) };
        let escaped_device = unit_name_path_escape(&device);
        if format == "swap" {
            units.push(serde_json::json!({
                "name": format!("{escaped_device}.swap"),
                "enabled": true,
                "contents": format!("# Generated by Butane\n[Swap]\nWhat={device}{options_line}\n\n[Install]\nRequiredBy=swap.target"),
            }));
            continue;
        }
        let Some(path) = obj.get("path").and_then(Value::as_str).map(str::to_string) else {
            return Err(ButaneError {
                at: None,
                message: format!("storage.filesystems[{i}]: with_mount_unit needs a path"),
            });
        };
        units.push(serde_json::json!({
            "name": format!("{}.mount", unit_name_path_escape(&path)),
            "enabled": true,
            "contents": format!(
                "# Generated by Butane\n[Unit]\nRequires=systemd-fsck@{escaped_device}.service\nAfter=systemd-fsck@{escaped_device}.service\n\n[Mount]\nWhere={path}\nWhat={device}\nType={format}{options_line}\n\n[Install]\nRequiredBy=local-fs.target"
            ),
        }));
    }
    Ok(units)
}

/// Translates a rendered Butane config to an Ignition config, served as spec 3.4.0.
pub fn translate(text: &str) -> Result<Config, ButaneError> {
    let root = parse_yaml_document(text, "a Butane config")?;
    let Node::Map { entries, at } = &root else {
        return fail(root.at(), "a Butane config is a mapping that starts with variant: fcos and version");
    };
    let header = |key: &str| entries.iter().find(|(k, _, _)| k == key).map(|(_, at, v)| (*at, v));
    let variant = match header("variant") {
        Some((_, Node::Scalar { text, .. })) => text.clone(),
        Some((at, _)) => return fail(at, "variant: expected a string"),
        None => return fail(*at, "variant: missing; Pangea translates variant: fcos"),
    };
    if variant != "fcos" {
        return fail(
            header("variant").map_or(*at, |h| h.0),
            format!("variant: \"{variant}\" is not translated; Pangea translates fcos"),
        );
    }
    let version = match header("version") {
        Some((_, Node::Scalar { text, .. })) => text.clone(),
        _ => return fail(*at, "version: missing; write e.g. version: 1.5.0"),
    };
    let minor = match version.strip_prefix("1.").and_then(|v| v.strip_suffix(".0")).and_then(|m| m.parse::<u32>().ok())
    {
        Some(m) if m <= 6 => m,
        _ => {
            return fail(
                header("version").map_or(*at, |h| h.0),
                format!("version: fcos {version} is not one Pangea translates (1.0.0 to 1.6.0)"),
            );
        }
    };
    let body: Vec<(String, Pos, Node)> =
        entries.iter().filter(|(k, _, _)| k != "variant" && k != "version").cloned().collect();
    let translator = Translator { minor };
    let mut config = translator.object(&Node::Map { entries: body, at: *at }, ignition::CONFIG, "")?;
    let spec = match minor {
        0 => "3.0.0",
        1 => "3.1.0",
        2 | 3 => "3.2.0",
        4 => "3.3.0",
        _ => "3.4.0",
    };
    let generated = match config.get_mut("storage") {
        Some(storage) => mount_units(storage)?,
        None => Vec::new(),
    };
    if !generated.is_empty() {
        let systemd = config.as_object_mut().map(|c| c.entry("systemd").or_insert_with(|| serde_json::json!({})));
        if let Some(systemd) = systemd.and_then(Value::as_object_mut) {
            let user: Vec<Value> = systemd.get("units").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut units = generated;
            for unit in user {
                let name = unit.get("name").cloned();
                match units.iter_mut().find(|u| u.get("name") == name.as_ref()) {
                    Some(existing) => {
                        if let (Some(into), Some(from)) = (existing.as_object_mut(), unit.as_object()) {
                            for (k, v) in from {
                                if !v.is_null() {
                                    into.insert(k.clone(), v.clone());
                                }
                            }
                        }
                    }
                    None => units.push(unit),
                }
            }
            systemd.insert("units".into(), Value::Array(units));
        }
    }
    if let Some(obj) = config.as_object_mut() {
        let ignition = obj.entry("ignition").or_insert_with(|| serde_json::json!({}));
        if let Some(ignition) = ignition.as_object_mut() {
            ignition.insert("version".into(), Value::from(spec));
        }
    }
    ignition::upgrade(config)
        .map_err(|e| ButaneError { at: None, message: format!("the Ignition it makes is not valid: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROLLER: &str = "variant: fcos
version: 1.5.0
storage:
  files:
    - path: /etc/hostname
      mode: 0644
      overwrite: true
      contents:
        inline: node-0001
    - path: /etc/matchbox/role
      mode: 0644
      contents:
        inline: |
          role=controller
          mac=52:54:00:00:00:01
          stage=install
systemd:
  units:
    - name: controller-hello.service
      enabled: true
      contents: |
        [Unit]
        Description=Controller node-0001
        [Service]
        Type=oneshot
        ExecStart=/usr/bin/echo controller node-0001
        [Install]
        WantedBy=multi-user.target
passwd:
  users:
    - name: core
      ssh_authorized_keys:
        - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMatchboxAnchorFakeKeyForTestingOnly core@anchor
";

    #[test]
    fn the_reference_controller_translates_to_matchboxs_bytes() {
        // Matchbox v0.11's answer to /ignition?mac=52:54:00:00:00:01 (recorded/21).
        let expected = r#"{"ignition":{"config":{"replace":{"verification":{}}},"proxy":{},"security":{"tls":{}},"timeouts":{},"version":"3.4.0"},"kernelArguments":{},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMatchboxAnchorFakeKeyForTestingOnly core@anchor"]}]},"storage":{"files":[{"group":{},"overwrite":true,"path":"/etc/hostname","user":{},"contents":{"compression":"","source":"data:,node-0001","verification":{}},"mode":420},{"group":{},"path":"/etc/matchbox/role","user":{},"contents":{"compression":"","source":"data:,role%3Dcontroller%0Amac%3D52%3A54%3A00%3A00%3A00%3A01%0Astage%3Dinstall%0A","verification":{}},"mode":420}]},"systemd":{"units":[{"contents":"[Unit]\nDescription=Controller node-0001\n[Service]\nType=oneshot\nExecStart=/usr/bin/echo controller node-0001\n[Install]\nWantedBy=multi-user.target\n","enabled":true,"name":"controller-hello.service"}]}}"#;
        assert_eq!(translate(CONTROLLER).unwrap().to_string(), expected);
    }

    #[test]
    fn unknown_and_unsupported_fields_are_named_with_their_line() {
        let err = translate("variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /x\n      contnts: {}\n")
            .unwrap_err();
        assert_eq!(err.at, Some((6, 7)));
        assert!(err.message.contains("storage.files[0].contnts: unknown field"), "{err}");
        let err = translate("variant: fcos\nversion: 1.5.0\nboot_device:\n  mirror: {}\n").unwrap_err();
        assert!(err.message.contains("boot_device"), "{err}");
        let err = translate("variant: fcos\nversion: 1.2.0\nkernel_arguments:\n  should_exist: [a]\n").unwrap_err();
        assert!(err.message.contains("arrived in 1.4.0"), "{err}");
        let err = translate("variant: fcos\nversion: 1.9.0\n").unwrap_err();
        assert!(err.message.contains("1.9.0 is not one Pangea translates"), "{err}");
        let err = translate("variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /x\n      mode: rw\n")
            .unwrap_err();
        assert!(err.message.contains("\"rw\" is not an integer"), "{err}");
        let err = translate("variant: fcos\nversion: 1.5.0\nstorage: [\n").unwrap_err();
        assert!(err.message.contains("not valid YAML"), "{err}");
    }

    #[test]
    fn contents_pick_the_shortest_encoding_and_fcos_1_0_keeps_no_compression() {
        let long = "x".repeat(2000);
        let config = translate(&format!("variant: fcos\nversion: 1.4.0\nstorage:\n  files:\n    - path: /big\n      contents:\n        inline: {long}\n")).unwrap();
        let contents = &config.value()["storage"]["files"][0]["contents"];
        assert_eq!(contents["compression"], "gzip");
        assert!(contents["source"].as_str().unwrap().starts_with("data:;base64,H4sI"));
        let old = translate(
            "variant: fcos\nversion: 1.0.0\nstorage:\n  files:\n    - path: /a\n      contents:\n        inline: a b\n",
        )
        .unwrap();
        assert_eq!(old.value()["storage"]["files"][0]["contents"], serde_json::json!({"source": "data:,a%20b"}));
    }

    #[test]
    fn filesystems_with_mount_units_get_butanes_unit() {
        let config = translate("variant: fcos\nversion: 1.5.0\nstorage:\n  filesystems:\n    - device: /dev/disk/by-label/data\n      path: /var/lib/my-data\n      format: xfs\n      with_mount_unit: true\n").unwrap();
        let unit = &config.value()["systemd"]["units"][0];
        assert_eq!(unit["name"], "var-lib-my\\x2ddata.mount");
        assert!(unit["contents"].as_str().unwrap().contains("What=/dev/disk/by-label/data\nType=xfs"));
        assert!(config.value()["storage"]["filesystems"][0].get("with_mount_unit").is_none());
    }

    /// The fields Typhoon's and Matchbox's example configs use, each translated.
    #[test]
    fn typhoon_style_fields_translate() {
        let butane = r#"variant: fcos
version: 1.4.0
ignition:
  config:
    merge:
      - source: http://pangea:8080/ignition?mac=${mac:hexhyp}&os=installed
        verification:
          hash: sha512-00ff
storage:
  disks:
    - device: /dev/sda
      wipe_table: true
      partitions:
        - label: data
          number: 1
          size_mib: 0
  filesystems:
    - device: /dev/disk/by-partlabel/data
      format: ext4
      path: /var/lib/data
  directories:
    - path: /etc/kubernetes
      mode: 0755
  links:
    - path: /etc/localtime
      target: ../usr/share/zoneinfo/UTC
  files:
    - path: /opt/bin/kubelet
      mode: 0755
      contents:
        source: https://example.com/kubelet.gz
        compression: gzip
        verification:
          hash: sha512-abc
systemd:
  units:
    - name: kubelet.service
      enabled: true
      dropins:
        - name: 10-env.conf
          contents: |
            [Service]
            Environment=A=1
    - name: docker.service
      mask: true
passwd:
  groups:
    - name: admins
      gid: 2000
  users:
    - name: core
      groups: [admins]
      password_hash: "$y$j9T$hash"
kernel_arguments:
  should_exist: [mitigations=auto]
"#;
        let config = translate(butane).unwrap();
        let v = config.value();
        assert_eq!(v["ignition"]["config"]["merge"][0]["verification"]["hash"], "sha512-00ff");
        assert_eq!(v["storage"]["disks"][0]["partitions"][0]["sizeMiB"], 0);
        assert_eq!(v["storage"]["disks"][0]["wipeTable"], true);
        assert_eq!(v["storage"]["filesystems"][0]["path"], "/var/lib/data");
        assert_eq!(v["storage"]["directories"][0]["mode"], 493);
        assert_eq!(v["storage"]["links"][0]["target"], "../usr/share/zoneinfo/UTC");
        assert_eq!(v["storage"]["files"][0]["contents"]["compression"], "gzip");
        assert_eq!(v["systemd"]["units"][0]["dropins"][0]["name"], "10-env.conf");
        assert_eq!(v["systemd"]["units"][1]["mask"], true);
        assert_eq!(v["passwd"]["groups"][0]["gid"], 2000);
        assert_eq!(v["passwd"]["users"][0]["passwordHash"], "$y$j9T$hash");
        assert_eq!(v["kernelArguments"]["shouldExist"][0], "mitigations=auto");
        let text = config.to_string();
        assert!(text.starts_with(r#"{"ignition":{"config":{"merge":[{"source":"http://pangea:8080/ignition?mac=${mac:hexhyp}\u0026os=installed","verification":{"hash":"sha512-00ff"}}],"replace":{"verification":{}}}"#), "{text}");
    }

    #[test]
    fn yaml_integers_read_as_go_reads_them() {
        assert_eq!(go_int("0644"), Some(420));
        assert_eq!(go_int("0o755"), Some(493));
        assert_eq!(go_int("420"), Some(420));
        assert_eq!(go_int("0x1ff"), Some(511));
        assert_eq!(go_int("08"), None);
    }

    #[test]
    fn aliases_nesting_and_wide_mappings_are_bounded() {
        // A "billion laughs": ten aliases of ten aliases, nine levels deep.
        let mut laughs =
            String::from("variant: fcos\nversion: 1.5.0\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..9 {
            let p = i - 1;
            laughs.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = translate(&laughs).unwrap_err();
        assert!(err.message.contains("more than 200000 values once its aliases are expanded"), "{err}");
        assert_eq!(err.at.map(|(line, _)| line), Some(8), "{err}");
        let deep = format!("variant: fcos\nversion: 1.5.0\nx: {}{}", "[".repeat(100), "]".repeat(100));
        assert!(translate(&deep).unwrap_err().message.contains("nests more than 64 deep"));
        // Tens of thousands of keys are read in linear time, and a repeated one is still found.
        let mut wide = String::from("variant: fcos\nversion: 1.5.0\nstorage:\n  k0: 1\n");
        for i in 1..50_000 {
            wide.push_str(&format!("  k{i}: 1\n"));
        }
        wide.push_str("  k7: 2\n");
        let err = translate(&wide).unwrap_err();
        assert!(err.message.contains("key \"k7\" appears twice"), "{err}");
        // Aliases within the limit still expand, as yaml.v3 does.
        let ok = "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - {path: /a, mode: &m 0644}\n    - {path: /b, mode: *m}\n";
        assert_eq!(translate(ok).unwrap().to_string().matches("\"mode\":420").count(), 2);
    }
}
