//! The inventory's SQL: the `machines` and `machine_labels` tables, in SQL both backends share.
//! Writes take the caller's transaction, so the service writes its audit record with them.

mod list;

pub use list::{check_search, count_matching, fetch_page};

use crate::db::{Database, now, placeholders};
use app::machines::fields::Labels;
use app::machines::{Machine, MachineInput, MachineSpec};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashMap};

/// Rows per multi-row INSERT during an import; well under SQLite's parameter limit.
pub const BATCH: usize = 500;

const COLUMNS: &str = "id, mac, hostname, uuid, serial, role, cluster, created_at, updated_at";

fn machine_from_row(row: &AnyRow) -> Result<Machine, sqlx::Error> {
    let optional = |col: &str| -> Result<Option<String>, sqlx::Error> {
        let v: String = row.try_get(col)?;
        Ok((!v.is_empty()).then_some(v))
    };
    let role: String = row.try_get("role")?;
    Ok(Machine {
        id: row.try_get("id")?,
        mac: row.try_get("mac")?,
        hostname: optional("hostname")?,
        uuid: optional("uuid")?,
        serial: optional("serial")?,
        role: role.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        labels: BTreeMap::new(),
        cluster: optional("cluster")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What substring search looks through, in lowercase.
fn search_text(spec: &MachineSpec) -> String {
    let mut parts = vec![spec.mac.to_string()];
    parts.extend(spec.hostname.as_ref().map(|h| h.to_string()));
    parts.extend(spec.cluster.as_ref().map(|c| c.to_string()));
    parts.extend(spec.serial.as_ref().map(|s| s.to_string()));
    parts.extend(spec.uuid.as_ref().map(|u| u.to_string()));
    parts.extend(spec.labels.iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(" ").to_lowercase()
}

fn text<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds a machine's stored columns, in order: mac, hostname, uuid, serial, role, cluster,
/// search_text.
fn bind_spec<'q>(query: Query<'q>, spec: &MachineSpec) -> Query<'q> {
    query
        .bind(spec.mac.to_string())
        .bind(text(&spec.hostname))
        .bind(text(&spec.uuid))
        .bind(text(&spec.serial))
        .bind(spec.role.as_str())
        .bind(text(&spec.cluster))
        .bind(search_text(spec))
}

/// Fills in the labels of `machines` with one query.
pub async fn attach_labels(db: &Database, machines: &mut [Machine]) -> Result<(), sqlx::Error> {
    if machines.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT machine_id, key, value FROM machine_labels WHERE machine_id IN ({})",
        placeholders(1, machines.len())
    );
    let mut query = sqlx::query(&sql);
    for m in machines.iter() {
        query = query.bind(m.id);
    }
    let mut by_id: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
    for row in query.fetch_all(db.pool()).await? {
        by_id.entry(row.try_get("machine_id")?).or_default().insert(row.try_get("key")?, row.try_get("value")?);
    }
    for m in machines.iter_mut() {
        m.labels = by_id.remove(&m.id).unwrap_or_default();
    }
    Ok(())
}

/// One machine with its labels, if it exists.
pub async fn machine(db: &Database, id: i64) -> Result<Option<Machine>, sqlx::Error> {
    let Some(row) = sqlx::query(&format!("SELECT {COLUMNS} FROM machines WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(None);
    };
    let mut machine = [machine_from_row(&row)?];
    attach_labels(db, &mut machine).await?;
    let [machine] = machine;
    Ok(Some(machine))
}

/// Adds `rows`' labels, replacing the value of a key a machine has already.
async fn insert_labels(tx: &mut AnyConnection, rows: &[(i64, &Labels)]) -> Result<(), sqlx::Error> {
    let pairs: Vec<(i64, &str, &str)> =
        rows.iter().flat_map(|(id, labels)| labels.iter().map(move |(k, v)| (*id, k, v))).collect();
    for chunk in pairs.chunks(BATCH) {
        let values = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO machine_labels (machine_id, key, value) VALUES {values} \
             ON CONFLICT (machine_id, key) DO UPDATE SET value = excluded.value"
        );
        let mut query = sqlx::query(&sql);
        for (id, k, v) in chunk {
            query = query.bind(*id).bind(*k).bind(*v);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Inserts machines in batches, returning each new id in the order of `specs`.
pub async fn insert(tx: &mut AnyConnection, specs: &[MachineSpec]) -> Result<Vec<i64>, sqlx::Error> {
    let now = now();
    let mut ids = Vec::with_capacity(specs.len());
    for chunk in specs.chunks(BATCH) {
        const PER_ROW: usize = 9;
        let values = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * PER_ROW + 1, PER_ROW)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO machines (mac, hostname, uuid, serial, role, cluster, search_text, created_at, updated_at) \
             VALUES {values} RETURNING id, mac"
        );
        let mut query = sqlx::query(&sql);
        for spec in chunk {
            query = bind_spec(query, spec).bind(now.clone()).bind(now.clone());
        }
        let returned: HashMap<String, i64> = query
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("mac")?, row.try_get("id")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let chunk_ids: Vec<i64> = chunk.iter().map(|s| returned[&s.mac.to_string()]).collect();
        let labelled: Vec<(i64, &Labels)> = chunk.iter().zip(&chunk_ids).map(|(s, id)| (*id, &s.labels)).collect();
        insert_labels(tx, &labelled).await?;
        ids.extend(chunk_ids);
    }
    Ok(ids)
}

/// Which of `macs` (at most [`BATCH`]) are stored.
pub async fn ids_by_mac(db: &Database, macs: &[String]) -> Result<HashMap<String, i64>, sqlx::Error> {
    let sql = format!("SELECT id, mac FROM machines WHERE mac IN ({})", placeholders(1, macs.len()));
    let mut query = sqlx::query(&sql);
    for mac in macs {
        query = query.bind(mac.as_str());
    }
    query.fetch_all(db.pool()).await?.iter().map(|row| Ok((row.try_get("mac")?, row.try_get("id")?))).collect()
}

/// On PostgreSQL, merges the trigram index's pending list (where fast inserts put new rows), so
/// substring searches do not scan it. Nothing to do on SQLite.
pub async fn merge_search_index(db: &Database) -> Result<(), sqlx::Error> {
    if db.backend() == crate::db::Backend::Postgres {
        sqlx::query("SELECT gin_clean_pending_list('machines_search_trgm_idx')::bigint").execute(db.pool()).await?;
    }
    Ok(())
}

/// Replaces machine `id`'s fields and labels with `spec`'s; false when there is no such machine.
pub async fn update(tx: &mut AnyConnection, id: i64, spec: &MachineSpec) -> Result<bool, sqlx::Error> {
    let query = sqlx::query(
        "UPDATE machines SET mac = $1, hostname = $2, uuid = $3, serial = $4, role = $5, cluster = $6, \
         search_text = $7, updated_at = $8 WHERE id = $9",
    );
    let updated = bind_spec(query, spec).bind(now()).bind(id).execute(&mut *tx).await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM machine_labels WHERE machine_id = $1").bind(id).execute(&mut *tx).await?;
    insert_labels(tx, &[(id, &spec.labels)]).await?;
    Ok(true)
}

/// Locks machine `id` for this transaction if it is in no cluster or in `cluster`: whether it
/// is. A concurrent transaction that claims it for another cluster waits, then finds it taken.
pub async fn claim(tx: &mut AnyConnection, id: i64, cluster: &str) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query("UPDATE machines SET cluster = cluster WHERE id = $1 AND (cluster = '' OR cluster = $2)")
        .bind(id)
        .bind(cluster)
        .execute(&mut *tx)
        .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Deletes the machines of `ids` that exist, answering each one's id and MAC.
pub async fn delete(tx: &mut AnyConnection, ids: &[i64]) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let sql = format!("DELETE FROM machines WHERE id IN ({}) RETURNING id, mac", placeholders(1, ids.len()));
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    query.fetch_all(&mut *tx).await?.iter().map(|r| Ok((r.try_get("id")?, r.try_get("mac")?))).collect()
}

/// How many of `ids` exist.
pub async fn count(tx: &mut AnyConnection, ids: &[i64]) -> Result<usize, sqlx::Error> {
    let sql = format!("SELECT COUNT(*) AS n FROM machines WHERE id IN ({})", placeholders(1, ids.len()));
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let n: i64 = query.fetch_one(&mut *tx).await?.try_get("n")?;
    Ok(n as usize)
}

/// Adds `labels` to each of `ids` (a key they have already gets the new value), and rebuilds
/// their search text from what is stored.
pub async fn add_labels(tx: &mut AnyConnection, ids: &[i64], labels: &Labels) -> Result<(), crate::error::Error> {
    let rows: Vec<(i64, &Labels)> = ids.iter().map(|id| (*id, labels)).collect();
    insert_labels(tx, &rows).await?;
    let now = now();
    for id in ids {
        let row =
            sqlx::query(&format!("SELECT {COLUMNS} FROM machines WHERE id = $1")).bind(*id).fetch_one(&mut *tx).await?;
        let machine = machine_from_row(&row)?;
        let labels: BTreeMap<String, String> =
            sqlx::query("SELECT key, value FROM machine_labels WHERE machine_id = $1")
                .bind(*id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
                .collect::<Result<_, sqlx::Error>>()?;
        let spec = MachineInput {
            mac: machine.mac,
            hostname: machine.hostname,
            uuid: machine.uuid,
            serial: machine.serial,
            role: Some(machine.role.as_str().into()),
            labels,
            cluster: machine.cluster,
        }
        .validate()
        .map_err(|e| crate::error::Error::Other(format!("stored machine {id} no longer validates: {e:?}")))?;
        sqlx::query("UPDATE machines SET search_text = $1, updated_at = $2 WHERE id = $3")
            .bind(search_text(&spec))
            .bind(&now)
            .bind(*id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// A stored machine class: name, search, description, last change.
pub struct ClassRow {
    pub name: String,
    pub query: String,
    pub description: String,
    pub updated_at: String,
}

fn class_from_row(row: &AnyRow) -> Result<ClassRow, sqlx::Error> {
    Ok(ClassRow {
        name: row.try_get("name")?,
        query: row.try_get("query")?,
        description: row.try_get("description")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Every machine class, by name.
pub async fn classes(db: &Database) -> Result<Vec<ClassRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, query, description, updated_at FROM machine_classes ORDER BY name")
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(class_from_row).collect()
}

/// The class `name`, inside the caller's transaction.
pub async fn class(tx: &mut AnyConnection, name: &str) -> Result<Option<ClassRow>, sqlx::Error> {
    let row = sqlx::query("SELECT name, query, description, updated_at FROM machine_classes WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(class_from_row).transpose()
}

/// Creates or replaces the class `name`.
pub async fn save_class(
    tx: &mut AnyConnection,
    name: &str,
    query: &str,
    description: &str,
    at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO machine_classes (name, query, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (name) DO UPDATE SET query = excluded.query, description = excluded.description, \
         updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(query)
    .bind(description)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Deletes the class `name`; whether there was one.
pub async fn delete_class(tx: &mut AnyConnection, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM machine_classes WHERE name = $1").bind(name).execute(&mut *tx).await?;
    Ok(done.rows_affected() > 0)
}
