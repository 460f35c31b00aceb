//! Accounts: the local break-glass admin and its password, people from single sign-on (kept by
//! issuer and subject, with their groups), and the principal a signed-in person acts as.

use super::*;

pub fn hash_password(password: &SecretString) -> Result<String, AppError> {
    let salt = SaltString::encode_b64(&rand::rng().random::<[u8; 16]>()).map_err(internal)?;
    Argon2::default().hash_password(password.expose_secret().as_bytes(), &salt).map(|h| h.to_string()).map_err(internal)
}

pub(super) fn password_matches(password: &SecretString, stored: &str) -> bool {
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

impl Access {
    /// On a database without users, creates the local `admin` with `password`, or with a random
    /// password that is returned so it can be printed once. Also binds it the admin role.
    pub async fn ensure_bootstrap_admin(&self, password: Option<SecretString>) -> Result<Option<String>, AppError> {
        if store::user_count(&self.db).await.or_internal()? > 0 {
            return Ok(None);
        }
        let generated = password.is_none().then(|| random_secret(18));
        let password = password.unwrap_or_else(|| SecretString::from(generated.clone().unwrap_or_default()));
        let hash = hash_password_off_workers(&password).await?;
        let who = Principal::cli();
        let mut tx = audit::begin(&self.db).await.or_internal()?;
        store::insert_local_user(&mut tx, LOCAL_ADMIN, &hash).await.or_internal()?;
        store::bind_admin_once(&mut tx, "user", LOCAL_ADMIN).await.or_internal()?;
        audit::append(&mut tx, &who, Event::new("user.bootstrap", "user").target(LOCAL_ADMIN, LOCAL_ADMIN))
            .await
            .or_internal()?;
        tx.commit().await.or_internal()?;
        Ok(generated)
    }

    /// Seeds one group → admin binding from configuration, once.
    pub async fn ensure_admin_group(&self, group: &str) -> Result<(), AppError> {
        let mut tx = audit::begin(&self.db).await.or_internal()?;
        if store::bind_admin_once(&mut tx, "group", group).await.or_internal()? {
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
        if !store::set_local_password(&mut tx, username, &hash).await.or_internal()? {
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
        let user = match store::local_user(&self.db, username).await.or_internal()? {
            Some((id, hash, disabled)) => (check_password(password, hash).await? && !disabled).then_some(id),
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
        store::note_login(&mut tx, user_id).await.or_internal()?;
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
            let user = store::SsoUser {
                issuer: &identity.issuer,
                subject: &identity.subject,
                username: &identity.username,
                groups: &identity.groups,
                groups_note: identity.groups_note.as_deref().unwrap_or_default(),
            };
            let (user_id, disabled) = match store::upsert_sso_user(&mut tx, &user).await {
                Ok(written) => written,
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
            if disabled {
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
            audit::append(&mut tx, &principal, event.clone().target(user_id, &identity.username))
                .await
                .or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(principal)
        }
        .await;
        settle(&self.db, &anonymous, event, result).await
    }

    /// Keeps the groups the IdP named when it last refreshed a session, if the refreshed ID
    /// token is about this user (same issuer and subject); otherwise changes nothing.
    /// The IdP subject of a single-sign-on user, when the user is one.
    pub async fn sso_subject(&self, user_id: i64) -> Result<Option<String>, AppError> {
        store::sso_subject(&self.db, user_id).await.or_internal()
    }

    pub async fn update_groups(
        &self,
        user_id: i64,
        issuer: &str,
        subject: &str,
        groups: &[String],
    ) -> Result<(), AppError> {
        store::set_sso_groups(&self.db, user_id, issuer, subject, groups).await.or_internal()
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
        let Some(user) = store::user(&self.db, user_id).await.or_internal()?.filter(|u| !u.disabled) else {
            return Ok(None);
        };
        let (role, cluster_roles) = self.roles_of(&user.username, &user.groups).await?;
        let username = user.username;
        let identity = if user.local {
            Identity::Local { user_id, username }
        } else {
            Identity::Oidc { user_id, username, groups: user.groups, groups_note: user.groups_note }
        };
        Ok(Some(Principal { identity, role, cluster_roles, ip: origin.ip, user_agent: origin.user_agent.clone() }))
    }

    /// Who a job's recorded caller is now, for the replica that takes the job over: the person
    /// or token with today's roles, or `None` when they may no longer act (disabled, deleted,
    /// revoked, expired). The command line and gRPC clients act as recorded.
    pub async fn acting_now(&self, recorded: Principal) -> Result<Option<Principal>, AppError> {
        let origin = Origin { ip: recorded.ip, user_agent: recorded.user_agent.clone() };
        match &recorded.identity {
            Identity::Local { user_id, .. } | Identity::Oidc { user_id, .. } => {
                self.principal_for_user(*user_id, &origin).await
            }
            Identity::Token { token_id, .. } => self.principal_for_token_id(*token_id, &origin).await,
            Identity::Cli { .. } | Identity::Certificate { .. } => Ok(Some(recorded)),
            Identity::Anonymous => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
