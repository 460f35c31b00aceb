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
use sqlx::Row;

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

/// One term of a search as a filter: `key=value` is one exact label, a hardware field with an
/// operator (`memory_gib>=256`, `model~R650`) compares what the BMC told, anything else is a
/// substring.
#[derive(Debug, PartialEq)]
enum Filter {
    Label(String, String),
    /// A full MAC in any accepted form: the machine with exactly that MAC (an index lookup).
    Mac(String),
    Substring(String),
    /// A `machine_hardware` column, an SQL operator and the value it is compared with.
    Hardware(&'static str, &'static str, Bind),
}

#[derive(Debug, PartialEq, Clone)]
enum Bind {
    Text(String),
    Number(i64),
}

/// The hardware fields a search compares: the name a person writes, its column, and whether it
/// is a number.
const HARDWARE_FIELDS: [(&str, &str, bool); 9] = [
    ("cpus", "cpus", true),
    ("memory_gib", "memory_gib", true),
    ("disks", "disks", true),
    ("disks.ssd", "ssds", true),
    ("nics", "nics", true),
    ("model", "model", false),
    ("manufacturer", "manufacturer", false),
    ("bios", "bios_version", false),
    ("bmc_firmware", "bmc_firmware", false),
];

/// The search's terms, joined by `and`: each one a filter, all of which a machine must pass.
fn filters(search: &str) -> Result<Vec<Filter>, String> {
    if search.len() > 1024 {
        return Err("A search is at most 1024 characters.".into());
    }
    let terms: Vec<&str> = search.split(" and ").collect();
    if terms.len() > MAX_TERMS {
        return Err(format!("A search joins at most {MAX_TERMS} terms with \"and\"."));
    }
    if terms.len() > 1 && terms.iter().any(|t| t.trim().is_empty()) {
        return Err("Each side of \"and\" in a search is a term: a label, a MAC, a word or a hardware figure.".into());
    }
    terms.into_iter().filter_map(|term| filter(term).transpose()).collect()
}

/// The most terms one search joins (each is a condition the database checks).
const MAX_TERMS: usize = 16;

fn filter(search: &str) -> Result<Option<Filter>, String> {
    let term = search.trim();
    if term.is_empty() {
        return Ok(None);
    }
    // The first operator in the term; at one place, the longer (`>=` before `>`).
    let operator = [">=", "<=", "~", ">", "<", "="]
        .into_iter()
        .filter_map(|op| term.find(op).map(|at| (at, op)))
        .min_by_key(|(at, op)| (*at, std::cmp::Reverse(op.len())));
    if let Some((at, op)) = operator {
        let (key, value) = (term[..at].trim(), term[at + op.len()..].trim());
        if let Some((_, column, numeric)) = HARDWARE_FIELDS.iter().find(|(name, ..)| name.eq_ignore_ascii_case(key)) {
            let known = || HARDWARE_FIELDS.map(|(name, ..)| name).join(", ");
            return match (numeric, op) {
                (true, "~") => Err(format!("\"{key}\" is a number: compare it with =, <, <=, > or >=.")),
                (true, op) => value
                    .parse::<i64>()
                    .map(|n| Some(Filter::Hardware(column, op, Bind::Number(n))))
                    .map_err(|_| format!("\"{key}{op}{value}\": {key} is compared with a whole number.")),
                (false, "~") => {
                    Ok(Some(Filter::Hardware(column, "LIKE", Bind::Text(like_pattern(&value.to_lowercase())))))
                }
                (false, "=") => Ok(Some(Filter::Hardware(column, "=", Bind::Text(value.to_lowercase())))),
                (false, _) => Err(format!(
                    "\"{key}\" is text: match it with = (exactly) or ~ (contains). Hardware fields: {}.",
                    known()
                )),
            };
        }
        if op == "=" {
            return Ok(Some(Filter::Label(key.to_string(), value.to_string())));
        }
    }
    Ok(Some(match term.parse::<MacAddr>() {
        Ok(mac) => Filter::Mac(mac.to_string()),
        Err(_) => Filter::Substring(term.to_lowercase()),
    }))
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

/// Adds the conditions of `filters` to a WHERE clause, numbering their parameters after `binds`.
fn push_filters(filters: Vec<Filter>, conditions: &mut Vec<String>, binds: &mut Vec<Bind>) {
    for filter in filters {
        match filter {
            Filter::Label(key, value) => {
                conditions.push(format!(
                    "id IN (SELECT machine_id FROM machine_labels WHERE key = ${} AND value = ${})",
                    binds.len() + 1,
                    binds.len() + 2
                ));
                binds.push(Bind::Text(key));
                binds.push(Bind::Text(value));
            }
            Filter::Mac(mac) => {
                conditions.push(format!("mac = ${}", binds.len() + 1));
                binds.push(Bind::Text(mac));
            }
            Filter::Substring(term) => {
                conditions.push(format!("search_text LIKE ${} ESCAPE '\\'", binds.len() + 1));
                binds.push(Bind::Text(like_pattern(&term)));
            }
            Filter::Hardware(column, op, value) => {
                let (column, escape) = match value {
                    Bind::Text(_) => (format!("LOWER({column})"), if op == "LIKE" { " ESCAPE '\\'" } else { "" }),
                    Bind::Number(_) => (column.to_string(), ""),
                };
                conditions.push(format!(
                    "id IN (SELECT machine_id FROM machine_hardware WHERE {column} {op} ${}{escape})",
                    binds.len() + 1
                ));
                binds.push(value);
            }
        }
    }
}

/// The search of the class `name`.
async fn class_search(db: &Database, name: &str) -> Result<String, AppError> {
    sqlx::query_scalar::<_, String>("SELECT query FROM machine_classes WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await
        .or_internal()?
        .ok_or_else(|| AppError::not_found(format!("There is no machine class \"{name}\"; see Machines › Classes.")))
}

/// Checks a search as the list would take it: the words that say what is wrong, if anything is.
pub fn check_search(search: &str) -> Result<(), String> {
    filters(search).map(|_| ())
}

/// How many machines `search` matches now.
pub async fn count_matching(db: &Database, search: &str) -> Result<u64, AppError> {
    let (mut conditions, mut binds) = (Vec::new(), Vec::new());
    push_filters(filters(search).map_err(AppError::invalid)?, &mut conditions, &mut binds);
    let sql = format!("SELECT COUNT(*) FROM machines {}", where_clause(&conditions));
    let count: i64 = bound(&sql, &binds).fetch_one(db.pool()).await.or_internal()?.try_get(0).or_internal()?;
    Ok(count as u64)
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) }
}

