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

fn sqlite_path(url: &str) -> Option<&str> {
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

/// Whether a database error is a unique-constraint violation, on either backend.
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
}
