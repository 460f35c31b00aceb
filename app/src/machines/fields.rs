//! The parsed fields of a machine. Each type can only hold a valid value, so code that has one
//! never re-checks it; each error message names the bad value and what would be accepted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

macro_rules! string_newtype {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A host name as DNS and Kubernetes node names allow it (RFC 1123), stored in lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hostname(String);
string_newtype!(Hostname);

impl FromStr for Hostname {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.len() <= 253 && lower.split('.').all(is_dns_label) {
            Ok(Hostname(lower))
        } else {
            Err(format!(
                "\"{s}\" is not a valid host name: use letters, digits and hyphens in dot-separated parts of at most 63 characters, such as node-1.example.com"
            ))
        }
    }
}

/// A Kubernetes cluster's name as Pangea registers it: one DNS label.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterName(String);
string_newtype!(ClusterName);

/// `s` trimmed when it is one DNS label; else why not, naming what it was meant to be.
fn dns_label(s: &str, what: &str) -> Result<String, String> {
    if is_dns_label(s.trim()) {
        Ok(s.trim().to_string())
    } else {
        Err(format!(
            "\"{s}\" is not a valid {what}: use at most 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit"
        ))
    }
}

impl FromStr for ClusterName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        dns_label(s, "cluster name").map(ClusterName)
    }
}

/// A machine class's name: one DNS label, as `gpu-large`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClassName(String);
string_newtype!(ClassName);

impl FromStr for ClassName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        dns_label(s, "class name").map(ClassName)
    }
}

/// The SMBIOS system UUID that iPXE reports as `${uuid}`, stored in lowercase 8-4-4-4-12 form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SystemUuid(String);
string_newtype!(SystemUuid);

impl FromStr for SystemUuid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        let groups: Vec<&str> = lower.split('-').collect();
        let lengths_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
        if lengths_ok && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())) {
            Ok(SystemUuid(lower))
        } else {
            Err(format!(
                "\"{s}\" is not a UUID: use the 8-4-4-4-12 hex form, such as 4c4c4544-0051-3410-8051-b5c04f305a32"
            ))
        }
    }
}

/// A hardware serial number: printable text of at most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Serial(String);
string_newtype!(Serial);

impl FromStr for Serial {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control) {
            // Control characters shown escaped; not `escape_debug`, whose Unicode tables would
            // weigh on every page that checks a machine.
            let shown: String = s
                .chars()
                .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
                .collect();
            Err(format!("\"{shown}\" is not a valid serial number: use 1 to 64 printable characters"))
        } else {
            Ok(Serial(t.to_string()))
        }
    }
}

/// What a machine becomes in its cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Controller,
    #[default]
    Worker,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Controller, Role::Worker];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Controller => "controller",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "controller" => Ok(Role::Controller),
            "worker" | "" => Ok(Role::Worker),
            _ => Err(format!("\"{s}\" is not a role: use controller or worker")),
        }
    }
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => prefix.len() <= 253 && prefix.split('.').all(is_dns_label) && is_label_name(name),
        None => is_label_name(key),
    }
}

/// Labels with Kubernetes label syntax: `[prefix/]name` keys and values of at most 63
/// characters. Kept sorted by key, so they display and export the same way every time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Checks each pair, collecting every bad one into one message.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Labels, String>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut map = BTreeMap::new();
        let mut problems = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref().trim(), v.as_ref().trim());
            if !is_label_key(k) {
                problems.push(format!(
                    "label key \"{k}\" is not valid: use up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, optionally after a DNS prefix and '/'"
                ));
            } else if !(v.is_empty() || is_label_name(v)) {
                problems.push(format!(
                    "label value \"{v}\" (for {k}) is not valid: use up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
                ));
            } else {
                map.insert(k.to_string(), v.to_string());
            }
        }
        if problems.is_empty() { Ok(Labels(map)) } else { Err(problems.join("; ")) }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits `k=v, k2=v2` (commas, semicolons or spaces between pairs), as people type labels.
pub fn split_label_text(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split([',', ';', ' ', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("\"{pair}\" is not a label: write key=value"))
        })
        .collect()
}

impl FromStr for Labels {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Labels::from_pairs(split_label_text(text)?)
    }
}

impl fmt::Display for Labels {
    /// The `k=v,k2=v2` form that [`Labels::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostnames_are_lowercased_and_checked() {
        assert_eq!("Node-1.Example.com".parse::<Hostname>().unwrap().as_str(), "node-1.example.com");
        for bad in ["-node", "node_1", "a..b", "<script>", &"a".repeat(64)] {
            assert!(bad.parse::<Hostname>().unwrap_err().contains(bad));
        }
    }

    #[test]
    fn labels_follow_kubernetes_syntax() {
        let labels: Labels = "rack=r1, topology.kubernetes.io/zone=eu-1;empty=".parse().unwrap();
        assert_eq!(labels.to_string(), "empty=,rack=r1,topology.kubernetes.io/zone=eu-1");
        let err = "a=<script>alert(1)</script>".parse::<Labels>().unwrap_err();
        assert!(err.contains("label value"), "{err}");
        assert!("novalue".parse::<Labels>().unwrap_err().contains("key=value"));
        assert!("-bad=x".parse::<Labels>().unwrap_err().contains("label key \"-bad\""));
    }

    #[test]
    fn uuids_and_roles_parse() {
        assert_eq!(
            "4C4C4544-0051-3410-8051-B5C04F305A32".parse::<SystemUuid>().unwrap().as_str(),
            "4c4c4544-0051-3410-8051-b5c04f305a32"
        );
        assert!("4c4c4544".parse::<SystemUuid>().is_err());
        assert_eq!("Controller".parse::<Role>().unwrap(), Role::Controller);
        assert!("boss".parse::<Role>().unwrap_err().contains("boss"));
    }

    #[test]
    fn a_serial_with_a_control_character_is_refused_and_shown_escaped() {
        assert_eq!("  SN-Ünï 42 ".parse::<Serial>().unwrap().as_str(), "SN-Ünï 42");
        let err = "SN\u{7}1\n".parse::<Serial>().unwrap_err();
        assert_eq!(err, "\"SN\\u{7}1\\n\" is not a valid serial number: use 1 to 64 printable characters");
        assert!("x".repeat(65).parse::<Serial>().is_err());
    }

    proptest! {
        #[test]
        fn label_display_round_trips(pairs in proptest::collection::btree_map("[a-z][a-z0-9]{0,8}", "([a-z0-9]{1,8})?", 0..6)) {
            let labels = Labels::from_pairs(pairs.iter()).unwrap();
            prop_assert_eq!(labels.to_string().parse::<Labels>().unwrap(), labels);
        }
    }
}
