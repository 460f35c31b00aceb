//! Node actions, made as the person who asks: every call carries `Impersonate-User` and
//! `Impersonate-Group`, so the cluster's RBAC decides and its audit log names them.

use super::cache::node_row;
use super::connect::{self, Endpoint, Impersonation};
use app::clusters::{NodeAction, NodeRow, Taint};
use app::error::AppError;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 63
            && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && n.starts_with(|c: char| c.is_ascii_alphanumeric())
            && n.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    name_ok(name) && prefix_ok
}

fn valid_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Checks keys, values and effects before anything is sent.
pub fn validate(action: &NodeAction) -> Result<(), AppError> {
    let bad_key = |k: &str| {
        AppError::invalid(format!(
            "\"{k}\" is not a label or taint key: use a name of up to 63 letters, digits, '-', '_' and '.', optionally \
             after a DNS prefix and '/' (e.g. example.com/rack)."
        ))
    };
    let bad_value = |v: &str| {
        AppError::invalid(format!(
            "\"{v}\" is not a label or taint value: use up to 63 letters, digits, '-', '_' and '.', starting and ending \
             with a letter or digit."
        ))
    };
    match action {
        NodeAction::Cordon | NodeAction::Uncordon => Ok(()),
        NodeAction::Labels { set, remove } => {
            if set.is_empty() && remove.is_empty() {
                return Err(AppError::invalid("Name at least one label to set or remove."));
            }
            for (k, v) in set {
                if !valid_key(k) {
                    return Err(bad_key(k));
                }
                if !valid_value(v) {
                    return Err(bad_value(v));
                }
            }
            remove.iter().find(|k| !valid_key(k)).map_or(Ok(()), |k| Err(bad_key(k)))
        }
        NodeAction::Taints { set, remove } => {
            if set.is_empty() && remove.is_empty() {
                return Err(AppError::invalid("Name at least one taint to set or remove."));
            }
            for t in set {
                if !valid_key(&t.key) {
                    return Err(bad_key(&t.key));
                }
                if !valid_value(&t.value) {
                    return Err(bad_value(&t.value));
                }
                if !EFFECTS.contains(&t.effect.as_str()) {
                    return Err(AppError::invalid(format!(
                        "\"{}\" is not a taint effect: use NoSchedule, PreferNoSchedule or NoExecute.",
                        t.effect
                    )));
                }
            }
            remove.iter().find(|k| !valid_key(k)).map_or(Ok(()), |k| Err(bad_key(k)))
        }
    }
}

/// The taints after `set` (replacing any of the same key and effect) and `remove` (by key).
pub fn next_taints(current: &[Taint], set: &[Taint], remove: &[String]) -> Vec<Taint> {
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| !remove.contains(&t.key))
        .filter(|t| !set.iter().any(|s| s.key == t.key && s.effect == t.effect))
        .cloned()
        .collect();
    taints.extend(set.iter().cloned());
    taints
}

/// The merge patch for `action`, given the node as the person can read it now.
fn patch_for(action: &NodeAction, node: &Node) -> Value {
    match action {
        NodeAction::Cordon => json!({ "spec": { "unschedulable": true } }),
        NodeAction::Uncordon => json!({ "spec": { "unschedulable": null } }),
        NodeAction::Labels { set, remove } => {
            let mut labels = serde_json::Map::new();
            for k in remove {
                labels.insert(k.clone(), Value::Null);
            }
            for (k, v) in set {
                labels.insert(k.clone(), Value::String(v.clone()));
            }
            json!({ "metadata": { "labels": labels } })
        }
        NodeAction::Taints { set, remove } => {
            let taints = next_taints(&super::cache::taints(node), set, remove);
            let taints: Vec<Value> = taints
                .iter()
                .map(|t| {
                    if t.value.is_empty() {
                        json!({ "key": t.key, "effect": t.effect })
                    } else {
                        json!({ "key": t.key, "value": t.value, "effect": t.effect })
                    }
                })
                .collect();
            // The resourceVersion makes the replacement of the whole list conditional: a
            // concurrent change answers 409 instead of being lost.
            json!({ "metadata": { "resourceVersion": node.metadata.resource_version }, "spec": { "taints": taints } })
        }
    }
}

