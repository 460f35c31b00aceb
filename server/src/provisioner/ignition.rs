//! Ignition configs as Matchbox serves them: any spec 3.0.0–3.4.0 read, checked and written as
//! spec 3.4.0 in the exact JSON shape of Go's `encoding/json` over Ignition's v3_4 types (fields
//! in declaration order, struct fields always present, nil pointers and empty lists left out,
//! `<`, `>` and `&` escaped), so configs compare equal to Matchbox's byte for byte.

use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::sync::Arc;

/// A config that is not valid Ignition, with the field it is about (`storage.files[0].path`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IgnitionError {
    pub message: String,
}

fn error<T>(message: impl Into<String>) -> Result<T, IgnitionError> {
    Err(IgnitionError { message: message.into() })
}

/// How Go writes one field of an Ignition struct.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `string`: always written.
    Str,
    /// `string` with omitempty.
    StrOmitEmpty,
    /// `int` with omitempty.
    IntOmitZero,
    /// `*string`, `*int`, `*bool`: written when set.
    OptStr,
    OptInt,
    OptBool,
    /// A struct: always written, `{}` at least.
    Struct(&'static [Field]),
    /// `[]string` and `[]Struct`: written when not empty.
    Strings,
    List(&'static [Field]),
}

pub type Field = (&'static str, Kind);

use Kind::*;

pub const VERIFICATION: &[Field] = &[("hash", OptStr)];
pub const HTTP_HEADER: &[Field] = &[("name", Str), ("value", OptStr)];
pub const RESOURCE: &[Field] = &[
    ("compression", OptStr),
    ("httpHeaders", List(HTTP_HEADER)),
    ("source", OptStr),
    ("verification", Struct(VERIFICATION)),
];
const IGNITION_CONFIG: &[Field] = &[("merge", List(RESOURCE)), ("replace", Struct(RESOURCE))];
const PROXY: &[Field] = &[("httpProxy", OptStr), ("httpsProxy", OptStr), ("noProxy", Strings)];
const TLS: &[Field] = &[("certificateAuthorities", List(RESOURCE))];
const SECURITY: &[Field] = &[("tls", Struct(TLS))];
const TIMEOUTS: &[Field] = &[("httpResponseHeaders", OptInt), ("httpTotal", OptInt)];
const IGNITION: &[Field] = &[
    ("config", Struct(IGNITION_CONFIG)),
    ("proxy", Struct(PROXY)),
    ("security", Struct(SECURITY)),
    ("timeouts", Struct(TIMEOUTS)),
    ("version", Str),
];
const KERNEL_ARGUMENTS: &[Field] = &[("shouldExist", Strings), ("shouldNotExist", Strings)];
const PASSWD_GROUP: &[Field] =
    &[("gid", OptInt), ("name", Str), ("passwordHash", OptStr), ("shouldExist", OptBool), ("system", OptBool)];
const PASSWD_USER: &[Field] = &[
    ("gecos", OptStr),
    ("groups", Strings),
    ("homeDir", OptStr),
    ("name", Str),
    ("noCreateHome", OptBool),
    ("noLogInit", OptBool),
    ("noUserGroup", OptBool),
    ("passwordHash", OptStr),
    ("primaryGroup", OptStr),
    ("sshAuthorizedKeys", Strings),
    ("shell", OptStr),
    ("shouldExist", OptBool),
    ("system", OptBool),
    ("uid", OptInt),
];
const PASSWD: &[Field] = &[("groups", List(PASSWD_GROUP)), ("users", List(PASSWD_USER))];
const NODE_OWNER: &[Field] = &[("id", OptInt), ("name", OptStr)];
const FILE: &[Field] = &[
    ("group", Struct(NODE_OWNER)),
    ("overwrite", OptBool),
    ("path", Str),
    ("user", Struct(NODE_OWNER)),
    ("append", List(RESOURCE)),
    ("contents", Struct(RESOURCE)),
    ("mode", OptInt),
];
const DIRECTORY: &[Field] = &[
    ("group", Struct(NODE_OWNER)),
    ("overwrite", OptBool),
    ("path", Str),
    ("user", Struct(NODE_OWNER)),
    ("mode", OptInt),
];
const LINK: &[Field] = &[
    ("group", Struct(NODE_OWNER)),
    ("overwrite", OptBool),
    ("path", Str),
    ("user", Struct(NODE_OWNER)),
    ("hard", OptBool),
    ("target", OptStr),
];
const PARTITION: &[Field] = &[
    ("guid", OptStr),
    ("label", OptStr),
    ("number", IntOmitZero),
    ("resize", OptBool),
    ("shouldExist", OptBool),
    ("sizeMiB", OptInt),
    ("startMiB", OptInt),
    ("typeGuid", OptStr),
    ("wipePartitionEntry", OptBool),
];
const DISK: &[Field] = &[("device", Str), ("partitions", List(PARTITION)), ("wipeTable", OptBool)];
const FILESYSTEM: &[Field] = &[
    ("device", Str),
    ("format", OptStr),
    ("label", OptStr),
    ("mountOptions", Strings),
    ("options", Strings),
    ("path", OptStr),
    ("uuid", OptStr),
    ("wipeFilesystem", OptBool),
];
const CLEVIS_CUSTOM: &[Field] = &[("config", OptStr), ("needsNetwork", OptBool), ("pin", OptStr)];
const TANG: &[Field] = &[("thumbprint", OptStr), ("url", StrOmitEmpty), ("advertisement", OptStr)];
const CLEVIS: &[Field] =
    &[("custom", Struct(CLEVIS_CUSTOM)), ("tang", List(TANG)), ("threshold", OptInt), ("tpm2", OptBool)];
const LUKS: &[Field] = &[
    ("clevis", Struct(CLEVIS)),
    ("device", OptStr),
    ("discard", OptBool),
    ("keyFile", Struct(RESOURCE)),
    ("label", OptStr),
    ("name", Str),
    ("openOptions", Strings),
    ("options", Strings),
    ("uuid", OptStr),
    ("wipeVolume", OptBool),
];
const RAID: &[Field] =
    &[("devices", Strings), ("level", OptStr), ("name", Str), ("options", Strings), ("spares", OptInt)];
const STORAGE: &[Field] = &[
    ("directories", List(DIRECTORY)),
    ("disks", List(DISK)),
    ("files", List(FILE)),
    ("filesystems", List(FILESYSTEM)),
    ("links", List(LINK)),
    ("luks", List(LUKS)),
    ("raid", List(RAID)),
];
const DROPIN: &[Field] = &[("contents", OptStr), ("name", Str)];
const UNIT: &[Field] =
    &[("contents", OptStr), ("dropins", List(DROPIN)), ("enabled", OptBool), ("mask", OptBool), ("name", Str)];
const SYSTEMD: &[Field] = &[("units", List(UNIT))];
/// A whole config (Ignition's `types.Config`).
pub const CONFIG: &[Field] = &[
    ("ignition", Struct(IGNITION)),
    ("kernelArguments", Struct(KERNEL_ARGUMENTS)),
    ("passwd", Struct(PASSWD)),
    ("storage", Struct(STORAGE)),
    ("systemd", Struct(SYSTEMD)),
];

/// The spec versions a config may declare; all are served as the last.
pub const VERSIONS: [&str; 5] = ["3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0"];
pub const SERVED_VERSION: &str = "3.4.0";

/// Checks `value` against `fields`: every key known, every value of its type.
fn check(value: &Value, fields: &[Field], at: &str) -> Result<(), IgnitionError> {
    let Value::Object(map) = value else { return error(format!("{at}: expected an object")) };
    for (key, v) in map {
        let Some((_, kind)) = fields.iter().find(|(name, _)| name == key) else {
            let place = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
            return error(format!("{place}: unknown field (not in Ignition spec {SERVED_VERSION})"));
        };
        let place = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
        let ok = match (kind, v) {
            (_, Value::Null) => !matches!(kind, Str),
            (Str | StrOmitEmpty | OptStr, Value::String(_)) => true,
            (IntOmitZero | OptInt, Value::Number(n)) => n.is_i64(),
            (OptBool, Value::Bool(_)) => true,
            (Struct(inner), v @ Value::Object(_)) => {
                check(v, inner, &place)?;
                true
            }
            (Strings, Value::Array(items)) => items.iter().all(Value::is_string),
            (List(inner), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    check(item, inner, &format!("{place}[{i}]"))?;
                }
                true
            }
            _ => false,
        };
        if !ok {
            let want = match kind {
                Str | StrOmitEmpty | OptStr => "a string",
                IntOmitZero | OptInt => "an integer",
                OptBool => "true or false",
                Struct(_) => "an object",
                Strings => "a list of strings",
                List(_) => "a list of objects",
            };
            return error(format!("{place}: expected {want}"));
        }
    }
    Ok(())
}

/// Writes `value` as Go's encoding/json writes the struct `fields`.
fn write_struct(out: &mut String, value: Option<&Value>, fields: &[Field]) {
    let empty = Map::new();
    let map = value.and_then(Value::as_object).unwrap_or(&empty);
    out.push('{');
    let mut first = true;
    for (name, kind) in fields {
        let v = map.get(*name).filter(|v| !v.is_null());
        let present = match kind {
            Str | Struct(_) => true,
            StrOmitEmpty => v.and_then(Value::as_str).is_some_and(|s| !s.is_empty()),
            IntOmitZero => v.and_then(Value::as_i64).is_some_and(|n| n != 0),
            OptStr | OptInt | OptBool => v.is_some(),
            Strings | List(_) => v.and_then(Value::as_array).is_some_and(|a| !a.is_empty()),
        };
        if !present {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, name);
        out.push(':');
        match kind {
            Struct(inner) => write_struct(out, v, inner),
            List(inner) => {
                out.push('[');
                for (i, item) in v.and_then(Value::as_array).into_iter().flatten().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_struct(out, Some(item), inner);
                }
                out.push(']');
            }
            Strings => {
                out.push('[');
                for (i, item) in v.and_then(Value::as_array).into_iter().flatten().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, item.as_str().unwrap_or(""));
                }
                out.push(']');
            }
            Str | StrOmitEmpty | OptStr => write_string(out, v.and_then(Value::as_str).unwrap_or("")),
            IntOmitZero | OptInt => {
                let _ = write!(out, "{}", v.and_then(Value::as_i64).unwrap_or(0));
            }
            OptBool => out.push_str(if v.and_then(Value::as_bool).unwrap_or(false) { "true" } else { "false" }),
        }
    }
    out.push('}');
}

