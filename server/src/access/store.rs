//! Access's SQL: the `users`, `api_tokens`, `role_bindings` and `user_sessions` tables, in SQL
//! both backends share. Writes that a person makes take the caller's transaction, so the
//! service writes its audit record with them.

use crate::db::{Database, now};
use app::access::{Binding, ClusterIdentity, ConsoleRole, TokenInfo};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Groups are kept as a JSON array: a group name may hold any character, commas included.
pub fn groups_json(groups: &[String]) -> String {
    serde_json::Value::from(groups).to_string()
}

fn optional(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn role_of(row: &AnyRow) -> Result<ConsoleRole, sqlx::Error> {
    ConsoleRole::parse(&row.try_get::<String, _>("role")?).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// A token's configured cluster identity, from its `cluster_user` and `cluster_groups` columns.
fn cluster_identity(row: &AnyRow) -> Result<Option<ClusterIdentity>, sqlx::Error> {
    let user: String = row.try_get("cluster_user")?;
    if user.is_empty() {
        return Ok(None);
    }
    let groups: String = row.try_get("cluster_groups")?;
    let groups = serde_json::from_str(&groups).map_err(|e| sqlx::Error::Decode(e.into()))?;
    Ok(Some(ClusterIdentity { user, groups }))
}

// Users.

pub async fn user_count(db: &Database) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(db.pool()).await?.try_get("n")
}

pub async fn insert_local_user(tx: &mut AnyConnection, username: &str, password_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO users (username, source, password_hash, created_at) VALUES ($1, 'local', $2, $3)")
        .bind(username)
        .bind(password_hash)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Sets a local user's password and enables them; false when there is no such user.
pub async fn set_local_password(
    tx: &mut AnyConnection,
    username: &str,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let updated =
        sqlx::query("UPDATE users SET password_hash = $1, disabled = 0 WHERE username = $2 AND source = 'local'")
            .bind(password_hash)
            .bind(username)
            .execute(&mut *tx)
            .await?;
    Ok(updated.rows_affected() > 0)
}

/// A local user's id, password hash and whether they are disabled.
pub async fn local_user(db: &Database, username: &str) -> Result<Option<(i64, String, bool)>, sqlx::Error> {
    let Some(row) =
        sqlx::query("SELECT id, password_hash, disabled FROM users WHERE username = $1 AND source = 'local'")
            .bind(username)
            .fetch_optional(db.pool())
            .await?
    else {
        return Ok(None);
    };
    Ok(Some((row.try_get("id")?, row.try_get("password_hash")?, row.try_get::<i32, _>("disabled")? != 0)))
}

pub async fn note_login(tx: &mut AnyConnection, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
        .bind(now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// When the local admin last signed in, if ever.
pub async fn local_last_login(db: &Database, username: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT last_login_at FROM users WHERE username = $1 AND source = 'local'")
        .bind(username)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get::<String, _>("last_login_at")).transpose()?.and_then(optional))
}

/// A person from single sign-on, as the IdP names them at this sign-in.
pub struct SsoUser<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub username: &'a str,
    pub groups: &'a [String],
    pub groups_note: &'a str,
}

/// Writes the single sign-on user found by issuer and subject (or, once, a user first seen
/// before those were kept, by name), or a new one; answers their id and whether they are
/// disabled.
pub async fn upsert_sso_user(tx: &mut AnyConnection, user: &SsoUser<'_>) -> Result<(i64, bool), sqlx::Error> {
    let existing = sqlx::query(
        "SELECT id, disabled FROM users WHERE source = 'oidc' \
         AND ((issuer = $1 AND subject = $2) OR (subject = '' AND username = $3)) ORDER BY subject DESC LIMIT 1",
    )
    .bind(user.issuer)
    .bind(user.subject)
    .bind(user.username)
    .fetch_optional(&mut *tx)
    .await?;
    // The same six values either update the user found or make a new one.
    let sql = match &existing {
        Some(_) => {
            "UPDATE users SET username = $1, groups = $2, last_login_at = $3, issuer = $4, subject = $5, \
             groups_note = $6 WHERE id = $7 RETURNING id"
        }
        None => {
            "INSERT INTO users (username, source, groups, created_at, last_login_at, issuer, subject, groups_note) \
             VALUES ($1, 'oidc', $2, $3, $3, $4, $5, $6) RETURNING id"
        }
    };
    let mut query = sqlx::query_scalar::<_, i64>(sql)
        .bind(user.username)
        .bind(groups_json(user.groups))
        .bind(now())
        .bind(user.issuer)
        .bind(user.subject)
        .bind(user.groups_note);
    if let Some(row) = &existing {
        query = query.bind(row.try_get::<i64, _>("id")?);
    }
    let id = query.fetch_one(&mut *tx).await?;
    let disabled = match &existing {
        Some(row) => row.try_get::<i32, _>("disabled")? != 0,
        None => false,
    };
    Ok((id, disabled))
}

/// Keeps the groups the IdP named now, if the user is still that issuer's subject.
/// The IdP subject of a single-sign-on user.
pub async fn sso_subject(db: &Database, user_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT subject FROM users WHERE id = $1 AND source = 'oidc'")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await
}

pub async fn set_sso_groups(
    db: &Database,
    user_id: i64,
    issuer: &str,
    subject: &str,
    groups: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET groups = $1 WHERE id = $2 AND source = 'oidc' AND issuer = $3 AND subject = $4")
        .bind(groups_json(groups))
        .bind(user_id)
        .bind(issuer)
        .bind(subject)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A stored user, as a principal is made of them.
pub struct StoredUser {
    pub username: String,
    pub local: bool,
    pub groups: Vec<String>,
    pub groups_note: Option<String>,
    pub disabled: bool,
}

pub async fn user(db: &Database, user_id: i64) -> Result<Option<StoredUser>, sqlx::Error> {
    let Some(row) = sqlx::query("SELECT username, source, groups, groups_note, disabled FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(StoredUser {
        username: row.try_get("username")?,
        local: row.try_get::<String, _>("source")? == "local",
        groups: serde_json::from_str(&row.try_get::<String, _>("groups")?).unwrap_or_default(),
        groups_note: optional(row.try_get("groups_note")?),
        disabled: row.try_get::<i32, _>("disabled")? != 0,
    }))
}

