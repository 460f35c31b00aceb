//! Imported dashboards in the database: their Grafana JSON, and who imported them from where.

use crate::audit::AuditTx;
use crate::db::Database;
use app::monitoring::dashboards::DashboardSummary;
use sqlx::Row;

/// A dashboard as it is stored.
pub struct Stored {
    pub uid: String,
    pub title: String,
    pub description: String,
    pub model: String,
    pub origin: String,
}

pub async fn list(db: &Database) -> Result<Vec<DashboardSummary>, sqlx::Error> {
    let rows = sqlx::query("SELECT uid, title, description, origin, imported_by FROM dashboards ORDER BY title, uid")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DashboardSummary {
                uid: row.try_get("uid")?,
                title: row.try_get("title")?,
                description: row.try_get("description")?,
                shipped: false,
                imported_by: row.try_get("imported_by")?,
                origin: row.try_get("origin")?,
            })
        })
        .collect()
}

/// The stored JSON of `uid` and where it came from, if it was imported.
pub async fn model(db: &Database, uid: &str) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query("SELECT model, origin FROM dashboards WHERE uid = $1")
        .bind(uid)
        .fetch_optional(db.pool())
        .await?
        .map(|row| Ok((row.try_get("model")?, row.try_get("origin")?)))
        .transpose()
}

/// Stores `dashboard`, replacing one with its uid; whether one was replaced.
pub async fn put(tx: &mut AuditTx, dashboard: &Stored, by: &str) -> Result<bool, sqlx::Error> {
    let replaced = sqlx::query("SELECT 1 AS one FROM dashboards WHERE uid = $1")
        .bind(&dashboard.uid)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    sqlx::query(
        "INSERT INTO dashboards (uid, title, description, model, origin, imported_by, imported_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (uid) DO UPDATE SET title = excluded.title, description = excluded.description, \
         model = excluded.model, origin = excluded.origin, imported_by = excluded.imported_by, \
         imported_at = excluded.imported_at",
    )
    .bind(&dashboard.uid)
    .bind(&dashboard.title)
    .bind(&dashboard.description)
    .bind(&dashboard.model)
    .bind(&dashboard.origin)
    .bind(by)
    .bind(crate::db::now())
    .execute(&mut **tx)
    .await?;
    Ok(replaced)
}

/// Removes an imported dashboard; whether there was one.
pub async fn delete(tx: &mut AuditTx, uid: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM dashboards WHERE uid = $1").bind(uid).execute(&mut **tx).await?;
    Ok(done.rows_affected() > 0)
}