/// A JSON string as Go's encoding/json writes it (HTML characters escaped).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A checked config, ready to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct Config(Value);

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        write_struct(&mut out, Some(&self.0), CONFIG);
        f.write_str(&out)
    }
}

impl Config {
    pub fn value(&self) -> &Value {
        &self.0
    }
}

/// Reads a config of any spec 3.0.0–3.4.0 and makes it a 3.4.0 one, as Ignition's translators
/// do (fields are kept; what became optional in 3.3.0 is set, empty, where 3.2.0 always had it).
pub fn upgrade(mut value: Value) -> Result<Config, IgnitionError> {
    let version = value.pointer("/ignition/version").and_then(Value::as_str).map(str::to_string);
    let Some(version) = version else {
        return error("ignition.version: missing; an Ignition config names its spec version, e.g. 3.4.0");
    };
    if !VERSIONS.contains(&version.as_str()) {
        return error(format!(
            "ignition.version: {version} is not a spec Pangea serves; use one of {}",
            VERSIONS.join(", ")
        ));
    }
    check(&value, CONFIG, "")?;
    if version.as_str() < "3.3.0" {
        let empty_where_missing = |items: Option<&mut Value>, key: &str| {
            for item in items.and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(obj) = item.as_object_mut() {
                    obj.entry(key).or_insert(Value::from(""));
                }
            }
        };
        empty_where_missing(value.pointer_mut("/storage/raid"), "level");
        empty_where_missing(value.pointer_mut("/storage/links"), "target");
        for luks in value.pointer_mut("/storage/luks").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(custom) = luks.pointer_mut("/clevis/custom").and_then(Value::as_object_mut) {
                custom.entry("config").or_insert(Value::from(""));
                custom.entry("pin").or_insert(Value::from(""));
            }
        }
    }
    if let Some(ignition) = value.get_mut("ignition").and_then(Value::as_object_mut) {
        ignition.insert("version".into(), Value::from(SERVED_VERSION));
    }
    validate(&value)?;
    Ok(Config(value))
}

