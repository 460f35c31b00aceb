//! Profiles, groups and templates in the database. Every write bumps the catalog version in the
//! same transaction, so every replica's boot index follows.

use crate::db::Database;
use crate::error::Error;
use app::provisioning::{Catalog, DefaultProfile, Group, MachineProfile, NetBoot, Profile, TemplateFile, TemplateKind};
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn json_object<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

fn profile_from_row(row: &sqlx::any::AnyRow) -> Result<Profile, sqlx::Error> {
    Ok(Profile {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        boot: NetBoot {
            kernel: row.try_get("kernel")?,
            initrd: json_list(&row.try_get::<String, _>("initrd")?),
            args: json_list(&row.try_get::<String, _>("args")?),
        },
        ignition_id: row.try_get("ignition_id")?,
        generic_id: row.try_get("generic_id")?,
        cloud_id: row.try_get("cloud_id")?,
    })
}

fn group_from_row(row: &sqlx::any::AnyRow) -> Result<Group, sqlx::Error> {
    Ok(Group {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        profile: row.try_get("profile")?,
        selector: json_object(&row.try_get::<String, _>("selector")?),
        metadata: json_object(&row.try_get::<String, _>("metadata")?),
    })
}

fn template_from_row(row: &sqlx::any::AnyRow) -> Result<Option<TemplateFile>, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    Ok(TemplateKind::parse(&kind).map(|kind| TemplateFile {
        kind,
        id: row.try_get("id").unwrap_or_default(),
        content: row.try_get("content").unwrap_or_default(),
    }))
}

const PROFILE_COLUMNS: &str = "id, name, kernel, initrd, args, ignition_id, generic_id, cloud_id";

/// The catalog version: moves with every change.
pub async fn version(db: &Database) -> Result<i64, Error> {
    Ok(sqlx::query_scalar("SELECT version FROM provisioning_version WHERE id = 1").fetch_one(db.pool()).await?)
}

/// The whole catalog and its version, read in one transaction so they agree.
pub async fn load(db: &Database) -> Result<(i64, Catalog), Error> {
    let mut tx = db.begin().await?;
    let version: i64 =
        sqlx::query_scalar("SELECT version FROM provisioning_version WHERE id = 1").fetch_one(&mut *tx).await?;
    let profiles = sqlx::query(&format!("SELECT {PROFILE_COLUMNS} FROM provisioning_profiles ORDER BY id"))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(profile_from_row)
        .collect::<Result<_, _>>()?;
    let groups = sqlx::query("SELECT id, name, profile, selector, metadata FROM provisioning_groups ORDER BY id")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(group_from_row)
        .collect::<Result<_, _>>()?;
    let templates = sqlx::query("SELECT kind, id, content FROM provisioning_templates ORDER BY kind, id")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(template_from_row)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let machine_profiles =
        sqlx::query_as::<_, (String, String)>("SELECT mac, profile FROM provisioning_machine_profiles ORDER BY mac")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(mac, profile)| MachineProfile { mac, profile })
            .collect();
    let defaults = sqlx::query_as::<_, (String, String, String)>(
        "SELECT cluster, role, profile FROM provisioning_defaults ORDER BY cluster, role",
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(cluster, role, profile)| DefaultProfile { cluster, role, profile })
    .collect();
    tx.commit().await?;
    Ok((version, Catalog { profiles, groups, templates, machine_profiles, defaults }))
}

/// An inventory machine, as the boot index serves it.
#[derive(Debug, Clone, Default)]
pub struct BootMachine {
    pub mac: String,
    pub hostname: String,
    pub role: String,
    pub cluster: String,
    pub uuid: String,
    pub serial: String,
    pub labels: BTreeMap<String, String>,
}

/// Every machine of the inventory with the fields templates see.
pub async fn boot_machines(db: &Database) -> Result<Vec<BootMachine>, Error> {
    let mut tx = db.begin().await?;
    let rows = sqlx::query_as::<_, (i64, String, String, String, String, String, String)>(
        "SELECT id, mac, hostname, role, cluster, uuid, serial FROM machines ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut labels: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
    for (id, key, value) in
        sqlx::query_as::<_, (i64, String, String)>("SELECT machine_id, key, value FROM machine_labels")
            .fetch_all(&mut *tx)
            .await?
    {
        labels.entry(id).or_default().insert(key, value);
    }
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(id, mac, hostname, role, cluster, uuid, serial)| BootMachine {
            labels: labels.remove(&id).unwrap_or_default(),
            mac,
            hostname,
            role,
            cluster,
            uuid,
            serial,
        })
        .collect())
}

