//! Browser sessions: tower-sessions with its sqlx store on whichever backend Pangea uses, and one
//! typed wrapper ([`UserSession`]) so no other code touches session keys.

use super::*;
use crate::access::sso::IdpTokenKind;
use crate::db::Backend;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::time::Duration;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Session, cookie::time::OffsetDateTime};
use tower_sessions_sqlx_store::sqlx::{
    postgres::PgPoolOptions, sqlite::SqliteConnectOptions, sqlite::SqlitePoolOptions,
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The session store on the configured database.
#[derive(Debug, Clone)]
pub enum SessionBackend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SessionBackend {
    /// Opens a small typed pool beside the main one (the store needs a concrete driver) and
    /// creates the store's table.
    pub async fn connect(url: &SecretString, backend: Backend) -> Result<SessionBackend, sqlx::Error> {
        let url = url.expose_secret();
        Ok(match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(tower_sessions_sqlx_store::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30));
                let pool = SqlitePoolOptions::new().max_connections(2).connect_with(options).await?;
                let store = SqliteStore::new(pool);
                store.migrate().await?;
                SessionBackend::Sqlite(store)
            }
            Backend::Postgres => {
                let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
                let store = PostgresStore::new(pool);
                store.migrate().await?;
                SessionBackend::Postgres(store)
            }
        })
    }
}

impl SessionBackend {
    /// Deletes the sessions whose idle expiry has passed.
    pub async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.delete_expired().await,
            SessionBackend::Postgres(s) => s.delete_expired().await,
        }
    }
}

/// What the stores keep of a session id: its SHA-256 (the first 128 bits, as an id of the same
/// form). A copy of the database, or of a backup, holds no id a browser could present.
pub fn session_key(id: &Id) -> Id {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.0.to_le_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(first))
}

impl SessionBackend {
    async fn save_keyed(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.save(record).await,
            SessionBackend::Postgres(s) => s.save(record).await,
        }
    }

    /// Deletes a session by its stored key (see [`session_key`]).
    async fn delete_keyed(&self, key: &Id) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.delete(key).await,
            SessionBackend::Postgres(s) => s.delete(key).await,
        }
    }
}

/// The browser's session id goes in; only its [`session_key`] is stored or looked up.
#[async_trait::async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh random 128-bit id: its key is as unlikely to be taken as the id itself.
        self.save(record).await
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.save_keyed(&Record { id: session_key(&record.id), ..record.clone() }).await
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let key = session_key(id);
        let record = match self {
            SessionBackend::Sqlite(s) => s.load(&key).await?,
            SessionBackend::Postgres(s) => s.load(&key).await?,
        };
        Ok(record.map(|record| Record { id: *id, ..record }))
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.delete_keyed(&session_key(id)).await
    }
}

/// Who is signed in to this session, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    pub user_id: i64,
    /// Unix seconds, for the absolute timeout.
    pub since: i64,
    /// Unix milliseconds of the last time a request marked the session as in use.
    #[serde(default)]
    pub seen_ms: i64,
    /// Whether this request marked it (so the store saves it with a new idle expiry).
    #[serde(skip)]
    pub touched: bool,
}

pub(super) fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The only door to session data.
pub struct UserSession(Session);

impl UserSession {
    const SIGNED_IN: &'static str = "signed_in";

    /// Starts a signed-in session under a new id (so a planted id is worthless) and returns the
    /// key it is stored under.
    pub async fn sign_in(&self, user_id: i64) -> Result<String, tower_sessions::session::Error> {
        self.0.cycle_id().await?;
        let signed_in =
            SignedIn { user_id, since: OffsetDateTime::now_utc().unix_timestamp(), seen_ms: now_ms(), touched: false };
        self.0.insert(Self::SIGNED_IN, signed_in).await?;
        self.0.save().await?;
        Ok(self.id().unwrap_or_default())
    }

    /// The signed-in user, unless the session is older than `absolute_timeout`. The idle
    /// timeout slides: a session in use is marked as such at most every quarter of
    /// `idle_timeout`, which makes the store keep it for another `idle_timeout` (and the
    /// browser its cookie), without a write on every request.
    pub async fn signed_in(&self, absolute_timeout: Duration, idle_timeout: Duration) -> Option<SignedIn> {
        let mut signed_in: SignedIn = self.0.get(Self::SIGNED_IN).await.ok().flatten()?;
        let age = OffsetDateTime::now_utc().unix_timestamp() - signed_in.since;
        if age > absolute_timeout.as_secs() as i64 {
            let _ = self.0.flush().await;
            return None;
        }
        let now = now_ms();
        if now - signed_in.seen_ms >= (idle_timeout.as_millis() / 4) as i64 {
            signed_in.seen_ms = now;
            if self.0.insert(Self::SIGNED_IN, signed_in).await.is_ok() {
                signed_in.touched = true;
            }
        }
        Some(signed_in)
    }

    /// The key this session is stored and listed under (never the id the browser holds).
    pub fn id(&self) -> Option<String> {
        self.0.id().map(|id| session_key(&id).to_string())
    }

