//! The `clusters` table: each cluster's address, CA, sealed credential and monitoring links.

use super::connect::Endpoint;
use super::sources::{Clients, Credentials};
use crate::db::Database;
use crate::secrets::Sealer;
use app::clusters::Credential;
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

/// A stored cluster, its credential opened.
#[derive(Debug, Clone)]
pub struct ClusterRecord {
    pub name: String,
    pub endpoint: Endpoint,
    pub prometheus_url: String,
    pub alertmanager_url: String,
    pub grafana_url: String,
    /// Pangea's credentials for the linked sources, and the clients that present them.
    pub source_credentials: Credentials,
    pub sources: Clients,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// Why its credential cannot be opened (it is then not watched, and its credential is empty).
    pub unreadable: Option<String>,
    /// Why its monitoring links' credentials cannot be opened (they are then left out).
    pub sources_unreadable: Option<String>,
}

/// What a cluster's credential is bound to when sealed: its row and the address it goes to.
fn credential_place(name: &str, api_url: &str) -> String {
    format!("clusters {name} credential for {api_url}")
}

/// What a cluster's source credentials are bound to: its row and the three addresses.
fn sources_place(name: &str, prometheus: &str, alertmanager: &str, grafana: &str) -> String {
    format!("clusters {name} sources for {prometheus} {alertmanager} {grafana}")
}

/// The sealed form of a cluster's credential: a token as it is, a certificate and key as JSON.
fn seal(sealer: &Sealer, record: &ClusterRecord) -> String {
    let credential = &record.endpoint.credential;
    let plain = match credential {
        Credential::Token { token } => token.clone(),
        Credential::ClientCertificate { .. } => serde_json::to_string(credential).unwrap_or_default(),
    };
    sealer.seal(&SecretString::from(plain), &credential_place(&record.name, &record.endpoint.api_url))
}

fn open(sealer: &Sealer, kind: &str, sealed: &str, place: &str) -> Result<Credential, String> {
    let plain = sealer.open(sealed, place).map_err(|e| format!("Pangea's credential for it cannot be opened: {e}."))?;
    Ok(match kind {
        "token" => Credential::Token { token: plain.expose_secret().to_string() },
        _ => serde_json::from_str(plain.expose_secret())
            .map_err(|e| format!("its stored credential is damaged ({e})."))?,
    })
}

/// The sources' credentials, sealed as one JSON ('' when there are none).
fn seal_sources(sealer: &Sealer, record: &ClusterRecord) -> String {
    if record.source_credentials == Credentials::default() {
        return String::new();
    }
    let place = sources_place(&record.name, &record.prometheus_url, &record.alertmanager_url, &record.grafana_url);
    sealer.seal(&SecretString::from(serde_json::to_string(&record.source_credentials).unwrap_or_default()), &place)
}

fn open_sources(sealer: &Sealer, sealed: &str, place: &str) -> Result<Credentials, String> {
    if sealed.is_empty() {
        return Ok(Credentials::default());
    }
    let plain = sealer
        .open(sealed, place)
        .map_err(|e| format!("the credentials for its monitoring links cannot be opened: {e}"))?;
    serde_json::from_str(plain.expose_secret())
        .map_err(|e| format!("the credentials for its monitoring links are damaged ({e})"))
}

/// A stored cluster. A credential that cannot be opened disables that cluster only (or, for the
/// monitoring links' credentials, those links' credentials only), with the reason in `unreadable`.
fn record(row: &sqlx::any::AnyRow, sealer: &Sealer) -> Result<ClusterRecord, crate::error::Error> {
    let name: String = row.try_get("name")?;
    let api_url: String = row.try_get("api_url")?;
    let (prometheus_url, alertmanager_url, grafana_url): (String, String, String) =
        (row.try_get("prometheus_url")?, row.try_get("alertmanager_url")?, row.try_get("grafana_url")?);
    let mut problems = Vec::new();
    let sources_place = sources_place(&name, &prometheus_url, &alertmanager_url, &grafana_url);
    let source_credentials =
        open_sources(sealer, &row.try_get::<String, _>("source_credentials_sealed")?, &sources_place).unwrap_or_else(
            |problem| {
                problems.push(problem);
                Credentials::default()
            },
        );
    let sources = source_credentials.clients().map_err(|e| crate::error::Error::Other(e.to_string()))?;
    let kind: String = row.try_get("credential_kind")?;
    let sealed: String = row.try_get("credential_sealed")?;
    let (credential, unreadable) = match open(sealer, &kind, &sealed, &credential_place(&name, &api_url)) {
        Ok(credential) => (credential, None),
        // Never sent anywhere: a cluster whose credential is unreadable is not watched.
        Err(problem) => (Credential::Token { token: String::new() }, Some(problem)),
    };
    if !problems.is_empty() {
        tracing::warn!(cluster = %name, problem = %problems.join("; "), "a sealed value of a cluster cannot be opened");
    }
    Ok(ClusterRecord {
        name,
        endpoint: Endpoint { api_url, ca_pem: row.try_get("ca_pem")?, credential },
        prometheus_url,
        alertmanager_url,
        grafana_url,
        source_credentials,
        sources,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        unreadable,
        sources_unreadable: problems.pop(),
    })
}

