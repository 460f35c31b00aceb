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
}

/// The sealed form of a credential: a token as it is, a certificate and key as JSON.
pub fn seal(sealer: &Sealer, credential: &Credential) -> String {
    let plain = match credential {
        Credential::Token { token } => token.clone(),
        Credential::ClientCertificate { .. } => serde_json::to_string(credential).unwrap_or_default(),
    };
    sealer.seal(&SecretString::from(plain))
}

fn open(sealer: &Sealer, kind: &str, sealed: &str) -> Result<Credential, crate::error::Error> {
    let plain = sealer.open(sealed).ok_or_else(|| {
        crate::error::Error::Other(
            "a cluster's credential cannot be opened with this secret key (was PANGEA_SECRET_KEY changed?)".into(),
        )
    })?;
    Ok(match kind {
        "token" => Credential::Token { token: plain.expose_secret().to_string() },
        _ => serde_json::from_str(plain.expose_secret())?,
    })
}

/// The sources' credentials, sealed as one JSON ('' when there are none).
fn seal_sources(sealer: &Sealer, credentials: &Credentials) -> String {
    if *credentials == Credentials::default() {
        return String::new();
    }
    sealer.seal(&SecretString::from(serde_json::to_string(credentials).unwrap_or_default()))
}

fn open_sources(sealer: &Sealer, sealed: &str) -> Result<Credentials, crate::error::Error> {
    if sealed.is_empty() {
        return Ok(Credentials::default());
    }
    let plain = sealer.open(sealed).ok_or_else(|| {
        crate::error::Error::Other(
            "a cluster's source credentials cannot be opened with this secret key (was PANGEA_SECRET_KEY changed?)"
                .into(),
        )
    })?;
    Ok(serde_json::from_str(plain.expose_secret())?)
}

fn record(row: &sqlx::any::AnyRow, sealer: &Sealer) -> Result<ClusterRecord, crate::error::Error> {
    let kind: String = row.try_get("credential_kind")?;
    let sealed: String = row.try_get("credential_sealed")?;
    let source_credentials = open_sources(sealer, &row.try_get::<String, _>("source_credentials_sealed")?)?;
    let sources = source_credentials.clients().map_err(|e| crate::error::Error::Other(e.to_string()))?;
    Ok(ClusterRecord {
        name: row.try_get("name")?,
        endpoint: Endpoint {
            api_url: row.try_get("api_url")?,
            ca_pem: row.try_get("ca_pem")?,
            credential: open(sealer, &kind, &sealed)?,
        },
        prometheus_url: row.try_get("prometheus_url")?,
        alertmanager_url: row.try_get("alertmanager_url")?,
        grafana_url: row.try_get("grafana_url")?,
        source_credentials,
        sources,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
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
    .bind(seal(sealer, &record.endpoint.credential))
    .bind(&record.prometheus_url)
    .bind(&record.alertmanager_url)
    .bind(&record.grafana_url)
    .bind(seal_sources(sealer, &record.source_credentials))
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
    .bind(seal(sealer, &record.endpoint.credential))
    .bind(&record.prometheus_url)
    .bind(&record.alertmanager_url)
    .bind(&record.grafana_url)
    .bind(seal_sources(sealer, &record.source_credentials))
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
