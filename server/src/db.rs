//! The database: SQLite by default, PostgreSQL for HA replicas, through one sqlx `AnyPool`.
//!
//! Queries are written once in the SQL both engines accept (`$1` placeholders, row-value
//! comparisons, `ON CONFLICT`, `RETURNING`). The migrations differ where the dialects do, in
//! `migrations/sqlite` and `migrations/postgres`, and a test keeps them in step.

use secrecy::{ExposeSecret, SecretString};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// Keys the audit chain of every record written through this handle.
    chain_key: crate::secrets::ChainKey,
    /// How many refusals each address may still write to the audit log.
    refusals: std::sync::Arc<crate::audit::RefusalLimiter>,
}

impl Database {
    /// Opens a pool. For SQLite the file's directory is created and WAL mode, foreign keys and a
    /// busy timeout are set on every connection.
    pub async fn connect(
        url: &SecretString,
        chain_key: crate::secrets::ChainKey,
    ) -> Result<Database, crate::error::StartError> {
        install_default_drivers();
        let url = url.expose_secret();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        if backend == Backend::Sqlite
            && let Some(path) = sqlite_path(url)
            && let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| crate::error::StartError::DataDir(dir.into(), e))?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA foreign_keys = ON",
                            // A writer waits its turn behind another (a 50,000-machine import
                            // commits in a few seconds) rather than failing "database is locked".
                            "PRAGMA busy_timeout = 30000",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Database { pool, backend, chain_key, refusals: Default::default() })
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that may write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and writes later fails at its first
    /// write, without waiting, whenever another connection committed in between (WAL's
    /// `SQLITE_BUSY_SNAPSHOT`), so a boot batch or an import would be lost to any concurrent
    /// write. PostgreSQL's default transaction waits for row locks instead.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// A read-only transaction whose statements all see one snapshot, for reads of several tables
    /// that one writer's transaction changes together. PostgreSQL's default gives each statement
    /// its own snapshot; SQLite (WAL) takes one at the first read of a transaction.
    pub async fn snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
        }
        Ok(tx)
    }

    pub fn chain_key(&self) -> &crate::secrets::ChainKey {
        &self.chain_key
    }

    pub fn refusals(&self) -> &crate::audit::RefusalLimiter {
        &self.refusals
    }

    /// Whether the database answers a trivial query within two seconds.
    pub async fn is_ready(&self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&self.pool)).await,
            Ok(Ok(_))
        )
    }
}

/// The file of a SQLite URL (`sqlite://data/pangea.db?mode=rwc`), none for memory or PostgreSQL.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The current time as stored in the database.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `$first, $first+1, …` for `count` parameters.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A time in the fixed-width RFC 3339 form stored in the database, which sorts as text.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    at.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

/// Whether a database error means the database did not answer (its server stopped, restarting
/// or out of reach) rather than that the statement was wrong: what a person may simply retry.
/// PostgreSQL's classes 08 (connection exception) and 57P (operator intervention: shut down,
/// cannot connect now) say so too.
pub fn is_unreachable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        // 08P01 is a protocol violation: a bug, not an outage.
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| (code.starts_with("08") && code != "08P01") || code.starts_with("57P"))
        }
        _ => false,
    }
}

/// The unique constraint a failed write broke, by the name PostgreSQL gives it. SQLite names
/// the columns instead ("UNIQUE constraint failed: machines.mac"), which map to the same names.
pub fn unique_constraint(err: &sqlx::Error) -> Option<&'static str> {
    let db = err.as_database_error().filter(|e| e.is_unique_violation())?;
    const KNOWN: [(&str, &str); 6] = [
        ("machines_mac_key", "machines.mac"),
        ("users_username_key", "users.username"),
        ("users_issuer_subject_key", "users.issuer, users.subject"),
        ("role_bindings_subject_key", "role_bindings.subject_kind, role_bindings.subject, role_bindings.cluster"),
        ("api_tokens_hash_key", "api_tokens.token_hash"),
        ("clusters_name_key", "clusters.name"),
    ];
    match db.constraint() {
        Some(name) => KNOWN.iter().find(|(known, _)| *known == name).map(|(known, _)| *known),
        None => {
            let columns = db.message().strip_prefix("UNIQUE constraint failed: ")?;
            KNOWN.iter().find(|(_, cols)| *cols == columns).map(|(known, _)| *known)
        }
    }
    .or(Some("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found_in_urls() {
        assert_eq!(sqlite_path("sqlite://data/pangea.db?mode=rwc"), Some("data/pangea.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    /// The two migration folders must describe the same versions, so neither backend lags.
    #[test]
    fn migration_folders_stay_in_step() {
        let versions =
            |m: &sqlx::migrate::Migrator| m.iter().map(|m| (m.version, m.description.to_string())).collect::<Vec<_>>();
        assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
        assert!(SQLITE_MIGRATIONS.iter().next().is_some());
    }

    /// A transaction that reads, then writes after another connection committed: SQLite refuses
    /// a deferred one at once (the cause of lost boot batches), and `Database::begin` waits its
    /// turn instead.
    #[tokio::test]
    async fn a_transaction_that_reads_then_writes_survives_a_concurrent_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = SecretString::from(format!("sqlite://{}/t.db?mode=rwc", dir.path().display()));
        let db = Database::connect(&url, crate::secrets::ChainKey::from_bytes([1; 32])).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(db.pool()).await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (0)").execute(db.pool()).await.unwrap();

        let mut deferred = db.pool().begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&mut *deferred).await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1)").execute(db.pool()).await.unwrap();
        let refused = sqlx::query("INSERT INTO t (n) VALUES (2)").execute(&mut *deferred).await;
        assert!(refused.unwrap_err().to_string().contains("locked"));
        drop(deferred);

        let mut tx = db.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&mut *tx).await.unwrap();
        let other = tokio::spawn({
            let pool = db.pool().clone();
            async move { sqlx::query("INSERT INTO t (n) VALUES (3)").execute(&pool).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        sqlx::query("INSERT INTO t (n) VALUES (4)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        other.await.unwrap().unwrap();
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n").fetch_all(db.pool()).await.unwrap();
        assert_eq!(rows, [0, 1, 3, 4]);
    }
}
