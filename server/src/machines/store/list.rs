//! One page of the machine list: search, sort and keyset pagination in SQL both backends share.

use super::{COLUMNS, machine_from_row};
use crate::db::Database;
use crate::error::OrInternal;
use app::error::AppError;
use app::machines::mac::MacAddr;
use app::machines::{MachinePage, MachineQuery, SortKey};
use app::provisioning::boots::BootState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Where the previous page ended: the last row's sort value and id.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cursor(String, i64);

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> Result<Cursor, AppError> {
        URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| AppError::invalid("The page cursor is not valid; start again from the first page."))
    }
}

/// The search term as a filter: `key=value` is one exact label, anything else a substring.
#[derive(Debug, PartialEq)]
enum Filter {
    Label(String, String),
    /// A full MAC in any accepted form: the machine with exactly that MAC (an index lookup).
    Mac(String),
    Substring(String),
}

fn filter(search: &str) -> Option<Filter> {
    let term = search.trim();
    if term.is_empty() {
        return None;
    }
    if let Some((k, v)) = term.split_once('=') {
        return Some(Filter::Label(k.trim().to_string(), v.trim().to_string()));
    }
    Some(match term.parse::<MacAddr>() {
        Ok(mac) => Filter::Mac(mac.to_string()),
        Err(_) => Filter::Substring(term.to_lowercase()),
    })
}

fn like_pattern(term: &str) -> String {
    let escaped = term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

fn sort_column(key: SortKey) -> &'static str {
    match key {
        SortKey::Mac => "mac",
        SortKey::Hostname => "hostname",
        SortKey::Role => "role",
        SortKey::Cluster => "cluster",
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
    }
}

pub async fn fetch_page(db: &Database, query: &MachineQuery) -> Result<MachinePage, AppError> {
    let column = sort_column(query.sort);
    let limit = query.limit();
    let after = query.after.as_deref().map(Cursor::decode).transpose()?;
    let mut conditions = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    match query.search.as_deref().and_then(filter) {
        Some(Filter::Label(key, value)) => {
            conditions.push(format!(
                "id IN (SELECT machine_id FROM machine_labels WHERE key = ${} AND value = ${})",
                binds.len() + 1,
                binds.len() + 2
            ));
            binds.push(key);
            binds.push(value);
        }
        Some(Filter::Mac(mac)) => {
            conditions.push(format!("mac = ${}", binds.len() + 1));
            binds.push(mac);
        }
        Some(Filter::Substring(term)) => {
            conditions.push(format!("search_text LIKE ${} ESCAPE '\\'", binds.len() + 1));
            binds.push(like_pattern(&term));
        }
        None => {}
    }
    match query.state {
        Some(BootState::NeverSeen) => conditions.push("mac NOT IN (SELECT mac FROM boot_states)".into()),
        Some(state) => {
            conditions.push(format!("mac IN (SELECT mac FROM boot_states WHERE state = ${})", binds.len() + 1));
            binds.push(state.as_str().into());
        }
        None => {}
    }
    let (op, dir) = if query.descending { ("<", "DESC") } else { (">", "ASC") };
    if let Some(Cursor(value, _)) = &after {
        conditions.push(format!("({column}, id) {op} (${}, ${})", binds.len() + 1, binds.len() + 2));
        binds.push(value.clone());
    }
    let where_clause =
        if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    let id_param = binds.len() + 1;
    let limit_param = if after.is_some() { id_param + 1 } else { id_param };
    let sql =
        format!("SELECT {COLUMNS} FROM machines {where_clause} ORDER BY {column} {dir}, id {dir} LIMIT ${limit_param}");
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b.as_str());
    }
    if let Some(Cursor(_, id)) = &after {
        q = q.bind(*id);
    }
    q = q.bind(i64::from(limit) + 1);
    let rows = q.fetch_all(db.pool()).await.or_internal()?;
    let mut items = rows.iter().map(machine_from_row).collect::<Result<Vec<_>, _>>().or_internal()?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|m| {
            let value = match query.sort {
                SortKey::Mac => m.mac.clone(),
                SortKey::Hostname => m.hostname.clone().unwrap_or_default(),
                SortKey::Role => m.role.as_str().to_string(),
                SortKey::Cluster => m.cluster.clone().unwrap_or_default(),
                SortKey::CreatedAt => m.created_at.clone(),
                SortKey::UpdatedAt => m.updated_at.clone(),
            };
            Cursor(value, m.id).encode()
        })
    } else {
        None
    };
    Ok(MachinePage { items, next, states: Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_clear_error() {
        let c = Cursor("node-1".into(), 42);
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("garbage!").unwrap_err().to_string().contains("first page"));
    }

    #[test]
    fn search_terms_become_filters() {
        assert_eq!(filter("rack = r1"), Some(Filter::Label("rack".into(), "r1".into())));
        assert_eq!(filter("5254.0000.0001"), Some(Filter::Mac("52:54:00:00:00:01".into())));
        assert_eq!(filter("Node-1"), Some(Filter::Substring("node-1".into())));
        assert_eq!(filter("  "), None);
        assert_eq!(like_pattern("a_b%"), "%a\\_b\\%%");
    }
}