// API tokens.

/// A token found by its hash: id, name, role, expiry and revocation time (empty when none),
/// and its cluster identity.
pub struct StoredToken {
    pub id: i64,
    pub name: String,
    /// As stored; read only for a token that is valid.
    pub role: String,
    pub expires_at: String,
    pub revoked_at: String,
    pub cluster_as: Option<ClusterIdentity>,
}

const TOKEN_COLUMNS: &str =
    "SELECT id, name, role, expires_at, revoked_at, cluster_user, cluster_groups FROM api_tokens";

pub async fn token_by_hash(db: &Database, hash: &str) -> Result<Option<StoredToken>, sqlx::Error> {
    let row =
        sqlx::query(&format!("{TOKEN_COLUMNS} WHERE token_hash = $1")).bind(hash).fetch_optional(db.pool()).await?;
    row.as_ref().map(stored_token).transpose()
}

pub async fn token_by_id(db: &Database, id: i64) -> Result<Option<StoredToken>, sqlx::Error> {
    let row = sqlx::query(&format!("{TOKEN_COLUMNS} WHERE id = $1")).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(stored_token).transpose()
}

fn stored_token(row: &AnyRow) -> Result<StoredToken, sqlx::Error> {
    Ok(StoredToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        cluster_as: cluster_identity(row)?,
    })
}

pub async fn note_token_use(db: &Database, id: i64, at: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2").bind(at).bind(id).execute(db.pool()).await?;
    Ok(())
}

