//! Cluster creation's SQL: creations, the machines' sealed secret files, and the boot states
//! the creation job follows.

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
    pub created_at: String,
    /// When and from where it was fetched, if it was.
    pub fetched: Option<(String, String)>,
}

pub async fn secret(conn: &mut AnyConnection, token: &str, path: &str) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT cluster, mac, sealed, created_at, fetched_at, fetched_from FROM cluster_secrets \
         WHERE token = $1 AND path = $2",
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
            created_at: r.try_get("created_at")?,
            fetched: (!at.is_empty()).then(|| (at, r.try_get("fetched_from").unwrap_or_default())),
        })
    })
    .transpose()
}

/// The addresses `mac` was answered at by the boot listener since `since`, at most a few: its
/// secret links' own fetches aside, and what Pangea writes on its timeline itself (notes, such
/// as a power action's, have no status; its node's steps have no client).
pub async fn boot_addresses(conn: &mut AnyConnection, mac: &str, since: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT client FROM boot_events WHERE mac = $1 AND at >= $2 AND status > 0 AND status < 400 \
         AND client <> '' \
         AND endpoint NOT LIKE '/cluster-secrets/%' ORDER BY client LIMIT 4",
    )
    .bind(mac)
    .bind(since)
    .fetch_all(&mut *conn)
    .await
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

/// A creation as stored (no `Debug`: its nodes hold their secret links).
#[derive(Clone)]
pub struct CreationRow {
    pub name: String,
    pub template: String,
    /// JSON: the nodes (see `creation::StoredNode`).
    pub nodes: String,
    pub sealed_pki: String,
    pub job: String,
    pub state: String,
    pub created_by: String,
    pub created_at: String,
}

