//! Boot events, states, served configs and discovered machines in SQL both backends share.

use super::{Attributed, Retention};
use crate::db::Database;
use crate::error::Error;
use crate::provisioner::index::BootIndex;
use app::provisioning::boots::{ActivityMinute, BootEvent, BootState, BootStatus, Discovered};
use sqlx::AnyConnection;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What a batch did.
#[derive(Debug, Default)]
pub struct Written {
    /// Machines whose timeline changed.
    pub machines: BTreeSet<String>,
    /// Events not recorded because their MAC is unknown and the discovered list is full.
    pub refused: u64,
}

fn none_if_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// Records a MAC that is not in the inventory, if it is listed already or there is room.
async fn discover(conn: &mut AnyConnection, e: &Attributed, limit: u32) -> Result<bool, Error> {
    let label = |k: &str| e.labels.get(k).cloned().unwrap_or_default();
    let updated = sqlx::query(
        "UPDATE discovered_machines SET last_seen = $2, requests = requests + 1,
             uuid = CASE WHEN $3 = '' THEN uuid ELSE $3 END, serial = CASE WHEN $4 = '' THEN serial ELSE $4 END,
             hostname = CASE WHEN $5 = '' THEN hostname ELSE $5 END, arch = CASE WHEN $6 = '' THEN arch ELSE $6 END
         WHERE mac = $1",
    )
    .bind(&e.mac)
    .bind(&e.at)
    .bind(label("uuid"))
    .bind(label("serial"))
    .bind(label("hostname"))
    .bind(label("arch"))
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() > 0 {
        return Ok(true);
    }
    let listed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM discovered_machines").fetch_one(&mut *conn).await?;
    if listed >= i64::from(limit) {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO discovered_machines (mac, uuid, serial, hostname, arch, first_seen, last_seen, requests)
         VALUES ($1, $2, $3, $4, $5, $6, $6, 1)",
    )
    .bind(&e.mac)
    .bind(label("uuid"))
    .bind(label("serial"))
    .bind(label("hostname"))
    .bind(label("arch"))
    .bind(&e.at)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Writes a batch of events in one transaction: discovered machines, served configs, the
/// events, the states they lead to, and the per-machine bound.
pub async fn write(
    db: &Database,
    index: &BootIndex,
    retention: &Retention,
    events: Vec<(Attributed, Option<Arc<str>>)>,
) -> Result<Written, Error> {
    let mut written = Written::default();
    let mut tx = db.pool().begin().await?;
    let mut refused_macs = BTreeSet::new();
    for (e, served) in events {
        let labelled_mac = e.labels.contains_key("mac");
        if !e.mac.is_empty() && !index.in_inventory(&e.mac) {
            let listed = if labelled_mac && !refused_macs.contains(&e.mac) {
                discover(&mut tx, &e, retention.discovered).await?
            } else {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM discovered_machines WHERE mac = $1")
                    .bind(&e.mac)
                    .fetch_one(&mut *tx)
                    .await?
                    > 0
            };
            if !listed {
                refused_macs.insert(e.mac.clone());
                written.refused += 1;
                continue;
            }
        }
        if let Some(body) = served {
            sqlx::query("INSERT INTO boot_configs (sha256, body) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING")
                .bind(&e.sha256)
                .bind(&*body)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO boot_events (at, mac, uuid, endpoint, labels, group_id, profile_id, status, bytes,
                 duration_us, client, sha256, reason, step)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&e.at)
        .bind(&e.mac)
        .bind(&e.uuid)
        .bind(&e.endpoint)
        .bind(serde_json::to_string(&e.labels)?)
        .bind(&e.group)
        .bind(&e.profile)
        .bind(i64::from(e.status))
        .bind(i64::try_from(e.bytes).unwrap_or(i64::MAX))
        .bind(i64::try_from(e.duration_us).unwrap_or(i64::MAX))
        .bind(&e.client)
        .bind(&e.sha256)
        .bind(&e.reason)
        .bind(e.step.map_or("", BootState::as_str))
        .execute(&mut *tx)
        .await?;
        if e.mac.is_empty() {
            continue;
        }
        if labelled_mac && matches!(e.endpoint.as_str(), "/ipxe" | "/grub") {
            // The last /boot.ipxe from this address, which carried no labels, led here.
            sqlx::query(
                "UPDATE boot_events SET mac = $1 WHERE id = (SELECT MAX(id) FROM boot_events
                     WHERE mac = '' AND client = $2 AND at >= $3 AND endpoint IN ('/boot.ipxe', '/boot.ipxe.0'))",
            )
            .bind(&e.mac)
            .bind(&e.client)
            .bind(before(&e.at, 120))
            .execute(&mut *tx)
            .await?;
        }
        if let Some(step) = e.step {
            sqlx::query(
                "INSERT INTO boot_states (mac, state, reason, since, last_seen) VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (mac) DO UPDATE SET state = excluded.state, reason = excluded.reason,
                     since = CASE WHEN boot_states.state = excluded.state THEN boot_states.since ELSE excluded.since END,
                     last_seen = excluded.last_seen",
            )
            .bind(&e.mac)
            .bind(step.as_str())
            .bind(&e.reason)
            .bind(&e.at)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE boot_states SET last_seen = $2 WHERE mac = $1")
                .bind(&e.mac)
                .bind(&e.at)
                .execute(&mut *tx)
                .await?;
        }
        written.machines.insert(e.mac);
    }
    for mac in written.machines.iter().map(String::as_str).chain([""]) {
        sqlx::query(
            "DELETE FROM boot_events WHERE mac = $1 AND id < (
                 SELECT id FROM boot_events WHERE mac = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(mac)
        .bind(i64::from(retention.per_machine.max(1)) - 1)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// `at` less `seconds`, in the stored form.
fn before(at: &str, seconds: i64) -> String {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| crate::db::timestamp(t - time::Duration::seconds(seconds)))
        .unwrap_or_default()
}

/// Forgets events, and discovered machines, older than `cutoff`, and configs no event names.
pub async fn prune(db: &Database, cutoff: &str) -> Result<u64, Error> {
    let mut tx = db.pool().begin().await?;
    let mut rows = 0;
    for sql in ["DELETE FROM boot_events WHERE at < $1", "DELETE FROM discovered_machines WHERE last_seen < $1"] {
        rows += sqlx::query(sql).bind(cutoff).execute(&mut *tx).await?.rows_affected();
    }
    rows += sqlx::query(
        "DELETE FROM boot_configs WHERE NOT EXISTS (SELECT 1 FROM boot_events e WHERE e.sha256 = boot_configs.sha256)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(rows)
}

type EventRow =
    (i64, String, String, String, String, String, String, String, i64, i64, i64, String, String, String, String);

const EVENT_COLUMNS: &str = "id, at, mac, uuid, endpoint, labels, group_id, profile_id, status, bytes, duration_us, client, sha256, reason, step";

fn event_from_row(row: EventRow) -> BootEvent {
    let (id, at, mac, uuid, endpoint, labels, group, profile, status, bytes, duration_us, client, sha256, reason, step) =
        row;
    BootEvent {
        id,
        at,
        mac: none_if_empty(mac),
        uuid: none_if_empty(uuid),
        endpoint,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        group: none_if_empty(group),
        profile: none_if_empty(profile),
        status: u16::try_from(status).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
        duration_us: u64::try_from(duration_us).unwrap_or(0),
        client,
        sha256: none_if_empty(sha256),
        reason: none_if_empty(reason),
        step: BootState::parse(&step),
    }
}

/// A machine's events, oldest first (at most `limit`, the newest).
pub async fn events(db: &Database, mac: &str, limit: u32) -> Result<Vec<BootEvent>, Error> {
    let mut events: Vec<BootEvent> = sqlx::query_as::<_, EventRow>(&format!(
        "SELECT {EVENT_COLUMNS} FROM boot_events WHERE mac = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(mac)
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .map(event_from_row)
    .collect();
    events.reverse();
    Ok(events)
}

fn status_from_row(
    (mac, state, reason, since, last_seen): (String, String, String, String, String),
) -> (String, BootStatus) {
    let status = BootStatus {
        state: BootState::parse(&state).unwrap_or(BootState::NeverSeen),
        reason: none_if_empty(reason),
        since,
        last_seen,
    };
    (mac, status)
}

pub async fn status(db: &Database, mac: &str) -> Result<Option<BootStatus>, Error> {
    Ok(sqlx::query_as("SELECT mac, state, reason, since, last_seen FROM boot_states WHERE mac = $1")
        .bind(mac)
        .fetch_optional(db.pool())
        .await?
        .map(|row| status_from_row(row).1))
}

/// The states of these machines (those never seen are absent).
pub async fn statuses(db: &Database, macs: &[String]) -> Result<BTreeMap<String, BootStatus>, Error> {
    if macs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let placeholders: Vec<String> = (1..=macs.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT mac, state, reason, since, last_seen FROM boot_states WHERE mac IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for mac in macs {
        query = query.bind(mac);
    }
    Ok(query.fetch_all(db.pool()).await?.into_iter().map(status_from_row).collect())
}

/// A config exactly as it was served.
pub async fn served(db: &Database, sha256: &str) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar("SELECT body FROM boot_configs WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(db.pool())
        .await?)
}

type DiscoveredRow = (String, String, String, String, String, String, String, i64);

fn discovered_from_row(
    (mac, uuid, serial, hostname, arch, first_seen, last_seen, requests): DiscoveredRow,
) -> Discovered {
    Discovered {
        mac,
        uuid: none_if_empty(uuid),
        serial: none_if_empty(serial),
        hostname: none_if_empty(hostname),
        arch: none_if_empty(arch),
        first_seen,
        last_seen,
        requests,
    }
}

pub async fn discovered(db: &Database) -> Result<Vec<Discovered>, Error> {
    Ok(sqlx::query_as::<_, DiscoveredRow>(
        "SELECT mac, uuid, serial, hostname, arch, first_seen, last_seen, requests FROM discovered_machines
         ORDER BY last_seen DESC, mac",
    )
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .map(discovered_from_row)
    .collect())
}

pub async fn discovered_one(conn: &mut AnyConnection, mac: &str) -> Result<Option<Discovered>, Error> {
    let row: Option<DiscoveredRow> = sqlx::query_as(
        "SELECT mac, uuid, serial, hostname, arch, first_seen, last_seen, requests FROM discovered_machines WHERE mac = $1",
    )
    .bind(mac)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(discovered_from_row))
}

pub async fn forget_discovered(conn: &mut AnyConnection, mac: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM discovered_machines WHERE mac = $1").bind(mac).execute(&mut *conn).await?;
    Ok(())
}

/// Boots started, finished and failed per minute since `since` (a minute's start).
pub async fn activity(db: &Database, since: time::OffsetDateTime) -> Result<Vec<ActivityMinute>, Error> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT substr(at, 1, 16),
                SUM(CASE WHEN endpoint IN ('/boot.ipxe', '/boot.ipxe.0') THEN 1 ELSE 0 END),
                SUM(CASE WHEN step = 'installed' THEN 1 ELSE 0 END),
                SUM(CASE WHEN step = 'failed' THEN 1 ELSE 0 END)
         FROM boot_events WHERE at >= $1 GROUP BY substr(at, 1, 16)",
    )
    .bind(crate::db::timestamp(since))
    .fetch_all(db.pool())
    .await?;
    let counts: BTreeMap<String, (i64, i64, i64)> = rows.into_iter().map(|(m, a, b, c)| (m, (a, b, c))).collect();
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok((0..60)
        .map(|i| {
            let start = crate::db::timestamp(since + time::Duration::minutes(i));
            let (started, finished, failed) = counts.get(&start[..16]).copied().unwrap_or_default();
            ActivityMinute { start, started: count(started), finished: count(finished), failed: count(failed) }
        })
        .collect())
}
