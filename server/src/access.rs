//! Accounts, roles, API tokens and sign-in: the service behind the Access page, the login
//! routes, the token CLI and the per-request principal.

pub mod http;
pub mod sessions;
pub mod sso;
mod throttle;

use crate::audit::{self, Event, settle};
use crate::db::now;
use crate::db::{Database, unique_constraint};
use crate::error::{OrInternal, internal};
use app::access::ssr::AccessService;
use app::access::{
    AccessOverview, Binding, ClusterIdentity, ConsoleRole, Identity, NewToken, Permission, Principal, SessionInfo,
    TokenInfo, authorize,
};
use app::error::AppError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;
pub use throttle::LoginThrottle;

/// Sign-in settings the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `scheme://host[:port]` browsers send as `Origin` for this console.
    pub public_origin: String,
    pub secure_cookies: bool,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<crate::config::ProxyRange>,
}

/// The local break-glass account's name.
pub const LOCAL_ADMIN: &str = "admin";
const TOKEN_PREFIX: &str = "pgt_";

/// Where a request came from, for sign-in throttling and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

pub struct AccessStore {
    db: Database,
    throttle: LoginThrottle,
    local_login_enabled: bool,
    single_sign_on: bool,
}

fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn hash_password(password: &SecretString) -> Result<String, AppError> {
    let salt = SaltString::encode_b64(&rand::rng().random::<[u8; 16]>()).map_err(internal)?;
    Argon2::default().hash_password(password.expose_secret().as_bytes(), &salt).map(|h| h.to_string()).map_err(internal)
}

fn password_matches(password: &SecretString, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| Argon2::default().verify_password(password.expose_secret().as_bytes(), &hash).is_ok())
        .unwrap_or(false)
}

/// Argon2 takes tens of milliseconds of CPU and 19 MiB by design: it runs on the blocking pool,
/// two at a time, so a burst of sign-ins never stalls the async workers that serve everyone else.
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

async fn off_the_async_workers<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    let _permit = PASSWORD_CHECKS.acquire().await.map_err(internal)?;
    tokio::task::spawn_blocking(work).await.map_err(internal)
}

/// [`password_matches`], off the async workers.
async fn check_password(password: &SecretString, stored: String) -> Result<bool, AppError> {
    let password = password.clone();
    off_the_async_workers(move || password_matches(&password, &stored)).await
}

/// [`hash_password`], off the async workers.
async fn hash_password_off_workers(password: &SecretString) -> Result<String, AppError> {
    let password = password.clone();
    off_the_async_workers(move || hash_password(&password)).await?
}

/// The longest user name and password the sign-in form takes.
pub const MAX_USERNAME_CHARS: usize = 256;
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Groups are kept as a JSON array: a group name may hold any character, commas included.
fn groups_json(groups: &[String]) -> String {
    serde_json::Value::from(groups).to_string()
}

fn optional(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A token's configured cluster identity, from its `cluster_user` and `cluster_groups` columns.
fn cluster_identity(row: &sqlx::any::AnyRow) -> Result<Option<ClusterIdentity>, sqlx::Error> {
    let user: String = row.try_get("cluster_user")?;
    if user.is_empty() {
        return Ok(None);
    }
    let groups: String = row.try_get("cluster_groups")?;
    let groups = serde_json::from_str(&groups).map_err(|e| sqlx::Error::Decode(e.into()))?;
    Ok(Some(ClusterIdentity { user, groups }))
}

/// Parses `30d`, `12h`, `90m` into a duration.
pub fn parse_expiry(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = number.parse().map_err(|_| format!("\"{s}\" is not a duration: write e.g. 30d, 12h or 90m"))?;
    let seconds = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        _ => return Err(format!("\"{s}\" is not a duration: write e.g. 30d, 12h or 90m")),
    };
    Ok(Duration::from_secs(seconds))
}

fn timestamp_after(duration: Duration) -> String {
    crate::db::timestamp(time::OffsetDateTime::now_utc() + duration)
}

impl AccessStore {
    pub fn new(db: Database, local_login_enabled: bool, single_sign_on: bool) -> AccessStore {
        AccessStore { db, throttle: LoginThrottle::default(), local_login_enabled, single_sign_on }
    }

    pub fn local_login_enabled(&self) -> bool {
        self.local_login_enabled
    }