/// The merge patch that puts back what `action` changes, as `before` had it.
fn undo_for(action: &NodeAction, before: &Node) -> Value {
    match action {
        NodeAction::Cordon | NodeAction::Uncordon => {
            json!({ "spec": { "unschedulable": before.spec.as_ref().and_then(|s| s.unschedulable) } })
        }
        NodeAction::Labels { set, remove } => {
            let had = before.metadata.labels.clone().unwrap_or_default();
            let labels: serde_json::Map<String, Value> =
                set.keys().chain(remove).map(|k| (k.clone(), had.get(k).map_or(Value::Null, |v| json!(v)))).collect();
            json!({ "metadata": { "labels": labels } })
        }
        NodeAction::Taints { .. } => {
            let taints = before.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
            json!({ "spec": { "taints": taints } })
        }
    }
}

/// Applies `action` to `node` as `as_whom`: the node as it is afterwards, and the patch that
/// undoes the change (see [`undo`]), from `cached` (the watch cache's copy) or, for taints, the
/// node as the person reads it now.
pub async fn act(
    cluster: &str,
    endpoint: &Endpoint,
    as_whom: &Impersonation,
    node: &str,
    action: &NodeAction,
    cached: Option<Node>,
) -> Result<(NodeRow, Value), AppError> {
    validate(action)?;
    let client = connect::client(endpoint, Some(as_whom))?;
    let nodes: Api<Node> = Api::all(client);
    let refused = |e| connect::refusal(cluster, &endpoint.api_url, e);
    let current = match action {
        NodeAction::Taints { .. } => nodes.get(node).await.map_err(refused)?,
        _ => cached.unwrap_or_default(),
    };
    let patched = nodes
        .patch(
            node,
            &PatchParams { field_manager: Some("pangea".into()), ..Default::default() },
            &Patch::Merge(patch_for(action, &current)),
        )
        .await
        .map_err(refused)?;
    Ok((node_row(cluster, &patched, 0, None), undo_for(action, &current)))
}

/// Puts back what [`act`] changed (when its audit record could not be written), as the same person.
pub async fn undo(
    cluster: &str,
    endpoint: &Endpoint,
    as_whom: &Impersonation,
    node: &str,
    undo: &Value,
) -> Result<(), AppError> {
    let nodes: Api<Node> = Api::all(connect::client(endpoint, Some(as_whom))?);
    let params = PatchParams { field_manager: Some("pangea".into()), ..Default::default() };
    nodes
        .patch(node, &params, &Patch::Merge(undo))
        .await
        .map_err(|e| connect::refusal(cluster, &endpoint.api_url, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint { key: key.into(), value: String::new(), effect: effect.into() }
    }

    #[test]
    fn taints_are_replaced_by_key_and_effect_and_removed_by_key() {
        let current = vec![taint("a", "NoSchedule"), taint("b", "NoExecute"), taint("a", "NoExecute")];
        let set = vec![Taint { key: "a".into(), value: "v".into(), effect: "NoSchedule".into() }];
        let next = next_taints(&current, &set, &["b".into()]);
        assert_eq!(next, vec![taint("a", "NoExecute"), set[0].clone()]);
    }

    #[test]
    fn bad_keys_values_and_effects_are_refused_with_words() {
        let labels = |k: &str, v: &str| NodeAction::Labels {
            set: BTreeMap::from([(k.to_string(), v.to_string())]),
            remove: vec![],
        };
        assert!(validate(&labels("example.com/rack", "r-1")).is_ok());
        assert!(validate(&labels("<script>", "x")).unwrap_err().to_string().contains("is not a label or taint key"));
        assert!(validate(&labels("rack", "a b")).unwrap_err().to_string().contains("is not a label or taint value"));
        assert!(validate(&labels("Bad.Prefix/x", "1")).is_err());
        let taints = NodeAction::Taints { set: vec![taint("k", "Never")], remove: vec![] };
        assert!(validate(&taints).unwrap_err().to_string().contains("is not a taint effect"));
        assert_eq!(validate(&NodeAction::Labels { set: BTreeMap::new(), remove: vec![] }).unwrap_err().status(), 400);
    }

    #[test]
    fn cordon_and_label_patches_are_merge_patches() {
        assert_eq!(patch_for(&NodeAction::Cordon, &Node::default()), json!({"spec": {"unschedulable": true}}));
        let patch = patch_for(
            &NodeAction::Labels { set: BTreeMap::from([("a".into(), "1".into())]), remove: vec!["b".into()] },
            &Node::default(),
        );
        assert_eq!(patch, json!({"metadata": {"labels": {"a": "1", "b": null}}}));
    }
}