    /// Ends this session and deletes it from the store.
    pub async fn sign_out(&self) -> Result<(), tower_sessions::session::Error> {
        self.0.flush().await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UserSession {
    type Rejection = <Session as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Session::from_request_parts(parts, state).await.map(UserSession)
    }
}

/// Deletes a session by the key it is listed under (signing a user out everywhere).
pub async fn delete_session(store: &SessionBackend, key: &str) {
    if let Ok(key) = Id::from_str(key) {
        let _ = store.delete_keyed(&key).await;
    }
}

// The sessions a person has ("Your sessions", "Sign out everywhere"), their sealed IdP
// refresh tokens and the background refresh's claims, and pruning.
impl Access {
    /// Remembers that `session_id` belongs to `user_id`, for listing and signing out everywhere,
    /// with the IdP's token (sealed, and of which kind) when it signed in through the IdP.
    pub async fn remember_session(
        &self,
        user_id: i64,
        session_id: &str,
        origin: &Origin,
        sealed_idp_token: Option<(IdpTokenKind, String)>,
    ) -> Result<(), AppError> {
        let ip = origin.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let user_agent = origin.user_agent.clone().unwrap_or_default();
        let (kind, sealed) = sealed_idp_token.unwrap_or((IdpTokenKind::Refresh, String::new()));
        store::insert_session(&self.db, session_id, user_id, &ip, &user_agent, &sealed, kind.as_str())
            .await
            .or_internal()
    }

    pub async fn forget_session(&self, session_id: &str) -> Result<(), AppError> {
        store::delete_session(&self.db, session_id).await.or_internal()
    }

    /// The session ids of a user, newest first.
    pub async fn sessions_of(&self, user_id: i64) -> Result<Vec<(String, String, String, String)>, AppError> {
        store::sessions_of(&self.db, user_id).await.or_internal()
    }

    /// Keeps a session's sealed IdP refresh token.
    pub async fn keep_refresh_token(&self, session_id: &str, sealed: &str) -> Result<(), AppError> {
        store::set_refresh_token(&self.db, session_id, sealed).await.or_internal()
    }

    /// Claims a session's refresh when the last one is older than `every`: returns its sealed
    /// IdP token (and its kind) and marks the refresh as started, in one statement, so only one request
    /// (on any replica) refreshes a session at a time and a rotated token is never used twice.
    /// A refresh that could not reach the IdP is next tried after another `every`.
    pub async fn claim_refresh(
        &self,
        session_id: &str,
        every: Duration,
    ) -> Result<Option<(IdpTokenKind, String)>, AppError> {
        let due_before = crate::db::timestamp(time::OffsetDateTime::now_utc() - every);
        // A read first: most requests find no refresh due, and must not take a write lock.
        if !store::refresh_due(&self.db, session_id, &due_before).await.or_internal()? {
            return Ok(None);
        }
        let claimed = store::claim_refresh(&self.db, session_id, &due_before).await.or_internal()?;
        Ok(claimed.map(|(sealed, kind)| (IdpTokenKind::parse(&kind), sealed)))
    }

    /// Whether a session is in the sessions list (it was not signed out elsewhere).
    pub async fn session_listed(&self, session_id: &str) -> Result<bool, AppError> {
        let standing = store::session_standing(&self.db, session_id).await.or_internal()?;
        Ok(standing.is_some_and(|ended| ended.is_empty()))
    }

    /// Notes that a session is in use (at most every quarter of the idle timeout).
    pub async fn touch_session(&self, session_id: &str) -> Result<(), AppError> {
        store::touch_session(&self.db, session_id).await.or_internal()
    }

    /// Forgets sessions idle for longer than `idle` or older than `absolute`, with their sealed
    /// refresh tokens. Returns how many went.
    pub async fn prune_sessions(&self, idle: Duration, absolute: Duration) -> Result<u64, AppError> {
        let now = time::OffsetDateTime::now_utc();
        let (idle_before, created_before) = (crate::db::timestamp(now - idle), crate::db::timestamp(now - absolute));
        store::delete_sessions_before(&self.db, &idle_before, &created_before).await.or_internal()
    }

    /// Ends a session because of what the IdP answered (`why`: a code the login page explains,
    /// [`SESSION_GROUPS`]), audited with `reason`; its next request is told and signed out.
    pub async fn ended_by_idp(&self, who: &Principal, session_id: &str, why: &str, reason: &str) {
        if let Err(e) = store::end_session(&self.db, session_id, why).await {
            tracing::error!(error = %e, "could not end a session; forgetting it instead");
            let _ = self.forget_session(session_id).await;
        }
        self.record_idp_revocation(who, reason).await;
    }

    /// Why a session ended, once (it is forgotten then); `None` for a session that was not
    /// ended by the IdP's answer.
    pub async fn take_ended_session(&self, session_id: &str) -> Result<Option<String>, AppError> {
        store::take_ended(&self.db, session_id).await.or_internal()
    }

    /// Whether the IdP's answer ended a session (and its next page has not said so yet).
    pub async fn session_ended(&self, session_id: &str) -> Result<bool, AppError> {
        let standing = store::session_standing(&self.db, session_id).await.or_internal()?;
        Ok(standing.is_some_and(|ended| !ended.is_empty()))
    }

    /// Ends a session the IdP no longer accepts, and records why.
    pub async fn revoked_by_idp(&self, who: &Principal, session_id: &str, reason: &str) {
        self.record_idp_revocation(who, reason).await;
        let _ = self.forget_session(session_id).await;
    }

    async fn record_idp_revocation(&self, who: &Principal, reason: &str) {
        let event = Event::new("session.revoked_by_idp", "user")
            .target(who.user_id().unwrap_or_default(), who.actor())
            .summary(json!({ "reason": reason }));
        if let Err(e) = audit::record(&self.db, who, event).await {
            tracing::error!(error = %e, "could not record an IdP revocation");
        }
    }
}

/// Why a session ended: a refresh at the IdP named none of the person's groups.
pub const SESSION_GROUPS: &str = "session_groups";

/// What a session's sealed IdP refresh token is bound to: that session's row.
pub fn refresh_token_place(session_id: &str) -> String {
    idp_token_place(session_id, IdpTokenKind::Refresh)
}

/// What a session's sealed IdP token of `kind` is bound to: that session's row, and the kind.
pub fn idp_token_place(session_id: &str, kind: IdpTokenKind) -> String {
    format!("user_sessions {session_id} {}_token", kind.as_str())
}
