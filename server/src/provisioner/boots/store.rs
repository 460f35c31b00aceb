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
    /// Discovered machines that gave way to newly seen MACs (see [`discover`]).
    pub gave_way: u64,
}

fn none_if_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// What one batch saw of a MAC that is not in the inventory.
struct Sighting<'a> {
    first: &'a str,
    last: &'a str,
    requests: i64,
    /// The last non-empty value of each label the list keeps.
    labels: BTreeMap<&'static str, &'a str>,
}

/// Lists the MACs outside the inventory that a batch saw asking (`requests > 0`), or counts the
/// requests of those listed already, in a few statements per batch; returns the MACs listed
/// (before or now) and how many entries gave way.
///
/// A full list makes room by the documented policy: the entry that asked least gives way, and
/// among those the one seen longest ago. Real firmware asks several times per boot
/// (`/boot.ipxe`, `/ipxe`, its config), so a flood of forged MACs that ask once each replaces
/// only itself: the newly seen MACs and the list's weakest entries are ranked together, and the
/// weakest of them all give way, new ones included.
async fn discover(
    conn: &mut AnyConnection,
    sightings: &[(&str, Sighting<'_>)],
    limit: u32,
) -> Result<(BTreeSet<String>, u64), Error> {
    let mut listed = BTreeSet::new();
    for chunk in sightings.chunks(IN_LIST) {
        let sql =
            format!("SELECT mac FROM discovered_machines WHERE mac IN ({})", crate::db::placeholders(1, chunk.len()));
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for (mac, _) in chunk {
            query = query.bind(*mac);
        }
        listed.extend(query.fetch_all(&mut *conn).await?);
    }
    let label = |seen: &Sighting<'_>, k: &str| seen.labels.get(k).copied().unwrap_or_default().to_string();
    let mut fresh: Vec<(&str, &Sighting<'_>)> = Vec::new();
    for (mac, seen) in sightings.iter().filter(|(_, seen)| seen.requests > 0) {
        if !listed.contains(*mac) {
            fresh.push((mac, seen));
            continue;
        }
        sqlx::query(
            "UPDATE discovered_machines SET last_seen = $2, requests = requests + $7,
                 uuid = CASE WHEN $3 = '' THEN uuid ELSE $3 END, serial = CASE WHEN $4 = '' THEN serial ELSE $4 END,
                 hostname = CASE WHEN $5 = '' THEN hostname ELSE $5 END, arch = CASE WHEN $6 = '' THEN arch ELSE $6 END
             WHERE mac = $1",
        )
        .bind(*mac)
        .bind(seen.last)
        .bind(label(seen, "uuid"))
        .bind(label(seen, "serial"))
        .bind(label(seen, "hostname"))
        .bind(label(seen, "arch"))
        .bind(seen.requests)
        .execute(&mut *conn)
        .await?;
    }
    if limit == 0 || fresh.is_empty() {
        return Ok((listed, 0));
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM discovered_machines").fetch_one(&mut *conn).await?;
    // How many must give way (more than the new ones when the limit was lowered).
    let over = count + fresh.len() as i64 - i64::from(limit);
    let mut gave_way = 0;
    if over > 0 {
        let weakest: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT mac, requests, last_seen FROM discovered_machines ORDER BY requests ASC, last_seen ASC, mac ASC LIMIT $1",
        )
        .bind(over)
        .fetch_all(&mut *conn)
        .await?;
        let mut ranked: Vec<(i64, String, String, bool)> =
            weakest.into_iter().map(|(mac, requests, last)| (requests, last, mac, false)).collect();
        ranked.extend(fresh.iter().map(|(mac, seen)| (seen.requests, seen.last.to_string(), mac.to_string(), true)));
        ranked.sort();
        let giving_way: Vec<(String, bool)> =
            ranked.into_iter().take(over as usize).map(|(_, _, mac, new)| (mac, new)).collect();
        gave_way = giving_way.len() as u64;
        let old: Vec<&str> = giving_way.iter().filter(|(_, new)| !new).map(|(mac, _)| mac.as_str()).collect();
        for chunk in old.chunks(IN_LIST) {
            let sql =
                format!("DELETE FROM discovered_machines WHERE mac IN ({})", crate::db::placeholders(1, chunk.len()));
            let mut query = sqlx::query(&sql);
            for mac in chunk {
                query = query.bind(*mac);
            }
            query.execute(&mut *conn).await?;
        }
        let dropped: BTreeSet<&str> = giving_way.iter().filter(|(_, new)| *new).map(|(mac, _)| mac.as_str()).collect();
        for mac in &old {
            listed.remove(*mac);
        }
        // A new MAC that gave way at once was seen all the same: its events are kept.
        listed.extend(dropped.iter().map(|mac| mac.to_string()));
        fresh.retain(|(mac, _)| !dropped.contains(mac));
    }
    for chunk in fresh.chunks(INSERT_ROWS) {
        let rows: Vec<String> =
            (0..chunk.len()).map(|r| format!("({})", crate::db::placeholders(r * 8 + 1, 8))).collect();
        let sql = format!(
            "INSERT INTO discovered_machines (mac, uuid, serial, hostname, arch, first_seen, last_seen, requests)
             VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (mac, seen) in chunk {
            query = query
                .bind(*mac)
                .bind(label(seen, "uuid"))
                .bind(label(seen, "serial"))
                .bind(label(seen, "hostname"))
                .bind(label(seen, "arch"))
                .bind(seen.first)
                .bind(seen.last)
                .bind(seen.requests);
        }
        query.execute(&mut *conn).await?;
    }
    listed.extend(fresh.iter().map(|(mac, _)| mac.to_string()));
    Ok((listed, gave_way))
}

/// Values per `IN (…)` list.
const IN_LIST: usize = 500;

/// Events per multi-row INSERT (14 values each, well under SQLite's parameter limit).
const INSERT_ROWS: usize = 64;

async fn insert_events(conn: &mut AnyConnection, events: &[&Attributed]) -> Result<(), Error> {
    for chunk in events.chunks(INSERT_ROWS) {
        let rows: Vec<String> =
            (0..chunk.len()).map(|r| format!("({})", crate::db::placeholders(r * 14 + 1, 14))).collect();
        let sql = format!(
            "INSERT INTO boot_events (at, mac, uuid, endpoint, labels, group_id, profile_id, status, bytes,
                 duration_us, client, sha256, reason, step) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = query
                .bind(e.at.as_str())
                .bind(e.mac.as_str())
                .bind(e.uuid.as_str())
                .bind(e.endpoint.as_str())
                .bind(serde_json::to_string(&e.labels)?)
                .bind(e.group.as_str())
                .bind(e.profile.as_str())
                .bind(i64::from(e.status))
                .bind(i64::try_from(e.bytes).unwrap_or(i64::MAX))
                .bind(i64::try_from(e.duration_us).unwrap_or(i64::MAX))
                .bind(e.client.as_str())
                .bind(e.sha256.as_str())
                .bind(e.reason.as_str())
                .bind(e.step.map_or("", BootState::as_str));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The PostgreSQL advisory lock a writer holds while it lists discovered machines ("pangea" and 1).
const DISCOVERED_LIST_LOCK: i64 = 0x7061_6e67_6561_0001;

/// Writes a batch of events in one transaction (on PostgreSQL, after a short one listing the
/// discovered machines), with a handful of statements per machine rather
/// than per event: discovered machines, served configs (those not in `stored`, the digests
/// written lately), the events, each machine's state after them, and the per-machine bound.
pub async fn write(
    db: &Database,
    index: &BootIndex,
    retention: &Retention,
    stored: &std::sync::Mutex<std::collections::HashSet<String>>,
    events: &[(Attributed, Option<Arc<str>>)],
) -> Result<Written, Error> {
    let mut written = Written::default();

    // MACs outside the inventory are listed, up to the limit (see `discover` for who gives way).
    let mut sightings: Vec<(&str, Sighting)> = Vec::new();
    for (e, _) in events {
        if e.mac.is_empty() || index.in_inventory(&e.mac) {
            continue;
        }
        let i = match sightings.iter().position(|(mac, _)| *mac == e.mac) {
            Some(i) => i,
            None => {
                let seen = Sighting { first: &e.at, last: &e.at, requests: 0, labels: BTreeMap::new() };
                sightings.push((&e.mac, seen));
                sightings.len() - 1
            }
        };
        let seen = &mut sightings[i].1;
        seen.last = &e.at;
        if e.labels.contains_key("mac") {
            seen.requests += 1;
            for key in ["uuid", "serial", "hostname", "arch"] {
                if let Some(value) = e.labels.get(key).filter(|v| !v.is_empty()) {
                    seen.labels.insert(key, value);
                }
            }
        }
    }
    let (listed, gave_way, mut tx) = match db.backend() {
        crate::db::Backend::Postgres if !sightings.is_empty() => {
            // Replicas' writers list discovered machines one at a time, each in a short
            // transaction of its own under an advisory lock: each sees what the others listed,
            // so the limit holds and no two insert one MAC. (A transaction's lock, not a lease:
            // it goes with the transaction however that ends. Should the batch then fail, the
            // listing stays: those MACs did ask.)
            let mut listing = db.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(DISCOVERED_LIST_LOCK).execute(&mut *listing).await?;
            let (listed, gave_way) = discover(&mut listing, &sightings, retention.discovered).await?;
            listing.commit().await?;
            (listed, gave_way, db.begin().await?)
        }
        // SQLite has one writer, whose transaction holds the database.
        _ => {
            let mut tx = db.begin().await?;
            let (listed, gave_way) = discover(&mut tx, &sightings, retention.discovered).await?;
            (listed, gave_way, tx)
        }
    };
    written.gave_way = gave_way;
    let refused: BTreeSet<&str> = sightings.iter().map(|(mac, _)| *mac).filter(|mac| !listed.contains(*mac)).collect();
    let kept: Vec<&(Attributed, Option<Arc<str>>)> =
        events.iter().filter(|(e, _)| !refused.contains(e.mac.as_str())).collect();
    written.refused = (events.len() - kept.len()) as u64;

    // Each config once, unless written lately.
    let mut configs: BTreeMap<&str, &str> = BTreeMap::new();
    if let Ok(stored) = stored.lock() {
        for (e, served) in &kept {
            if let Some(body) = served.as_deref().filter(|_| !stored.contains(&e.sha256)) {
                configs.insert(&e.sha256, body);
            }
        }
    }
    for (sha256, body) in &configs {
        sqlx::query("INSERT INTO boot_configs (sha256, body) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING")
            .bind(*sha256)
            .bind(*body)
            .execute(&mut *tx)
            .await?;
    }
    insert_events(&mut tx, &kept.iter().map(|(e, _)| e).collect::<Vec<_>>()).await?;

    // The /boot.ipxe (no labels) that led to a labelled script belongs to that machine.
    for (e, _) in
        kept.iter().filter(|(e, _)| e.labels.contains_key("mac") && matches!(e.endpoint.as_str(), "/ipxe" | "/grub"))
    {
        sqlx::query(
            "UPDATE boot_events SET mac = $1 WHERE id = (SELECT MAX(id) FROM boot_events
                 WHERE mac = '' AND client = $2 AND at >= $3 AND at <= $4 AND endpoint IN ('/boot.ipxe', '/boot.ipxe.0'))",
        )
        .bind(&e.mac)
        .bind(&e.client)
        .bind(before(&e.at, 120))
        .bind(&e.at)
        .execute(&mut *tx)
        .await?;
    }

    // Each machine's state after the batch: its last step, since the first event of the run of
    // that step the batch ends with (or since earlier, when the state did not change).
    let mut by_mac: BTreeMap<&str, Vec<&Attributed>> = BTreeMap::new();
    for (e, _) in &kept {
        if !e.mac.is_empty() {
            by_mac.entry(&e.mac).or_default().push(e);
        }
    }
    // One statement for the machines whose state moved, one for those only seen.
    let mut moved: Vec<[&str; 5]> = Vec::new();
    let mut seen: Vec<[&str; 2]> = Vec::new();
    for (mac, list) in &by_mac {
        let last_seen = list.last().map_or("", |e| e.at.as_str());
        let stepped: Vec<&&Attributed> = list.iter().filter(|e| e.step.is_some()).collect();
        match stepped.last() {
            Some(last) => {
                let run_start =
                    stepped.iter().rev().take_while(|e| e.step == last.step).last().map_or(&last.at, |e| &e.at);
                moved.push([mac, last.step.map_or("", BootState::as_str), &last.reason, run_start, last_seen]);
            }
            None => seen.push([mac, last_seen]),
        }
        written.machines.insert(mac.to_string());
    }
    for chunk in moved.chunks(INSERT_ROWS) {
        let rows: Vec<String> =
            (0..chunk.len()).map(|r| format!("({})", crate::db::placeholders(r * 5 + 1, 5))).collect();
        let sql = format!(
            "INSERT INTO boot_states (mac, state, reason, since, last_seen) VALUES {}
             ON CONFLICT (mac) DO UPDATE SET state = excluded.state, reason = excluded.reason,
                 since = CASE WHEN boot_states.state = excluded.state THEN boot_states.since ELSE excluded.since END,
                 last_seen = CASE WHEN excluded.last_seen > boot_states.last_seen THEN excluded.last_seen
                     ELSE boot_states.last_seen END
             WHERE boot_states.since <= excluded.since",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = query.bind(*value);
        }
        query.execute(&mut *tx).await?;
    }
    for chunk in seen.chunks(INSERT_ROWS) {
        let cases: String = (0..chunk.len()).map(|r| format!(" WHEN ${} THEN ${}", 2 * r + 1, 2 * r + 2)).collect();
        let macs: Vec<String> = (0..chunk.len()).map(|r| format!("${}", 2 * r + 1)).collect();
        // Never back in time: a batch kept in a spool may be written after later ones.
        let sql = format!(
            "UPDATE boot_states SET last_seen = CASE WHEN (CASE mac{cases} END) > last_seen THEN (CASE mac{cases} END) \
             ELSE last_seen END WHERE mac IN ({})",
            macs.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = query.bind(*value);
        }
        query.execute(&mut *tx).await?;
    }
    // The per-machine bound: only machines over it (one count for the batch) lose their oldest.
    let mut over: Vec<String> = vec![String::new()];
    let machines: Vec<&str> = written.machines.iter().map(String::as_str).collect();
    for chunk in machines.chunks(IN_LIST) {
        let sql = format!(
            "SELECT mac FROM boot_events WHERE mac IN ({}) GROUP BY mac HAVING COUNT(*) > ${}",
            crate::db::placeholders(1, chunk.len()),
            chunk.len() + 1
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for mac in chunk {
            query = query.bind(*mac);
        }
        over.extend(query.bind(i64::from(retention.per_machine.max(1))).fetch_all(&mut *tx).await?);
    }
    for mac in &over {
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
    if let Ok(mut stored) = stored.lock() {
        if stored.len() + configs.len() > STORED_DIGESTS {
            stored.clear();
        }
        stored.extend(configs.keys().map(|k| k.to_string()));
    }
    Ok(written)
}

/// Whether a batch is stored already: any of its first events is (a batch commits whole; one
/// whose commit was reported failed may have landed). An event is its machine's request at its
/// microsecond (an unlabelled one's MAC may have been filled in since).
pub async fn stored_already(db: &Database, events: &[(Attributed, Option<Arc<str>>)]) -> Result<bool, Error> {
    for (e, _) in events.iter().take(16) {
        let found = sqlx::query(
            "SELECT 1 AS one FROM boot_events WHERE at = $1 AND endpoint = $2 AND client = $3 AND ($4 = '' OR mac = $4)
             LIMIT 1",
        )
        .bind(&e.at)
        .bind(&e.endpoint)
        .bind(&e.client)
        .bind(&e.mac)
        .fetch_optional(db.pool())
        .await?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many digests of configs written lately are remembered (so each is written once).
const STORED_DIGESTS: usize = 4096;

/// `at` less `seconds`, in the stored form.
fn before(at: &str, seconds: i64) -> String {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| crate::db::timestamp(t - time::Duration::seconds(seconds)))
        .unwrap_or_default()
}

/// Forgets events, and discovered machines, older than `cutoff`, and configs no event names.
pub async fn prune(db: &Database, cutoff: &str) -> Result<u64, Error> {
    let mut tx = db.begin().await?;
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
pub async fn events(conn: &mut AnyConnection, mac: &str, limit: u32) -> Result<Vec<BootEvent>, Error> {
    let mut events: Vec<BootEvent> = sqlx::query_as::<_, EventRow>(&format!(
        "SELECT {EVENT_COLUMNS} FROM boot_events WHERE mac = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(mac)
    .bind(i64::from(limit))
    .fetch_all(conn)
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

pub async fn status(conn: &mut AnyConnection, mac: &str) -> Result<Option<BootStatus>, Error> {
    Ok(sqlx::query_as("SELECT mac, state, reason, since, last_seen FROM boot_states WHERE mac = $1")
        .bind(mac)
        .fetch_optional(conn)
        .await?
        .map(|row| status_from_row(row).1))
}

/// The states of these machines (those never seen are absent).
pub async fn statuses(db: &Database, macs: &[String]) -> Result<BTreeMap<String, BootStatus>, Error> {
    if macs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let sql = format!(
        "SELECT mac, state, reason, since, last_seen FROM boot_states WHERE mac IN ({})",
        crate::db::placeholders(1, macs.len())
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

/// Notes on a machine's timeline something that happened outside the boot listener (a power
/// action and its outcome): `what` as its endpoint, `reason` in words, from Pangea itself.
pub async fn insert_note(db: &Database, at: &str, mac: &str, what: &str, reason: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO boot_events (at, mac, endpoint, status, bytes, duration_us, client, reason) \
         VALUES ($1, $2, $3, 0, 0, 0, 'pangea', $4)",
    )
    .bind(at)
    .bind(mac)
    .bind(what)
    .bind(reason)
    .execute(db.pool())
    .await?;
    Ok(())
}
