//! Kubernetes equality-based label selectors, parsed once: `key=value`, `key==value`,
//! `key!=value`, `key` (exists) and `!key` (absent), comma-separated; and the set-based
//! `key in (a,b)`.

use app::error::AppError;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
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
                "\"{part}\" is not a label selector term: write key=value, key!=value, key, !key or key in (a,b), \
                 separated by commas."
            ))
        };
        let mut requirements = Vec::new();
        for part in terms(text) {
            let requirement = if let Some((k, values)) = part.split_once(" in ") {
                let values =
                    values.trim().strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(|| bad(part))?;
                Requirement::In(k.trim().into(), values.split(',').map(|v| v.trim().to_string()).collect())
            } else if let Some((k, v)) = part.split_once("!=") {
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
                Requirement::In(k, values) => valid_key(k) && values.iter().all(|v| !v.is_empty() && valid_value(v)),
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
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
        })
    }
}

/// The selector's terms: split at the commas outside parentheses.
fn terms(text: &str) -> Vec<&str> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(text[start..].trim());
    terms
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
        assert!(matches("app in (db, web),node-role.kubernetes.io/worker"));
        assert!(!matches("app in (db,cache)"));
        assert!(Selector::parse(Some("app in db")).is_err());
        assert!(Selector::parse(Some("app in (d b)")).is_err());
        assert!(Selector::parse(Some("app in ()")).is_err() && Selector::parse(Some("app in (a,)")).is_err());
    }
}
