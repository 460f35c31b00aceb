//! The audit log's read SQL: filtered, newest first, by keyset pages, for the Audit page, the
//! API and the streaming export.

use super::entry_from_row;
use crate::db::Database;
use crate::error::OrInternal;
use app::audit::{AuditEntry, AuditPage, AuditQuery};
use app::error::AppError;

/// Builds `WHERE …` and its parameters for `query` (the cursor included).
fn conditions(query: &AuditQuery) -> Result<(String, Vec<String>, Option<i64>), AppError> {
    let mut clauses = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    if let Some(actor) = text(&query.actor) {
        binds.push(actor);
        clauses.push(format!("actor = ${}", binds.len()));
    }
    if let Some(action) = text(&query.action) {
        match action.strip_suffix('*') {
            Some(prefix) => {
                let escaped = prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                binds.push(format!("{escaped}%"));
                clauses.push(format!("action LIKE ${} ESCAPE '\\'", binds.len()));
            }
            None => {
                binds.push(action);
                clauses.push(format!("action = ${}", binds.len()));
            }
        }
    }
    if let Some(target) = text(&query.target) {
        binds.push(target);
        clauses.push(format!("(target_id = ${0} OR target_name = ${0})", binds.len()));
    }
    if let Some(outcome) = text(&query.outcome) {
        if !matches!(outcome.as_str(), "success" | "failure" | "denied") {
            return Err(AppError::invalid(format!("\"{outcome}\" is not an outcome: use success, failure or denied.")));
        }
        binds.push(outcome);
        clauses.push(format!("outcome = ${}", binds.len()));
    }
    for (value, op) in [(text(&query.from), ">="), (text(&query.to), "<")] {
        if let Some(at) = value {
            if !at.starts_with(|c: char| c.is_ascii_digit()) || at.len() > 40 {
                return Err(AppError::invalid(format!(
                    "\"{at}\" is not a time: write it as 2026-11-25 or 2026-11-25T14:30 (UTC)."
                )));
            }
            binds.push(at);
            clauses.push(format!("at {op} ${}", binds.len()));
        }
    }
    let where_clause = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    Ok((where_clause, binds, query.before))
}

/// The id range that a time range covers. Records are appended under the chain's lock with the
/// current time, so time order is id order; bounding by id lets a time-filtered page walk the
/// primary key instead of sorting every record of the range.
async fn id_bounds(db: &Database, query: &AuditQuery) -> Result<Option<(i64, i64)>, AppError> {
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let (from, to) = (text(&query.from), text(&query.to));
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    let first = match &from {
        Some(from) => sqlx::query_scalar::<_, i64>("SELECT id FROM audit_log WHERE at >= $1 ORDER BY at, id LIMIT 1")
            .bind(from)
            .fetch_optional(db.pool())
            .await
            .or_internal()?,
        None => Some(0),
    };
    let last = match &to {
        Some(to) => {
            sqlx::query_scalar::<_, i64>("SELECT id FROM audit_log WHERE at < $1 ORDER BY at DESC, id DESC LIMIT 1")
                .bind(to)
                .fetch_optional(db.pool())
                .await
                .or_internal()?
        }
        None => Some(i64::MAX),
    };
    Ok(Some(match (first, last) {
        (Some(first), Some(last)) => (first, last),
        _ => (1, 0),
    }))
}

/// One page, newest first.
pub async fn page(db: &Database, query: &AuditQuery) -> Result<AuditPage, AppError> {
    let (mut where_clause, mut binds, before) = conditions(query)?;
    if let Some((first, last)) = id_bounds(db, query).await? {
        binds.push(first.to_string());
        binds.push(last.to_string());
        let range = format!("id BETWEEN CAST(${} AS BIGINT) AND CAST(${} AS BIGINT)", binds.len() - 1, binds.len());
        where_clause =
            if where_clause.is_empty() { format!("WHERE {range}") } else { format!("{where_clause} AND {range}") };
    }
    let mut n = binds.len();
    if before.is_some() {
        n += 1;
        where_clause =
            if where_clause.is_empty() { format!("WHERE id < ${n}") } else { format!("{where_clause} AND id < ${n}") };
    }
    let limit = query.limit();
    let sql = format!("SELECT * FROM audit_log {where_clause} ORDER BY id DESC LIMIT ${}", n + 1);
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b.as_str());
    }
    if let Some(before) = before {
        q = q.bind(before);
    }
    let rows = q.bind(i64::from(limit) + 1).fetch_all(db.pool()).await.or_internal()?;
    let mut items: Vec<AuditEntry> = rows.iter().map(entry_from_row).collect::<Result<_, _>>().or_internal()?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage { items, next })
}

/// One record, if it exists.
pub async fn entry(db: &Database, id: i64) -> Result<Option<AuditEntry>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM audit_log WHERE id = $1").bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(entry_from_row).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_parameterised_conditions() {
        let q = AuditQuery {
            actor: Some("alice".into()),
            action: Some("machine.*".into()),
            outcome: Some("denied".into()),
            from: Some("2026-11-25".into()),
            ..Default::default()
        };
        let (sql, binds, _) = conditions(&q).unwrap();
        assert_eq!(sql, "WHERE actor = $1 AND action LIKE $2 ESCAPE '\\' AND outcome = $3 AND at >= $4");
        assert_eq!(binds, ["alice", "machine.%", "denied", "2026-11-25"]);
        assert!(conditions(&AuditQuery { outcome: Some("maybe".into()), ..Default::default() }).is_err());
        assert!(conditions(&AuditQuery { from: Some("'; drop".into()), ..Default::default() }).is_err());
    }
}
