//! Accounts, roles, API tokens and sign-in: the service behind the Access page, the login
//! routes, the token CLI and the per-request principal.

mod accounts;
mod bindings;
mod handover;
pub mod http;
pub mod sessions;
pub mod sso;
pub mod store;
mod throttle;
mod tokens;

pub use accounts::hash_password;

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
    /// How often an open live stream checks its person again (see [`crate::http::live`]).
    pub live_recheck_every: Duration,
    /// Where browsers reach the clusters' Grafanas.
    pub grafana: crate::config::GrafanaPlacement,
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

pub struct Access {
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

/// The longest user name and password the sign-in form takes.
pub const MAX_USERNAME_CHARS: usize = 256;
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn optional(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
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

impl Access {
    pub fn new(db: Database, local_login_enabled: bool, single_sign_on: bool) -> Access {
        Access { db, throttle: LoginThrottle::default(), local_login_enabled, single_sign_on }
    }

    pub fn local_login_enabled(&self) -> bool {
        self.local_login_enabled
    }

    pub fn db(&self) -> &Database {
        &self.db
    }
}

#[async_trait::async_trait]
impl AccessService for Access {
    async fn overview(&self, who: &Principal) -> Result<AccessOverview, AppError> {
        audit::settle_read(&self.db, who, authorize(who, Permission::ManageAccess)).await?;
        let last = store::local_last_login(&self.db, LOCAL_ADMIN).await.or_internal()?;
        Ok(AccessOverview {
            local_login_enabled: self.local_login_enabled,
            single_sign_on: self.single_sign_on,
            local_admin_last_login: last,
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
        Access::bind_in(self, who, &subject_kind, &subject, role, cluster.as_deref().unwrap_or_default()).await
    }

    async fn unbind(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        Access::unbind(self, who, id).await
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
        let (info, token) = Access::create_token(self, who, &name, role, expires, cluster_as).await?;
        Ok(NewToken { info, token })
    }

    async fn revoke_token(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        Access::revoke_token(self, who, id).await
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
}