fn creation_of(row: &sqlx::any::AnyRow) -> Result<CreationRow, sqlx::Error> {
    Ok(CreationRow {
        name: row.try_get("name")?,
        template: row.try_get("template")?,
        nodes: row.try_get("nodes")?,
        sealed_pki: row.try_get("sealed_pki")?,
        job: row.try_get("job")?,
        state: row.try_get("state")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

const CREATION_COLUMNS: &str = "name, template, nodes, sealed_pki, job, state, created_by, created_at";

pub async fn insert_creation(conn: &mut AnyConnection, row: &CreationRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO cluster_creations ({CREATION_COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
    ))
    .bind(&row.name)
    .bind(&row.template)
    .bind(&row.nodes)
    .bind(&row.sealed_pki)
    .bind(&row.job)
    .bind(&row.state)
    .bind(&row.created_by)
    .bind(&row.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn creation(conn: &mut AnyConnection, name: &str) -> Result<Option<CreationRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {CREATION_COLUMNS} FROM cluster_creations WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(creation_of)
        .transpose()
}

pub async fn creations(conn: &mut AnyConnection) -> Result<Vec<CreationRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {CREATION_COLUMNS} FROM cluster_creations ORDER BY name"))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(creation_of)
        .collect()
}

pub async fn set_state(conn: &mut AnyConnection, name: &str, state: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE cluster_creations SET state = $1, updated_at = $2 WHERE name = $3")
        .bind(state)
        .bind(crate::db::now())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Keeps a created cluster's nodes and sealed PKI as a reinstall changed them, if its nodes are
/// still `read_nodes` (as read before the change): whether it did.
pub async fn update_creation(
    conn: &mut AnyConnection,
    row: &CreationRow,
    read_nodes: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE cluster_creations SET nodes = $1, sealed_pki = $2, updated_at = $3 \
         WHERE name = $4 AND state = 'created' AND nodes = $5",
    )
    .bind(&row.nodes)
    .bind(&row.sealed_pki)
    .bind(crate::db::now())
    .bind(&row.name)
    .bind(read_nodes)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets one machine's secret files (their links are replaced when it is installed again).
pub async fn delete_secrets_of(conn: &mut AnyConnection, cluster: &str, mac: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cluster_secrets WHERE cluster = $1 AND mac = $2")
        .bind(cluster)
        .bind(mac)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets a creation and its machines' secret files.
pub async fn delete_creation(conn: &mut AnyConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cluster_secrets WHERE cluster = $1").bind(name).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM cluster_creations WHERE name = $1").bind(name).execute(&mut *conn).await?;
    Ok(())
}

/// A machine's boot state as the boot listener and the cluster's nodes moved it.
#[derive(Debug, Clone, Default)]
pub struct BootStateRow {
    pub state: String,
    pub reason: String,
    pub since: String,
}

/// The boot states of `macs` that have one, by MAC.
pub async fn boot_states(
    conn: &mut AnyConnection,
    macs: &[String],
) -> Result<std::collections::HashMap<String, BootStateRow>, sqlx::Error> {
    let mut found = std::collections::HashMap::new();
    for chunk in macs.chunks(500) {
        let sql = format!(
            "SELECT mac, state, reason, since FROM boot_states WHERE mac IN ({})",
            crate::db::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for mac in chunk {
            query = query.bind(mac.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.insert(
                row.try_get("mac")?,
                BootStateRow {
                    state: row.try_get("state")?,
                    reason: row.try_get("reason")?,
                    since: row.try_get("since")?,
                },
            );
        }
    }
    Ok(found)
}

/// A boot request of a machine that was refused or failed.
#[derive(Debug, Clone)]
pub struct FailedRequest {
    pub at: String,
    pub endpoint: String,
    pub status: i64,
    pub reason: String,
}

/// What the boot listener saw of a creation's machines since it began, beyond their states.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Each machine's last failed request, by MAC.
    pub failed: std::collections::HashMap<String, FailedRequest>,
    /// The architecture each machine's iPXE last said it was built for (`arch`), by MAC.
    pub arch: std::collections::HashMap<String, String>,
    /// Machines outside the inventory that asked to boot (a MAC written wrong looks like this).
    pub strangers: Vec<String>,
}

/// What the boot listener saw of `macs` since `since`: each one's last failed request and the
/// architecture its iPXE last named; and up to three machines it does not know that asked.
pub async fn signals(conn: &mut AnyConnection, macs: &[String], since: &str) -> Result<Signals, sqlx::Error> {
    let mut signals = Signals::default();
    for chunk in macs.chunks(500) {
        let marks = crate::db::placeholders(2, chunk.len());
        // The last event of each machine of each kind (failed, or an iPXE script asked for).
        let sql = format!(
            "SELECT mac, at, endpoint, status, reason, labels FROM ( \
               SELECT mac, at, endpoint, status, reason, labels, \
                 ROW_NUMBER() OVER (PARTITION BY mac, status >= 400 ORDER BY id DESC) AS latest \
               FROM boot_events WHERE mac IN ({marks}) AND at >= $1 AND (status >= 400 OR endpoint = '/ipxe') \
             ) kinds WHERE latest = 1"
        );
        let mut query = sqlx::query(&sql).bind(since);
        for mac in chunk {
            query = query.bind(mac.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let mac: String = row.try_get("mac")?;
            let status: i64 = row.try_get("status")?;
            if status >= 400 {
                let failed = FailedRequest {
                    at: row.try_get("at")?,
                    endpoint: row.try_get("endpoint")?,
                    status,
                    reason: row.try_get("reason")?,
                };
                signals.failed.insert(mac, failed);
            } else {
                let labels: String = row.try_get("labels")?;
                let labels: std::collections::BTreeMap<String, String> =
                    serde_json::from_str(&labels).unwrap_or_default();
                if let Some(arch) = labels.get("arch").filter(|a| !a.is_empty()) {
                    signals.arch.insert(mac, arch.clone());
                }
            }
        }
    }
    signals.strangers = sqlx::query_scalar(
        "SELECT mac FROM discovered_machines WHERE last_seen >= $1 ORDER BY last_seen DESC, mac LIMIT 3",
    )
    .bind(since)
    .fetch_all(&mut *conn)
    .await?;
    Ok(signals)
}

/// What became of one machine's secret files.
#[derive(Debug, Clone, Default)]
pub struct Fetches {
    /// Whether every one was fetched.
    pub all_fetched: bool,
    /// The addresses they were fetched from: the machine's own, since only it had the link.
    pub from: Vec<String>,
}

/// The fetches of the secret files of each link `tokens` names, by token.
pub async fn fetches(
    conn: &mut AnyConnection,
    tokens: &[String],
) -> Result<std::collections::HashMap<String, Fetches>, sqlx::Error> {
    let mut found: std::collections::HashMap<String, Fetches> = std::collections::HashMap::new();
    let mut unfetched = std::collections::HashSet::new();
    for chunk in tokens.chunks(500) {
        let sql = format!(
            "SELECT token, fetched_at, fetched_from FROM cluster_secrets WHERE token IN ({})",
            crate::db::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for token in chunk {
            query = query.bind(token.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let token: String = row.try_get("token")?;
            let at: String = row.try_get("fetched_at")?;
            let from: String = row.try_get("fetched_from")?;
            let entry = found.entry(token.clone()).or_default();
            if at.is_empty() {
                unfetched.insert(token);
            } else if !from.is_empty() && !entry.from.contains(&from) {
                entry.from.push(from);
            }
        }
    }
    for (token, entry) in found.iter_mut() {
        entry.all_fetched = !unfetched.contains(token);
    }
    Ok(found)
}