/// Re-seals every cluster's credentials under `sealer`'s first key (opening them with any of
/// its keys), in the caller's transaction; how many clusters. One that cannot be opened stops
/// it: a rotation leaves nothing behind.
pub async fn reseal(conn: &mut sqlx::AnyConnection, sealer: &Sealer) -> Result<usize, crate::error::Error> {
    let rows = sqlx::query("SELECT * FROM clusters ORDER BY name").fetch_all(&mut *conn).await?;
    for row in &rows {
        let record = record(row, sealer)?;
        if let Some(problem) = record.unreadable.as_ref().or(record.sources_unreadable.as_ref()) {
            return Err(crate::error::Error::Other(format!("cluster {}: {problem}", record.name)));
        }
        sqlx::query("UPDATE clusters SET credential_sealed = $1, source_credentials_sealed = $2 WHERE name = $3")
            .bind(seal(sealer, &record))
            .bind(seal_sources(sealer, &record))
            .bind(&record.name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(rows.len())
}

pub async fn all(db: &Database, sealer: &Sealer) -> Result<Vec<ClusterRecord>, crate::error::Error> {
    let rows = sqlx::query("SELECT * FROM clusters ORDER BY name").fetch_all(db.pool()).await?;
    rows.iter().map(|r| record(r, sealer)).collect()
}

pub async fn one(db: &Database, sealer: &Sealer, name: &str) -> Result<Option<ClusterRecord>, crate::error::Error> {
    let row = sqlx::query("SELECT * FROM clusters WHERE name = $1").bind(name).fetch_optional(db.pool()).await?;
    row.map(|r| record(&r, sealer)).transpose()
}

/// Inserts `record` in the caller's transaction.
pub async fn insert(
    tx: &mut crate::audit::AuditTx,
    sealer: &Sealer,
    record: &ClusterRecord,
) -> Result<(), crate::error::Error> {
    sqlx::query(
        "INSERT INTO clusters (name, api_url, ca_pem, credential_kind, credential_sealed, prometheus_url, alertmanager_url, \
         grafana_url, source_credentials_sealed, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&record.name)
    .bind(&record.endpoint.api_url)
    .bind(&record.endpoint.ca_pem)
    .bind(record.endpoint.credential.kind())
    .bind(seal(sealer, record))
    .bind(&record.prometheus_url)
    .bind(&record.alertmanager_url)
    .bind(&record.grafana_url)
    .bind(seal_sources(sealer, record))
    .bind(&record.created_by)
    .bind(&record.created_at)
    .bind(&record.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes `record`'s address, CA, credential and links over the stored cluster of that name.
pub async fn update(
    tx: &mut crate::audit::AuditTx,
    sealer: &Sealer,
    record: &ClusterRecord,
) -> Result<(), crate::error::Error> {
    sqlx::query(
        "UPDATE clusters SET api_url = $1, ca_pem = $2, credential_kind = $3, credential_sealed = $4, prometheus_url = $5, \
         alertmanager_url = $6, grafana_url = $7, source_credentials_sealed = $8, updated_at = $9 WHERE name = $10",
    )
    .bind(&record.endpoint.api_url)
    .bind(&record.endpoint.ca_pem)
    .bind(record.endpoint.credential.kind())
    .bind(seal(sealer, record))
    .bind(&record.prometheus_url)
    .bind(&record.alertmanager_url)
    .bind(&record.grafana_url)
    .bind(seal_sources(sealer, record))
    .bind(&record.updated_at)
    .bind(&record.name)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn delete(tx: &mut crate::audit::AuditTx, name: &str) -> Result<bool, crate::error::Error> {
    let done = sqlx::query("DELETE FROM clusters WHERE name = $1").bind(name).execute(&mut **tx).await?;
    Ok(done.rows_affected() > 0)
}