/// A config as served to one Ignition, and, when that Ignition cannot read it, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForClient {
    pub config: Arc<str>,
    /// Why the fetching Ignition will refuse this config ("unsupported config version"), if it will.
    pub unreadable: Option<String>,
}

/// The served config in the spec the fetching Ignition reads. Ignition names the newest spec it
/// reads in its `Accept` header, and reads every older 3.x (2.14, still Debian's, sends
/// `application/vnd.coreos.ignition+json;version=3.3.0, */*;q=0.1`). A client that reads up to
/// 3.3.0 gets the config as 3.3.0 when it uses nothing 3.4.0 added (LUKS `discard` and
/// `openOptions`); anyone else gets it as it is, which Matchbox always sends. When the client says
/// it reads only older specs, the answer says why it will refuse the config, for the timeline.
pub fn for_client(config: &Arc<str>, accept: Option<&str>) -> ForClient {
    let as_is = |unreadable: Option<String>| ForClient { config: config.clone(), unreadable };
    let newest = accept
        .unwrap_or("")
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            (parts.next()? == "application/vnd.coreos.ignition+json")
                .then(|| parts.find_map(|p| p.strip_prefix("version=")))
                .flatten()
        })
        .filter_map(|v| {
            let mut numbers = v.split('.').map(|n| n.parse::<u32>().ok());
            Some((numbers.next()??, numbers.next()??, v))
        })
        .max();
    let Some((major, minor, version)) = newest else { return as_is(None) };
    if (major, minor) >= (3, 4) {
        return as_is(None);
    }
    let refuses = |why: String| {
        as_is(Some(format!(
            "its Ignition reads config spec {version} at most, and {why}: it will refuse the config \
             (\"unsupported config version\"); boot an OS image with a newer Ignition"
        )))
    };
    if (major, minor) < (3, 3) {
        return refuses(format!("this config is {SERVED_VERSION}"));
    }
    let uses_3_4 = serde_json::from_str::<Value>(config).ok().is_none_or(|value| {
        value.pointer("/storage/luks").and_then(Value::as_array).into_iter().flatten().any(|luks| {
            luks.get("discard").is_some_and(|d| !d.is_null())
                || luks.get("openOptions").and_then(Value::as_array).is_some_and(|o| !o.is_empty())
        })
    });
    if uses_3_4 {
        return refuses(format!("this config uses what {SERVED_VERSION} added (LUKS discard or openOptions)"));
    }
    ForClient {
        config: Arc::from(config.replacen(r#""version":"3.4.0""#, r#""version":"3.3.0""#, 1)),
        unreadable: None,
    }
}

/// Raw Ignition text (`.ign`), upgraded to 3.4.0.
pub fn upgrade_raw(text: &str) -> Result<Config, IgnitionError> {
    let value: Value = serde_json::from_str(text).map_err(|e| IgnitionError {
        message: format!("not valid JSON: line {}, column {}: {e}", e.line(), e.column()),
    })?;
    upgrade(value)
}

fn list<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    value.pointer(pointer).and_then(Value::as_array).into_iter().flatten().enumerate()
}

