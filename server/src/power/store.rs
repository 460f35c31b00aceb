//! Power's SQL: the `machine_bmcs` and `machine_hardware` tables, in SQL both backends share. A BMC's setting takes the
//! caller's transaction, so the service writes its audit record with it.

use crate::db::Database;
use app::power::{Hardware, HardwareChange, HardwareRecord, PowerState, PowerStatus};
use sqlx::{AnyConnection, Row};

/// A machine's BMC as stored: its password still sealed.
#[derive(Debug, Clone)]
pub struct StoredBmc {
    pub machine_id: i64,
    pub url: String,
    pub username: String,
    pub sealed_password: String,
    pub ca_pem: String,
    pub verify_off: bool,
    pub system: String,
    pub power: PowerStatus,
}

const COLUMNS: &str = "machine_id, url, username, password, ca_pem, verify_off, system, power_state, power_reason, \
                       power_read_at";

fn stored(row: &sqlx::any::AnyRow) -> Result<StoredBmc, sqlx::Error> {
    Ok(StoredBmc {
        machine_id: row.try_get("machine_id")?,
        url: row.try_get("url")?,
        username: row.try_get("username")?,
        sealed_password: row.try_get("password")?,
        ca_pem: row.try_get("ca_pem")?,
        verify_off: row.try_get::<i64, _>("verify_off")? != 0,
        system: row.try_get("system")?,
        power: PowerStatus {
            state: PowerState::parse(&row.try_get::<String, _>("power_state")?),
            reason: row.try_get("power_reason")?,
            read_at: row.try_get("power_read_at")?,
        },
    })
}

pub async fn bmc(db: &Database, machine_id: i64) -> Result<Option<StoredBmc>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM machine_bmcs WHERE machine_id = $1"))
        .bind(machine_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(stored).transpose()
}

/// Every machine's BMC, for the background refresh.
pub async fn all(db: &Database) -> Result<Vec<StoredBmc>, sqlx::Error> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM machine_bmcs ORDER BY machine_id")).fetch_all(db.pool()).await?;
    rows.iter().map(stored).collect()
}

