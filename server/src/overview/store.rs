//! The overview's SQL: counts and the latest rows, each bounded.

use app::overview::StateCount;
use sqlx::{AnyConnection, Row};

/// Machines by boot state (`never_seen` for those that never asked to boot).
pub async fn machines_by_boot_state(conn: &mut AnyConnection) -> Result<Vec<StateCount>, sqlx::Error> {
    counts(
        conn,
        "SELECT COALESCE(b.state, 'never_seen') AS state, COUNT(*) AS machines FROM machines m \
         LEFT JOIN boot_states b ON b.mac = m.mac GROUP BY COALESCE(b.state, 'never_seen') ORDER BY 1",
    )
    .await
}

/// Machines by power state as last read (`no_bmc` for those without a BMC).
pub async fn machines_by_power_state(conn: &mut AnyConnection) -> Result<Vec<StateCount>, sqlx::Error> {
    counts(
        conn,
        "SELECT COALESCE(p.power_state, 'no_bmc') AS state, COUNT(*) AS machines FROM machines m \
         LEFT JOIN machine_bmcs p ON p.machine_id = m.id GROUP BY COALESCE(p.power_state, 'no_bmc') ORDER BY 1",
    )
    .await
}

async fn counts(conn: &mut AnyConnection, sql: &str) -> Result<Vec<StateCount>, sqlx::Error> {
    sqlx::query(sql)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| Ok(StateCount { state: row.try_get("state")?, machines: row.try_get::<i64, _>("machines")? as u64 }))
        .collect()
}

/// A job as the overview lists it.
pub struct JobRow {
    pub kind: String,
    pub input: String,
    pub done: u32,
    pub total: u32,
    pub error: String,
    /// When it started (running) or ended (failed).
    pub at: String,
}

fn job_of(row: &sqlx::any::AnyRow, at: &str) -> Result<JobRow, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    // Only a creation's input (its cluster's name) is shown; others hold more.
    let input: String = if kind == "cluster.create" { row.try_get("input")? } else { String::new() };
    Ok(JobRow {
        kind,
        input,
        done: row.try_get::<i64, _>("done")? as u32,
        total: row.try_get::<i64, _>("total")? as u32,
        error: row.try_get("error")?,
        at: row.try_get(at)?,
    })
}

/// The jobs that run (of `owner`, or everyone's), the 50 newest.
pub async fn running_jobs(conn: &mut AnyConnection, owner: Option<&str>) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query(
        "SELECT kind, input, done, total, error, created_at FROM jobs \
         WHERE state = 'running' AND ($1 = '' OR owner = $1) ORDER BY created_at DESC LIMIT 50",
    )
    .bind(owner.unwrap_or_default())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| job_of(row, "created_at"))
    .collect()
}

/// The `limit` latest failed jobs (of `owner`, or everyone's).
pub async fn failed_jobs(
    conn: &mut AnyConnection,
    owner: Option<&str>,
    limit: usize,
) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query(
        "SELECT kind, input, done, total, error, updated_at FROM jobs \
         WHERE state = 'failed' AND ($1 = '' OR owner = $1) ORDER BY updated_at DESC LIMIT $2",
    )
    .bind(owner.unwrap_or_default())
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| job_of(row, "updated_at"))
    .collect()
}

/// A machine whose boot failed.
pub struct FailedMachine {
    pub id: i64,
    /// Its host name, else its MAC.
    pub name: String,
    pub reason: String,
    pub at: String,
}

/// The `limit` machines whose boot failed last.
pub async fn failed_machines(conn: &mut AnyConnection, limit: usize) -> Result<Vec<FailedMachine>, sqlx::Error> {
    sqlx::query(
        "SELECT m.id, CASE WHEN m.hostname = '' THEN m.mac ELSE m.hostname END AS name, b.reason, b.since FROM boot_states b \
         JOIN machines m ON m.mac = b.mac WHERE b.state = 'failed' ORDER BY b.since DESC LIMIT $1",
    )
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(FailedMachine {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            reason: row.try_get("reason")?,
            at: row.try_get("since")?,
        })
    })
    .collect()
}
