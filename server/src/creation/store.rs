//! Cluster creation's SQL: the machines' sealed secret files.

use sqlx::{AnyConnection, Row};

/// One secret file of a machine, sealed.
pub struct SealedSecret<'a> {
    pub path: &'a str,
    pub sealed: String,
}

pub async fn insert_secrets(
    conn: &mut AnyConnection,
    cluster: &str,
    mac: &str,
    token: &str,
    secrets: &[SealedSecret<'_>],
) -> Result<(), sqlx::Error> {
    let now = crate::db::now();
    for secret in secrets {
        sqlx::query(
            "INSERT INTO cluster_secrets (token, path, cluster, mac, sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token)
        .bind(secret.path)
        .bind(cluster)
        .bind(mac)
        .bind(&secret.sealed)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A secret file as stored.
pub struct Stored {
    pub cluster: String,
    pub mac: String,
    pub sealed: String,
    /// When and from where it was fetched, if it was.
    pub fetched: Option<(String, String)>,
}

pub async fn secret(conn: &mut AnyConnection, token: &str, path: &str) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT cluster, mac, sealed, fetched_at, fetched_from FROM cluster_secrets WHERE token = $1 AND path = $2",
    )
    .bind(token)
    .bind(path)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let at: String = r.try_get("fetched_at")?;
        Ok(Stored {
            cluster: r.try_get("cluster")?,
            mac: r.try_get("mac")?,
            sealed: r.try_get("sealed")?,
            fetched: (!at.is_empty()).then(|| (at, r.try_get("fetched_from").unwrap_or_default())),
        })
    })
    .transpose()
}

/// Marks the file fetched, and forgets its sealed contents, unless it was already: whether this
/// call did.
pub async fn mark_fetched(conn: &mut AnyConnection, token: &str, path: &str, from: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE cluster_secrets SET fetched_at = $1, fetched_from = $2, sealed = '' \
         WHERE token = $3 AND path = $4 AND fetched_at = ''",
    )
    .bind(crate::db::now())
    .bind(from)
    .bind(token)
    .bind(path)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