/// Sets a machine's BMC (replacing the one it had), in the caller's transaction.
pub async fn put(tx: &mut AnyConnection, bmc: &StoredBmc, at: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM machine_bmcs WHERE machine_id = $1").bind(bmc.machine_id).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO machine_bmcs (machine_id, url, username, password, ca_pem, verify_off, system, power_state, \
         power_reason, power_read_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(bmc.machine_id)
    .bind(&bmc.url)
    .bind(&bmc.username)
    .bind(&bmc.sealed_password)
    .bind(&bmc.ca_pem)
    .bind(i64::from(bmc.verify_off))
    .bind(&bmc.system)
    .bind(bmc.power.state.as_str())
    .bind(&bmc.power.reason)
    .bind(&bmc.power.read_at)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Forgets a machine's BMC, in the caller's transaction; whether it had one.
pub async fn remove(tx: &mut AnyConnection, machine_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM machine_bmcs WHERE machine_id = $1").bind(machine_id).execute(tx).await?;
    Ok(done.rows_affected() > 0)
}

/// Notes a machine's power as just read.
pub async fn note_power(db: &Database, machine_id: i64, power: &PowerStatus) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE machine_bmcs SET power_state = $1, power_reason = $2, power_read_at = $3 WHERE machine_id = $4",
    )
    .bind(power.state.as_str())
    .bind(&power.reason)
    .bind(&power.read_at)
    .bind(machine_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Keeps the system the check of `checked` (an imported BMC) found, and the power it read, while
/// the machine still has that BMC unchecked: one set meanwhile is left as it is.
pub async fn set_system(
    db: &Database,
    checked: &StoredBmc,
    system: &str,
    power: &PowerStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE machine_bmcs SET system = $1, power_state = $2, power_reason = $3, power_read_at = $4 \
         WHERE machine_id = $5 AND system = '' AND url = $6 AND password = $7",
    )
    .bind(system)
    .bind(power.state.as_str())
    .bind(&power.reason)
    .bind(&power.read_at)
    .bind(checked.machine_id)
    .bind(&checked.url)
    .bind(&checked.sealed_password)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Re-seals every BMC password under `sealer`'s first key (opening each with any of its keys),
/// in the caller's transaction; how many. One that cannot be opened stops it: a rotation leaves
/// nothing behind.
pub async fn reseal(conn: &mut AnyConnection, sealer: &crate::secrets::Sealer) -> Result<usize, crate::error::Error> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM machine_bmcs ORDER BY machine_id")).fetch_all(&mut *conn).await?;
    for row in &rows {
        let bmc = stored(row)?;
        let place = super::password_place_of(&bmc);
        let password = sealer.open(&bmc.sealed_password, &place).map_err(|problem| {
            crate::error::Error::Other(format!("machine {}'s BMC password: {problem}", bmc.machine_id))
        })?;
        sqlx::query("UPDATE machine_bmcs SET password = $1 WHERE machine_id = $2")
            .bind(sealer.seal(&password, &place))
            .bind(bmc.machine_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(rows.len())
}

/// A machine's hardware record, or `None` before its first read.
pub async fn hardware(db: &Database, machine_id: i64) -> Result<Option<HardwareRecord>, sqlx::Error> {
    let row = sqlx::query("SELECT detail, read_at, problem, changes FROM machine_hardware WHERE machine_id = $1")
        .bind(machine_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(record).transpose()
}

/// The changes a record keeps at most (the oldest go first).
const KEPT_CHANGES: usize = 200;

/// Keeps a machine's hardware as just read, with `changes` added to those not yet acknowledged.
pub async fn put_hardware(
    db: &Database,
    machine_id: i64,
    hardware: &Hardware,
    read_at: &str,
    changes: &[HardwareChange],
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let kept: Option<String> = sqlx::query_scalar("SELECT changes FROM machine_hardware WHERE machine_id = $1")
        .bind(machine_id)
        .fetch_optional(&mut *tx)
        .await?;
    let mut all: Vec<HardwareChange> = kept.and_then(|k| serde_json::from_str(&k).ok()).unwrap_or_default();
    all.extend_from_slice(changes);
    let over = all.len().saturating_sub(KEPT_CHANGES);
    all.drain(..over);
    let count = |n: Option<usize>| n.map(|n| n as i64);
    sqlx::query("DELETE FROM machine_hardware WHERE machine_id = $1").bind(machine_id).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO machine_hardware (machine_id, manufacturer, model, serial, bios_version, bmc_firmware, cpus, \
         memory_gib, disks, ssds, nics, detail, read_at, problem, changes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', $14)",
    )
    .bind(machine_id)
    .bind(&hardware.manufacturer)
    .bind(&hardware.model)
    .bind(&hardware.serial)
    .bind(&hardware.bios_version)
    .bind(&hardware.bmc_firmware)
    .bind(hardware.cpus.map(i64::from))
    .bind(hardware.memory_gib.map(i64::from))
    .bind(count(hardware.disks.as_ref().map(Vec::len)))
    .bind(count(hardware.disks.as_ref().map(|d| d.iter().filter(|d| d.media == "SSD").count())))
    .bind(count(hardware.nics.as_ref().map(Vec::len)))
    .bind(serde_json::to_string(hardware).unwrap_or_default())
    .bind(read_at)
    .bind(serde_json::to_string(&all).unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Notes why a machine's hardware could not be read, keeping the last read.
pub async fn note_hardware_problem(db: &Database, machine_id: i64, problem: &str) -> Result<(), sqlx::Error> {
    let noted = sqlx::query("UPDATE machine_hardware SET problem = $1 WHERE machine_id = $2")
        .bind(problem)
        .bind(machine_id)
        .execute(db.pool())
        .await?;
    if noted.rows_affected() == 0 {
        sqlx::query("INSERT INTO machine_hardware (machine_id, problem) VALUES ($1, $2)")
            .bind(machine_id)
            .bind(problem)
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

/// Forgets a machine's hardware changes (a person saw them), in the caller's transaction; how
/// many there were, or `None` when its hardware was never read.
pub async fn acknowledge_changes(tx: &mut AnyConnection, machine_id: i64) -> Result<Option<usize>, sqlx::Error> {
    let kept: Option<String> = sqlx::query_scalar("SELECT changes FROM machine_hardware WHERE machine_id = $1")
        .bind(machine_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(kept) = kept else { return Ok(None) };
    sqlx::query("UPDATE machine_hardware SET changes = '[]' WHERE machine_id = $1")
        .bind(machine_id)
        .execute(&mut *tx)
        .await?;
    Ok(Some(serde_json::from_str::<Vec<serde_json::Value>>(&kept).map(|c| c.len()).unwrap_or_default()))
}

/// A machine's MAC (for its timeline), or `None` once it is gone.
pub async fn mac_of(db: &Database, machine_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT mac FROM machines WHERE id = $1").bind(machine_id).fetch_optional(db.pool()).await
}

/// The hardware records of the machines `ids` that have one.
pub async fn hardware_of(
    db: &Database,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, HardwareRecord>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT machine_id, detail, read_at, problem, changes FROM machine_hardware WHERE machine_id IN ({})",
        crate::db::placeholders(1, ids.len())
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter().map(|row| Ok((row.try_get("machine_id")?, record(row)?))).collect()
}

fn record(row: &sqlx::any::AnyRow) -> Result<HardwareRecord, sqlx::Error> {
    Ok(HardwareRecord {
        hardware: serde_json::from_str(&row.try_get::<String, _>("detail")?).unwrap_or_default(),
        read_at: row.try_get("read_at")?,
        problem: row.try_get("problem")?,
        changes: serde_json::from_str(&row.try_get::<String, _>("changes")?).unwrap_or_default(),
    })
}

/// The power of each of the machines `ids` that has a BMC, by MAC.
pub async fn power_of(
    db: &Database,
    ids: &[i64],
) -> Result<std::collections::BTreeMap<String, PowerStatus>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT m.mac, b.power_state, b.power_reason, b.power_read_at FROM machine_bmcs b \
         JOIN machines m ON m.id = b.machine_id WHERE b.machine_id IN ({})",
        crate::db::placeholders(1, ids.len())
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|row| {
            let power = PowerStatus {
                state: PowerState::parse(&row.try_get::<String, _>("power_state")?),
                reason: row.try_get("power_reason")?,
                read_at: row.try_get("power_read_at")?,
            };
            Ok((row.try_get("mac")?, power))
        })
        .collect()
}
