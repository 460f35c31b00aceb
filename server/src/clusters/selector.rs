//! Kubernetes equality-based label selectors, parsed once: `key=value`, `key==value`,
//! `key!=value`, `key` (exists) and `!key` (absent), comma-separated.

use app::error::AppError;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value.len() <= 63 && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Selector {
    pub fn parse(text: Option<&str>) -> Result<Selector, AppError> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(Selector::default()) };
        let bad = |part: &str| {
            AppError::invalid(format!(
                "\"{part}\" is not a label selector term: write key=value, key!=value, key or !key, separated by commas."
            ))
        };
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim) {
            let requirement = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::Absent(k.trim().into())
            } else {
                Requirement::Exists(part.into())
            };
            let ok = match &requirement {
                Requirement::Equals(k, v) | Requirement::NotEquals(k, v) => valid_key(k) && valid_value(v),
                Requirement::Exists(k) | Requirement::Absent(k) => valid_key(k),
            };
            if !ok {
                return Err(bad(part));
            }
            requirements.push(requirement);
        }
        Ok(Selector(requirements))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_as_kubernetes_does() {
        let labels: BTreeMap<String, String> =
            [("app", "web"), ("node-role.kubernetes.io/worker", "")].map(|(k, v)| (k.into(), v.into())).into();
        let matches = |s: &str| Selector::parse(Some(s)).unwrap().matches(&labels);
        assert!(matches("app=web"));
        assert!(matches("app==web,node-role.kubernetes.io/worker"));
        assert!(matches("app!=db,!tier"));
        assert!(!matches("app=db"));
        assert!(!matches("!app"));
        assert!(Selector::parse(None).unwrap().matches(&labels));
        let bad = Selector::parse(Some("app=we b")).unwrap_err();
        assert_eq!(bad.status(), 400);
        assert!(bad.to_string().contains("\"app=we b\" is not a label selector term"));
        assert!(Selector::parse(Some("<script>=1")).is_err());
    }
}