const UNIT_SUFFIXES: [&str; 12] = [
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];

/// What Ignition itself refuses: relative or repeated paths, overwrite without contents, unknown
/// compression, unit names systemd would not take, sources that are not URLs it fetches.
fn validate(config: &Value) -> Result<(), IgnitionError> {
    let mut paths = std::collections::BTreeSet::new();
    for (kind, pointer) in
        [("files", "/storage/files"), ("directories", "/storage/directories"), ("links", "/storage/links")]
    {
        for (i, node) in list(config, pointer) {
            let path = node.get("path").and_then(Value::as_str).unwrap_or("");
            if !path.starts_with('/') {
                return error(format!("storage.{kind}[{i}].path: \"{path}\" is not an absolute path"));
            }
            if !paths.insert(path.trim_end_matches('/').to_string()) {
                return error(format!("storage.{kind}[{i}].path: {path} appears twice"));
            }
            if kind == "files"
                && node.get("overwrite").and_then(Value::as_bool) == Some(true)
                && node.pointer("/contents/source").and_then(Value::as_str).is_none()
            {
                return error(format!("storage.files[{i}]: overwrite is true but contents has no source"));
            }
            if let Some(mode) = node.get("mode").and_then(Value::as_i64)
                && !(0..=0o7777).contains(&mode)
            {
                return error(format!("storage.{kind}[{i}].mode: {mode} is not a file mode (0 to 07777)"));
            }
        }
    }
    let mut resources: Vec<(String, &Value)> = Vec::new();
    for (i, file) in list(config, "/storage/files") {
        if let Some(c) = file.get("contents") {
            resources.push((format!("storage.files[{i}].contents"), c));
        }
        for (j, a) in list(file, "/append") {
            resources.push((format!("storage.files[{i}].append[{j}]"), a));
        }
    }
    for (i, r) in list(config, "/ignition/config/merge") {
        resources.push((format!("ignition.config.merge[{i}]"), r));
    }
    if let Some(r) = config.pointer("/ignition/config/replace") {
        resources.push(("ignition.config.replace".into(), r));
    }
    for (i, r) in list(config, "/ignition/security/tls/certificateAuthorities") {
        resources.push((format!("ignition.security.tls.certificateAuthorities[{i}]"), r));
    }
    for (place, r) in resources {
        if let Some(c) = r.get("compression").and_then(Value::as_str)
            && !c.is_empty()
            && c != "gzip"
        {
            return error(format!("{place}.compression: \"{c}\" is not supported; use gzip or nothing"));
        }
        if let Some(source) = r.get("source").and_then(Value::as_str) {
            let scheme = source.split_once(':').map(|(s, _)| s).unwrap_or("");
            if !matches!(scheme, "data" | "http" | "https" | "tftp" | "s3" | "gs" | "arn") {
                return error(format!(
                    "{place}.source: \"{source}\" is not a URL Ignition fetches (data, http, https, tftp, s3, gs, arn)"
                ));
            }
        }
    }
    let mut units = std::collections::BTreeSet::new();
    for (i, unit) in list(config, "/systemd/units") {
        let name = unit.get("name").and_then(Value::as_str).unwrap_or("");
        if !UNIT_SUFFIXES.iter().any(|s| name.ends_with(s) && name.len() > s.len()) {
            return error(format!(
                "systemd.units[{i}].name: \"{name}\" is not a systemd unit name (e.g. hello.service)"
            ));
        }
        if !units.insert(name) {
            return error(format!("systemd.units[{i}].name: {name} appears twice"));
        }
        for (j, dropin) in list(unit, "/dropins") {
            let name = dropin.get("name").and_then(Value::as_str).unwrap_or("");
            if !name.ends_with(".conf") || name.contains('/') {
                return error(format!(
                    "systemd.units[{i}].dropins[{j}].name: \"{name}\" must be a file name ending in .conf"
                ));
            }
        }
    }
    Ok(())
}