/// Stores a new token (by its hash) as `info` describes it; answers its id.
pub async fn insert_token(tx: &mut AnyConnection, info: &TokenInfo, hash: &str) -> Result<i64, sqlx::Error> {
    let (cluster_user, cluster_groups) = match &info.cluster_as {
        Some(c) => (c.user.clone(), serde_json::to_string(&c.groups).map_err(|e| sqlx::Error::Encode(e.into()))?),
        None => (String::new(), "[]".into()),
    };
    sqlx::query(
        "INSERT INTO api_tokens (name, role, token_hash, created_by, created_at, expires_at, cluster_user, cluster_groups) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&info.name)
    .bind(info.role.as_str())
    .bind(hash)
    .bind(&info.created_by)
    .bind(&info.created_at)
    .bind(info.expires_at.clone().unwrap_or_default())
    .bind(cluster_user)
    .bind(cluster_groups)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")
}

pub async fn tokens(db: &Database) -> Result<Vec<TokenInfo>, sqlx::Error> {
    sqlx::query(
        "SELECT id, name, role, created_by, created_at, expires_at, last_used_at, revoked_at, cluster_user, \
         cluster_groups FROM api_tokens ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(TokenInfo {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            role: role_of(r)?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            expires_at: optional(r.try_get("expires_at")?),
            last_used_at: optional(r.try_get("last_used_at")?),
            revoked: !r.try_get::<String, _>("revoked_at")?.is_empty(),
            cluster_as: cluster_identity(r)?,
        })
    })
    .collect()
}

/// Revokes an active token; answers its name, or `None` when there is no active token `id`.
pub async fn revoke_token(tx: &mut AnyConnection, id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = '' RETURNING name")
        .bind(now())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get("name"))
        .transpose()
}

// Role bindings.

/// The bindings that may apply to `username`: theirs, and every group's (as kind, subject,
/// role as stored, cluster).
pub async fn bindings_for(db: &Database, username: &str) -> Result<Vec<(String, String, String, String)>, sqlx::Error> {
    sqlx::query(
        "SELECT subject_kind, subject, role, cluster FROM role_bindings \
         WHERE (subject_kind = 'user' AND subject = $1) OR subject_kind = 'group'",
    )
    .bind(username)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| Ok((r.try_get("subject_kind")?, r.try_get("subject")?, r.try_get("role")?, r.try_get("cluster")?)))
    .collect()
}