/// Gives the machine `mac` the profile `profile`, or (with `None`) takes its own away.
pub async fn set_machine_profile(
    conn: &mut AnyConnection,
    mac: &str,
    profile: Option<&str>,
    now: &str,
) -> Result<Option<String>, Error> {
    let before: Option<String> = sqlx::query_scalar("SELECT profile FROM provisioning_machine_profiles WHERE mac = $1")
        .bind(mac)
        .fetch_optional(&mut *conn)
        .await?;
    match profile {
        Some(profile) => {
            sqlx::query(
                "INSERT INTO provisioning_machine_profiles (mac, profile, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (mac) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at",
            )
            .bind(mac)
            .bind(profile)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM provisioning_machine_profiles WHERE mac = $1")
                .bind(mac)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(before)
}

/// Sets (or, with `None`, removes) the default profile of a cluster and role.
pub async fn set_default(
    conn: &mut AnyConnection,
    cluster: &str,
    role: &str,
    profile: Option<&str>,
    now: &str,
) -> Result<Option<String>, Error> {
    let before: Option<String> =
        sqlx::query_scalar("SELECT profile FROM provisioning_defaults WHERE cluster = $1 AND role = $2")
            .bind(cluster)
            .bind(role)
            .fetch_optional(&mut *conn)
            .await?;
    match profile {
        Some(profile) => {
            sqlx::query(
                "INSERT INTO provisioning_defaults (cluster, role, profile, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (cluster, role) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at",
            )
            .bind(cluster)
            .bind(role)
            .bind(profile)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM provisioning_defaults WHERE cluster = $1 AND role = $2")
                .bind(cluster)
                .bind(role)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(before)
}

pub async fn profile(conn: &mut AnyConnection, id: &str) -> Result<Option<Profile>, Error> {
    let row = sqlx::query(&format!("SELECT {PROFILE_COLUMNS} FROM provisioning_profiles WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(profile_from_row).transpose()?)
}

pub async fn group(conn: &mut AnyConnection, id: &str) -> Result<Option<Group>, Error> {
    let row = sqlx::query("SELECT id, name, profile, selector, metadata FROM provisioning_groups WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(group_from_row).transpose()?)
}

pub async fn template(conn: &mut AnyConnection, kind: TemplateKind, id: &str) -> Result<Option<TemplateFile>, Error> {
    let row = sqlx::query("SELECT kind, id, content FROM provisioning_templates WHERE kind = $1 AND id = $2")
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(template_from_row).transpose()?.flatten())
}

/// What names `profile`: groups, machines and cluster defaults, as people read them.
pub async fn profile_users(conn: &mut AnyConnection, profile: &str) -> Result<Vec<String>, Error> {
    let mut users: Vec<String> =
        sqlx::query_scalar("SELECT id FROM provisioning_groups WHERE profile = $1 ORDER BY id")
            .bind(profile)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|id: String| format!("group {id}"))
            .collect();
    let machines: Vec<String> =
        sqlx::query_scalar("SELECT mac FROM provisioning_machine_profiles WHERE profile = $1 ORDER BY mac")
            .bind(profile)
            .fetch_all(&mut *conn)
            .await?;
    users.extend(machines.into_iter().map(|mac| format!("machine {mac}")));
    let defaults: Vec<(String, String)> =
        sqlx::query_as("SELECT cluster, role FROM provisioning_defaults WHERE profile = $1 ORDER BY cluster, role")
            .bind(profile)
            .fetch_all(&mut *conn)
            .await?;
    users.extend(defaults.into_iter().map(|(cluster, role)| {
        let cluster = if cluster.is_empty() { "no cluster".to_string() } else { format!("cluster {cluster}") };
        format!("the default for {role}s in {cluster}")
    }));
    Ok(users)
}

/// The ids of profiles that name a template of `kind`.
pub async fn profiles_using(conn: &mut AnyConnection, kind: TemplateKind, id: &str) -> Result<Vec<String>, Error> {
    let column = match kind {
        TemplateKind::Ignition => "ignition_id",
        TemplateKind::Generic => "generic_id",
    };
    Ok(sqlx::query_scalar(&format!("SELECT id FROM provisioning_profiles WHERE {column} = $1 ORDER BY id"))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?)
}

pub async fn put_profile(conn: &mut AnyConnection, p: &Profile, now: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO provisioning_profiles (id, name, kernel, initrd, args, ignition_id, generic_id, cloud_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, kernel = excluded.kernel, initrd = excluded.initrd, \
         args = excluded.args, ignition_id = excluded.ignition_id, generic_id = excluded.generic_id, \
         cloud_id = excluded.cloud_id, updated_at = excluded.updated_at",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.boot.kernel)
    .bind(serde_json::to_string(&p.boot.initrd)?)
    .bind(serde_json::to_string(&p.boot.args)?)
    .bind(&p.ignition_id)
    .bind(&p.generic_id)
    .bind(&p.cloud_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn put_group(conn: &mut AnyConnection, g: &Group, now: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO provisioning_groups (id, name, profile, selector, metadata, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, profile = excluded.profile, selector = excluded.selector, \
         metadata = excluded.metadata, updated_at = excluded.updated_at",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.profile)
    .bind(serde_json::to_string(&g.selector)?)
    .bind(serde_json::to_string(&g.metadata)?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn put_template(conn: &mut AnyConnection, t: &TemplateFile, now: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO provisioning_templates (kind, id, content, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, id) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at",
    )
    .bind(t.kind.as_str())
    .bind(&t.id)
    .bind(&t.content)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes one row of `table` (a provisioning table) by id; whether it was there.
pub async fn delete(conn: &mut AnyConnection, what: Deletion<'_>) -> Result<bool, Error> {
    let query = match what {
        Deletion::Profile(id) => sqlx::query("DELETE FROM provisioning_profiles WHERE id = $1").bind(id),
        Deletion::Group(id) => sqlx::query("DELETE FROM provisioning_groups WHERE id = $1").bind(id),
        Deletion::Template(kind, id) => {
            sqlx::query("DELETE FROM provisioning_templates WHERE kind = $1 AND id = $2").bind(kind.as_str()).bind(id)
        }
    };
    Ok(query.execute(&mut *conn).await?.rows_affected() > 0)
}

pub enum Deletion<'a> {
    Profile(&'a str),
    Group(&'a str),
    Template(TemplateKind, &'a str),
}

/// Marks the catalog changed; call in the transaction that changed it.
pub async fn bump_version(conn: &mut AnyConnection) -> Result<(), Error> {
    sqlx::query("UPDATE provisioning_version SET version = version + 1 WHERE id = 1").execute(&mut *conn).await?;
    Ok(())
}
