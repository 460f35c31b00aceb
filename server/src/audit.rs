//! The audit log: one append-only, keyed hash-chained record per event.
//!
//! Each record stores the previous record's hash and the HMAC-SHA256 of its own canonical
//! content (which includes its sequence number and the previous hash) under the audit chain key,
//! which is never in the database. Editing, deleting or reordering any record breaks the chain,
//! and someone with write access to the database but without the key cannot recompute it.
//! `audit_head` holds the last sequence number and hash, so cutting records off the end is
//! caught too; a [`Checkpoint`] kept elsewhere also catches a tail cut together with a head
//! rolled back. [`verify`] walks the chain; `pangea audit verify` runs it.
//!
//! A change and its record are written in the same transaction: [`begin`] opens it and takes the
//! chain's lock first, so concurrent changes append one after another on both backends.

pub mod http;
pub mod store;

use crate::db::Database;
use crate::db::now;
use crate::error::OrInternal;
use crate::secrets::ChainKey;
use app::access::{Permission, Principal, authorize};
pub use app::audit::AuditEntry as Record;
use app::audit::ssr::AuditService;
use app::audit::{AuditEntry, AuditPage, AuditQuery};
use app::error::AppError;
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Row, Transaction};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// What happened, to what, and how it went.
#[derive(Debug, Clone)]
pub struct Event {
    /// Dotted verb, such as `machine.create`.
    pub action: &'static str,
    pub target_kind: &'static str,
    pub target_id: String,
    pub target_name: String,
    pub outcome: Outcome,
    /// Before/after values for edits, counts for bulk changes, the error for failures.
    pub summary: serde_json::Value,
}

impl Event {
    pub fn new(action: &'static str, target_kind: &'static str) -> Event {
        Event {
            action,
            target_kind,
            target_id: String::new(),
            target_name: String::new(),
            outcome: Outcome::Success,
            summary: serde_json::Value::Null,
        }
    }

    pub fn target(mut self, id: impl ToString, name: impl ToString) -> Event {
        self.target_id = id.to_string();
        self.target_name = name.to_string();
        self
    }

    pub fn summary(mut self, summary: serde_json::Value) -> Event {
        self.summary = summary;
        self
    }

    /// The same event, recorded as failed with the error a person saw. A refusal (401, 403,
    /// 429) keeps none of what the caller sent; another failure keeps it when it is small.
    /// Either way the record stays small, whatever the caller sent.
    pub fn failed(mut self, error: &app::error::AppError) -> Event {
        let refused = matches!(error.status(), 401 | 403 | 429);
        self.outcome = if refused { Outcome::Denied } else { Outcome::Failure };
        let error = bounded(serde_json::to_value(error).unwrap_or_default(), MAX_SUMMARY_PART);
        self.summary = if refused {
            serde_json::json!({ "error": error })
        } else {
            serde_json::json!({ "attempted": bounded(self.summary, MAX_SUMMARY_PART), "error": error })
        };
        self
    }
}

/// The most bytes one part of a failure's summary keeps.
const MAX_SUMMARY_PART: usize = 2048;
/// The most characters a short, indexed column keeps (a B-tree entry on PostgreSQL has a limit).
const MAX_INDEXED_CHARS: usize = 256;

/// `value` when its JSON is at most `max` bytes, else a note of its size.
fn bounded(value: serde_json::Value, max: usize) -> serde_json::Value {
    let size = value.to_string().len();
    if size <= max { value } else { serde_json::json!({ "omitted": format!("{size} bytes, too large to keep") }) }
}

fn capped(text: String) -> String {
    if text.chars().count() <= MAX_INDEXED_CHARS {
        text
    } else {
        text.chars().take(MAX_INDEXED_CHARS - 1).chain(['…']).collect()
    }
}

/// Limits how many refusals one caller can write to the audit log: 30 a minute for each
/// address and signed-in person (all anonymous callers from one address share one budget).
/// What is skipped is counted, and the next refusal recorded for that caller says how many.
/// One caller's minute: when it started, refusals written, refusals skipped.
#[derive(Debug, Clone, Copy)]
struct RefusalWindow {
    start: std::time::Instant,
    written: u32,
    skipped: u64,
}

#[derive(Debug, Default)]
pub struct RefusalLimiter {
    windows: std::sync::Mutex<std::collections::HashMap<(Option<std::net::IpAddr>, String), RefusalWindow>>,
}

impl RefusalLimiter {
    const PER_MINUTE: u32 = 30;