/// Butane's encoding of inline contents (dataurl's `Escape`): bytes outside
/// `A-Za-z0-9-_.!~*'()` become `%XX`.
pub fn escape_data(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ignition_is_upgraded_and_written_as_go_writes_it() {
        let raw = r#"{"ignition":{"version":"3.3.0"},"systemd":{"units":[{"name":"a.service","enabled":true,"contents":"x<&>"}]},
            "storage":{"files":[{"path":"/etc/motd","mode":420,"contents":{"source":"data:,hi"}}]}}"#;
        let served = upgrade_raw(raw).unwrap().to_string();
        assert_eq!(
            served,
            r#"{"ignition":{"config":{"replace":{"verification":{}}},"proxy":{},"security":{"tls":{}},"timeouts":{},"version":"3.4.0"},"kernelArguments":{},"passwd":{},"storage":{"files":[{"group":{},"path":"/etc/motd","user":{},"contents":{"source":"data:,hi","verification":{}},"mode":420}]},"systemd":{"units":[{"contents":"x\u003c\u0026\u003e","enabled":true,"name":"a.service"}]}}"#
        );
    }

    #[test]
    fn what_ignition_refuses_is_named() {
        let cases = [
            (r#"{"ignition":{"version":"2.2.0"}}"#, "2.2.0 is not a spec"),
            (r#"{"ignition":{}}"#, "ignition.version: missing"),
            (
                r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"etc/x"}]}}"#,
                "storage.files[0].path: \"etc/x\" is not an absolute path",
            ),
            (r#"{"ignition":{"version":"3.4.0"},"storage":{"filez":[]}}"#, "storage.filez: unknown field"),
            (
                r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/x","mode":"0644"}]}}"#,
                "storage.files[0].mode: expected an integer",
            ),
            (r#"{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"hello"}]}}"#, "not a systemd unit name"),
            (
                r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/x","overwrite":true}]}}"#,
                "overwrite is true but contents has no source",
            ),
            ("{", "not valid JSON: line 1"),
        ];
        for (raw, message) in cases {
            let err = upgrade_raw(raw).unwrap_err();
            assert!(err.message.contains(message), "{raw}: {err}");
        }
    }

    #[test]
    fn an_ignition_that_reads_only_3_3_gets_3_3_when_nothing_needs_3_4() {
        let config: Arc<str> = Arc::from(
            upgrade_raw(r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a"}]}}"#).unwrap().to_string(),
        );
        let debian = "application/vnd.coreos.ignition+json;version=3.3.0, */*;q=0.1";
        let served = for_client(&config, Some(debian));
        assert_eq!(served.unreadable, None);
        let served = served.config;
        assert!(served.starts_with(r#"{"ignition":{"config":{"replace":{"verification":{}}},"proxy":{},"security":{"tls":{}},"timeouts":{},"version":"3.3.0"}"#), "{served}");
        assert_eq!(served.replacen("3.3.0", "3.4.0", 1), *config, "only the version differs");
        for accept in [
            None,
            Some("*/*"),
            Some("application/vnd.coreos.ignition+json;version=3.4.0, */*;q=0.1"),
            Some("application/vnd.coreos.ignition+json;version=3.5.0, */*;q=0.1"),
        ] {
            assert_eq!(
                for_client(&config, accept),
                ForClient { config: config.clone(), unreadable: None },
                "{accept:?}"
            );
        }
        let luks = r#"{"ignition":{"version":"3.4.0"},"storage":{"luks":[{"name":"root","device":"/dev/sda","discard":true}]}}"#;
        let luks: Arc<str> = Arc::from(upgrade_raw(luks).unwrap().to_string());
        let served = for_client(&luks, Some(debian));
        assert_eq!(served.config, luks, "3.3.0 cannot say discard: sent as it is");
        assert_eq!(
            served.unreadable.as_deref(),
            Some(
                "its Ignition reads config spec 3.3.0 at most, and this config uses what 3.4.0 added (LUKS discard \
                 or openOptions): it will refuse the config (\"unsupported config version\"); boot an OS image \
                 with a newer Ignition"
            )
        );
        let old = for_client(&config, Some("application/vnd.coreos.ignition+json;version=3.2.0"));
        assert_eq!(old.config, config);
        assert!(
            old.unreadable
                .unwrap()
                .starts_with("its Ignition reads config spec 3.2.0 at most, and this config is 3.4.0")
        );
        let spec2 = for_client(&config, Some("application/vnd.coreos.ignition+json; version=2.2.0"));
        assert!(spec2.unreadable.unwrap().contains("spec 2.2.0"));
    }

    #[test]
    fn links_and_raids_from_before_3_3_get_the_fields_3_3_made_optional() {
        let raw = r#"{"ignition":{"version":"3.2.0"},"storage":{"links":[{"path":"/l","hard":true}],"raid":[{"name":"md","devices":["/dev/a"]}]}}"#;
        let served = upgrade_raw(raw).unwrap().to_string();
        assert!(served.contains(r#""hard":true,"target":"""#), "{served}");
        assert!(served.contains(r#"{"devices":["/dev/a"],"level":"","name":"md"}"#), "{served}");
    }

    #[test]
    fn inline_data_is_escaped_as_butane_escapes_it() {
        assert_eq!(escape_data(b"role=controller\nmac=52:54"), "role%3Dcontroller%0Amac%3D52%3A54");
        assert_eq!(escape_data("é (x)*".as_bytes()), "%C3%A9%20(x)*");
    }
}