pub async fn bindings(db: &Database) -> Result<Vec<Binding>, sqlx::Error> {
    sqlx::query(
        "SELECT id, subject_kind, subject, role, cluster, created_by, created_at FROM role_bindings \
         ORDER BY subject_kind, subject, cluster",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(Binding {
            id: r.try_get("id")?,
            subject_kind: r.try_get("subject_kind")?,
            subject: r.try_get("subject")?,
            role: role_of(r)?,
            cluster: r.try_get("cluster")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .collect()
}

/// The role bound to a subject on `cluster` (empty: everywhere), if any.
pub async fn bound_role(
    tx: &mut AnyConnection,
    subject_kind: &str,
    subject: &str,
    cluster: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT role FROM role_bindings WHERE subject_kind = $1 AND subject = $2 AND cluster = $3")
        .bind(subject_kind)
        .bind(subject)
        .bind(cluster)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("role"))
        .transpose()
}

/// Binds a subject to `role` on `cluster`, replacing its binding there.
pub async fn put_binding(
    tx: &mut AnyConnection,
    subject_kind: &str,
    subject: &str,
    role: ConsoleRole,
    cluster: &str,
    created_by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO role_bindings (subject_kind, subject, role, cluster, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (subject_kind, subject, cluster) DO UPDATE SET role = excluded.role, \
         created_by = excluded.created_by, created_at = excluded.created_at",
    )
    .bind(subject_kind)
    .bind(subject)
    .bind(role.as_str())
    .bind(cluster)
    .bind(created_by)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Binds a subject to admin everywhere unless it has a binding there already (first start and
/// configuration); true when it was bound now.
pub async fn bind_admin_once(tx: &mut AnyConnection, subject_kind: &str, subject: &str) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO role_bindings (subject_kind, subject, role, created_by, created_at) \
         VALUES ($1, $2, 'admin', 'bootstrap', $3) ON CONFLICT (subject_kind, subject, cluster) DO NOTHING",
    )
    .bind(subject_kind)
    .bind(subject)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// Deletes binding `id`; answers its subject kind, subject and role, or `None` when there is none.
pub async fn delete_binding(tx: &mut AnyConnection, id: i64) -> Result<Option<(String, String, String)>, sqlx::Error> {
    sqlx::query("DELETE FROM role_bindings WHERE id = $1 RETURNING subject_kind, subject, role")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| Ok((row.try_get("subject_kind")?, row.try_get("subject")?, row.try_get("role")?)))
        .transpose()
}

// A person's sessions.

pub async fn insert_session(
    db: &Database,
    session_id: &str,
    user_id: i64,
    ip: &str,
    user_agent: &str,
    sealed_idp_token: &str,
    idp_token_kind: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_sessions (session_id, user_id, created_at, ip, user_agent, refresh_token, idp_token_kind, \
         refreshed_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $3, $3)",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(now())
    .bind(ip)
    .bind(user_agent)
    .bind(sealed_idp_token)
    .bind(idp_token_kind)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn delete_session(db: &Database, session_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_sessions WHERE session_id = $1").bind(session_id).execute(db.pool()).await?;
    Ok(())
}

/// Ends a session, keeping why (a code the login page explains) for its next request.
pub async fn end_session(db: &Database, session_id: &str, why: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_sessions SET ended = $1, refresh_token = '' WHERE session_id = $2")
        .bind(why)
        .bind(session_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Forgets an ended session, answering why it ended.
pub async fn take_ended(db: &Database, session_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM user_sessions WHERE session_id = $1 AND ended <> '' RETURNING ended")
        .bind(session_id)
        .fetch_optional(db.pool())
        .await
}

/// A user's sessions, newest first: id, created at, IP and user agent.
pub async fn sessions_of(db: &Database, user_id: i64) -> Result<Vec<(String, String, String, String)>, sqlx::Error> {
    sqlx::query(
        "SELECT session_id, created_at, ip, user_agent FROM user_sessions WHERE user_id = $1 AND ended = '' \
         ORDER BY created_at DESC",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| Ok((r.try_get("session_id")?, r.try_get("created_at")?, r.try_get("ip")?, r.try_get("user_agent")?)))
    .collect()
}

pub async fn set_refresh_token(db: &Database, session_id: &str, sealed: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_sessions SET refresh_token = $1 WHERE session_id = $2")
        .bind(sealed)
        .bind(session_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Whether the session has a refresh token whose last refresh started at or before `due_before`.
pub async fn refresh_due(db: &Database, session_id: &str, due_before: &str) -> Result<bool, sqlx::Error> {
    let due: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM user_sessions WHERE session_id = $1 AND refresh_token <> '' AND refreshed_at <= $2",
    )
    .bind(session_id)
    .bind(due_before)
    .fetch_optional(db.pool())
    .await?;
    Ok(due.is_some())
}

/// Marks the refresh started, if it is still due, in one statement; answers the sealed token.
pub async fn claim_refresh(
    db: &Database,
    session_id: &str,
    due_before: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE user_sessions SET refreshed_at = $1 \
         WHERE session_id = $2 AND refresh_token <> '' AND refreshed_at <= $3 RETURNING refresh_token, idp_token_kind",
    )
    .bind(now())
    .bind(session_id)
    .bind(due_before)
    .fetch_optional(db.pool())
    .await
}

/// Where a session stands in the sessions list: `None` when it is not listed, else why it was
/// ended (`""` while it goes on).
pub async fn session_standing(db: &Database, session_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT ended FROM user_sessions WHERE session_id = $1")
        .bind(session_id)
        .fetch_optional(db.pool())
        .await
}

/// Whether a session is listed, not ended, used since `idle_before` and created since
/// `created_before` (as [`delete_sessions_before`] would keep it).
pub async fn session_in_use(
    db: &Database,
    session_id: &str,
    idle_before: &str,
    created_before: &str,
) -> Result<bool, sqlx::Error> {
    let found: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_sessions \
         WHERE session_id = $1 AND ended = '' AND last_seen_at >= $2 AND created_at >= $3",
    )
    .bind(session_id)
    .bind(idle_before)
    .bind(created_before)
    .fetch_one(db.pool())
    .await?;
    Ok(found > 0)
}

pub async fn touch_session(db: &Database, session_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_sessions SET last_seen_at = $1 WHERE session_id = $2")
        .bind(now())
        .bind(session_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Deletes sessions last seen before `idle_before` or created before `created_before`.
pub async fn delete_sessions_before(
    db: &Database,
    idle_before: &str,
    created_before: &str,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM user_sessions WHERE last_seen_at < $1 OR created_at < $2")
        .bind(idle_before)
        .bind(created_before)
        .execute(db.pool())
        .await?;
    Ok(result.rows_affected())
}

/// Re-seals every session's IdP refresh token under `sealer`'s first key, in the caller's
/// transaction; `(re-sealed, ended)`. A session whose token cannot be opened is ended (deleted):
/// it could not be refreshed, so it must not outlive its IdP session unchecked.
pub async fn reseal_refresh_tokens(
    conn: &mut AnyConnection,
    sealer: &crate::secrets::Sealer,
) -> Result<(usize, usize), sqlx::Error> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT session_id, refresh_token, idp_token_kind FROM user_sessions WHERE refresh_token <> ''")
            .fetch_all(&mut *conn)
            .await?;
    let (mut resealed, mut ended) = (0, 0);
    for (session_id, sealed, kind) in rows {
        let place = super::sessions::idp_token_place(&session_id, super::sso::IdpTokenKind::parse(&kind));
        match sealer.open(&sealed, &place) {
            Ok(token) => {
                sqlx::query("UPDATE user_sessions SET refresh_token = $1 WHERE session_id = $2")
                    .bind(sealer.seal(&token, &place))
                    .bind(&session_id)
                    .execute(&mut *conn)
                    .await?;
                resealed += 1;
            }
            Err(_) => {
                sqlx::query("DELETE FROM user_sessions WHERE session_id = $1")
                    .bind(&session_id)
                    .execute(&mut *conn)
                    .await?;
                ended += 1;
            }
        }
    }
    Ok((resealed, ended))
}

// Hand-overs of a sign-in to another origin.

/// Keeps a one-time code's hash, and forgets the codes that expired unused.
pub async fn insert_handover(
    db: &Database,
    code_hash: &str,
    session_key: &str,
    user_id: i64,
    scope: &str,
    now_ms: i64,
    expires_ms: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM origin_handovers WHERE expires_at < $1").bind(now_ms).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO origin_handovers (code_hash, session_key, user_id, scope, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(code_hash)
    .bind(session_key)
    .bind(user_id)
    .bind(scope)
    .bind(expires_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Takes a code out, once (on any replica): its `(session_key, user_id)` when it was for `scope`
/// and has not expired.
pub async fn take_handover(
    db: &Database,
    code_hash: &str,
    scope: &str,
    now_ms: i64,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "DELETE FROM origin_handovers WHERE code_hash = $1 RETURNING session_key, user_id, scope, expires_at",
    )
    .bind(code_hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (for_scope, expires): (String, i64) = (row.try_get("scope")?, row.try_get("expires_at")?);
    if for_scope != scope || expires < now_ms {
        return Ok(None);
    }
    Ok(Some((row.try_get("session_key")?, row.try_get("user_id")?)))
}