    /// On a database without users, creates the local `admin` with `password`, or with a random
    /// password that is returned so it can be printed once. Also binds it the admin role.
    pub async fn ensure_bootstrap_admin(&self, password: Option<SecretString>) -> Result<Option<String>, AppError> {
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.db.pool())
            .await
            .or_internal()?
            .try_get("n")
            .or_internal()?;
        if count > 0 {
            return Ok(None);
        }
        let generated = password.is_none().then(|| random_secret(18));
        let password = password.unwrap_or_else(|| SecretString::from(generated.clone().unwrap_or_default()));
        let hash = hash_password_off_workers(&password).await?;
        let who = Principal::cli();
        let mut tx = audit::begin(&self.db).await.or_internal()?;
        sqlx::query("INSERT INTO users (username, source, password_hash, created_at) VALUES ($1, 'local', $2, $3)")
            .bind(LOCAL_ADMIN)
            .bind(&hash)
            .bind(now())
            .execute(&mut *tx)
            .await
            .or_internal()?;
        sqlx::query("INSERT INTO role_bindings (subject_kind, subject, role, created_by, created_at) VALUES ('user', $1, 'admin', 'bootstrap', $2) ON CONFLICT (subject_kind, subject, cluster) DO NOTHING")
            .bind(LOCAL_ADMIN)
            .bind(now())
            .execute(&mut *tx)
            .await
            .or_internal()?;
        audit::append(&mut tx, &who, Event::new("user.bootstrap", "user").target(LOCAL_ADMIN, LOCAL_ADMIN))
            .await
            .or_internal()?;
        tx.commit().await.or_internal()?;
        Ok(generated)
    }

    /// Seeds one group → admin binding from configuration, once.
    pub async fn ensure_admin_group(&self, group: &str) -> Result<(), AppError> {
        let mut tx = audit::begin(&self.db).await.or_internal()?;
        let inserted = sqlx::query("INSERT INTO role_bindings (subject_kind, subject, role, created_by, created_at) VALUES ('group', $1, 'admin', 'bootstrap', $2) ON CONFLICT (subject_kind, subject, cluster) DO NOTHING")
            .bind(group)
            .bind(now())
            .execute(&mut *tx)
            .await
            .or_internal()?
            .rows_affected();
        if inserted > 0 {
            audit::append(
                &mut tx,
                &Principal::cli(),
                Event::new("binding.create", "binding").target(group, format!("group {group} → admin")),
            )
            .await
            .or_internal()?;
        }
        tx.commit().await.or_internal()
    }

    /// Sets a local user's password (the CLI's `admin reset-password`); returns the generated
    /// password when none was given.
    pub async fn reset_password(
        &self,
        who: &Principal,
        username: &str,
        password: Option<SecretString>,
    ) -> Result<Option<String>, AppError> {
        authorize(who, Permission::ManageAccess)?;
        let generated = password.is_none().then(|| random_secret(18));
        let password = password.unwrap_or_else(|| SecretString::from(generated.clone().unwrap_or_default()));
        let hash = hash_password_off_workers(&password).await?;
        let mut tx = audit::begin(&self.db).await.or_internal()?;
        let updated =
            sqlx::query("UPDATE users SET password_hash = $1, disabled = 0 WHERE username = $2 AND source = 'local'")
                .bind(&hash)
                .bind(username)
                .execute(&mut *tx)
                .await
                .or_internal()?
                .rows_affected();
        if updated == 0 {
            return Err(AppError::not_found(format!("There is no local user named {username}.")));
        }
        audit::append(&mut tx, who, Event::new("user.reset_password", "user").target(username, username))
            .await
            .or_internal()?;
        tx.commit().await.or_internal()?;
        Ok(generated)
    }

    /// Checks a local password. Failures are throttled per user and per IP and audited.
    pub async fn login_local(
        &self,
        username: &str,
        password: &SecretString,
        origin: &Origin,
    ) -> Result<Principal, AppError> {
        let anonymous = Principal::anonymous(origin.ip, origin.user_agent.clone());
        let event =
            Event::new("session.login", "user").target(username, username).summary(json!({ "method": "local" }));
        if !self.local_login_enabled {
            let error = AppError::Forbidden {
                message: "Local sign-in is turned off on this server; use single sign-on.".into(),
            };
            audit::record_refusal(&self.db, &anonymous, event.failed(&error)).await;
            return Err(error);
        }
        if username.chars().count() > MAX_USERNAME_CHARS || password.expose_secret().len() > MAX_PASSWORD_BYTES {
            let error = AppError::invalid(format!(
                "User names have at most {MAX_USERNAME_CHARS} characters and passwords at most {MAX_PASSWORD_BYTES} bytes."
            ));
            let event = Event::new("session.login", "user").summary(json!({ "method": "local" }));
            audit::record_refusal(&self.db, &anonymous, event.failed(&error)).await;
            return Err(error);
        }
        let attempt = match self.throttle.attempt(username, origin.ip) {
            Ok(attempt) => attempt,
            Err(wait) => {
                let message = format!("Too many failed sign-ins; try again in {}.", throttle::wait_text(wait));
                let error = AppError::RateLimited { message };
                audit::record_refusal(&self.db, &anonymous, event.failed(&error)).await;
                return Err(error);
            }
        };
        let row = sqlx::query("SELECT id, password_hash, disabled FROM users WHERE username = $1 AND source = 'local'")
            .bind(username)
            .fetch_optional(self.db.pool())
            .await
            .or_internal()?;
        let user = match row {
            Some(row) => {
                let (id, hash, disabled): (i64, String, i32) = (
                    row.try_get("id").or_internal()?,
                    row.try_get("password_hash").or_internal()?,
                    row.try_get("disabled").or_internal()?,
                );
                (check_password(password, hash).await? && disabled == 0).then_some(id)
            }
            None => {
                // Spend the same time as a real check, so timing does not reveal user names.
                let _ = check_password(
                    password,
                    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J3wvs7F9b1j6YVlQ5C6S2Z0pH8b9Y1W3hQ9lQ7fQ0sA"
                        .into(),
                )
                .await?;
                None
            }
        };
        let Some(user_id) = user else {
            let error = AppError::Unauthorized { message: "The user name or password is wrong.".into() };
            audit::record_refusal(&self.db, &anonymous, event.failed(&error)).await;
            return Err(error);
        };
        attempt.succeeded();
        let principal = self
            .principal_for_user(user_id, origin)
            .await?
            .ok_or_else(|| AppError::Forbidden { message: "This account is disabled.".into() })?;
        let mut tx = audit::begin(&self.db).await.or_internal()?;
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now())
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .or_internal()?;
        audit::append(&mut tx, &principal, event.target(user_id, username)).await.or_internal()?;
        tx.commit().await.or_internal()?;
        Ok(principal)
    }

    /// Records a single sign-on: creates or updates the IdP user, found by issuer and subject,
    /// with the user name and groups it has now, and returns their principal. A name that
    /// belongs to another account (local, or another IdP subject) is refused.
    pub async fn login_oidc(
        &self,
        identity: &crate::access::sso::OidcIdentity,
        origin: &Origin,
    ) -> Result<Principal, AppError> {
        let anonymous = Principal::anonymous(origin.ip, origin.user_agent.clone());
        let event = Event::new("session.login", "user").target("", &identity.username).summary(json!({
            "method": "oidc",
            "issuer": identity.issuer,
            "subject": identity.subject,
            "groups": identity.groups,
            "groups_note": identity.groups_note,
        }));
        let result = async {
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let groups = groups_json(&identity.groups);
            // Users first seen before issuer and subject were kept are adopted by name, once.
            let existing = sqlx::query(
                "SELECT id, disabled FROM users WHERE source = 'oidc' \
                 AND ((issuer = $1 AND subject = $2) OR (subject = '' AND username = $3)) ORDER BY subject DESC LIMIT 1",
            )
            .bind(&identity.issuer)
            .bind(&identity.subject)
            .bind(&identity.username)
            .fetch_optional(&mut *tx)
            .await
            .or_internal()?;
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
                .bind(&identity.username)
                .bind(&groups)
                .bind(now())
                .bind(&identity.issuer)
                .bind(&identity.subject)
                .bind(identity.groups_note.clone().unwrap_or_default());
            if let Some(row) = &existing {
                query = query.bind(row.try_get::<i64, _>("id").or_internal()?);
            }
            let written = query.fetch_one(&mut *tx).await;
            let user_id = match written {
                Ok(id) => id,
                Err(e) if crate::db::unique_constraint(&e) == Some("users_username_key") => {
                    return Err(AppError::Forbidden {
                        message: format!(
                            "The user name \"{}\" already belongs to another Pangea account (a local one, or another \
                             person at the identity provider), so this sign-in cannot use it. Ask an admin.",
                            identity.username
                        ),
                    });
                }
                Err(e) => return Err(e).or_internal(),
            };
            let disabled: i32 = match &existing {
                Some(row) => row.try_get("disabled").or_internal()?,
                None => 0,
            };
            if disabled != 0 {
                return Err(AppError::Forbidden { message: "This account is disabled in Pangea.".into() });
            }
            // The user and the record of their sign-in are written together.
            let (role, cluster_roles) = self.roles_of(&identity.username, &identity.groups).await?;
            let principal = Principal {
                identity: Identity::Oidc {
                    user_id,
                    username: identity.username.clone(),
                    groups: identity.groups.clone(),
                    groups_note: identity.groups_note.clone(),
                },
                role,
                cluster_roles,
                ip: origin.ip,
                user_agent: origin.user_agent.clone(),
            };
            audit::append(&mut tx, &principal, event.clone().target(user_id, &identity.username)).await.or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(principal)
        }
        .await;
        settle(&self.db, &anonymous, event, result).await
    }

    /// Keeps the groups the IdP named when it last refreshed a session, if the refreshed ID
    /// token is about this user (same issuer and subject); otherwise changes nothing.
    pub async fn update_groups(
        &self,
        user_id: i64,
        issuer: &str,
        subject: &str,
        groups: &[String],
    ) -> Result<(), AppError> {
        sqlx::query("UPDATE users SET groups = $1 WHERE id = $2 AND source = 'oidc' AND issuer = $3 AND subject = $4")
            .bind(groups_json(groups))
            .bind(user_id)
            .bind(issuer)
            .bind(subject)
            .execute(self.db.pool())
            .await
            .or_internal()?;
        Ok(())
    }

    /// Records a single sign-on that failed before Pangea knew who it was.
    pub async fn sso_failed(&self, error: &crate::access::sso::OidcError, origin: &Origin) {
        let who = Principal::anonymous(origin.ip, origin.user_agent.clone());
        let failure = AppError::Unauthorized { message: error.to_string() };
        let event = Event::new("session.login", "user").summary(json!({ "method": "oidc" }));
        audit::record_refusal(&self.db, &who, event.failed(&failure)).await;
    }

    /// The principal of a signed-in user, or `None` when the user is gone or disabled.
    pub async fn principal_for_user(&self, user_id: i64, origin: &Origin) -> Result<Option<Principal>, AppError> {
        let Some(row) = sqlx::query("SELECT username, source, groups, groups_note, disabled FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await
            .or_internal()?
        else {
            return Ok(None);
        };
        let (username, source, groups, disabled): (String, String, String, i32) = (
            row.try_get("username").or_internal()?,
            row.try_get("source").or_internal()?,
            row.try_get("groups").or_internal()?,
            row.try_get("disabled").or_internal()?,
        );
        if disabled != 0 {
            return Ok(None);
        }
        let groups: Vec<String> = serde_json::from_str(&groups).unwrap_or_default();
        let (role, cluster_roles) = self.roles_of(&username, &groups).await?;
        let identity = if source == "local" {
            Identity::Local { user_id, username }
        } else {
            let note: String = row.try_get("groups_note").or_internal()?;
            Identity::Oidc { user_id, username, groups, groups_note: Some(note).filter(|n| !n.is_empty()) }
        };
        Ok(Some(Principal { identity, role, cluster_roles, ip: origin.ip, user_agent: origin.user_agent.clone() }))
    }

    /// The highest role bound to the user or any of their groups everywhere, and per cluster.
    pub async fn roles_of(
        &self,
        username: &str,
        groups: &[String],
    ) -> Result<(Option<ConsoleRole>, BTreeMap<String, ConsoleRole>), AppError> {
        let rows = sqlx::query("SELECT subject_kind, subject, role, cluster FROM role_bindings WHERE (subject_kind = 'user' AND subject = $1) OR subject_kind = 'group'")
            .bind(username)
            .fetch_all(self.db.pool())
            .await
            .or_internal()?;
        let mut best = None;
        let mut per_cluster = BTreeMap::new();
        for row in rows {
            let kind: String = row.try_get("subject_kind").or_internal()?;
            let subject: String = row.try_get("subject").or_internal()?;
            if kind == "group" && !groups.contains(&subject) {
                continue;
            }
            let role = ConsoleRole::parse(&row.try_get::<String, _>("role").or_internal()?).map_err(internal)?;
            let cluster: String = row.try_get("cluster").or_internal()?;
            if cluster.is_empty() {
                best = best.max(Some(role));
            } else {
                let entry = per_cluster.entry(cluster).or_insert(role);
                *entry = (*entry).max(role);
            }
        }
        Ok((best, per_cluster))
    }

    /// The principal of a valid, unexpired, unrevoked API token; records its use.
    pub async fn principal_for_token(&self, token: &str, origin: &Origin) -> Result<Option<Principal>, AppError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let Some(row) =
            sqlx::query("SELECT id, name, role, expires_at, revoked_at, cluster_user, cluster_groups FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash(token))
                .fetch_optional(self.db.pool())
                .await
                .or_internal()?
        else {
            return Ok(None);
        };
        let (id, name, role, expires_at, revoked_at): (i64, String, String, String, String) = (
            row.try_get("id").or_internal()?,
            row.try_get("name").or_internal()?,
            row.try_get("role").or_internal()?,
            row.try_get("expires_at").or_internal()?,
            row.try_get("revoked_at").or_internal()?,
        );
        let now = now();
        if !revoked_at.is_empty() || (!expires_at.is_empty() && expires_at <= now) {
            return Ok(None);
        }
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(&now)
            .bind(id)
            .execute(self.db.pool())
            .await
            .or_internal()?;
        let cluster_as = cluster_identity(&row).or_internal()?;
        Ok(Some(Principal {
            identity: Identity::Token { token_id: id, name, cluster_as },
            role: Some(ConsoleRole::parse(&role).map_err(internal)?),
            cluster_roles: BTreeMap::new(),
            ip: origin.ip,
            user_agent: origin.user_agent.clone(),
        }))
    }

    /// Creates a token; returns it once, with its listing. `cluster_as` is whom Pangea acts as
    /// for it in clusters (default `pangea:token:<name>`).
    pub async fn create_token(
        &self,
        who: &Principal,
        name: &str,
        role: ConsoleRole,
        expires_in: Option<Duration>,
        cluster_as: Option<ClusterIdentity>,
    ) -> Result<(TokenInfo, String), AppError> {
        let event = Event::new("token.create", "token").target("", name).summary(json!({
            "role": role,
            "expires_in_seconds": expires_in.map(|d| d.as_secs()),
            "cluster_as": cluster_as,
        }));
        let result = async {
            authorize(who, Permission::ManageAccess)?;
            let name = name.trim();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(AppError::invalid("Give the token a name of 1 to 64 printable characters, such as ci-deploy."));
            }
            let token = format!("{TOKEN_PREFIX}{}", random_secret(32));
            let expires_at = expires_in.map(timestamp_after).unwrap_or_default();
            let created_at = now();
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let (cluster_user, cluster_groups) = match &cluster_as {
                Some(c) => (c.user.clone(), serde_json::to_string(&c.groups).or_internal()?),
                None => (String::new(), "[]".into()),
            };
            let id: i64 = sqlx::query("INSERT INTO api_tokens (name, role, token_hash, created_by, created_at, expires_at, cluster_user, cluster_groups) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id")
                .bind(name)
                .bind(role.as_str())
                .bind(token_hash(&token))
                .bind(who.actor())
                .bind(&created_at)
                .bind(&expires_at)
                .bind(cluster_user)
                .bind(cluster_groups)
                .fetch_one(&mut *tx)
                .await
                .or_internal()?
                .try_get("id")
                .or_internal()?;
            audit::append(&mut tx, who, event.clone().target(id, name)).await.or_internal()?;
            tx.commit().await.or_internal()?;
            let info = TokenInfo { id, name: name.into(), role, created_by: who.actor(), created_at, expires_at: optional(expires_at), last_used_at: None, revoked: false, cluster_as };
            Ok((info, token))
        }
        .await;
        settle(&self.db, who, event, result).await
    }

    pub async fn list_tokens(&self, who: &Principal) -> Result<Vec<TokenInfo>, AppError> {
        audit::settle_read(&self.db, who, authorize(who, Permission::ManageAccess)).await?;
        sqlx::query("SELECT id, name, role, created_by, created_at, expires_at, last_used_at, revoked_at, cluster_user, cluster_groups FROM api_tokens ORDER BY id")
            .fetch_all(self.db.pool())
            .await
            .or_internal()?
            .iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    role: ConsoleRole::parse(&r.try_get::<String, _>("role")?).map_err(|e| sqlx::Error::Decode(e.into()))?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: optional(r.try_get("expires_at")?),
                    last_used_at: optional(r.try_get("last_used_at")?),
                    revoked: !r.try_get::<String, _>("revoked_at")?.is_empty(),
                    cluster_as: cluster_identity(r)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .or_internal()
    }

    pub async fn revoke_token(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        let event = Event::new("token.revoke", "token").target(id, "");
        let result = async {
            authorize(who, Permission::ManageAccess)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let row =
                sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = '' RETURNING name")
                    .bind(now())
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .or_internal()?
                    .ok_or_else(|| AppError::not_found(format!("There is no active token with id {id}.")))?;
            let name: String = row.try_get("name").or_internal()?;
            audit::append(&mut tx, who, event.clone().target(id, name)).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        settle(&self.db, who, event, result).await
    }

    pub async fn list_bindings(&self, who: &Principal) -> Result<Vec<Binding>, AppError> {
        audit::settle_read(&self.db, who, authorize(who, Permission::ManageAccess)).await?;
        sqlx::query("SELECT id, subject_kind, subject, role, cluster, created_by, created_at FROM role_bindings ORDER BY subject_kind, subject, cluster")
            .fetch_all(self.db.pool())
            .await
            .or_internal()?
            .iter()
            .map(|r| {
                Ok(Binding {
                    id: r.try_get("id")?,
                    subject_kind: r.try_get("subject_kind")?,
                    subject: r.try_get("subject")?,
                    role: ConsoleRole::parse(&r.try_get::<String, _>("role")?).map_err(|e| sqlx::Error::Decode(e.into()))?,
                    cluster: r.try_get("cluster")?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .or_internal()
    }

    /// Binds a group or user to a role everywhere (replacing an earlier binding of the same
    /// subject).
    pub async fn bind(
        &self,
        who: &Principal,
        subject_kind: &str,
        subject: &str,
        role: ConsoleRole,
    ) -> Result<(), AppError> {
        self.bind_in(who, subject_kind, subject, role, "").await
    }

    /// Binds a group or user to a role on one cluster (`cluster` empty: everywhere), replacing
    /// an earlier binding of the same subject there.
    pub async fn bind_in(
        &self,
        who: &Principal,
        subject_kind: &str,
        subject: &str,
        role: ConsoleRole,
        cluster: &str,
    ) -> Result<(), AppError> {
        let cluster = cluster.trim();
        let scope = if cluster.is_empty() { String::new() } else { format!(" on cluster {cluster}") };
        let event = Event::new("binding.create", "binding")
            .target(subject, format!("{subject_kind} {subject} → {}{scope}", role.as_str()));
        let result = async {
            authorize(who, Permission::ManageAccess)?;
            let subject = subject.trim();
            if !matches!(subject_kind, "group" | "user") {
                return Err(AppError::invalid(format!("\"{subject_kind}\" is not a subject kind: use group or user.")));
            }
            if subject.is_empty() || subject.len() > 256 || subject.chars().any(char::is_control) {
                return Err(AppError::invalid("Name the group or user: 1 to 256 printable characters."));
            }
            if !cluster.is_empty() {
                cluster.parse::<app::clusters::ClusterName>().map_err(|e| AppError::invalid(e.to_string()))?;
                if role == ConsoleRole::Admin {
                    return Err(AppError::invalid(
                        "A role on one cluster is viewer or operator; admin is for all of Pangea.",
                    ));
                }
            }
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let before: Option<String> = sqlx::query("SELECT role FROM role_bindings WHERE subject_kind = $1 AND subject = $2 AND cluster = $3")
                .bind(subject_kind)
                .bind(subject)
                .bind(cluster)
                .fetch_optional(&mut *tx)
                .await
                .or_internal()?
                .map(|r| r.try_get("role"))
                .transpose()
                .or_internal()?;
            sqlx::query("INSERT INTO role_bindings (subject_kind, subject, role, cluster, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject_kind, subject, cluster) DO UPDATE SET role = excluded.role, created_by = excluded.created_by, created_at = excluded.created_at")
                .bind(subject_kind)
                .bind(subject)
                .bind(role.as_str())
                .bind(cluster)
                .bind(who.actor())
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(|e| if unique_constraint(&e) == Some("role_bindings_subject_key") { AppError::Conflict { message: "That binding already exists.".into(), fields: vec![] } } else { internal(e) })?;
            audit::append(&mut tx, who, event.clone().summary(json!({ "before": before, "after": role, "cluster": cluster }))).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        settle(&self.db, who, event, result).await
    }

    pub async fn unbind(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        let event = Event::new("binding.delete", "binding").target(id, "");
        let result = async {
            authorize(who, Permission::ManageAccess)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let row = sqlx::query("DELETE FROM role_bindings WHERE id = $1 RETURNING subject_kind, subject, role")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .or_internal()?
                .ok_or_else(|| AppError::not_found(format!("There is no binding with id {id}.")))?;
            let (kind, subject, role): (String, String, String) = (
                row.try_get("subject_kind").or_internal()?,
                row.try_get("subject").or_internal()?,
                row.try_get("role").or_internal()?,
            );
            audit::append(&mut tx, who, event.clone().target(id, format!("{kind} {subject} → {role}")))
                .await
                .or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        settle(&self.db, who, event, result).await
    }

    /// Remembers that `session_id` belongs to `user_id`, for listing and signing out everywhere,
    /// with the IdP's sealed refresh token when there is one.
    pub async fn remember_session(
        &self,
        user_id: i64,
        session_id: &str,
        origin: &Origin,
        sealed_refresh_token: Option<String>,
    ) -> Result<(), AppError> {
        let now = now();
        sqlx::query(
            "INSERT INTO user_sessions (session_id, user_id, created_at, ip, user_agent, refresh_token, refreshed_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $3, $3)",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(now)
        .bind(origin.ip.map(|ip| ip.to_string()).unwrap_or_default())
        .bind(origin.user_agent.clone().unwrap_or_default())
        .bind(sealed_refresh_token.unwrap_or_default())
        .execute(self.db.pool())
        .await
        .or_internal()?;
        Ok(())
    }

    pub async fn forget_session(&self, session_id: &str) -> Result<(), AppError> {
        sqlx::query("DELETE FROM user_sessions WHERE session_id = $1")
            .bind(session_id)
            .execute(self.db.pool())
            .await
            .or_internal()?;
        Ok(())
    }

    /// The session ids of a user, newest first.
    pub async fn sessions_of(&self, user_id: i64) -> Result<Vec<(String, String, String, String)>, AppError> {
        sqlx::query("SELECT session_id, created_at, ip, user_agent FROM user_sessions WHERE user_id = $1 ORDER BY created_at DESC")
            .bind(user_id)
            .fetch_all(self.db.pool())
            .await
            .or_internal()?
            .iter()
            .map(|r| Ok((r.try_get("session_id")?, r.try_get("created_at")?, r.try_get("ip")?, r.try_get("user_agent")?)))
            .collect::<Result<_, sqlx::Error>>()
            .or_internal()
    }

    /// Keeps a session's sealed IdP refresh token.
    pub async fn keep_refresh_token(&self, session_id: &str, sealed: &str) -> Result<(), AppError> {
        sqlx::query("UPDATE user_sessions SET refresh_token = $1 WHERE session_id = $2")
            .bind(sealed)
            .bind(session_id)
            .execute(self.db.pool())
            .await
            .or_internal()?;
        Ok(())
    }

    /// Claims a session's refresh when the last one is older than `every`: returns its sealed
    /// refresh token and marks the refresh as started, in one statement, so only one request
    /// (on any replica) refreshes a session at a time and a rotated token is never used twice.
    /// A refresh that could not reach the IdP is next tried after another `every`.
    pub async fn claim_refresh(&self, session_id: &str, every: Duration) -> Result<Option<String>, AppError> {
        let due_before = crate::db::timestamp(time::OffsetDateTime::now_utc() - every);
        // A read first: most requests find no refresh due, and must not take a write lock.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM user_sessions WHERE session_id = $1 AND refresh_token <> '' AND refreshed_at <= $2",
        )
        .bind(session_id)
        .bind(&due_before)
        .fetch_optional(self.db.pool())
        .await
        .or_internal()?;
        if due.is_none() {
            return Ok(None);
        }
        sqlx::query_scalar::<_, String>(
            "UPDATE user_sessions SET refreshed_at = $1 \
             WHERE session_id = $2 AND refresh_token <> '' AND refreshed_at <= $3 RETURNING refresh_token",
        )
        .bind(now())
        .bind(session_id)
        .bind(due_before)
        .fetch_optional(self.db.pool())
        .await
        .or_internal()
    }

    /// Whether a session is in the sessions list (it was not signed out elsewhere).
    pub async fn session_listed(&self, session_id: &str) -> Result<bool, AppError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM user_sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(self.db.pool())
            .await
            .or_internal()?;
        Ok(found.is_some())
    }

    /// Notes that a session is in use (at most every quarter of the idle timeout).
    pub async fn touch_session(&self, session_id: &str) -> Result<(), AppError> {
        sqlx::query("UPDATE user_sessions SET last_seen_at = $1 WHERE session_id = $2")
            .bind(now())
            .bind(session_id)
            .execute(self.db.pool())
            .await
            .or_internal()?;
        Ok(())
    }

    /// Forgets sessions idle for longer than `idle` or older than `absolute`, with their sealed
    /// refresh tokens. Returns how many went.
    pub async fn prune_sessions(&self, idle: Duration, absolute: Duration) -> Result<u64, AppError> {
        let now = time::OffsetDateTime::now_utc();
        let result = sqlx::query("DELETE FROM user_sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(crate::db::timestamp(now - idle))
            .bind(crate::db::timestamp(now - absolute))
            .execute(self.db.pool())
            .await
            .or_internal()?;
        Ok(result.rows_affected())
    }

    /// Ends a session the IdP no longer accepts, and records why.
    pub async fn revoked_by_idp(&self, who: &Principal, session_id: &str, reason: &str) {
        let _ = self.forget_session(session_id).await;
        let event = Event::new("session.revoked_by_idp", "user")
            .target(who.user_id().unwrap_or_default(), who.actor())
            .summary(json!({ "reason": reason }));
        if let Err(e) = audit::record(&self.db, who, event).await {
            tracing::error!(error = %e, "could not record an IdP revocation");
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }
}

#[async_trait::async_trait]
impl AccessService for AccessStore {
    async fn overview(&self, who: &Principal) -> Result<AccessOverview, AppError> {
        audit::settle_read(&self.db, who, authorize(who, Permission::ManageAccess)).await?;
        let last: Option<String> =
            sqlx::query("SELECT last_login_at FROM users WHERE username = $1 AND source = 'local'")
                .bind(LOCAL_ADMIN)
                .fetch_optional(self.db.pool())
                .await
                .or_internal()?
                .map(|r| r.try_get("last_login_at"))
                .transpose()
                .or_internal()?;
        Ok(AccessOverview {
            local_login_enabled: self.local_login_enabled,
            single_sign_on: self.single_sign_on,
            local_admin_last_login: last.and_then(optional),
        })
    }

    async fn bindings(&self, who: &Principal) -> Result<Vec<Binding>, AppError> {
        self.list_bindings(who).await
    }

    async fn bind(
        &self,
        who: &Principal,
        subject_kind: String,
        subject: String,
        role: ConsoleRole,
        cluster: Option<String>,
    ) -> Result<(), AppError> {
        AccessStore::bind_in(self, who, &subject_kind, &subject, role, cluster.as_deref().unwrap_or_default()).await
    }

    async fn unbind(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        AccessStore::unbind(self, who, id).await
    }

    async fn tokens(&self, who: &Principal) -> Result<Vec<TokenInfo>, AppError> {
        self.list_tokens(who).await
    }

    async fn create_token(
        &self,
        who: &Principal,
        name: String,
        role: ConsoleRole,
        expires_in_days: Option<u32>,
        cluster_user: String,
        cluster_groups: Vec<String>,
    ) -> Result<NewToken, AppError> {
        let expires = expires_in_days.map(|d| Duration::from_secs(u64::from(d) * 86_400));
        let cluster_as = ClusterIdentity::parse(&cluster_user, &cluster_groups).map_err(AppError::invalid)?;
        let (info, token) = AccessStore::create_token(self, who, &name, role, expires, cluster_as).await?;
        Ok(NewToken { info, token })
    }

    async fn revoke_token(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        AccessStore::revoke_token(self, who, id).await
    }

    async fn my_sessions(&self, who: &Principal) -> Result<Vec<SessionInfo>, AppError> {
        let Some(user_id) = who.user_id() else {
            audit::settle_read(&self.db, who, authorize(who, Permission::ViewMachines)).await?;
            return Ok(Vec::new());
        };
        Ok(self
            .sessions_of(user_id)
            .await?
            .into_iter()
            .map(|(_, created_at, ip, user_agent)| SessionInfo { created_at, ip, user_agent })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_parse_and_bad_ones_say_how() {
        assert_eq!(parse_expiry("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_expiry("90m").unwrap(), Duration::from_secs(5_400));
        assert!(parse_expiry("soon").unwrap_err().contains("30d"));
        assert!(parse_expiry("").is_err());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let password = SecretString::from("correct horse");
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches(&password, &hash));
        assert!(!password_matches(&SecretString::from("wrong"), &hash));
        assert!(!password_matches(&password, "not a hash"));
    }

    /// A password check must leave the async worker free: on a single-threaded runtime the
    /// check's future is still pending after its first poll, and the hashing ran on another thread.
    #[tokio::test(flavor = "current_thread")]
    async fn password_checks_leave_the_async_worker_free() {
        use futures::FutureExt;
        let password = SecretString::from("correct horse");
        let stored = hash_password(&password).unwrap();
        let mut check = std::pin::pin!(check_password(&password, stored.clone()));
        assert!(
            check.as_mut().now_or_never().is_none(),
            "the check finished inside its first poll: it ran on the async worker"
        );
        assert!(check.await.unwrap());
        let mut hashing = std::pin::pin!(hash_password_off_workers(&password));
        assert!(hashing.as_mut().now_or_never().is_none(), "hashing finished inside its first poll");
        assert!(password_matches(&password, &hashing.await.unwrap()));

        let caller = std::thread::current().id();
        let worker = off_the_async_workers(move || std::thread::current().id()).await.unwrap();
        assert_ne!(worker, caller);
    }

    /// A burst of sign-ins runs at most two Argon2 computations at once (19 MiB each).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_two_password_checks_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static MOST: AtomicUsize = AtomicUsize::new(0);
        let checks = (0..8).map(|_| {
            tokio::spawn(off_the_async_workers(|| {
                let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                MOST.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                RUNNING.fetch_sub(1, Ordering::SeqCst);
            }))
        });
        for check in checks.collect::<Vec<_>>() {
            check.await.unwrap().unwrap();
        }
        assert!(MOST.load(Ordering::SeqCst) <= 2, "{} ran at once", MOST.load(Ordering::SeqCst));
        assert!(MOST.load(Ordering::SeqCst) >= 1);
    }
}