/// `sql` with `binds` bound, in order.
fn bound<'q>(sql: &'q str, binds: &'q [Bind]) -> super::Query<'q> {
    binds.iter().fold(sqlx::query(sql), |q, b| match b {
        Bind::Text(text) => q.bind(text.as_str()),
        Bind::Number(n) => q.bind(*n),
    })
}

pub async fn fetch_page(db: &Database, query: &MachineQuery) -> Result<MachinePage, AppError> {
    let column = sort_column(query.sort);
    let limit = query.limit();
    let after = query.after.as_deref().map(Cursor::decode).transpose()?;
    let mut conditions = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    if let Some(class) = &query.class {
        let search = class_search(db, class).await?;
        push_filters(filters(&search).map_err(AppError::invalid)?, &mut conditions, &mut binds);
    }
    let search = query.search.as_deref().unwrap_or_default();
    push_filters(filters(search).map_err(AppError::invalid)?, &mut conditions, &mut binds);
    match query.state {
        Some(BootState::NeverSeen) => conditions.push("mac NOT IN (SELECT mac FROM boot_states)".into()),
        Some(state) => {
            conditions.push(format!("mac IN (SELECT mac FROM boot_states WHERE state = ${})", binds.len() + 1));
            binds.push(Bind::Text(state.as_str().into()));
        }
        None => {}
    }
    let (op, dir) = if query.descending { ("<", "DESC") } else { (">", "ASC") };
    if let Some(Cursor(value, _)) = &after {
        conditions.push(format!("({column}, id) {op} (${}, ${})", binds.len() + 1, binds.len() + 2));
        binds.push(Bind::Text(value.clone()));
    }
    let where_clause = where_clause(&conditions);
    let id_param = binds.len() + 1;
    let limit_param = if after.is_some() { id_param + 1 } else { id_param };
    let sql =
        format!("SELECT {COLUMNS} FROM machines {where_clause} ORDER BY {column} {dir}, id {dir} LIMIT ${limit_param}");
    let mut q = bound(&sql, &binds);
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
    Ok(MachinePage { items, next, states: Default::default(), power: Default::default() })
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
        assert_eq!(filter("rack = r1"), Ok(Some(Filter::Label("rack".into(), "r1".into()))));
        assert_eq!(filter("5254.0000.0001"), Ok(Some(Filter::Mac("52:54:00:00:00:01".into()))));
        assert_eq!(filter("Node-1"), Ok(Some(Filter::Substring("node-1".into()))));
        assert_eq!(filter("  "), Ok(None));
        assert_eq!(like_pattern("a_b%"), "%a\\_b\\%%");
    }

    #[test]
    fn hardware_terms_compare_what_the_bmc_told_and_bad_ones_say_how() {
        assert_eq!(
            filters("memory_gib>=256 and model~R650 and disks.ssd>=2 and rack=r1").unwrap(),
            [
                Filter::Hardware("memory_gib", ">=", Bind::Number(256)),
                Filter::Hardware("model", "LIKE", Bind::Text("%r650%".into())),
                Filter::Hardware("ssds", ">=", Bind::Number(2)),
                Filter::Label("rack".into(), "r1".into()),
            ]
        );
        assert_eq!(
            filter("Model=PowerEdge R650"),
            Ok(Some(Filter::Hardware("model", "=", Bind::Text("poweredge r650".into()))))
        );
        assert!(filter("cpus>=lots").unwrap_err().contains("whole number"));
        assert!(filter("cpus~3").unwrap_err().contains("is a number"));
        assert!(filter("model>3").unwrap_err().contains("is text"));
        // Another name with an operator is a substring, as any other word.
        assert_eq!(filter("a>b"), Ok(Some(Filter::Substring("a>b".into()))));
        assert!(filters("rack=r1 and ").unwrap_err().contains("Each side"));
    }
}