    /// `Some(skipped so far)` when a refusal from `ip` may be recorded now; `None` to skip it.
    pub fn admit(&self, ip: Option<std::net::IpAddr>, actor: String) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        // A caller's skipped count is kept for ten minutes, for its next recorded refusal.
        windows.retain(|_, w| now.duration_since(w.start).as_secs() < if w.skipped > 0 { 600 } else { 60 });
        let window = windows.entry((ip, actor)).or_insert(RefusalWindow { start: now, written: 0, skipped: 0 });
        if now.duration_since(window.start).as_secs() >= 60 {
            (window.start, window.written) = (now, 0);
        }
        if window.written < Self::PER_MINUTE {
            window.written += 1;
            Some(std::mem::take(&mut window.skipped))
        } else {
            window.skipped += 1;
            None
        }
    }
}

/// Records a refusal (an anonymous or unauthorised request) in a transaction of its own,
/// unless `who`'s address has written too many refusals this minute.
pub async fn record_refusal(db: &Database, who: &Principal, event: Event) {
    let Some(skipped) = db.refusals().admit(who.ip, who.actor()) else { return };
    let mut event = event;
    if skipped > 0
        && let Some(summary) = event.summary.as_object_mut()
    {
        summary.insert("refusals_not_recorded_before".into(), skipped.into());
    }
    if let Err(e) = record(db, who, event).await {
        tracing::error!(error = %e, "could not record a refusal in the audit log");
    }
}

/// HMAC-SHA256 under the chain key over the previous hash and every content column, as a JSON
/// array (unambiguous).
pub fn compute_hash(key: &ChainKey, r: &Record) -> String {
    let canonical = serde_json::json!([
        r.prev_hash,
        r.id,
        r.at,
        r.actor,
        r.auth_method,
        r.roles,
        r.action,
        r.target_kind,
        r.target_id,
        r.target_name,
        r.outcome,
        r.summary,
        r.ip,
        r.user_agent,
        r.request_id,
    ]);
    hex::encode(key.mac(canonical.to_string().as_bytes()))
}

