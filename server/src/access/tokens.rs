//! API tokens: created with a role (and optionally a cluster identity) and shown once, kept
//! hashed, listed and revoked by admins.

use super::*;

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The principal of a stored token, unless it is revoked or expired.
fn principal_of(stored: store::StoredToken, origin: &Origin) -> Result<Option<Principal>, AppError> {
    if !stored.revoked_at.is_empty() || (!stored.expires_at.is_empty() && stored.expires_at <= now()) {
        return Ok(None);
    }
    Ok(Some(Principal {
        identity: Identity::Token { token_id: stored.id, name: stored.name, cluster_as: stored.cluster_as },
        role: Some(ConsoleRole::parse(&stored.role).map_err(internal)?),
        cluster_roles: BTreeMap::new(),
        ip: origin.ip,
        user_agent: origin.user_agent.clone(),
    }))
}

impl Access {
    /// The principal of a valid, unexpired, unrevoked API token; records its use.
    pub async fn principal_for_token(&self, token: &str, origin: &Origin) -> Result<Option<Principal>, AppError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let Some(stored) = store::token_by_hash(&self.db, &token_hash(token)).await.or_internal()? else {
            return Ok(None);
        };
        let principal = principal_of(stored, origin)?;
        if let Some(Identity::Token { token_id, .. }) = principal.as_ref().map(|p| &p.identity) {
            store::note_token_use(&self.db, *token_id, &now()).await.or_internal()?;
        }
        Ok(principal)
    }

    /// The principal of the token with this id, while it is valid (a job it started, going on
    /// on another replica).
    pub async fn principal_for_token_id(&self, id: i64, origin: &Origin) -> Result<Option<Principal>, AppError> {
        match store::token_by_id(&self.db, id).await.or_internal()? {
            Some(stored) => principal_of(stored, origin),
            None => Ok(None),
        }
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
                return Err(AppError::invalid(
                    "Give the token a name of 1 to 64 printable characters, such as ci-deploy.",
                ));
            }
            let token = format!("{TOKEN_PREFIX}{}", random_secret(32));
            let expires_at = expires_in.map(timestamp_after).unwrap_or_default();
            let created_at = now();
            let mut info = TokenInfo {
                id: 0,
                name: name.into(),
                role,
                created_by: who.actor(),
                created_at,
                expires_at: optional(expires_at),
                last_used_at: None,
                revoked: false,
                cluster_as,
            };
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            info.id = store::insert_token(&mut tx, &info, &token_hash(&token)).await.or_internal()?;
            audit::append(&mut tx, who, event.clone().target(info.id, name)).await.or_internal()?;
            tx.commit().await.or_internal()?;
            Ok((info, token))
        }
        .await;
        settle(&self.db, who, event, result).await
    }

    pub async fn list_tokens(&self, who: &Principal) -> Result<Vec<TokenInfo>, AppError> {
        audit::settle_read(&self.db, who, authorize(who, Permission::ManageAccess)).await?;
        store::tokens(&self.db).await.or_internal()
    }

    pub async fn revoke_token(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        let event = Event::new("token.revoke", "token").target(id, "");
        let result = async {
            authorize(who, Permission::ManageAccess)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let name = store::revoke_token(&mut tx, id)
                .await
                .or_internal()?
                .ok_or_else(|| AppError::not_found(format!("There is no active token with id {id}.")))?;
            audit::append(&mut tx, who, event.clone().target(id, name)).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        settle(&self.db, who, event, result).await
    }
}