pub fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<Record, sqlx::Error> {
    Ok(Record {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        auth_method: row.try_get("auth_method")?,
        roles: row.try_get("roles")?,
        action: row.try_get("action")?,
        target_kind: row.try_get("target_kind")?,
        target_id: row.try_get("target_id")?,
        target_name: row.try_get("target_name")?,
        outcome: row.try_get("outcome")?,
        summary: row.try_get("summary")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        request_id: row.try_get("request_id")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// A transaction that holds the audit chain's lock and key: a change and its audit record are
/// written in one. It is used as the connection of the change's queries (`&mut *tx`).
pub struct AuditTx {
    tx: Transaction<'static, Any>,
    key: ChainKey,
    /// Whether this transaction holds the chain's lock yet.
    locked: bool,
}

impl std::ops::Deref for AuditTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for AuditTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl AuditTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// Opens a transaction holding the audit chain's lock (a no-op write to `audit_head`, which
/// SQLite turns into its write lock and PostgreSQL into a row lock).
pub async fn begin(db: &Database) -> Result<AuditTx, sqlx::Error> {
    let mut tx = begin_unlocked(db).await?;
    lock_chain(&mut tx).await?;
    Ok(tx)
}

/// Opens a transaction that takes the chain's lock only when it appends its record: for long
/// changes (a 50,000-machine import), so other people's audited changes wait only for the
/// append and the commit, not for the whole change. (On SQLite every writer waits anyway.)
pub async fn begin_unlocked(db: &Database) -> Result<AuditTx, sqlx::Error> {
    Ok(AuditTx { tx: db.begin().await?, key: db.chain_key().clone(), locked: false })
}

async fn lock_chain(tx: &mut AuditTx) -> Result<(), sqlx::Error> {
    if !tx.locked {
        sqlx::query("UPDATE audit_head SET last_id = last_id WHERE id = 1").execute(&mut *tx.tx).await?;
        tx.locked = true;
    }
    Ok(())
}

/// Appends `event` by `who` inside `tx`.
pub async fn append(tx: &mut AuditTx, who: &Principal, event: Event) -> Result<i64, sqlx::Error> {
    lock_chain(tx).await?;
    let head = sqlx::query("SELECT last_id, last_hash FROM audit_head WHERE id = 1").fetch_one(&mut **tx).await?;
    let mut record = Record {
        id: head.try_get::<i64, _>("last_id")? + 1,
        at: now(),
        actor: capped(who.actor()),
        auth_method: who.auth_method().into(),
        roles: who.role.map(|r| r.as_str()).unwrap_or_default().into(),
        action: event.action.into(),
        target_kind: event.target_kind.into(),
        target_id: capped(event.target_id),
        target_name: capped(event.target_name),
        outcome: event.outcome.as_str().into(),
        summary: if event.summary.is_null() { String::new() } else { event.summary.to_string() },
        ip: who.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        user_agent: capped(who.user_agent.clone().unwrap_or_default()),
        request_id: crate::error::REQUEST_ID.try_with(Clone::clone).unwrap_or_default(),
        prev_hash: head.try_get("last_hash")?,
        hash: String::new(),
    };
    record.hash = compute_hash(&tx.key, &record);
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, auth_method, roles, action, target_kind, target_id, target_name, \
         outcome, summary, ip, user_agent, request_id, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(record.id)
    .bind(&record.at)
    .bind(&record.actor)
    .bind(&record.auth_method)
    .bind(&record.roles)
    .bind(&record.action)
    .bind(&record.target_kind)
    .bind(&record.target_id)
    .bind(&record.target_name)
    .bind(&record.outcome)
    .bind(&record.summary)
    .bind(&record.ip)
    .bind(&record.user_agent)
    .bind(&record.request_id)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE id = 1")
        .bind(record.id)
        .bind(&record.hash)
        .execute(&mut **tx)
        .await?;
    Ok(record.id)
}

/// Records an event in a transaction of its own: for failures and denials, whose change (if
/// any) was rolled back.
pub async fn record(db: &Database, who: &Principal, event: Event) -> Result<i64, sqlx::Error> {
    let mut tx = begin(db).await?;
    let id = append(&mut tx, who, event).await?;
    tx.commit().await?;
    Ok(id)
}

/// Passes `result` through; an error is first recorded as the failure (or denial) of `event`,
/// in a transaction of its own, since the change's transaction was rolled back.
pub async fn settle<T>(
    db: &Database,
    who: &Principal,
    event: Event,
    result: Result<T, app::error::AppError>,
) -> Result<T, app::error::AppError> {
    if let Err(error) = &result {
        let action = event.action;
        if matches!(error.status(), 401 | 403 | 429) {
            record_refusal(db, who, event.failed(error)).await;
        } else if let Err(audit_error) = record(db, who, event.failed(error)).await {
            tracing::error!(error = %audit_error, action, "could not record a failed change in the audit log");
        }
    }
    result
}

/// Passes a read's authorization result through, auditing a refusal.
pub async fn settle_read(
    db: &Database,
    who: &Principal,
    result: Result<(), app::error::AppError>,
) -> Result<(), app::error::AppError> {
    settle(db, who, Event::new("audit.read", "audit"), result).await
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "audit record {id}: its content does not match its keyed hash (the record was edited, or this is not the \
         audit key it was written with: check PANGEA_AUDIT_KEY / PANGEA_SECRET_KEY)"
    )]
    Edited { id: i64 },
    #[error("audit record {id}: it does not follow record {expected_after} (records were deleted or reordered)")]
    Broken { id: i64, expected_after: i64 },
    #[error("the audit log ends at record {last}, but its head says {head} (records were deleted from the end)")]
    Truncated { last: i64, head: i64 },
    #[error("cannot read the audit log: {0}")]
    Read(String),
    #[error("the checkpoint was not signed with this audit key (or was changed)")]
    CheckpointForged,
    #[error(
        "the checkpoint of {at} counted {count} records, but the log now has only {now} (records were cut off the end)"
    )]
    CheckpointAhead { at: String, count: i64, now: i64 },
    #[error("audit record {id} is not the record the checkpoint of {at} saw (the log was rewritten)")]
    CheckpointDiffers { id: i64, at: String },
}

/// The head of the chain at one moment, signed with the audit key: kept outside the database
/// (a ticket, another system's log), it lets `pangea audit verify --checkpoint` prove that no
/// record up to it was removed, even together with a rolled-back head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub count: i64,
    pub head: String,
    pub at: String,
    pub mac: String,
}

impl Checkpoint {
    fn mac_of(key: &ChainKey, count: i64, head: &str, at: &str) -> String {
        hex::encode(key.mac(serde_json::json!(["pangea audit checkpoint", count, head, at]).to_string().as_bytes()))
    }
}

/// Signs the current head of the chain.
pub async fn checkpoint(db: &Database) -> Result<Checkpoint, sqlx::Error> {
    let head = sqlx::query("SELECT last_id, last_hash FROM audit_head WHERE id = 1").fetch_one(db.pool()).await?;
    let (count, hash): (i64, String) = (head.try_get("last_id")?, head.try_get("last_hash")?);
    let at = now();
    let mac = Checkpoint::mac_of(db.chain_key(), count, &hash, &at);
    Ok(Checkpoint { count, head: hash, at, mac })
}

/// Verifies the chain and then that it still holds the record `checkpoint` saw as its head.
pub async fn verify_with_checkpoint(db: &Database, checkpoint: &Checkpoint) -> Result<i64, ChainError> {
    let expected = Checkpoint::mac_of(db.chain_key(), checkpoint.count, &checkpoint.head, &checkpoint.at);
    if expected != checkpoint.mac {
        return Err(ChainError::CheckpointForged);
    }
    let count = verify(db).await?;
    if count < checkpoint.count {
        return Err(ChainError::CheckpointAhead { at: checkpoint.at.clone(), count: checkpoint.count, now: count });
    }
    if checkpoint.count > 0 {
        let hash: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE id = $1")
            .bind(checkpoint.count)
            .fetch_one(db.pool())
            .await
            .map_err(|e| ChainError::Read(e.to_string()))?;
        if hash != checkpoint.head {
            return Err(ChainError::CheckpointDiffers { id: checkpoint.count, at: checkpoint.at.clone() });
        }
    }
    Ok(count)
}

/// Walks the whole chain in order, in pages, in constant memory. Returns the number of records.
pub async fn verify(db: &Database) -> Result<i64, ChainError> {
    let read = |e: sqlx::Error| ChainError::Read(e.to_string());
    // The walk starts at id 1: a row slipped in below it would be outside the chain.
    let below: Option<i64> =
        sqlx::query_scalar("SELECT MIN(id) FROM audit_log WHERE id < 1").fetch_one(db.pool()).await.map_err(read)?;
    if let Some(id) = below {
        return Err(ChainError::Broken { id, expected_after: 0 });
    }
    let (mut last_id, mut last_hash) = (0i64, GENESIS.to_string());
    loop {
        let rows = sqlx::query("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT 1000")
            .bind(last_id)
            .fetch_all(db.pool())
            .await
            .map_err(read)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let record = entry_from_row(row).map_err(read)?;
            if record.id != last_id + 1 || record.prev_hash != last_hash {
                return Err(ChainError::Broken { id: record.id, expected_after: last_id });
            }
            if compute_hash(db.chain_key(), &record) != record.hash {
                return Err(ChainError::Edited { id: record.id });
            }
            (last_id, last_hash) = (record.id, record.hash);
        }
    }
    let head = sqlx::query("SELECT last_id, last_hash FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .map_err(read)?;
    let head_id: i64 = head.try_get("last_id").map_err(read)?;
    let head_hash: String = head.try_get("last_hash").map_err(read)?;
    if head_id != last_id || head_hash != last_hash {
        return Err(ChainError::Truncated { last: last_id, head: head_id });
    }
    Ok(last_id)
}

/// Reads records newest first, for tests and the CLI.
pub async fn latest(db: &Database, limit: i64) -> Result<Vec<Record>, sqlx::Error> {
    sqlx::query("SELECT * FROM audit_log ORDER BY id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(entry_from_row)
        .collect()
}

// The audit log as a service, for the Audit page and the API.

/// The audit log as a service; only admins may read it, and refusals are themselves audited.
pub struct AuditLog {
    db: Database,
}

impl AuditLog {
    pub fn new(db: Database) -> AuditLog {
        AuditLog { db }
    }

    /// Every record `query` matches, page after page as the stream is read, so an export of
    /// any size takes constant memory. The reader's permission and the filter are checked once,
    /// before the first page, and who exported what (as `format`) is recorded.
    pub async fn export(
        &self,
        who: &Principal,
        query: AuditQuery,
        format: &str,
    ) -> Result<impl futures::Stream<Item = Result<AuditPage, AppError>> + Send + 'static, AppError> {
        settle_read(&self.db, who, authorize(who, Permission::ViewAudit)).await?;
        // One record first: a bad filter or an unreachable database is an error before the
        // first byte goes out, not a cut-off export.
        store::page(&self.db, &AuditQuery { limit: Some(1), ..query.clone() }).await?;
        let filter = serde_json::json!({
            "actor": query.actor, "action": query.action, "target": query.target, "outcome": query.outcome,
            "from": query.from, "to": query.to, "before": query.before,
        });
        let event =
            Event::new("audit.export", "audit").summary(serde_json::json!({ "format": format, "filter": filter }));
        record(&self.db, who, event).await.or_internal()?;
        let db = self.db.clone();
        let first = AuditQuery { limit: Some(500), ..query };
        Ok(futures::stream::unfold(Some(first), move |next| {
            let db = db.clone();
            async move {
                let query = next?;
                match store::page(&db, &query).await {
                    Ok(page) => {
                        let rest = page.next.map(|before| AuditQuery { before: Some(before), ..query });
                        Some((Ok(page), rest))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            }
        }))
    }
}

#[async_trait::async_trait]
impl AuditService for AuditLog {
    async fn search(&self, who: &Principal, query: AuditQuery) -> Result<AuditPage, AppError> {
        settle_read(&self.db, who, authorize(who, Permission::ViewAudit)).await?;
        store::page(&self.db, &query).await
    }

    async fn get(&self, who: &Principal, id: i64) -> Result<AuditEntry, AppError> {
        settle_read(&self.db, who, authorize(who, Permission::ViewAudit)).await?;
        store::entry(&self.db, id)
            .await
            .or_internal()?
            .ok_or_else(|| AppError::not_found(format!("There is no audit record {id}.")))
    }
}
